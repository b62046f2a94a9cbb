#!/bin/sh
# Fetch the signed UEFI loaders PortaPXE serves to Secure Boot machines: Debian's shim
# (signed by Microsoft's UEFI CA) and Debian's network GRUB (signed by Debian, trusted
# by that shim), from the packages shim-signed and grub-efi-amd64-signed, and the same
# for ARM64 from the arm64 packages shim-signed and grub-efi-arm64-signed.
#
# Usage: installers/signed-loaders.sh OUTDIR      (CI and the lab use target/signed-loaders)
#
# The packages are downloaded, not installed: installing them would run grub-install.
# OUTDIR gets shimx64.efi and grubx64.efi, shimaa64.efi and grubaa64.efi (the names shim
# looks for beside itself), COPYING.signed-loaders.txt (versions, where the source is,
# the copyright files) and VERSIONS. Idempotent: does nothing when all are already there.
# The arm64 packages come through apt with a package list of their own in a scratch
# folder (APT::Architecture=arm64), so the machine's dpkg architectures stay as they are.
set -eu
# shellcheck source=installers/arm64-apt.sh
. "$(dirname "$0")/arm64-apt.sh"

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR   (e.g. $0 target/signed-loaders)" >&2
    exit 2
fi
out=$1
if [ -s "$out/shimx64.efi" ] && [ -s "$out/grubx64.efi" ] && [ -s "$out/shimaa64.efi" ] \
    && [ -s "$out/grubaa64.efi" ] && [ -s "$out/COPYING.signed-loaders.txt" ]; then
    echo "signed loaders already present in $out"
    exit 0
fi

mkdir -p "$out"
work=$(mktemp -d)
chmod 755 "$work"   # apt-get download runs as _apt and must write here
trap 'rm -rf "$work"' EXIT
# grub-common and shim-unsigned only for their copyright files: the signed packages'
# describe their packaging, not the licences of GRUB and shim themselves.
(cd "$work" && apt-get download shim-signed grub-efi-amd64-signed shim-unsigned grub-common)
arm64_apt_update "$work/arm64" signed-loaders.sh || exit 1
# shellcheck disable=SC2086
(cd "$work/arm64/debs" && apt-get -q $arm64 download shim-signed grub-efi-arm64-signed)
for deb in "$work"/*.deb "$work"/arm64/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/fs"
done
version() { dpkg-deb -f "$work"/"$1"_*.deb Version; }
shim_version=$(version shim-signed)
grub_version=$(version grub-efi-amd64-signed)
shim_arm64_version=$(dpkg-deb -f "$work"/arm64/debs/shim-signed_*.deb Version)
grub_arm64_version=$(dpkg-deb -f "$work"/arm64/debs/grub-efi-arm64-signed_*.deb Version)
shim_source=$(version shim-unsigned)
grub_source=$(version grub-common)

cp "$work/fs/usr/lib/shim/shimx64.efi.signed" "$out/shimx64.efi.tmp"
cp "$work/fs/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$out/grubx64.efi.tmp"
cp "$work/fs/usr/lib/shim/shimaa64.efi.signed" "$out/shimaa64.efi.tmp"
cp "$work/fs/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed" "$out/grubaa64.efi.tmp"
{
    printf 'shimx64.efi is /usr/lib/shim/shimx64.efi.signed from the Debian package shim-signed %s,\n' "$shim_version"
    printf 'unmodified (signed by the Microsoft Corporation UEFI CA 2011).\n'
    printf 'grubx64.efi is /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed from the Debian package\n'
    printf 'grub-efi-amd64-signed %s, unmodified (signed by Debian Secure Boot Signer).\n' "$grub_version"
    printf 'shimaa64.efi is /usr/lib/shim/shimaa64.efi.signed from the Debian package shim-signed %s\n' "$shim_arm64_version"
    printf '(arm64), unmodified (signed by the Microsoft Corporation UEFI CA 2011).\n'
    printf 'grubaa64.efi is /usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed from the Debian package\n'
    printf 'grub-efi-arm64-signed %s (arm64), unmodified (signed by Debian Secure Boot Signer).\n\n' "$grub_arm64_version"
    printf 'shim is under the BSD-2-Clause licence, with parts under the OpenSSL, SSLeay and BSD-style\n'
    printf 'licences; GRUB is under the GPL, version 3 or later. Both copyright files follow.\n\n'
    printf 'Their complete source: the Debian source packages shim %s and grub2 %s\n' "$shim_source" "$grub_source"
    printf '(the signed packages add only the signatures):\n'
    printf '  apt-get source shim=%s grub2=%s\n' "$shim_source" "$grub_source"
    printf '  https://snapshot.debian.org/package/shim/%s/\n' "$shim_source"
    printf '  https://snapshot.debian.org/package/grub2/%s/\n\n' "$grub_source"
    printf -- '----- Debian copyright file of shim (package shim-unsigned) -----\n\n'
    cat "$work/fs/usr/share/doc/shim-unsigned/copyright"
    printf -- '\n----- Debian copyright file of grub2 (package grub-common) -----\n\n'
    cat "$work/fs/usr/share/doc/grub-common/copyright"
    printf -- '\n----- Debian copyright file of shim-signed -----\n\n'
    cat "$work/fs/usr/share/doc/shim-signed/copyright"
    printf -- '\n----- Debian copyright file of grub-efi-amd64-signed -----\n\n'
    cat "$work/fs/usr/share/doc/grub-efi-amd64-signed/copyright"
    printf -- '\n----- Debian copyright file of grub-efi-arm64-signed -----\n\n'
    cat "$work/fs/usr/share/doc/grub-efi-arm64-signed/copyright"
} > "$out/COPYING.signed-loaders.txt.tmp"
printf 'shim-signed %s\ngrub-efi-amd64-signed %s\nshim-signed:arm64 %s\ngrub-efi-arm64-signed %s\n' \
    "$shim_version" "$grub_version" "$shim_arm64_version" "$grub_arm64_version" > "$out/VERSIONS"
mv "$out/shimx64.efi.tmp" "$out/shimx64.efi"
mv "$out/grubx64.efi.tmp" "$out/grubx64.efi"
mv "$out/shimaa64.efi.tmp" "$out/shimaa64.efi"
mv "$out/grubaa64.efi.tmp" "$out/grubaa64.efi"
mv "$out/COPYING.signed-loaders.txt.tmp" "$out/COPYING.signed-loaders.txt"
echo "signed loaders in $out: shim-signed $shim_version, grub-efi-amd64-signed $grub_version," \
    "arm64: shim-signed $shim_arm64_version, grub-efi-arm64-signed $grub_arm64_version"
