#!/bin/sh
# Installs this portable PortaPXE for all users and grants it the network capabilities.
#   sudo ./install.sh [--prefix DIR]       default prefix: /usr/local
#   sudo ./install.sh --uninstall [--prefix DIR]
# Puts the binary in PREFIX/bin, everything in boot/ (the iPXE and the signed loaders, the imaging
# agent, their licenses) in PREFIX/share/portapxe/boot (where the app looks, relative to its binary), and
# the menu entry and icon under PREFIX/share.
set -eu
cd "$(dirname "$0")"
prefix=/usr/local
action=install
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --uninstall) action=uninstall; shift ;;
        *) echo "usage: $0 [--prefix DIR] [--uninstall]" >&2; exit 2 ;;
    esac
done

if [ "$action" = uninstall ]; then
    rm -f "$prefix/bin/portapxe" "$prefix/share/applications/portapxe.desktop" \
        "$prefix/share/icons/hicolor/scalable/apps/portapxe.svg"
    rm -rf "$prefix/share/portapxe"
    echo "PortaPXE removed from $prefix"
    exit 0
fi

install -D -m 0755 portapxe "$prefix/bin/portapxe"
mkdir -p "$prefix/share/portapxe/boot"
cp -r boot/. "$prefix/share/portapxe/boot/"
install -D -m 0644 portapxe.desktop "$prefix/share/applications/portapxe.desktop"
install -D -m 0644 portapxe.svg "$prefix/share/icons/hicolor/scalable/apps/portapxe.svg"
if command -v setcap > /dev/null && setcap cap_net_bind_service,cap_net_raw+ep "$prefix/bin/portapxe"; then
    echo "PortaPXE installed in $prefix; it may bind ports 67, 69, 80 and capture DHCP traffic."
else
    echo "PortaPXE installed in $prefix, but without capabilities (install libcap's setcap," >&2
    echo "then run this again, or run portapxe as root)." >&2
fi
