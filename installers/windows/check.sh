#!/usr/bin/env bash
# Checks the Windows build that build.sh made:
#   - wpcap.dll is only delay-imported (the exe must start without Npcap);
#   - under Wine (no Npcap), the exe runs `--version` and `interfaces`;
#   - `msiexec /i … /qn` installs the exe, the iPXE and the signed loaders (byte for byte as
#     taken) and the Start-menu shortcut and runs netsh for both inbound firewall rules; the
#     installed exe runs, and with no --root serves the installed loaders (found in boot\
#     beside it) over TFTP and HTTP in a private network namespace, with capture reporting
#     itself unavailable; `msiexec /x` removes the files, the shortcut and both rules;
#   - the installed exe opens its window under Wine + Xvfb with default settings, falling
#     back from Direct3D 12 to a renderer that works (window-check.sh), and closes cleanly.
# Wine 8 lacks bcryptprimitives.dll (every Rust 1.78+ exe imports ProcessPrng from it) and
# its netsh ignores advfirewall: a stub DLL (wine/bcryptprimitives.c) and a netsh.exe that
# records its command line (wine/netsh-recorder.c) go into a throwaway Wine prefix.
# Neither is ever shipped.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
need wine wineboot wineserver x86_64-w64-mingw32-gcc x86_64-w64-mingw32-objdump x86_64-w64-mingw32-nm timeout unshare curl tftp python3

HERE=$ROOT/installers/windows
OUT=$WORK/windows
EXE=$OUT/msi/portapxe.exe
MSI=$DIST/portapxe-$VERSION-x64.msi
{ [ -s "$EXE" ] && [ -s "$MSI" ]; } || die "run installers/windows/build.sh first"

step "wpcap.dll is delay-loaded, not imported"
# GNU ld links a dlltool -y library as a delay-load descriptor (resolved at the first call
# by __delayLoadHelper2) without filling the PE delay-import directory, so look for the
# descriptor in the unstripped exe's symbols, and for wpcap.dll in the normal imports.
x86_64-w64-mingw32-objdump -p "$EXE" > "$OUT/objdump.txt"
awk '/^The Import Tables/ { inside = 1 } /^The Function Table/ { inside = 0 }
     inside && /DLL Name:/ { print tolower($3) }' "$OUT/objdump.txt" | sort -u > "$OUT/imports.txt"
echo "imports: $(tr '\n' ' ' < "$OUT/imports.txt")"
! grep -qx 'wpcap.dll' "$OUT/imports.txt" || die "wpcap.dll is imported normally: the exe would not start without Npcap"
! grep -qx 'packet.dll' "$OUT/imports.txt" || die "the exe imports Packet.dll: it would not start without Npcap"
UNSTRIPPED=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-pc-windows-gnu/release/portapxe.exe
x86_64-w64-mingw32-nm "$UNSTRIPPED" > "$OUT/symbols.txt"
grep -q '__DELAY_IMPORT_DESCRIPTOR_.*libwpcap_a' "$OUT/symbols.txt" || die "no delay-load descriptor for wpcap.dll"
grep -q '__delayLoadHelper2' "$OUT/symbols.txt" || die "no delay-load helper linked"
grep -aq 'wpcap.dll' "$EXE" || die "the exe does not name wpcap.dll"
echo "delay-loaded: wpcap.dll"

