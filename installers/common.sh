# shellcheck shell=bash
# Sourced by every installer script: paths, the version, messages, the icon renderer and
# the boot files. Needs bash, python3, rsvg-convert (librsvg2-bin) and, for the boot files,
# Debian's ipxe package and the signed loaders that installers/signed-loaders.sh fetches
# (.ci/install-deps.sh installs and fetches them all).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Scratch space and finished packages; both under target/, so `cargo clean` removes them.
WORK=${PORTAPXE_WORK:-$ROOT/target/installers}
DIST=${PORTAPXE_DIST:-$ROOT/target/dist}
ICON_SVG=$ROOT/assets/portapxe.svg
# The loaders the app serves by default (README: "Defaults"), taken from Debian's ipxe.
# Debian ships no ARM64 iPXE build, so no ipxe-arm64.efi is packaged.
IPXE_DIR=${IPXE_DIR:-/usr/lib/ipxe}
BOOT_FILES=(undionly.kpxe ipxe.efi snponly.efi)
# The signed chain for Secure Boot (shim, then network GRUB), as installers/signed-loaders.sh
# writes it: the loaders (x64 and ARM64), COPYING.signed-loaders.txt and VERSIONS.
SIGNED_DIR=${SIGNED_DIR:-$ROOT/target/signed-loaders}
SIGNED_FILES=(shimx64.efi grubx64.efi shimaa64.efi grubaa64.efi)
# The imaging agent seats boot (installers/agent/build.sh: Debian's kernel, an initramfs of
# Debian packages and portapxe-agent), in boot/agent/ where `portapxe image` looks for it.
# Linux x86-64 whatever system serves it, so every installer carries the same files.
AGENT_DIR=${AGENT_DIR:-$WORK/agent}
AGENT_FILES=(agent/vmlinuz agent/initrd.img agent/VERSIONS agent/COPYING.agent.txt)
# syslinux's memdisk (Debian's syslinux-common), which boots an ISO's floppy image on BIOS
# machines (BIOS update and DOS tool ISOs), with COPYING.memdisk.txt.
MEMDISK=${MEMDISK:-/usr/lib/syslinux/memdisk}

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'installers: error: %s\n' "$*" >&2
    exit 1
}
need() {
    local tool
    for tool; do
        command -v "$tool" > /dev/null || die "$tool is missing (on Debian: sudo .ci/install-deps.sh)"
    done
}

# The version every package carries: the workspace version of the `portapxe` package.
portapxe_version() {
    (cd "$ROOT" && cargo metadata --no-deps --format-version 1) |
        python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "portapxe"))'
}

# render_png SIZE OUT.png: the app icon at SIZE x SIZE pixels.
render_png() {
    need rsvg-convert
    rsvg-convert --width "$1" --height "$1" --format png --output "$2" "$ICON_SVG"
}

# make_icon ico|icns OUT SIZE...: a Windows or macOS icon file from the SVG.
make_icon() {
    local kind=$1 out=$2 size pngs=()
    shift 2
    mkdir -p "$WORK/icons"
    for size; do
        render_png "$size" "$WORK/icons/portapxe-$size.png"
        pngs+=("$WORK/icons/portapxe-$size.png")
    done
    python3 "$ROOT/installers/icons.py" "$kind" "$out" "${pngs[@]}"
    python3 "$ROOT/installers/icons.py" check "$out" "$@" > /dev/null
}

# build_agent: the imaging agent into $AGENT_DIR/agent/ (cargo and build.sh's cache of the
# initramfs's Debian part, $AGENT_DIR/cache, make the second time quick), with the licenses
# and the source of every Debian package in it (COPYING.agent.txt).
build_agent() {
    local out=$AGENT_DIR/agent bin package version
    need cargo apt-get dpkg-deb depmod modprobe cpio gzip
    step "imaging agent (cargo build --release -p portapxe-agent, installers/agent/build.sh)"
    (cd "$ROOT" && cargo build --release --locked -p portapxe-agent)
    bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/portapxe-agent
    mkdir -p "$AGENT_DIR/cache"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    cp -r "$AGENT_DIR/cache" "$out.tmp/cache"
    bash "$ROOT/installers/agent/build.sh" "$out.tmp" "$bin"
    rm -rf "$AGENT_DIR/cache" && mv "$out.tmp/cache" "$AGENT_DIR/cache"
    {
        printf 'PortaPXE imaging agent: vmlinuz (the kernel) and initrd.img (its programs).\n\n'
        printf 'portapxe-agent is part of PortaPXE (GPL-3.0-or-later). Everything else is taken\n'
        printf 'unmodified from these Debian packages (VERSIONS lists the same), whose complete\n'
        printf 'source is the Debian source package of each:\n\n'
        while read -r package version; do
            # A binary rebuild (+bN) has the source version without it.
            printf '  %s %s: apt-get source %s=%s\n' "$package" "$version" "$package" "${version%+b[0-9]*}"
            printf '      https://snapshot.debian.org/binary/%s/\n' "$package"
        done < "$out.tmp/VERSIONS"
        printf '\nThe kernel, busybox, udpcast and partclone are GPL-2.0; zstd is BSD-3-Clause or GPL-2.0;\n'
        printf 'util-linux (sfdisk, blkid) is GPL-2.0-or-later with parts under other licenses. The shared\n'
        printf 'libraries the programs load are listed above with their packages; the GNU C library\n'
        printf '(libc6) is LGPL-2.1-or-later. Each package'"'"'s own copyright file is in its source.\n'
        printf '\n----- GNU General Public License, version 2 -----\n\n'
        cat /usr/share/common-licenses/GPL-2
        printf '\n\n----- GNU Lesser General Public License, version 2.1 -----\n\n'
        cat /usr/share/common-licenses/LGPL-2.1
    } > "$out.tmp/COPYING.agent.txt"
    rm -rf "$out.tmp/cache" "$out" && mv "$out.tmp" "$out"
}

