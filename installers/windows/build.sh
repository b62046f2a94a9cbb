#!/usr/bin/env bash
# Cross-builds PortaPXE for 64-bit Windows on Debian and packs it into target/dist/:
#   portapxe-VERSION-x64.msi     (wixl: Program Files\PortaPXE, Start-menu shortcut,
#                                 inbound firewall rules for UDP 67, 69, 4011 and TCP 80)
# Packet capture must not be a hard dependency: the exe links wpcap.dll through a
# delay-load import library, so it starts where Npcap is absent (the engine probes for
# wpcap.dll before its first pcap call).
# Usage: installers/windows/build.sh   (needs mingw-w64, wixl, msitools, rustup target
#        x86_64-pc-windows-gnu, Debian's ipxe and the signed loaders in target/signed-loaders;
#        .ci/install-deps.sh installs and fetches them)
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
need cargo x86_64-w64-mingw32-gcc x86_64-w64-mingw32-dlltool x86_64-w64-mingw32-strip wixl msiinfo python3

TARGET=x86_64-pc-windows-gnu
HERE=$ROOT/installers/windows
OUT=$WORK/windows
mkdir -p "$OUT/lib"

step "delay-load import library for wpcap.dll"
# Every pcap_* function the locked pcap crate declares must be in the .def, or linking a
# newer pcap crate could fail or, worse, import a name through a normal import.
pcap_src=$(cd "$ROOT" && cargo metadata --format-version 1 --filter-platform "$TARGET" |
    python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "pcap").rsplit("/", 1)[0])')
missing=$(comm -23 <(grep -o 'fn pcap_[a-z0-9_]*' "$pcap_src/src/raw.rs" | sed 's/fn //' | sort -u) \
    <(grep -o '^ *pcap_[a-z0-9_]*' "$HERE/wpcap.def" | tr -d ' ' | sort -u))
[ -z "$missing" ] || die "installers/windows/wpcap.def lacks pcap functions that $pcap_src declares: $missing"
# (dlltool names the library's symbols after the output path: run it in place, so they are
# the same on every machine.)
(cd "$OUT/lib" && x86_64-w64-mingw32-dlltool --input-def "$HERE/wpcap.def" --dllname wpcap.dll --output-delaylib libwpcap.a)

step "cargo build --release --target $TARGET (portapxe)"
# LIBPCAP_LIBDIR: where the pcap crate's build script tells the linker to find `wpcap`.
# LIBPCAP_VER: the libpcap API Npcap 1.x offers (its build script would otherwise ask the
# Linux host's libpcap).
(
    cd "$ROOT"
    export LIBPCAP_LIBDIR=$OUT/lib LIBPCAP_VER=1.10.0
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
    cargo build --release --locked --target "$TARGET" -p portapxe
)
EXE=${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/portapxe.exe
[ -s "$EXE" ] || die "$EXE was not built"

step "staging the MSI contents"
STAGE=$OUT/msi
rm -rf "$STAGE" && mkdir -p "$STAGE"
x86_64-w64-mingw32-strip -o "$STAGE/portapxe.exe" "$EXE"
make_icon ico "$STAGE/portapxe.ico" 16 24 32 48 64 128 256
make_boot_dir "$STAGE/boot"
cp "$(license_file)" "$STAGE/LICENSE.txt"

MSI=$DIST/portapxe-$VERSION-x64.msi
step "wixl -> $MSI"
# wixl resolves SourceFile paths relative to the working directory.
(cd "$STAGE" && wixl --arch x64 --define Version="$VERSION" --define SourceDir=. --output "$MSI" "$HERE/portapxe.wxs")
msiinfo suminfo "$MSI" | grep -E '^(Subject|Template)'
ls -l "$MSI"
