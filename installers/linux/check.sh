#!/usr/bin/env bash
# Checks the Linux packages that build.sh made, as a user meets them:
#   - the .deb, the archive and an install.sh prefix hold the iPXE and the signed loaders
#     byte for byte as taken (common.sh: check_boot_dir);
#   - every library the binary loads is linked or declared (runtime-libs → Depends);
#   - in a fresh Debian bookworm root (debootstrap --variant=minbase), `apt-get install
#     ./portapxe.deb` pulls in what it needs, `portapxe --version` and `portapxe interfaces`
#     run, getcap shows cap_net_bind_service,cap_net_raw, every declared library resolves;
#   - there, as user nobody in a private network namespace, `portapxe serve --mode off`
#     binds TFTP 69 and HTTP 80, captures on lo, offers x64 UEFI the signed chain, and
#     serves the packaged iPXE and signed loaders (found beside the binary, behind a boot
#     root that lacks them) and the root's own files;
#   - the portable archive unpacks with its README and runs; its install.sh installs into a
#     prefix with the capabilities, and --uninstall removes every file.
# Needs root (debootstrap, chroot, unshare) and network access to the Debian mirror.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
need debootstrap dpkg-deb objdump unshare chroot curl tftp desktop-file-validate python3 getcap
[ "$(id -u)" = 0 ] || die "check.sh needs root (debootstrap, chroot, network namespaces)"

ARCH=$(dpkg --print-architecture)
DEB=$DIST/portapxe_${VERSION}_$ARCH.deb
TARBALL_NAME=portapxe-$VERSION-linux-$(uname -m)
[ -s "$DEB" ] || die "$DEB is missing: run installers/linux/build.sh first"
HERE=$ROOT/installers/linux
CHECK=$WORK/linux/check
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# in_root host|private SCRIPT: runs SCRIPT (bash; $r is the root) in private mount
# namespace where /proc and /sys of the root are mounted; they vanish with it, so nothing
# stays mounted under target/. host shares this machine's network (apt needs the mirror);
# private gets a new network namespace with only lo, up.
in_root() {
    local net=()
    [ "$1" = private ] && net=(--net)
    # shellcheck disable=SC2016 # expanded by the inner bash
    unshare --mount --propagation private "${net[@]}" bash -euo pipefail -c '
        r=$1
        [ "$2" = host ] || ip link set lo up
        mount -t proc proc "$r/proc"
        mount -t sysfs sysfs "$r/sys"
        eval "$3"
    ' in_root "$R" "$1" "$2"
}
no_mounts_under() {
    ! grep -q " $1" /proc/mounts || die "something is still mounted under $1; unmount it first"
}

no_mounts_under "$CHECK"
rm -rf "$CHECK" && mkdir -p "$CHECK"

step "package contents"
dpkg-deb --extract "$DEB" "$CHECK/deb"
dpkg-deb --field "$DEB" Depends | tee "$CHECK/depends"
for package in libpcap0.8 libcap2-bin; do
    grep -qw "$package" "$CHECK/depends" || die "Depends lacks $package"
done
for path in usr/bin/portapxe usr/share/applications/portapxe.desktop \
    usr/share/icons/hicolor/scalable/apps/portapxe.svg usr/share/doc/portapxe/copyright; do
    [ -s "$CHECK/deb/$path" ] || die "the .deb lacks /$path"
done
check_boot_dir "$CHECK/deb/usr/share/portapxe/boot" "the .deb's /usr/share/portapxe/boot"
desktop-file-validate "$CHECK/deb/usr/share/applications/portapxe.desktop"

step "every library the binary names is linked or in runtime-libs"
BIN=$CHECK/deb/usr/bin/portapxe
objdump -p "$BIN" | awk '/NEEDED/ { print $2 }' | sort -u > "$CHECK/linked"
grep -v '^#' "$HERE/runtime-libs" | awk 'NF { print $1 }' | sort -u > "$CHECK/declared"
# Strings in a Rust binary run together: keep from the last "lib" of each match.
grep -aoE 'lib[A-Za-z0-9_+-]+\.so(\.[0-9]+)+' "$BIN" | sed -E 's/.*(lib[A-Za-z0-9_+-]+\.so)/\1/' | sort -u > "$CHECK/named"
undeclared=$(comm -23 "$CHECK/named" <(sort -u "$CHECK/linked" "$CHECK/declared"))
[ -z "$undeclared" ] || die "the binary loads libraries that runtime-libs does not declare: $undeclared"
unused=$(comm -13 "$CHECK/named" "$CHECK/declared")
[ -z "$unused" ] || die "runtime-libs declares libraries the binary never names (remove them): $unused"
echo "linked: $(tr '\n' ' ' < "$CHECK/linked")"
echo "loaded at run time: $(tr '\n' ' ' < "$CHECK/declared")"

