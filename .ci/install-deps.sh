#!/usr/bin/env bash
# Installs everything the build and the end-to-end tests need on Debian 12, and the
# guest kernel the tests boot. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 ipxe-qemu ipxe ovmf busybox-static cpio \
    udhcpc isc-dhcp-client tftp-hpa atftp curl iproute2 dnsmasq-base \
    isc-dhcp-server kea-dhcp4-server \
    libpcap-dev pkg-config ca-certificates
bash tests/lab/prepare-guest.sh target/lab