step "throwaway Wine prefix with the test stubs"
# A prefix copies ~200 MB of Wine's DLLs. Once in CI wineboot failed with "could not load
# kernel32.dll" as if those copies were short, and did not fail again on a fresh machine;
# a full disk is the likely cause, so that is checked first and said plainly.
free_mb=$(df -Pm "$OUT" | awk 'NR == 2 { print $4 }')
[ "$free_mb" -ge 1024 ] || { df -h "$OUT"; die "only $free_mb MB free under $OUT: a Wine prefix needs about 1 GB"; }
export WINEPREFIX=$OUT/wineprefix WINEDEBUG=-all WINEARCH=win64
# No Mono/Gecko download prompts; netsh.exe: the recorder, not Wine's builtin; wpcap:
# disabled, so this is a machine without Npcap (Wine has a builtin wpcap.dll over libpcap).
export WINEDLLOVERRIDES="mscoree,mshtml=;netsh.exe=n;wpcap="
unset DISPLAY WAYLAND_DISPLAY
rm -rf "$WINEPREFIX"
trap 'wineserver -k 2> /dev/null || true' EXIT
if ! timeout 300 wineboot --init > "$OUT/wineboot.log" 2>&1; then
    # Once more with Wine's error channels on, so a failure here says which file or DLL.
    tail -20 "$OUT/wineboot.log"
    df -h "$OUT"
    echo "wineboot failed; trying once more in a new prefix with WINEDEBUG=err+all,warn+module"
    wineserver -k 2> /dev/null || true
    rm -rf "$WINEPREFIX"
    WINEDEBUG=err+all,warn+module timeout 300 wineboot --init > "$OUT/wineboot-retry.log" 2>&1 ||
        { tail -60 "$OUT/wineboot-retry.log"; die "wineboot failed twice (logs: $OUT/wineboot*.log)"; }
fi
SYS32=$WINEPREFIX/drive_c/windows/system32
x86_64-w64-mingw32-gcc -O2 -shared -o "$SYS32/bcryptprimitives.dll" \
    "$HERE/wine/bcryptprimitives.c" "$HERE/wine/bcryptprimitives.def"
x86_64-w64-mingw32-gcc -O2 -o "$SYS32/netsh.exe" "$HERE/wine/netsh-recorder.c"
rm -f "$SYS32/wpcap.dll"
[ ! -e "$SYS32/Npcap/wpcap.dll" ] || die "the Wine prefix has Npcap's wpcap.dll; the check needs a machine without it"
winpath() { printf 'Z:%s' "${1//\//\\}"; }

step "portapxe.exe --version and interfaces under Wine (no Npcap)"
version_out=$(timeout 120 wine "$EXE" --version | tr -d '\r')
echo "$version_out"
[ "$version_out" = "portapxe $VERSION" ] || die "portapxe.exe --version printed '$version_out', expected 'portapxe $VERSION'"
timeout 120 wine "$EXE" interfaces > "$OUT/interfaces.txt" || { cat "$OUT/interfaces.txt"; die "portapxe.exe interfaces failed"; }
tr -d '\r' < "$OUT/interfaces.txt"
[ -s "$OUT/interfaces.txt" ] || die "portapxe.exe interfaces printed nothing"

step "msiexec /i $(basename "$MSI") /qn"
NETSH_LOG=$WINEPREFIX/drive_c/netsh-calls.log
PF="$WINEPREFIX/drive_c/Program Files/PortaPXE"
rm -f "$NETSH_LOG"
timeout 300 wine msiexec /i "$(winpath "$MSI")" /qn /l*v 'C:\install.log' || {
    iconv -f utf-16 -t utf-8 "$WINEPREFIX/drive_c/install.log" 2> /dev/null | tail -40 || true
    die "msiexec /i failed"
}
wineserver -w
for path in portapxe.exe LICENSE.txt; do
    [ -s "$PF/$path" ] || die "the MSI did not install Program Files\\PortaPXE\\$path"
