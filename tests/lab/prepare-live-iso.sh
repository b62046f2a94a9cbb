#!/bin/sh
# Build the Debian live-boot ISO the PortaPXE "live ISO over HTTP" end-to-end
# test boots.
#
# Usage: tests/lab/prepare-live-iso.sh OUTDIR   (the harness looks in target/lab)
#
# Packages (Debian 12), installed with apt-get:
#   live-boot live-boot-initramfs-tools initramfs-tools busybox-static
#   squashfs-tools zstd xorriso isolinux syslinux-common
# (initramfs-tools pulls in udev, klibc-utils and kmod; installing udev may
# upgrade the systemd packages to the matching version.)
#
# OUTDIR/debian-live.iso, tree:
#   /live/vmlinuz             the current Debian kernel (linux-image-*-amd64)
#   /live/initrd.img          made here by Debian's mkinitramfs with live-boot
#   /live/filesystem.squashfs a tiny busybox root, see below
#   /isolinux/isolinux.bin, ldlinux.c32, isolinux.cfg ("label live")
#
# Network boot it with the kernel + initrd and
#   boot=live components fetch=http://SERVER/PATH/live/filesystem.squashfs
#   console=ttyS0,115200
# live-boot then brings up the only NIC with a link (or the one named by
# BOOTIF=01-aa-bb-..), gets an address by DHCP (klibc ipconfig), downloads the
# squashfs with busybox wget into RAM, mounts it under an overlay and runs its
# /sbin/init, which prints
#   PORTAPXE-LIVE-ROOT-OK
# and the kernel command line to /dev/console and /dev/ttyS0, then powers off
# (QEMU with -no-reboot then exits). The initrd holds what live-boot's hooks
# add (squashfs, overlay, loop, network drivers, ...) less the drivers no QEMU
# machine uses (GPU, wireless, Ethernet other than intel/realtek/amd: about
# 49 MB unpacked instead of 93, so a 256 MB guest boots it), plus the drivers
# to find the medium on a CD (ata_piix, ahci, sr_mod, isofs): the ISO also
# boots from a CD drive through its isolinux menu.
#
# How the initrd is made without changing the host: the whole kernel package is
# downloaded with apt-get (not installed) and unpacked in a temporary
# directory. mkinitramfs insists on /lib/modules/VERSION and
# /boot/config-VERSION, so it runs in a private mount namespace (unshare -m)
# where an overlay on /usr adds lib/modules/VERSION and /boot is a bind mount
# of the package's /boot; the host's /usr and /boot never change. It reads its
# configuration from a private directory (mkinitramfs -d), not from
# /etc/initramfs-tools. Needs root (mounts).
#
# Idempotent: an ISO that already exists is left alone. The ISO is written
# under a temporary name in OUTDIR and renamed when complete; the temporary
# directory is removed on exit.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != clonezilla ]; }; then
    echo "usage: $0 OUTDIR [clonezilla]   (e.g. $0 target/lab)" >&2
    exit 2
fi
out=$1
variant=${2:-live}
if [ "$variant" = clonezilla ]; then
    iso=$out/clonezilla-standin.iso
    for cmd in sgdisk parted dialog kpartx partclone.extfs udp-receiver; do
        command -v "$cmd" >/dev/null || {
            echo "missing $cmd: apt-get install gdisk parted dialog kpartx partclone udpcast" >&2
            exit 1
        }
    done
else
    iso=$out/debian-live.iso
fi
marker=PORTAPXE-LIVE-ROOT-OK

if [ -s "$iso" ]; then
    echo "live ISO already present: $iso"
    exit 0
fi

isolinux_bin=/usr/lib/ISOLINUX/isolinux.bin
ldlinux_c32=/usr/lib/syslinux/modules/bios/ldlinux.c32

missing=
for cmd in mkinitramfs mksquashfs xorriso unshare; do
    command -v "$cmd" >/dev/null || missing="$missing $cmd"
