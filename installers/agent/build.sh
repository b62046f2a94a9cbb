#!/bin/sh
# Build the imaging agent seats boot: Debian's kernel and an initramfs made from Debian
# packages (busybox-static, udpcast's udp-receiver, partclone, zstd, sfdisk, blkid, the
# kernel's network and disk drivers) with portapxe-agent in it.
#
# Usage: installers/agent/build.sh OUTDIR AGENT_BINARY
#
# OUTDIR gets vmlinuz, initrd.img and VERSIONS. The initramfs is two concatenated
# archives (Linux unpacks both): base.cpio.gz, made once and kept in OUTDIR/cache (the
# kernel's modules and the Debian programs with their libraries, taken from this
# machine's installed packages), and the agent binary's own small archive, made each
# time. The kernel package is downloaded with apt-get (not installed), like the lab's
# guest kernel; its modules come from it, so they match the kernel.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 OUTDIR AGENT_BINARY" >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
agent=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")" && pwd)
cache="$out/cache"
mkdir -p "$out" "$cache"

# Programs the agent runs, from this machine's packages (udpcast partclone zstd fdisk util-linux).
programs="/usr/bin/udp-receiver /usr/bin/zstd /usr/sbin/sfdisk /usr/sbin/blkid
/usr/sbin/partclone.extfs /usr/sbin/partclone.fat /usr/sbin/partclone.ntfs /usr/sbin/partclone.exfat
/usr/sbin/partclone.btrfs /usr/sbin/partclone.xfs /usr/sbin/partclone.restore"
# Network and disk drivers a seat may need, with what they depend on (modprobe finds it).
modules="virtio_pci virtio_net virtio_blk virtio_scsi e1000 e1000e igb igc r8169 tg3 bnx2 ixgbe
atlantic alx ahci ata_piix nvme sd_mod uas usb_storage xhci_pci ehci_pci"

# The kernel is amd64's; the programs and libraries come from this machine.
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || { echo "the agent is built for x86-64 seats: run this on an amd64 Debian, not $arch" >&2; exit 1; }

