#!/usr/bin/env bash
# What can be checked of the macOS package without a Mac:
#   - the engine and the app compile for Apple silicon and Intel (cargo check; linking
#     needs Apple's SDK, so the .dmg itself is built by build-dmg.sh on a Mac);
#   - make-bundle.sh lays out PortaPXE.app (with a stand-in binary): Info.plist parses and
#     names files that exist, the .icns holds every size, the iPXE and the signed loaders
#     are in Resources/boot byte for byte as taken, with their licenses.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
need cargo rustup python3

TARGETS=(aarch64-apple-darwin x86_64-apple-darwin)
installed=$(rustup target list --installed)
for target in "${TARGETS[@]}"; do
    grep -qx "$target" <<< "$installed" || die "rustup target $target is missing (rustup target add $target)"
done

step "cargo check --target ${TARGETS[*]} (engine and app)"
# The pcap crate's build script asks the build host's libpcap for its version; macOS ships
# libpcap 1.10, so say so.
(cd "$ROOT" && LIBPCAP_VER=1.10.0 cargo check --locked --release "${TARGETS[@]/#/--target=}" -p portapxe-engine -p portapxe)

step "PortaPXE.app layout (stand-in binary)"
OUT=$WORK/macos-check
rm -rf "$OUT" && mkdir -p "$OUT"
printf '#!/bin/sh\necho "portapxe %s"\n' "$VERSION" > "$OUT/portapxe" && chmod +x "$OUT/portapxe"
make_boot_dir "$OUT/boot"
bash "$ROOT/installers/macos/make-bundle.sh" --bin "$OUT/portapxe" --boot "$OUT/boot" --out "$OUT"
python3 - "$OUT/PortaPXE.app" "$VERSION" << 'EOF'
import os, plistlib, sys
app, version = sys.argv[1], sys.argv[2]
with open(f"{app}/Contents/Info.plist", "rb") as f:
    info = plistlib.load(f)
for key in ("CFBundleExecutable", "CFBundleIdentifier", "CFBundleIconFile", "CFBundleName",
            "CFBundlePackageType", "CFBundleShortVersionString", "CFBundleVersion",
            "LSMinimumSystemVersion", "NSLocalNetworkUsageDescription"):
    assert info.get(key), f"Info.plist lacks {key}"
assert info["CFBundlePackageType"] == "APPL"
assert info["CFBundleShortVersionString"] == version == info["CFBundleVersion"], "version mismatch"
exe = f"{app}/Contents/MacOS/{info['CFBundleExecutable']}"
assert os.access(exe, os.X_OK), f"{exe} is not executable"
icon = f"{app}/Contents/Resources/{info['CFBundleIconFile']}"
assert os.path.getsize(icon) > 0, f"{icon} is missing"
assert os.path.getsize(f"{app}/Contents/Resources/LICENSE.txt") > 0
print(f"Info.plist: {info['CFBundleIdentifier']} {version}, executable and icon present")
EOF
check_boot_dir "$OUT/PortaPXE.app/Contents/Resources/boot" "PortaPXE.app's Contents/Resources/boot"
python3 "$ROOT/installers/icons.py" check "$OUT/PortaPXE.app/Contents/Resources/PortaPXE.icns" 16 32 64 128 256 512 1024
bash -n "$ROOT/installers/macos/build-dmg.sh"
rm -rf "$OUT"
echo "macos package: all checks passed"