done
check_boot_dir "$PF/boot" "the MSI's Program Files\\PortaPXE\\boot"
cmp "$PF/portapxe.exe" "$EXE" || die "the installed portapxe.exe differs from the built one"
# Wine puts per-machine Start-menu entries in the user's folder; Windows uses ProgramData.
shortcut=$(find "$WINEPREFIX/drive_c" -name 'PortaPXE.lnk' -path '*Start Menu/Programs/*' | head -1)
[ -n "$shortcut" ] || die "the MSI made no Start-menu shortcut"
echo "shortcut: ${shortcut#"$WINEPREFIX/"}"
tr -d '\r' < "$NETSH_LOG"
expect_rule() { # expect_rule add|delete NAME [PARAMETERS…]: one netsh line that has them all
    local line
    line=$(grep -F "advfirewall firewall $1 rule name=\"$2\"" "$NETSH_LOG" | tail -1 | tr -d '\r')
    [ -n "$line" ] || die "the MSI did not run: netsh advfirewall firewall $1 rule name=\"$2\""
    shift 2
    for parameter; do
        [[ $line == *" $parameter"* ]] || die "netsh rule lacks '$parameter': $line"
    done
}
program='program="C:\Program Files\PortaPXE\portapxe.exe"'
expect_rule add "PortaPXE (UDP 67, 69, 4011)" dir=in action=allow protocol=UDP localport=67,69,4011 "$program"
expect_rule add "PortaPXE (TCP 80)" dir=in action=allow protocol=TCP localport=80 "$program"
installed_version=$(timeout 120 wine 'C:\Program Files\PortaPXE\portapxe.exe' --version | tr -d '\r')
[ "$installed_version" = "portapxe $VERSION" ] || die "the installed exe printed '$installed_version'"
echo "installed: $installed_version"

# The installed exe opens its window with default settings (issue 19): Direct3D 12 fails
# under Wine, so this also proves the fallback to the next renderer.
VERSION="$VERSION" bash "$HERE/window-check.sh" 'C:\Program Files\PortaPXE\portapxe.exe' "$OUT/window"
# And one real start from the window's saved state (`--start`, boot files only, in a
# private network namespace).
VERSION="$VERSION" bash "$HERE/window-check.sh" --start 'C:\Program Files\PortaPXE\portapxe.exe' "$OUT/window-start"

step "installed exe serves its loaders under Wine without Npcap (no --root, private network namespace, --mode off)"
# Capture starts with every serve: without Npcap it must report itself unavailable and let
# TFTP and HTTP run, not crash at the first pcap call. Wine's sockets belong to its
# wineserver, so a new one runs inside the namespace.
wineserver -k 2> /dev/null || true
wineserver -w
rm -f "$OUT/serve.log" "$OUT/http-ipxe.efi" "$OUT/http-shimx64.efi" "$OUT/http-agent-vmlinuz" "$OUT/tftp-undionly.kpxe"
# shellcheck disable=SC2016 # expanded by the inner bash
timeout 180 unshare --net bash -euo pipefail -c '
    out=$1
    ip link set lo up
    loopback=$(wine "C:\Program Files\PortaPXE\portapxe.exe" interfaces --json | tr -d "\r" |
        python3 -c "import json, sys; print(next(i[\"name\"] for i in json.load(sys.stdin) if i[\"kind\"] == \"loopback\"))")
    wine "C:\Program Files\PortaPXE\portapxe.exe" serve --interface "$loopback" --mode off \
        --state-dir "C:\portapxe-state" > "$out/serve.log" 2>&1 &
    server=$!
    trap "wineserver -k 2> /dev/null || true" EXIT
    for _ in $(seq 100); do
        curl -sf -o /dev/null http://127.0.0.1:80/ipxe.efi && break
        kill -0 $server 2> /dev/null || exit 1
        sleep 0.3
    done
    curl -sf -o "$out/http-ipxe.efi" http://127.0.0.1:80/ipxe.efi
    curl -sf -o "$out/http-shimx64.efi" http://127.0.0.1:80/shimx64.efi
    curl -sf -o "$out/http-agent-vmlinuz" http://127.0.0.1:80/agent/vmlinuz
    (cd "$out" && tftp -m binary 127.0.0.1 69 -c get undionly.kpxe tftp-undionly.kpxe)
    for _ in $(seq 50); do
        grep -q "packet capture" "$out/serve.log" && break
        sleep 0.2
    done
    kill -0 $server
