#!/bin/sh
# Turn the busybox live root of prepare-live-iso.sh into a Clonezilla live stand-in:
# Debian's own Clonezilla client (the clonezilla and drbl packages, downloaded with
# apt-get and unpacked, not installed) with the programs its scripts call, taken from
# this machine's packages with their libraries, and an /sbin/init that does what
# Clonezilla live's start does with the kernel command line: read ocs_live_run (with
# DRBL's own parse_cmdline_option) and run it, then restart or power off as the
# server's ocs-client-run.conf says.
#
# What differs from a real Clonezilla live (which is Debian live with these packages):
# no systemd, no live-config hooks, no framebuffer terminal; the init runs the command
# itself where Clonezilla live's ocs-live-run-menu would on tty1. What the test proves
# is Clonezilla's client (ocs-live-get-img, ocs-sr, ocs-functions, udp-receiver,
# partclone) restoring from PortaPXE.
#
# Usage: tests/lab/clonezilla-standin-root.sh ROOT WORK   (called by prepare-live-iso.sh)
# WORK gets clonezilla-version (the package's version, for Clonezilla-Live-Version).
set -eu

root=$1
work=$2

# The Clonezilla client's scripts.
mkdir -p "$work/cz"
chown _apt "$work/cz" 2>/dev/null || true
(cd "$work/cz" && apt-get download clonezilla drbl > /dev/null)
for deb in "$work"/cz/*.deb; do
    dpkg-deb -x "$deb" "$root"
done
dpkg-deb -f "$work"/cz/clonezilla_*.deb Version > "$work/clonezilla-version"

# The programs they call, whole packages from this machine (no documentation).
packages="bash coreutils util-linux fdisk gdisk parted e2fsprogs partclone udpcast zstd xz-utils tar wget
mawk sed grep findutils procps bc dialog perl-base psmisc ncurses-bin ncurses-base kpartx mount gzip
debianutils hostname libc-bin"
for package in $packages; do
    dpkg -L "$package" > "$work/files" 2> /dev/null || { echo "missing package $package: apt-get install $package" >&2; exit 1; }
    while read -r path; do
        case $path in
            /usr/share/doc/* | /usr/share/man/* | /usr/share/info/* | /usr/share/locale/* | /usr/share/lintian/*) continue ;;
        esac
        # Folders (and usrmerge's /bin, /lib links to them) are made as needed.
        [ -d "$path" ] && continue
        if [ -f "$path" ] || [ -L "$path" ]; then
            mkdir -p "$root$(dirname "$path")"
            cp -a --remove-destination "$path" "$root$path"
        fi
    done < "$work/files"
done
# Debian 12 has usrmerge: /bin, /sbin and /lib are links into /usr, which the busybox
# root has as folders. Every program is found on PATH either way; the loader is looked
# for at /lib64.
find "$root/usr/bin" "$root/usr/sbin" "$root/bin" "$root/sbin" -type f 2>/dev/null | while read -r program; do
    ldd "$program" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'
done | sort -u | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
mkdir -p "$root/lib64" "$root/var/log" "$root/var/lib/clonezilla" "$root/etc/ocs" "$root/home/partimag" \
    "$root/run/live/medium/live"
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
# Debian's alternatives name awk: Debian's default, mawk.
ln -sf mawk "$root/usr/bin/awk"
# check_if_in_clonezilla_live looks for the live medium's squashfs: with fetch= the
# medium is the downloaded file, which live-boot does not keep in the root's view.
: > "$root/run/live/medium/live/filesystem.squashfs"

rm -f "$root/sbin/init"
cat > "$root/sbin/init" << 'EOF'
#!/bin/bash
# PortaPXE's Clonezilla live stand-in: run the kernel command line's ocs_live_run as
# Clonezilla live's ocs-live-run-menu does, then power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C LC_ALL=C TERM=dumb
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run/lock /tmp /var/tmp
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
mountpoint -q /tmp || mount -t tmpfs tmpfs /tmp
exec > /dev/console 2>&1 < /dev/null
echo "clonezilla stand-in: $(cat /proc/cmdline)"
ip -4 addr show | sed -n 's/^ *inet /clonezilla stand-in: address /p'
. /usr/share/drbl/sbin/drbl-functions
parse_cmdline_option ocs_live_run
parse_cmdline_option ocs_live_batch
export ocs_live_batch
if [ -z "${ocs_live_run:-}" ]; then
    echo "clonezilla stand-in: no ocs_live_run on the command line"
else
    echo "clonezilla stand-in: running $ocs_live_run"
    eval "$ocs_live_run"
    echo "PORTAPXE-CLONEZILLA-DONE rc=$?"
fi
sync
# Clonezilla live's final action: what the server asked for (ocs-sr -p reboot|poweroff).
if grep -q -- '-p reboot' /tmp/ocs-client-run.conf 2>/dev/null; then
    echo "clonezilla stand-in: restarting"
    reboot -f
fi
poweroff -f
EOF
chmod 755 "$root/sbin/init"