step "fresh Debian bookworm root (debootstrap --variant=minbase, $MIRROR)"
# The downloaded base system is kept beside the build for reruns of this check, for a day.
BASE=$WORK/linux/bookworm-minbase.tgz
find "$BASE" -mtime +0 -delete 2> /dev/null || true
if [ ! -s "$BASE" ]; then
    rm -rf "$WORK/linux/debootstrap-dl"
    debootstrap --variant=minbase --make-tarball="$BASE.part" bookworm "$WORK/linux/debootstrap-dl" "$MIRROR" > "$CHECK/debootstrap-dl.log" 2>&1 ||
        { tail -20 "$CHECK/debootstrap-dl.log"; die "debootstrap could not download bookworm"; }
    mv "$BASE.part" "$BASE"
    rm -rf "$WORK/linux/debootstrap-dl"
fi
R=$CHECK/rootfs
debootstrap --variant=minbase --unpack-tarball="$BASE" bookworm "$R" "$MIRROR" > "$CHECK/debootstrap.log" 2>&1 ||
    { tail -20 "$CHECK/debootstrap.log"; die "debootstrap failed"; }
cp /etc/resolv.conf "$R/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d" && chmod +x "$R/usr/sbin/policy-rc.d"
cp "$DEB" "$R/tmp/"

step "apt-get install ./$(basename "$DEB") in the fresh root"
in_root host "chroot \"\$r\" bash -euo pipefail -c '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends /tmp/$(basename "$DEB")
'" > "$CHECK/apt.log" 2>&1 || { tail -30 "$CHECK/apt.log"; die "the .deb does not install into a fresh bookworm root"; }
grep -E '^(Setting up|Unpacking) portapxe' "$CHECK/apt.log" || true

step "portapxe --version, portapxe interfaces, getcap, libraries (in the root)"
version_out=$(chroot "$R" /usr/bin/portapxe --version)
echo "$version_out"
[ "$version_out" = "portapxe $VERSION" ] || die "portapxe --version printed '$version_out', expected 'portapxe $VERSION'"
# shellcheck disable=SC2016 # $r is the root, set inside in_root
in_root host 'chroot "$r" /usr/bin/portapxe interfaces' | tee "$CHECK/interfaces"
grep -qw lo "$CHECK/interfaces" || die "portapxe interfaces does not list lo"
caps=$(chroot "$R" getcap /usr/bin/portapxe)
echo "$caps"
case $caps in
    *cap_net_bind_service,cap_net_raw=ep*) ;;
    *) die "getcap shows '$caps', expected cap_net_bind_service,cap_net_raw=ep" ;;
esac
missing=$(chroot "$R" ldd /usr/bin/portapxe | grep 'not found' || true)
[ -z "$missing" ] || die "ldd: $missing"
chroot "$R" ldconfig -p > "$CHECK/ldconfig"
while read -r soname; do
    grep -q "^[[:space:]]*$soname " "$CHECK/ldconfig" || die "$soname (runtime-libs) does not resolve in the fresh root: fix its package in runtime-libs"
done < "$CHECK/declared"
echo "all $(wc -l < "$CHECK/declared") run-time libraries resolve"

step "as user nobody: serve TFTP on 69 and HTTP on 80, capture on lo (private network namespace)"
# The boot root holds only a file of the user's; the loaders must come from the package.
mkdir -p "$R/srv/pxe"
echo "a file of the user's" > "$R/srv/pxe/user.txt"
chmod -R a+rX "$R/srv/pxe"
in_root private "
    chroot \"\$r\" setpriv --reuid=nobody --regid=nogroup --clear-groups \
        /usr/bin/portapxe serve --interface lo --mode off --root /srv/pxe \
        --state-dir /tmp/portapxe-state > '$CHECK/serve.log' 2>&1 &
    server=\$!
    trap 'kill \$server 2> /dev/null || true' EXIT
    for _ in \$(seq 50); do
        curl -sf -o /dev/null http://127.0.0.1:80/ipxe.efi && break
        kill -0 \$server 2> /dev/null || { cat '$CHECK/serve.log'; exit 1; }
        sleep 0.2
    done
    curl -sf -o '$CHECK/http-ipxe.efi' http://127.0.0.1:80/ipxe.efi
    curl -sf -o '$CHECK/http-shimx64.efi' http://127.0.0.1:80/shimx64.efi
    curl -sf -o '$CHECK/http-user.txt' http://127.0.0.1:80/user.txt
    curl -sf -o '$CHECK/http-agent-initrd.img' http://127.0.0.1:80/agent/initrd.img
    (cd '$CHECK' && tftp -m binary 127.0.0.1 69 -c get undionly.kpxe tftp-undionly.kpxe)
    (cd '$CHECK' && tftp -m binary 127.0.0.1 69 -c get grubx64.efi tftp-grubx64.efi)
    (cd '$CHECK' && tftp -m binary 127.0.0.1 69 -c get grubaa64.efi tftp-grubaa64.efi)
    for _ in \$(seq 50); do
        grep -q 'packet capture\|capturing DHCP' '$CHECK/serve.log' && break
        sleep 0.2
    done
    kill \$server
    wait \$server || true
