#!/bin/sh
# Fetch the guest kernel the PortaPXE end-to-end lab boots.
#
# Usage: tests/lab/prepare-guest.sh OUTDIR      (the harness looks in target/lab)
#
# Downloads the current Debian linux-image-*-amd64 package with apt-get (no
# install, no root needed beyond apt's cache) and extracts its vmlinuz into
# OUTDIR/vmlinuz. Idempotent: does nothing when OUTDIR/vmlinuz already exists.
# The initramfs is not made here: the harness builds it from /bin/busybox
# (busybox-static) for every run, with a marker unique to that run.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR   (e.g. $0 target/lab)" >&2
    exit 2
fi
out=$1

if [ -s "$out/vmlinuz" ]; then
    echo "guest kernel already present: $out/vmlinuz"
    exit 0
fi

# linux-image-amd64 is the metapackage; it depends on the current versioned image.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
    echo "cannot find the current linux-image-*-amd64 package; run apt-get update first" >&2
    exit 1
fi

mkdir -p "$out"
work=$(mktemp -d)
chmod 755 "$work"   # apt-get download runs as _apt and must write here
trap 'rm -rf "$work"' EXIT

echo "downloading $pkg"
(cd "$work" && apt-get download "$pkg")
deb=$(ls "$work"/*.deb)
mkdir "$work/fs"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/fs" ./boot
kernel=$(ls "$work"/fs/boot/vmlinuz-* | head -n 1)
cp "$kernel" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "guest kernel: $out/vmlinuz (from $pkg, $(wc -c < "$out/vmlinuz") bytes)"
