#!/usr/bin/env bash
# Assembles PortaPXE.app from a macOS binary and the loaders (runs on macOS or Linux):
#   installers/macos/make-bundle.sh --bin PATH --boot DIR --out DIR
# makes DIR/PortaPXE.app:
#   Contents/Info.plist                 (Info.plist.in with the version)
#   Contents/MacOS/portapxe             (the binary; universal when build-dmg.sh made it)
#   Contents/Resources/PortaPXE.icns    (from assets/portapxe.svg)
#   Contents/Resources/boot/            (iPXE loaders + COPYING.ipxe.txt, signed loaders +
#                                        COPYING.signed-loaders.txt, the imaging agent in
#                                        agent/; the app looks in <exe>/../Resources/boot)
#   Contents/Resources/LICENSE.txt
# Needs python3 and rsvg-convert (macOS: brew install librsvg).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"

BIN='' BOOT='' OUT=''
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        --boot) BOOT=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) die "unknown argument $1 (usage: $0 --bin PATH --boot DIR --out DIR)" ;;
    esac
done
{ [ -n "$BIN" ] && [ -n "$BOOT" ] && [ -n "$OUT" ]; } || die "usage: $0 --bin PATH --boot DIR --out DIR"
[ -x "$BIN" ] || die "$BIN is not an executable"
BUNDLED=("${BOOT_FILES[@]}" COPYING.ipxe.txt "${SIGNED_FILES[@]}" COPYING.signed-loaders.txt memdisk COPYING.memdisk.txt
    "${AGENT_FILES[@]}")
for file in "${BUNDLED[@]}"; do
    [ -s "$BOOT/$file" ] || die "$BOOT/$file is missing (the boot/ folder of the Linux archive has them all)"
done

APP=$OUT/PortaPXE.app
rm -rf "$APP"
mkdir -p "$APP/Contents/MacOS" "$APP/Contents/Resources/boot/agent"
sed "s/@VERSION@/$VERSION/g" "$ROOT/installers/macos/Info.plist.in" > "$APP/Contents/Info.plist"
printf 'APPL????' > "$APP/Contents/PkgInfo"
install -m 0755 "$BIN" "$APP/Contents/MacOS/portapxe"
make_icon icns "$APP/Contents/Resources/PortaPXE.icns" 16 32 64 128 256 512 1024
for file in "${BUNDLED[@]}"; do
    install -m 0644 "$BOOT/$file" "$APP/Contents/Resources/boot/$file"
done
install -m 0644 "$(license_file)" "$APP/Contents/Resources/LICENSE.txt"
echo "$APP"