' check "$OUT" || { tr -d '\r' < "$OUT/serve.log" | head -40; die "the installed exe did not serve under Wine"; }
tr -d '\r' < "$OUT/serve.log" | grep -v '^\s*$' | head -20
cmp "$OUT/http-ipxe.efi" "$IPXE_DIR/ipxe.efi" || die "HTTP served a different ipxe.efi"
cmp "$OUT/tftp-undionly.kpxe" "$IPXE_DIR/undionly.kpxe" || die "TFTP served a different undionly.kpxe"
cmp "$OUT/http-shimx64.efi" "$SIGNED_DIR/shimx64.efi" || die "HTTP served a different shimx64.efi"
cmp "$OUT/http-agent-vmlinuz" "$AGENT_DIR/agent/vmlinuz" || die "HTTP served a different agent/vmlinuz"
grep -q 'packet capture is unavailable.*Npcap' "$OUT/serve.log" || die "serve did not report capture unavailable (no Npcap)"
grep -qF 'serving only the iPXE loaders in C:\Program Files\PortaPXE\boot' "$OUT/serve.log" ||
    die "serve did not find the installed loaders in Program Files\PortaPXE\boot"
echo "served the installed ipxe.efi, shimx64.efi and agent/vmlinuz over HTTP and undionly.kpxe over TFTP; capture reported itself unavailable"

step "upgrade: a newer MSI replaces this one and keeps the firewall rules"
# The same contents as version MAJOR.MINOR.(PATCH+1), made only for this check.
NEXT=$(python3 -c 'import sys; v = sys.argv[1].split("."); v[2] = str(int(v[2]) + 1); print(".".join(v[:3]))' "$VERSION")
UPGRADE=$OUT/portapxe-$NEXT-upgrade-check.msi
(cd "$OUT/msi" && wixl --arch x64 --define Version="$NEXT" --define SourceDir=. --output "$UPGRADE" "$HERE/portapxe.wxs")
: > "$NETSH_LOG"
timeout 300 wine msiexec /i "$(winpath "$UPGRADE")" /qn || die "msiexec /i of the upgrade failed"
wineserver -w
tr -d '\r' < "$NETSH_LOG"
# The old product's removal deletes the rules before the new one adds them back.
[ "$(grep -c 'advfirewall firewall add rule' "$NETSH_LOG")" = 2 ] || die "the upgrade did not add both rules once"
tail -2 "$NETSH_LOG" | grep -q 'firewall add rule' || die "the upgrade's last netsh calls were not the adds"
timeout 60 wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s | tr -d '\r' > "$OUT/uninstall-keys.txt"
products=$(grep -cE 'DisplayName[[:space:]]+REG_SZ[[:space:]]+PortaPXE$' "$OUT/uninstall-keys.txt" || true)
[ "$products" = 1 ] || die "after the upgrade, $products PortaPXE entries are installed (expected 1)"
grep -qE "DisplayVersion[[:space:]]+REG_SZ[[:space:]]+$NEXT\$" "$OUT/uninstall-keys.txt" || die "the installed version is not $NEXT"
echo "upgraded to $NEXT: one product installed, rules re-added"

step "msiexec /x (uninstall)"
: > "$NETSH_LOG"
timeout 300 wine msiexec /x "$(winpath "$UPGRADE")" /qn || die "msiexec /x failed"
wineserver -w
tr -d '\r' < "$NETSH_LOG"
expect_rule delete "PortaPXE (UDP 67, 69, 4011)"
expect_rule delete "PortaPXE (TCP 80)"
! grep -q 'advfirewall firewall add rule' "$NETSH_LOG" || die "uninstall added a firewall rule"
[ ! -e "$PF/portapxe.exe" ] || die "uninstall left portapxe.exe behind"
left=$(find "$PF" -type f 2> /dev/null || true)
[ -z "$left" ] || die "uninstall left files behind: $left"
[ -z "$(find "$WINEPREFIX/drive_c" -name 'PortaPXE.lnk')" ] || die "uninstall left the shortcut behind"
wineserver -k || true
trap - EXIT
rm -rf "$WINEPREFIX"
echo "windows package: all checks passed"