done
for f in "$isolinux_bin" "$ldlinux_c32" /bin/busybox /bin/live-boot \
    /usr/share/initramfs-tools/hooks/live; do
    [ -e "$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "missing:$missing" >&2
    echo "apt-get install live-boot live-boot-initramfs-tools initramfs-tools" \
        "busybox-static squashfs-tools zstd xorriso isolinux syslinux-common" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "$0 must run as root (mkinitramfs runs in a private mount namespace)" >&2
    exit 1
fi

# linux-image-amd64 is the metapackage; it depends on the current versioned image.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
if [ -z "$pkg" ]; then
    echo "cannot find the current linux-image-*-amd64 package; run apt-get update first" >&2
    exit 1
fi

tmp=
work=$(mktemp -d)
trap 'rm -rf "$work" "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
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

# The kernel package: /boot/vmlinuz-V, /boot/config-V, /lib/modules/V.
kfs=$work/kernel
mkdir "$kfs"
dpkg-deb -x "$deb" "$kfs"
rm -f "$deb"
for kernel in "$kfs"/boot/vmlinuz-*; do break; done
[ -f "$kernel" ] || { echo "no /boot/vmlinuz-* in $pkg" >&2; exit 1; }
version=${kernel##*/vmlinuz-}
if [ -d "$kfs/lib/modules/$version" ]; then
    moddir=$kfs/lib/modules/$version
else
    moddir=$kfs/usr/lib/modules/$version
fi
[ -d "$moddir" ] || { echo "no modules for $version in $pkg" >&2; exit 1; }

# The upper layer of the overlay mounted on /usr: it holds lib/modules/V.
mkdir -p "$work/usr-upper/lib/modules" "$work/usr-work"
mv "$moddir" "$work/usr-upper/lib/modules/$version"

# mkinitramfs configuration (mkinitramfs -d).
conf=$work/initramfs-conf
mkdir -p "$conf/conf.d" "$conf/hooks" "$conf/scripts"
cat > "$conf/initramfs.conf" <<'EOF'
MODULES=list
BUSYBOX=y
KEYMAP=n
COMPRESS=zstd
DEVICE=
NFSROOT=auto
RUNSIZE=10%
FSTYPE=auto
EOF
cat > "$conf/modules" <<'EOF'
# QEMU NICs (live-boot's hook adds every network driver anyway)
e1000
e1000e
virtio_pci
virtio_net
af_packet
# the live root
squashfs
overlay
loop
# the medium on a CD drive
ata_piix
ahci
sr_mod
cdrom
isofs
EOF
# The Clonezilla stand-in writes a disk: its drivers are loaded before the live root
# (which holds no modules).
if [ "$variant" = clonezilla ]; then
    printf '%s\n' virtio_blk virtio_scsi sd_mod >> "$conf/modules"
fi

# live-boot's hooks add every network driver and the i915/radeon/nouveau GPU
# drivers: about 93 MB unpacked, too much for a 256 MB guest ("Initramfs
# unpacking failed: write error"). This hook runs after them and drops what no
# QEMU machine uses; depmod runs after the hooks.
cat > "$conf/hooks/portapxe-trim" <<'EOF'
#!/bin/sh
# Drop drivers a QEMU guest never needs (PortaPXE lab initrd).
set -e
[ "${1:-}" = prereqs ] && { echo ""; exit 0; }
k=${DESTDIR}${MODULESDIR}/kernel
rm -rf "$k/drivers/gpu" "$k/drivers/net/wireless" "$k/drivers/net/wwan" \
    "$k/drivers/infiniband" "$k/drivers/media"
for d in "$k"/drivers/net/ethernet/*; do
    case ${d##*/} in
        intel|realtek|amd) ;;
        *) rm -rf "$d" ;;
    esac
done
EOF
chmod 755 "$conf/hooks/portapxe-trim"

echo "making the initrd for $version with mkinitramfs"
initrd=$work/initrd.img
# shellcheck disable=SC2016 # $1..$4 expand in the inner shell
TMPDIR=$work unshare -m sh -eu -c '
    mount --make-rprivate /
    mount -t overlay overlay \
        -o "lowerdir=/usr,upperdir=$1/usr-upper,workdir=$1/usr-work" /usr
    mount --bind "$1/kernel/boot" /boot
    mkinitramfs -d "$2" -o "$3" "$4"
' sh "$work" "$conf" "$initrd" "$version"
[ -s "$initrd" ] || { echo "mkinitramfs made no initrd" >&2; exit 1; }

# The live root: busybox, its applet links, and an /sbin/init that reports.
root=$work/root
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
    "$root/etc/network" "$root/dev" "$root/proc" "$root/sys" "$root/run" \
    "$root/tmp" "$root/root" "$root/var/tmp" "$root/mnt"
chmod 1777 "$root/tmp" "$root/var/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-long); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
: > "$root/etc/fstab"
printf 'auto lo\niface lo inet loopback\n' > "$root/etc/network/interfaces"
echo live > "$root/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
rm -f "$root/sbin/init"
cat > "$root/sbin/init" <<EOF
#!/bin/busybox sh
# PortaPXE live ISO root: report on the console and the serial port, power off.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
report() {
    echo "$marker"
    echo "cmdline: \$(cat /proc/cmdline)"
    echo "root: \$(grep ' / ' /proc/mounts | head -n 1)"
}
report > /dev/console 2>/dev/null
[ -c /dev/ttyS0 ] && report > /dev/ttyS0 2>/dev/null
sync
poweroff -f
EOF
chmod 755 "$root/sbin/init"

tree=$work/tree
mkdir -p "$tree/live" "$tree/isolinux"
if [ "$variant" = clonezilla ]; then
    sh "$(dirname "$0")/clonezilla-standin-root.sh" "$root" "$work"
    # What marks a Clonezilla live image (its ISOs and zips carry this file).
    echo "clonezilla-live-standin (PortaPXE lab: Debian's clonezilla $(cat "$work/clonezilla-version"))" \
        > "$tree/Clonezilla-Live-Version"
fi
mksquashfs "$root" "$tree/live/filesystem.squashfs" -noappend -comp xz \
    -all-root -no-progress -quiet
cp "$kernel" "$tree/live/vmlinuz"
cp "$initrd" "$tree/live/initrd.img"
cp "$isolinux_bin" "$ldlinux_c32" "$tree/isolinux/"
printf '%s\n' \
    'prompt 0' \
    'timeout 0' \
    'default live' \
    'label live' \
    '	kernel /live/vmlinuz' \
    '	append initrd=/live/initrd.img boot=live components' \
    > "$tree/isolinux/isolinux.cfg"

mkdir -p "$out"
tmp=$out/.debian-live.iso.tmp
rm -f "$tmp"
xorriso -as mkisofs -r -J -V PORTAPXE_LIVE \
    -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table \
    -o "$tmp" "$tree" 2>"$work/xorriso.log" || {
    cat "$work/xorriso.log" >&2
    exit 1
}
mv "$tmp" "$iso"
tmp=
echo "Debian live ISO: $iso (kernel $version from $pkg, $(wc -c < "$iso") bytes;" \
    "initrd $(wc -c < "$tree/live/initrd.img"), squashfs" \
    "$(wc -c < "$tree/live/filesystem.squashfs"))"