if [ ! -s "$cache/base.cpio.gz" ] || [ ! -s "$cache/vmlinuz" ]; then
    for program in $programs /bin/busybox; do
        [ -x "$program" ] || { echo "missing $program: apt-get install udpcast partclone zstd fdisk util-linux busybox-static" >&2; exit 1; }
    done
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
    [ -n "$pkg" ] || { echo "cannot find the current linux-image-*-amd64 package; run apt-get update first" >&2; exit 1; }
    work=$(mktemp -d)
    chmod 755 "$work"   # apt-get download runs as _apt and must write here
    trap 'rm -rf "$work"' EXIT
    echo "agent: downloading $pkg"
    (cd "$work" && apt-get download "$pkg" > /dev/null)
    mkdir "$work/kernel" "$work/root"
    # Only the kernel and the module trees a seat's drivers can come from: the whole
    # package is about 400 MB unpacked (sound, graphics, wireless, media…), which a machine
    # short of disk space should not need.
    dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work/kernel" --wildcards \
        --exclude='*/kernel/sound' --exclude='*/kernel/drivers/gpu' --exclude='*/kernel/drivers/media' \
        --exclude='*/kernel/drivers/net/wireless' --exclude='*/kernel/drivers/infiniband' \
        --exclude='*/kernel/drivers/staging' --exclude='*/kernel/drivers/iio' --exclude='*/kernel/net/bluetooth' \
        --exclude='*/kernel/net/wireless' --exclude='*/kernel/net/mac80211' --exclude='*/kernel/fs' \
        './boot/vmlinuz-*' './lib/modules/*'
    version=
    for dir in "$work"/kernel/lib/modules/*; do version=${dir##*/}; break; done
    depmod -b "$work/kernel" "$version"
    root="$work/root"
    mkdir -p "$root/bin" "$root/sbin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" \
        "$root/lib/modules/$version" "$root/usr/bin" "$root/usr/sbin"
    cp /bin/busybox "$root/bin/busybox"
    # The drivers and their dependencies, by modprobe's own resolution.
    loaded=""
    for module in $modules; do
        deps=$(modprobe -d "$work/kernel" -S "$version" --show-depends "$module" 2>/dev/null | sed -n 's/^insmod \([^ ]*\).*/\1/p') || true
        for file in $deps; do
            relative=${file#"$work/kernel"}
            mkdir -p "$root$(dirname "$relative")"
            cp "$file" "$root$relative"
        done
        [ -n "$deps" ] && loaded="$loaded $module"
    done
    for index in modules.order modules.builtin modules.builtin.modinfo; do
        cp "$work/kernel/lib/modules/$version/$index" "$root/lib/modules/$version/"
    done
    depmod -b "$root" "$version"
    echo "$loaded" | tr ' ' '\n' | sed '/^$/d' > "$root/etc/agent-modules"
    # The programs and every library they load, at the same paths.
    for program in $programs; do
        cp "$program" "$root$program"
        ldd "$program" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' | while read -r lib; do
            mkdir -p "$root$(dirname "$lib")"
            [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
            echo "$lib" >> "$work/libraries"
        done
    done
    # The Debian packages the libraries come from, for VERSIONS (and the licenses' sources).
    sort -u "$work/libraries" | while read -r lib; do
        dpkg -S "$lib" 2> /dev/null || dpkg -S "$(readlink -f "$lib")" 2> /dev/null || dpkg -S "/usr$lib" 2> /dev/null ||
            { echo "no Debian package ships $lib" >&2; exit 1; }
    done | sed 's/:.*//' | sort -u > "$work/library-packages"
    cp "$here/init" "$root/init"
    cp "$here/udhcpc.script" "$root/etc/udhcpc.script"
    chmod 755 "$root/init" "$root/etc/udhcpc.script"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9 > "$cache/base.cpio.gz.tmp")
    mv "$cache/base.cpio.gz.tmp" "$cache/base.cpio.gz"
    for kernel in "$work"/kernel/boot/vmlinuz-*; do cp "$kernel" "$cache/vmlinuz"; break; done
    # One line per Debian package: its name and version.
    printf '%s %s\nbusybox-static %s\nudpcast %s\npartclone %s\nzstd %s\nfdisk %s\nutil-linux %s\n' "$pkg" \
        "$(dpkg-deb -f "$work"/*.deb Version)" "$(dpkg-query -W -f '${Version}' busybox-static)" "$(dpkg-query -W -f '${Version}' udpcast)" \
        "$(dpkg-query -W -f '${Version}' partclone)" "$(dpkg-query -W -f '${Version}' zstd)" \
        "$(dpkg-query -W -f '${Version}' fdisk)" "$(dpkg-query -W -f '${Version}' util-linux)" > "$cache/VERSIONS"
    while read -r package; do
        grep -q "^$package " "$cache/VERSIONS" || printf '%s %s\n' "$package" "$(dpkg-query -W -f '${Version}' "$package")" >> "$cache/VERSIONS"
    done < "$work/library-packages"
    # The trap below replaces this one: the scratch folder (about 300 MB) goes now.
    rm -rf "$work"
fi

# The agent: its own archive, with the libraries it loads that the base lacks.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
cp "$agent" "$stage/bin/portapxe-agent"
# A debug build carries its symbols: they would be most of the archive.
if command -v strip > /dev/null; then strip --strip-all "$stage/bin/portapxe-agent"; fi
ldd "$agent" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p' | while read -r lib; do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
done
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -9 > "$out/agent.cpio.gz")
cat "$cache/base.cpio.gz" "$out/agent.cpio.gz" > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
rm -f "$out/agent.cpio.gz"
cp "$cache/vmlinuz" "$out/vmlinuz"
cp "$cache/VERSIONS" "$out/VERSIONS"
echo "agent: $out/vmlinuz, $out/initrd.img ($(wc -c < "$out/initrd.img") bytes)"