" || { cat "$CHECK/serve.log"; die "portapxe serve as nobody failed"; }
cat "$CHECK/serve.log"
cmp "$CHECK/http-ipxe.efi" "$IPXE_DIR/ipxe.efi" || die "HTTP served a different ipxe.efi"
cmp "$CHECK/tftp-undionly.kpxe" "$IPXE_DIR/undionly.kpxe" || die "TFTP served a different undionly.kpxe"
cmp "$CHECK/http-shimx64.efi" "$SIGNED_DIR/shimx64.efi" || die "HTTP served a different shimx64.efi"
cmp "$CHECK/tftp-grubx64.efi" "$SIGNED_DIR/grubx64.efi" || die "TFTP served a different grubx64.efi"
cmp "$CHECK/tftp-grubaa64.efi" "$SIGNED_DIR/grubaa64.efi" || die "TFTP served a different grubaa64.efi"
cmp "$CHECK/http-user.txt" "$R/srv/pxe/user.txt" || die "HTTP did not serve the boot root's own file"
cmp "$CHECK/http-agent-initrd.img" "$AGENT_DIR/agent/initrd.img" || die "HTTP served a different agent/initrd.img"
grep -q "served from /usr/share/portapxe/boot" "$CHECK/serve.log" || die "serve did not say where the packaged loaders are"
grep -q "capturing DHCP traffic on lo" "$CHECK/serve.log" || die "capture did not start as nobody (cap_net_raw)"
grep -q "x64 UEFI machines get shimx64.efi" "$CHECK/serve.log" || die "serve did not offer x64 UEFI the packaged signed chain"
grep -q "ARM64 UEFI machines get shimaa64.efi" "$CHECK/serve.log" || die "serve did not offer ARM64 UEFI the packaged signed chain"
echo "as nobody: the packaged ipxe.efi, shimx64.efi and imaging agent over HTTP :80, undionly.kpxe and"
echo "grubx64.efi, grubaa64.efi over TFTP :69 behind /srv/pxe, and /srv/pxe/user.txt over HTTP; signed chains (x64, ARM64) offered; capture ran"

step "portable archive"
tar -C "$CHECK" -xzf "$DIST/$TARBALL_NAME.tar.gz"
for path in portapxe README.md LICENSE install.sh portapxe.desktop portapxe.svg; do
    [ -s "$CHECK/$TARBALL_NAME/$path" ] || die "$TARBALL_NAME.tar.gz lacks $path"
done
check_boot_dir "$CHECK/$TARBALL_NAME/boot" "$TARBALL_NAME.tar.gz's boot/"
! grep -n '@[A-Z_]*@' "$CHECK/$TARBALL_NAME/README.md" || die "README.md in the archive has an unfilled placeholder"
"$CHECK/$TARBALL_NAME/portapxe" --version
prefix=$CHECK/prefix
"$CHECK/$TARBALL_NAME/install.sh" --prefix "$prefix"
for path in bin/portapxe share/applications/portapxe.desktop share/icons/hicolor/scalable/apps/portapxe.svg; do
    [ -s "$prefix/$path" ] || die "install.sh did not install $path"
done
check_boot_dir "$prefix/share/portapxe/boot" "install.sh's share/portapxe/boot"
case $(getcap "$prefix/bin/portapxe") in
    *cap_net_bind_service,cap_net_raw=ep*) ;;
    *) die "install.sh did not grant the capabilities" ;;
esac
"$CHECK/$TARBALL_NAME/install.sh" --prefix "$prefix" --uninstall
[ -z "$(find "$prefix" -type f)" ] || die "install.sh --uninstall left files: $(find "$prefix" -type f)"
no_mounts_under "$R"
rm -rf "$R"
echo "linux packages: all checks passed"