# make_boot_dir DIR: the iPXE loaders, the signed loaders and the imaging agent, each with
# their licenses and where their source is (COPYING.ipxe.txt, COPYING.signed-loaders.txt,
# agent/COPYING.agent.txt).
make_boot_dir() {
    local dir=$1 file version
    mkdir -p "$dir/agent"
    build_agent
    for file in "${AGENT_FILES[@]}"; do
        install -m 0644 "$AGENT_DIR/$file" "$dir/$file"
    done
    for file in "${SIGNED_FILES[@]}" COPYING.signed-loaders.txt; do
        [ -s "$SIGNED_DIR/$file" ] ||
            die "$SIGNED_DIR/$file is missing: run installers/signed-loaders.sh ${SIGNED_DIR#"$ROOT"/} (or .ci/install-deps.sh)"
        install -m 0644 "$SIGNED_DIR/$file" "$dir/$file"
    done
    for file in "${BOOT_FILES[@]}"; do
        [ -s "$IPXE_DIR/$file" ] || die "$IPXE_DIR/$file is missing: install Debian's ipxe package"
        install -m 0644 "$IPXE_DIR/$file" "$dir/$file"
    done
    [ -s "$MEMDISK" ] || die "$MEMDISK is missing: install Debian's syslinux-common package"
    install -m 0644 "$MEMDISK" "$dir/memdisk"
    version=$(dpkg-query -W -f '${Version}' syslinux-common) || die "Debian's syslinux-common package is not installed"
    {
        printf 'memdisk (syslinux), unmodified, from the Debian package syslinux-common, version %s.\n' "$version"
        printf 'It is free software under the GPL, version 2 or later. Its complete source is the Debian\n'
        printf 'source package syslinux %s:\n' "$version"
        printf '  apt-get source syslinux=%s\n' "$version"
        printf '  https://snapshot.debian.org/package/syslinux/%s/\n\n' "$version"
        printf -- '----- Debian copyright file of the syslinux-common package -----\n\n'
        cat /usr/share/doc/syslinux-common/copyright
        printf '\n\n----- GNU General Public License, version 2 -----\n\n'
        cat /usr/share/common-licenses/GPL-2
    } > "$dir/COPYING.memdisk.txt"
    [ -s /usr/share/doc/ipxe/copyright ] || die "/usr/share/doc/ipxe/copyright is missing"
    version=$(dpkg-query -W -f '${Version}' ipxe) || die "Debian's ipxe package is not installed"
    {
        printf 'iPXE network boot loaders: %s\n\n' "${BOOT_FILES[*]}"
        printf 'These files are unmodified builds from the Debian package ipxe, version %s.\n' "$version"
        printf 'iPXE is free software (GPL-2.0-or-later with parts under other licenses, listed below).\n'
        printf 'Its complete source is the Debian source package ipxe %s:\n' "$version"
        printf '  apt-get source ipxe=%s\n' "$version"
        printf '  https://snapshot.debian.org/package/ipxe/%s/\n' "$version"
        printf 'and upstream at https://ipxe.org.\n\n'
        printf -- '----- Debian copyright file of the ipxe package -----\n\n'
        cat /usr/share/doc/ipxe/copyright
        printf '\n\n----- GNU General Public License, version 2 -----\n\n'
        cat /usr/share/common-licenses/GPL-2
    } > "$dir/COPYING.ipxe.txt"
}

# check_boot_dir DIR WHAT: dies unless DIR holds what make_boot_dir puts there: every loader
# byte for byte as taken, and both license files. WHAT names DIR in the message.
check_boot_dir() {
    local dir=$1 what=$2 file
    for file in "${BOOT_FILES[@]}"; do
        cmp -s "$dir/$file" "$IPXE_DIR/$file" || die "$what: $file is missing or differs from $IPXE_DIR/$file"
    done
    for file in "${SIGNED_FILES[@]}" COPYING.signed-loaders.txt; do
        cmp -s "$dir/$file" "$SIGNED_DIR/$file" || die "$what: $file is missing or differs from $SIGNED_DIR/$file"
    done
    for file in "${AGENT_FILES[@]}"; do
        cmp -s "$dir/$file" "$AGENT_DIR/$file" || die "$what: $file is missing or differs from $AGENT_DIR/$file"
    done
    cmp -s "$dir/memdisk" "$MEMDISK" || die "$what: memdisk is missing or differs from $MEMDISK"
    [ -s "$dir/COPYING.ipxe.txt" ] || die "$what lacks COPYING.ipxe.txt"
    [ -s "$dir/COPYING.memdisk.txt" ] || die "$what lacks COPYING.memdisk.txt"
    echo "$what: ${BOOT_FILES[*]} ${SIGNED_FILES[*]} memdisk ${AGENT_FILES[*]} as built, with COPYING.ipxe.txt, COPYING.memdisk.txt and COPYING.signed-loaders.txt"
}

# license_file: the GPL-3 text shipped beside the program: $LICENSE_FILE if set, else a
# LICENSE file in the repository, else Debian's copy.
license_file() {
    local file
    for file in "${LICENSE_FILE:-}" "$ROOT/LICENSE" /usr/share/common-licenses/GPL-3; do
        [ -s "$file" ] && { echo "$file"; return; }
    done
    die "no GPL-3 license text: add LICENSE to the repository (or install Debian's base-files)"
}

VERSION=${VERSION:-$(portapxe_version)}
[ -n "$VERSION" ] || die "cannot read the version of the portapxe package"
mkdir -p "$WORK" "$DIST"
