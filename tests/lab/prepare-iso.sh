#!/bin/sh
# Build the ISO images the PortaPXE ISO end-to-end tests use.
#
# Usage: tests/lab/prepare-iso.sh OUTDIR      (the harness looks in target/lab)
#
# Packages (Debian 12): xorriso isolinux syslinux-common
#
# OUTDIR/debian-mini.iso: a Debian installer "mini.iso" built here with xorriso.
#   Its kernel and initrd come from debian-installer-12-netboot-amd64, downloaded
#   with apt-get (not installed) into a temporary directory that is removed on
#   exit: the ISO is the only output. Tree:
#     /linux, /initrd.gz                     the netboot installer (text frontend)
#     /isolinux/isolinux.bin, ldlinux.c32    isolinux, syslinux-common
#     /isolinux/isolinux.cfg, txt.cfg        the boot menu, see below
#   The menu files follow Debian's own mini.iso, which debian-installer makes
#   from its build/boot/x86/{syslinux,txt}.cfg templates (bookworm, 20230607):
#   CRLF line endings, "D-I config version 2.0" header, "label install" with
#   "append vga=788 initrd=... --- quiet ". Two differences: Debian puts every
#   file at the ISO root and writes "kernel linux" / "initrd=initrd.gz"; here
#   the loader files sit in /isolinux/, where isolinux resolves relative names,
#   so the paths are absolute (/linux, /initrd.gz). And Debian's isolinux.cfg
#   says "include menu.cfg" + "default vesamenu.c32"; this tree has no menu
#   modules, so it includes txt.cfg and says "default install".
#
# Debian's memtest ISO is not made here: the tests use
# /usr/lib/memtest86+/memtest86+x64.iso (package memtest86+) as it is.
#
# Idempotent: an image that already exists is left alone. Each image is written
# under a temporary name in OUTDIR and renamed when complete.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR   (e.g. $0 target/lab)" >&2
    exit 2
fi
out=$1

isolinux_bin=/usr/lib/ISOLINUX/isolinux.bin
ldlinux_c32=/usr/lib/syslinux/modules/bios/ldlinux.c32

work=
tmp=
trap 'rm -rf "$work" "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# debian-mini.iso
build_debian_mini() {
    iso=$out/debian-mini.iso
    if [ -s "$iso" ]; then
        echo "Debian mini.iso already present: $iso"
        return 0
    fi
    command -v xorriso >/dev/null || {
        echo "xorriso is missing: apt-get install xorriso" >&2
        exit 1
    }
    for f in "$isolinux_bin" "$ldlinux_c32"; do
        if [ ! -s "$f" ]; then
            echo "$f is missing: apt-get install isolinux syslinux-common" >&2
            exit 1
        fi
    done

    pkg=debian-installer-12-netboot-amd64
    work=$(mktemp -d)
    # As root, apt-get download fetches as the user _apt, which must be able to
    # write here; otherwise apt warns and downloads as root.
    chmod 755 "$work"
    chown _apt "$work" 2>/dev/null || true
    echo "downloading $pkg"
    if ! (cd "$work" && apt-get download "$pkg"); then
        echo "cannot download $pkg; run apt-get update first" >&2
        exit 1
    fi
    deb=$(ls "$work"/*.deb)

    # Only the two files the ISO needs come out of the package.
    di=./usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
    mkdir "$work/fs"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/fs" "$di/linux" "$di/initrd.gz"

    tree=$work/tree
    mkdir -p "$tree/isolinux"
    mv "$work/fs/$di/linux" "$work/fs/$di/initrd.gz" "$tree/"
    cp "$isolinux_bin" "$ldlinux_c32" "$tree/isolinux/"
    # The trailing spaces are Debian's too: empty ${SYSDIR} and ${CONSOLE}.
    printf '%s\r\n' \
        '# D-I config version 2.0' \
        '# search path for the c32 support libraries (libcom32, libutil etc.)' \
        'path ' \
        'prompt 0' \
        'timeout 0' \
        'include txt.cfg' \
        'default install' \
        > "$tree/isolinux/isolinux.cfg"
    printf '%s\r\n' \
        'label install' \
        '	menu label ^Install' \
        '	kernel /linux' \
        '	append vga=788 initrd=/initrd.gz --- quiet ' \
        > "$tree/isolinux/txt.cfg"

    mkdir -p "$out"
    tmp=$out/.debian-mini.iso.tmp
    rm -f "$tmp"
    xorriso -as mkisofs -r -J \
        -b isolinux/isolinux.bin -c isolinux/boot.cat \
        -no-emul-boot -boot-load-size 4 -boot-info-table \
        -o "$tmp" "$tree"
    mv "$tmp" "$iso"
    tmp=
    rm -rf "$work"
    work=
    echo "Debian mini.iso: $iso (from $pkg, $(wc -c < "$iso") bytes)"
}

build_debian_mini
