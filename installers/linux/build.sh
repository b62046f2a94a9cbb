#!/usr/bin/env bash
# Builds the Linux packages into target/dist/:
#   portapxe_VERSION_ARCH.deb                  Debian/Ubuntu (Depends on what the app loads)
#   portapxe-VERSION-linux-ARCH.tar.gz         any other distribution (README.md inside)
# Usage: installers/linux/build.sh [--bin PATH]   (default: cargo build --release)
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
need cargo dpkg-deb dpkg-shlibdeps objdump python3 rsvg-convert strip

BIN=
while [ $# -gt 0 ]; do
    case $1 in
        --bin) BIN=$2; shift 2 ;;
        *) die "unknown argument $1 (usage: $0 [--bin PATH])" ;;
    esac
done
if [ -z "$BIN" ]; then
    step "cargo build --release (portapxe)"
    (cd "$ROOT" && cargo build --release --locked -p portapxe)
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/portapxe
fi
[ -x "$BIN" ] || die "$BIN is not an executable"

ARCH=$(dpkg --print-architecture)
HERE=$ROOT/installers/linux
STAGE=$WORK/linux/deb
rm -rf "$STAGE" && mkdir -p "$STAGE/DEBIAN"

step "staging the .deb tree"
install -D -m 0755 "$BIN" "$STAGE/usr/bin/portapxe"
strip --strip-unneeded "$STAGE/usr/bin/portapxe"
install -D -m 0644 "$HERE/portapxe.desktop" "$STAGE/usr/share/applications/portapxe.desktop"
install -D -m 0644 "$ICON_SVG" "$STAGE/usr/share/icons/hicolor/scalable/apps/portapxe.svg"
for size in 48 128 256; do
    mkdir -p "$STAGE/usr/share/icons/hicolor/${size}x$size/apps"
    render_png "$size" "$STAGE/usr/share/icons/hicolor/${size}x$size/apps/portapxe.png"
done
# The app looks for its loaders in <exe>/../share/portapxe/boot = /usr/share/portapxe/boot.
make_boot_dir "$STAGE/usr/share/portapxe/boot"
install -D -m 0644 "$HERE/copyright" "$STAGE/usr/share/doc/portapxe/copyright"
install -m 0755 "$HERE/postinst" "$STAGE/DEBIAN/postinst"

# Depends: the libraries the binary links (dpkg-shlibdeps, with versions), the ones it
# loads at run time with dlopen (runtime-libs, checked against the binary by check.sh),
# and setcap for the postinst.
shlibs=$(
    cd "$WORK/linux" && mkdir -p shlibdeps/debian && cd shlibdeps &&
        printf 'Source: portapxe\n\nPackage: portapxe\nArchitecture: any\n' > debian/control &&
        dpkg-shlibdeps -O "$STAGE/usr/bin/portapxe" 2> /dev/null | sed -n 's/^shlibs:Depends=//p'
)
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependencies"
runtime=$(grep -v '^#' "$HERE/runtime-libs" | awk 'NF { printf "%s%s", sep, $2; sep = ", " }')
depends="$shlibs, $runtime, libcap2-bin"
installed_kb=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@INSTALLED_SIZE@/$installed_kb/" "$HERE/control.in" > "$STAGE/DEBIAN/control"

DEB=$DIST/portapxe_${VERSION}_$ARCH.deb
step "dpkg-deb --build -> $DEB"
find "$STAGE" -type d -exec chmod 0755 {} +
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB"
dpkg-deb --info "$DEB" | sed -n '/Package:/,$p'

# Portable archive: the same files under one folder, loaders in boot/ next to the binary.
NAME=portapxe-$VERSION-linux-$(uname -m)
TREE=$WORK/linux/$NAME
step "portable archive -> $DIST/$NAME.tar.gz"
rm -rf "$TREE" && mkdir -p "$TREE"
install -m 0755 "$STAGE/usr/bin/portapxe" "$TREE/portapxe"
cp -r "$STAGE/usr/share/portapxe/boot" "$TREE/boot"
install -m 0644 "$HERE/portapxe.desktop" "$ICON_SVG" "$TREE/"
install -m 0755 "$HERE/install.sh" "$TREE/install.sh"
glibc=$(objdump -T "$TREE/portapxe" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
sed -e "s/@VERSION@/$VERSION/g" -e "s/@GLIBC@/$glibc/g" "$HERE/README-portable.md" > "$TREE/README.md"
python3 - "$HERE/runtime-libs" "$TREE/README.md" << 'EOF'
# Put the runtime-libs list where the README says @LIBRARY_TABLE@.
import sys
rows = [line.split(None, 2) for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
table = "\n".join(f"| `{soname}` | `{package}` | {what.strip()} |" for soname, package, what in rows)
text = open(sys.argv[2]).read().replace("@LIBRARY_TABLE@", table)
open(sys.argv[2], "w").write(text)
EOF
cp "$(license_file)" "$TREE/LICENSE"
tar -C "$WORK/linux" --owner=0 --group=0 --sort=name -czf "$DIST/$NAME.tar.gz" "$NAME"
ls -l "$DEB" "$DIST/$NAME.tar.gz"
