#!/bin/sh
# Fetch what the lab's ARM64 guest boots: Debian's signed arm64 kernel (its vmlinuz is a
# signed EFI-stub Image) and the arm64 busybox-static the harness puts in its marker
# initramfs.
#
# Usage: tests/lab/prepare-arm64.sh OUTDIR      (the harness looks in target/lab/arm64)
#
# The arm64 packages come through apt with a package list of their own in a scratch
# folder (APT::Architecture=arm64): nothing is installed and the machine's dpkg
# architectures stay as they are. OUTDIR gets vmlinuz and busybox. Idempotent.
set -eu
# shellcheck source=installers/arm64-apt.sh
. "$(dirname "$0")/../../installers/arm64-apt.sh"

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR   (e.g. $0 target/lab/arm64)" >&2
    exit 2
fi
out=$1
if [ -s "$out/vmlinuz" ] && [ -s "$out/busybox" ]; then
    echo "arm64 guest already present in $out"
    exit 0
fi

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
arm64_apt_update "$work" prepare-arm64.sh || exit 1
# linux-image-arm64 is the metapackage; it depends on the current (signed) image.
# shellcheck disable=SC2086
pkg=$(apt-cache $arm64 depends linux-image-arm64 2> /dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-arm64\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
    echo "prepare-arm64.sh: cannot find the current linux-image-*-arm64 package" >&2
    exit 1
fi
# shellcheck disable=SC2086
(cd "$work/debs" && apt-get -q $arm64 download "$pkg" busybox-static > /dev/null)
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/fs"
done
cp "$work"/fs/boot/vmlinuz-* "$out/vmlinuz.tmp"
cp "$work/fs/bin/busybox" "$out/busybox.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/busybox.tmp" "$out/busybox"
echo "arm64 guest in $out: $pkg, busybox-static"
