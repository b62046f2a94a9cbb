#!/usr/bin/env bash
# Installs everything the build and the end-to-end tests need on Debian 12, and the
# guest kernel the tests boot. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# The DHCP servers the export tests run must never start as services in the root
# namespace: forbid service starts during package installation.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 ipxe-qemu ipxe ovmf qemu-system-arm qemu-efi-aarch64 busybox-static cpio \
    udhcpc isc-dhcp-client tftp-hpa atftp curl iproute2 dnsmasq-base \
    isc-dhcp-server kea-dhcp4-server \
    libpcap-dev pkg-config ca-certificates tcpdump \
    mesa-vulkan-drivers xvfb x11-apps x11-utils sbsigntool \
    xorriso genisoimage isolinux syslinux-common memtest86+ \
    live-boot live-boot-initramfs-tools initramfs-tools squashfs-tools zstd \
    udpcast partclone extlinux fdisk e2fsprogs kmod \
    gdisk parted dialog kpartx
bash tests/lab/prepare-guest.sh target/lab
# The ARM64 guest (Debian's signed arm64 kernel, arm64 busybox) the ARM64 Secure Boot test boots.
sh tests/lab/prepare-arm64.sh target/lab/arm64
# The ISO images the ISO tests boot: a Debian mini.iso built from the netboot installer,
# and a live-boot ISO (Debian's kernel, an initrd with live-boot, a busybox squashfs).
sh tests/lab/prepare-iso.sh target/lab
sh tests/lab/prepare-live-iso.sh target/lab
# The Clonezilla live stand-in (the same live-boot, with Debian's clonezilla and drbl and
# what their scripts run: gdisk parted dialog kpartx above) the Clonezilla restore test boots.
sh tests/lab/prepare-live-iso.sh target/lab clonezilla
# The signed chain (shim, network GRUB) the Secure Boot tests and the packages use.
bash installers/signed-loaders.sh target/signed-loaders
# CI fails on dependencies the code does not use.
if ! command -v cargo-machete > /dev/null; then
    cargo install cargo-machete --locked --version 0.9.2
fi

# ---- Packaging (.ci/package.sh, installers/) ----
# Linux .deb/.tar.gz (dpkg-deb, debootstrap for the install check), Windows cross-build and
# MSI (mingw-w64, wixl/msitools, Wine for the smoke test), icons (librsvg2-bin), script lint.
apt-get install -y -qq --no-install-recommends \
    dpkg-dev binutils file python3 xz-utils librsvg2-bin desktop-file-utils shellcheck \
    debootstrap gcc-mingw-w64-x86-64 wixl msitools wine wine64
if command -v rustup > /dev/null; then
    rustup target add x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin
fi
