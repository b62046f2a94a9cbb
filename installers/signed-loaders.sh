#!/bin/sh
# Fetch the signed UEFI loaders PortaPXE serves to Secure Boot machines: Debian's shim
# (signed by Microsoft's UEFI CA) and Debian's network GRUB (signed by Debian, trusted
# by that shim), from the packages shim-signed and grub-efi-amd64-signed.
#
# Usage: installers/signed-loaders.sh OUTDIR      (CI and the lab use target/signed-loaders)
#
# The packages are downloaded, not installed: installing them would run grub-install.
# OUTDIR gets shimx64.efi and grubx64.efi (the names shim and the firmware look for),
# COPYING.signed-loaders.txt (versions, where the source is, both copyright files) and
# VERSIONS. Idempotent: does nothing when both loaders are already there.
# ARM64 (shimaa64.efi, grubnetaa64.efi) would need Debian's arm64 packages, which this
# amd64 machine does not download: not bundled yet.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR   (e.g. $0 target/signed-loaders)" >&2
    exit 2
fi
out=$1
if [ -s "$out/shimx64.efi" ] && [ -s "$out/grubx64.efi" ] && [ -s "$out/COPYING.signed-loaders.txt" ]; then
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
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/fs"
done
version() { dpkg-deb -f "$work"/"$1"_*.deb Version; }
shim_version=$(version shim-signed)
grub_version=$(version grub-efi-amd64-signed)
shim_source=$(version shim-unsigned)
grub_source=$(version grub-common)

cp "$work/fs/usr/lib/shim/shimx64.efi.signed" "$out/shimx64.efi.tmp"
cp "$work/fs/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$out/grubx64.efi.tmp"
{
    printf 'shimx64.efi is /usr/lib/shim/shimx64.efi.signed from the Debian package shim-signed %s,\n' "$shim_version"
    printf 'unmodified (signed by the Microsoft Corporation UEFI CA 2011).\n'
    printf 'grubx64.efi is /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed from the Debian package\n'
    printf 'grub-efi-amd64-signed %s, unmodified (signed by Debian Secure Boot Signer).\n\n' "$grub_version"
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
} > "$out/COPYING.signed-loaders.txt.tmp"
printf 'shim-signed %s\ngrub-efi-amd64-signed %s\n' "$shim_version" "$grub_version" > "$out/VERSIONS"
mv "$out/shimx64.efi.tmp" "$out/shimx64.efi"
mv "$out/grubx64.efi.tmp" "$out/grubx64.efi"
mv "$out/COPYING.signed-loaders.txt.tmp" "$out/COPYING.signed-loaders.txt"
echo "signed loaders in $out: shim-signed $shim_version, grub-efi-amd64-signed $grub_version"
