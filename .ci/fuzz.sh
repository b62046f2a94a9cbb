#!/usr/bin/env bash
# Builds every fuzz target (fuzz/, cargo fuzz + libFuzzer, with AddressSanitizer, debug
# assertions and overflow checks) and runs each for a short, bounded time.
#
# Usage: .ci/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
#
# cargo fuzz builds with -Zsanitizer flags, which need a nightly compiler; this machine has
# one stable toolchain, so RUSTC_BOOTSTRAP=1 lets stable take them. Seeds for the ISO and
# config targets are made here (nothing binary is committed).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-20}
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz > /dev/null; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

mkdir -p corpus/iso_image corpus/config_toml corpus/iso_menu corpus/http_request
if [ ! -s corpus/iso_image/seed-xorriso.iso ] && command -v xorriso > /dev/null; then
    tree=$(mktemp -d)
    trap 'rm -rf "$tree"' EXIT
    mkdir -p "$tree/live" "$tree/isolinux"
    printf 'kernel' > "$tree/live/vmlinuz"
    printf 'initrd' > "$tree/live/initrd.img"
    printf 'root' > "$tree/live/filesystem.squashfs"
    printf 'label live\n kernel /live/vmlinuz\n append initrd=/live/initrd.img boot=live components\n' \
        > "$tree/isolinux/isolinux.cfg"
    xorriso -as mkisofs -quiet -r -J -o corpus/iso_image/seed-xorriso.iso "$tree" 2> /dev/null
    cp "$tree/isolinux/isolinux.cfg" corpus/iso_menu/seed-isolinux.cfg
fi
cat > corpus/config_toml/seed.toml <<'TOML'
interface = "eth0"
mode = "dhcp"
root = "/srv/pxe"

[dhcp]
pool = "192.168.50.100-192.168.50.199"

[[boot.entries]]
type = "iso"
name = "Debian live"
image = "isos/debian-live.iso"
append = "console=ttyS0,115200"

[[rules.clients]]
mac = "52:54:00"
entry = "Debian live"
TOML

printf 'GET /boot.ipxe HTTP/1.1\r\nHost: 10.0.0.1\r\nRange: bytes=0-9\r\nIf-None-Match: W/"a", "b"\r\nIf-Range: Wed, 18 Nov 2026 11:06:40 GMT\r\n\r\n' \
    > corpus/http_request/seed.txt
targets=$(cargo fuzz list)
cargo fuzz build -O --debug-assertions
for target in $targets; do
    echo "fuzzing $target for $seconds s"
    # -max_len covers the ISO seed (an ISO under 1 MB); -rss_limit_mb bounds memory.
    cargo fuzz run -O --debug-assertions "$target" -- \
        -max_total_time="$seconds" -max_len=1048576 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
        | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|panicked' || true
    # libFuzzer leaves a crash, leak or timeout input in artifacts/: any is a failure.
    if compgen -G "artifacts/$target/*" > /dev/null; then
        echo "fuzz target $target found a failing input: $(ls artifacts/"$target")" >&2
        exit 1
    fi
done
