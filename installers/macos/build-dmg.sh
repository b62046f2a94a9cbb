#!/usr/bin/env bash
# Builds PortaPXE.app (universal: Apple silicon + Intel) and target/dist/PortaPXE-VERSION.dmg.
# Runs on a Mac only (lipo, codesign, hdiutil); CI on Linux checks the code and the bundle
# layout instead (installers/macos/check.sh).
#
#   installers/macos/build-dmg.sh --boot DIR
#
# DIR holds the iPXE loaders with COPYING.ipxe.txt and the signed loaders (shimx64.efi,
# grubx64.efi, shimaa64.efi, grubaa64.efi) with COPYING.signed-loaders.txt: they come from Debian's packages, so take
# the boot/ folder of the Linux archive (target/dist/portapxe-*-linux-*.tar.gz); its
# LICENSE is used too when the repository has none.
# Needs: Xcode command line tools, rustup with the targets aarch64-apple-darwin and
# x86_64-apple-darwin, python3, rsvg-convert (brew install librsvg).
# Signing: ad hoc by default (runs on the Mac that built it, and elsewhere after the user
# allows it, see README.md); set CODESIGN_IDENTITY="Developer ID Application: …" to sign
# for distribution, then notarize the .dmg (xcrun notarytool submit --wait, xcrun stapler staple).
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
[ "$(uname -s)" = Darwin ] || die "build-dmg.sh runs on macOS (it needs lipo, codesign and hdiutil)"
need cargo rustup lipo codesign hdiutil python3 rsvg-convert

BOOT=
while [ $# -gt 0 ]; do
    case $1 in
        --boot) BOOT=$(cd "$2" && pwd); shift 2 ;;
        *) die "unknown argument $1 (usage: $0 --boot DIR)" ;;
    esac
done
[ -n "$BOOT" ] || die "usage: $0 --boot DIR (the boot/ folder of the Linux archive)"
if [ -z "${LICENSE_FILE:-}" ] && [ -s "$BOOT/../LICENSE" ]; then
    export LICENSE_FILE=$BOOT/../LICENSE
fi

step "cargo build --release for Apple silicon and Intel"
bins=()
for target in aarch64-apple-darwin x86_64-apple-darwin; do
    rustup target add "$target"
    (cd "$ROOT" && MACOSX_DEPLOYMENT_TARGET=11.0 cargo build --release --locked --target "$target" -p portapxe)
    bins+=("${CARGO_TARGET_DIR:-$ROOT/target}/$target/release/portapxe")
done
OUT=$WORK/macos
mkdir -p "$OUT"
lipo -create -output "$OUT/portapxe" "${bins[@]}"
lipo -info "$OUT/portapxe"

step "PortaPXE.app"
bash "$ROOT/installers/macos/make-bundle.sh" --bin "$OUT/portapxe" --boot "$BOOT" --out "$OUT"
APP=$OUT/PortaPXE.app
if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$APP"
else
    codesign --force --sign - "$APP"
fi
codesign --verify --strict --verbose=2 "$APP"
plutil -lint "$APP/Contents/Info.plist"

step "disk image"
DMG_ROOT=$OUT/dmg
rm -rf "$DMG_ROOT" && mkdir -p "$DMG_ROOT"
cp -R "$APP" "$DMG_ROOT/"
ln -s /Applications "$DMG_ROOT/Applications"
cp "$ROOT/installers/macos/README.md" "$DMG_ROOT/Read Me.md"
DMG=$DIST/PortaPXE-$VERSION.dmg
rm -f "$DMG"
hdiutil create -volname "PortaPXE $VERSION" -srcfolder "$DMG_ROOT" -fs HFS+ -format UDZO -ov "$DMG"
hdiutil verify "$DMG"
ls -l "$DMG"
