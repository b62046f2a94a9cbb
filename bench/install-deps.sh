#!/bin/sh
# Installs what bench/run needs (Debian 12). Services are not started: the
# suite runs every server itself, in the foreground, inside its namespaces.
# atftpd conflicts with tftpd-hpa in apt, so it is unpacked, not installed.
set -eu
apt-get install -y --no-install-recommends \
    iproute2 util-linux curl atftp tftpd-hpa dnsmasq-base nginx kea-dhcp4-server kea-admin gcc libc6-dev
dest=/var/cache/portapxe-bench/atftpd
if [ ! -x "$dest/usr/sbin/atftpd" ]; then
    mkdir -p "$dest"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download atftpd && dpkg -x atftpd_*.deb "$dest")
    rm -rf "$tmp"
fi
echo "atftpd: $dest/usr/sbin/atftpd"
