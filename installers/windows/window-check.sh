#!/usr/bin/env bash
# Issue 19: the Windows build opens its window under Wine. Called by check.sh once the MSI is
# installed, with WINEPREFIX set up and exported:
#   window-check.sh 'C:\Program Files\PortaPXE\portapxe.exe' OUT_DIR
# Under a private Xvfb, the exe runs with no arguments (the window) and default settings: no
# WGPU_BACKEND of its own (one the caller exported is passed on) and a fresh settings folder,
# so it is a first launch. Within 90 s a top-level window whose title starts with "PortaPXE"
# must show and the screen must hold more than 16 colours (drawn, not blank). The screenshot
# goes to OUT_DIR/window.png, the app's stderr to OUT_DIR/stderr.txt. The window is then
# closed as a window manager's close button does (WM_DELETE_WINDOW, which Wine turns into
# WM_CLOSE); the exe must exit with status 0 and have saved its settings (on exit).
# Needs Xvfb (xvfb), xwd (x11-apps), xwininfo (x11-utils) and python3; the close goes
# through libX11 (libx11-6, which x11-utils depends on) with python3's ctypes.
# No network: with no settings the window serves nothing and scans nothing.
set -euo pipefail
# shellcheck source=SCRIPTDIR/../common.sh
source "$(dirname "$0")/../common.sh"
need wine wineserver Xvfb xwd xwininfo python3 timeout curl unshare ip

# With --start: `portapxe.exe --start` (the window, serving at once with saved settings:
# boot files only on Wine's loopback, in a private network namespace that this script
# enters itself); the title must say it serves and the installed ipxe.efi must come back
# over HTTP on 127.0.0.1 there.
START=
if [ "${1:-}" = --start ]; then
    START=1
    shift
fi
[ $# -eq 2 ] || die "usage: $(basename "$0") [--start] 'C:\\Program Files\\PortaPXE\\portapxe.exe' OUT_DIR"
if [ -n "$START" ] && [ -z "${PORTAPXE_WINDOW_NETNS:-}" ]; then
    # Wine's sockets belong to its wineserver: end the one of this namespace first, so a
    # new one starts inside the private one.
    timeout 120 wineserver -w || die "the Wine prefix did not go idle within 120 s"
    exec unshare --net -- env PORTAPXE_WINDOW_NETNS=1 bash "$0" --start "$@"
fi
EXE_WIN=$1
[ -d "${WINEPREFIX:-}/drive_c" ] ||
    die "WINEPREFIX is not a Wine prefix: run this from check.sh, after the MSI is installed"
mkdir -p "$2"
OUT_DIR=$(cd "$2" && pwd)
WAIT_S=90
SETTINGS=$OUT_DIR/settings
rm -rf "$SETTINGS" "$OUT_DIR/window.png" "$OUT_DIR/stderr.txt" "$OUT_DIR/xvfb-display"

# The helpers: one XWD screenshot's colours (and PNG), the window list, WM_DELETE_WINDOW.
read -r -d '' HELPER << 'PY' || true
import ctypes, re, struct, subprocess, sys, zlib

def screenshot(display):
    """(width, height, pixels as R, G, B, 0 bytes) of the root window. While Wine runs, xwd
    takes the screen as 24-bit pixels (3 bytes each) rather than 32-bit ones."""
    data = subprocess.run(["xwd", "-root", "-silent", "-display", display],
                          capture_output=True, check=True).stdout
    field = lambda i: struct.unpack(">I", data[i * 4:i * 4 + 4])[0]
    header, width, height, byte_order = field(0), field(4), field(5), field(7)
    bpp, bpl, masks, ncolors = field(11), field(12), (field(14), field(15), field(16)), field(19)
    if bpp not in (24, 32) or masks != (0xFF0000, 0xFF00, 0xFF):
        sys.exit(f"xwd: {bpp} bits per pixel with masks {masks}: not a 24-bit TrueColor screen")
    size = bpp // 8
    start = header + ncolors * 12
    rgbx = bytearray(width * height * 4)
    for y in range(height):
        row = data[start + y * bpl:start + y * bpl + width * size]
        out = memoryview(rgbx)[y * width * 4:(y + 1) * width * 4]
        for channel, shift in enumerate((16, 8, 0)):  # R, G, B
            index = shift // 8 if byte_order == 0 else size - 1 - shift // 8
            out[channel::4] = row[index::size]
    return width, height, rgbx

def colours(rgbx):
    return len(set(memoryview(rgbx).cast("I")))

def write_png(path, width, height, rgbx):
    rows = bytearray()
    for y in range(height):
        row = rgbx[y * width * 4:(y + 1) * width * 4]
        rgb = bytearray(width * 3)
        rgb[0::3], rgb[1::3], rgb[2::3] = row[0::4], row[1::4], row[2::4]
        rows += b"\0" + rgb
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body
                                + struct.pack(">I", zlib.crc32(kind + body)))
    with open(path, "wb") as png:
        png.write(b"\x89PNG\r\n\x1a\n"
                  + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))

def portapxe_windows(display):
    """(id, title line) of each top-level window titled "PortaPXE…"."""
    tree = subprocess.run(["xwininfo", "-root", "-children", "-display", display],
                          capture_output=True, text=True, errors="replace").stdout
    return [(int(m.group(1), 16), m.group(0).strip())
            for m in re.finditer(r'^\s*(0x[0-9a-f]+) "PortaPXE.*$', tree, re.M)]

def close(display, window):
    """WM_PROTOCOLS/WM_DELETE_WINDOW to the window, as a window manager's close button sends."""
    x = ctypes.CDLL("libX11.so.6")
    x.XOpenDisplay.restype, x.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    x.XFlush.argtypes = x.XCloseDisplay.argtypes = [ctypes.c_void_p]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                    ("message_type", ctypes.c_ulong), ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    dpy = x.XOpenDisplay(display.encode())
    if not dpy:
        sys.exit(f"cannot open display {display}")
    event = XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = window
    event.xclient.format = 32
    event.xclient.message_type = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    event.xclient.data[0] = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    event.xclient.data[1] = 0  # CurrentTime
    if not x.XSendEvent(dpy, window, 0, 0, ctypes.byref(event)):
        sys.exit("XSendEvent failed")
    x.XFlush(dpy)
    x.XCloseDisplay(dpy)

command, display = sys.argv[1], sys.argv[2]
if command == "poll":  # prints: COLOURS WINDOW_ID (0: none) TITLE_LINE
    width, height, rgbx = screenshot(display)
    windows = portapxe_windows(display)
    window, title = windows[0] if windows else (0, "")
    print(colours(rgbx), window, title)
elif command == "png":
    write_png(sys.argv[3], *screenshot(display))
elif command == "close":
    close(display, int(sys.argv[3]))
PY
helper() { python3 -c "$HELPER" "$@"; }

XVFB=
APP=
cleanup() {
    # Only what this script started, by PID.
    if [ -n "$APP" ] && kill -0 "$APP" 2> /dev/null; then kill "$APP" 2> /dev/null || true; fi
    if [ -n "$XVFB" ]; then
        kill "$XVFB" 2> /dev/null || true
        wait "$XVFB" 2> /dev/null || true
    fi
}
trap cleanup EXIT

if [ -n "$START" ]; then
    step "the window under Wine + Xvfb, --start: serving at once with saved settings"
else
    step "the window under Wine + Xvfb, first launch, default settings${WGPU_BACKEND:+ (WGPU_BACKEND=$WGPU_BACKEND from the caller)}"
fi
# A Wine session begun without a display (check.sh's earlier `wine … --version`) keeps its
# desktop on no display: the window would not reach Xvfb (winit "os error", or the exe hangs
# presenting its first frame). Wait for that session to end; this one starts on Xvfb.
timeout 120 wineserver -w || die "the Wine prefix did not go idle within 120 s"

Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3> "$OUT_DIR/xvfb-display" 2> "$OUT_DIR/xvfb.log" &
XVFB=$!
for _ in $(seq 100); do
    [ -s "$OUT_DIR/xvfb-display" ] && break
    kill -0 "$XVFB" 2> /dev/null || { cat "$OUT_DIR/xvfb.log"; die "Xvfb did not start"; }
    sleep 0.1
done
number=$(tr -d '[:space:]' < "$OUT_DIR/xvfb-display")
[[ $number =~ ^[0-9]+$ ]] || die "Xvfb gave no display number (it said '$number')"
DISPLAY_X=:$number
echo "Xvfb on $DISPLAY_X (PID $XVFB)"

settings_win=Z:${SETTINGS//\//\\}
args=()
want_title="PortaPXE"
if [ -n "$START" ]; then
    ip link set lo up
    # On this Xvfb: a Wine session begun without a display would keep the window off it.
    interfaces=$(DISPLAY="$DISPLAY_X" timeout 120 wine "$EXE_WIN" interfaces --json | tr -d '\r') ||
        die "portapxe.exe interfaces --json failed under Wine"
    # The name as a TOML basic string (JSON's escaping is valid there).
    loopback=$(python3 -c 'import json, sys
names = [i["name"] for i in json.load(sys.stdin) if i["kind"] == "loopback"]
print(json.dumps(names[0]) if names else "")' <<< "$interfaces")
    [ -n "$loopback" ] || die "Wine lists no loopback interface: $interfaces"
    mkdir -p "$SETTINGS"
    # Saved settings: boot files only on loopback, no boot folder (the installed loaders).
    printf 'interface = %s\nmode = "off"\n' "$loopback" > "$SETTINGS/config.toml"
    # Saving on exit must rewrite it (checked after the close).
    touch -d @946684800 "$SETTINGS/config.toml"
    loopback=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]))' "$loopback")
    args=(--start)
    want_title="PortaPXE — serving on $loopback"
    echo "saved settings: boot files only on $loopback (Wine's loopback), in a private network namespace"
fi
# Logging only (the default level, plus the line that names the adapter wgpu chose).
start=$(date +%s.%N)
SECONDS=0
env -u WAYLAND_DISPLAY DISPLAY="$DISPLAY_X" PORTAPXE_CONFIG_DIR="$settings_win" \
    PORTAPXE_LOG="${PORTAPXE_LOG:-info,egui_wgpu=debug}" \
    wine "$EXE_WIN" "${args[@]}" > "$OUT_DIR/stderr.txt" 2>&1 &
APP=$!
seconds() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$1" "$(date +%s.%N)"; }
app_log() { tr -d '\r' < "$OUT_DIR/stderr.txt" | grep -vE '^\s*$' | grep -v 'leak detected' | grep -vE '^\s+|^\}' | tail -"$1" || true; }

colours=0 window=0 title=
while :; do
    sleep 0.5
    if ! kill -0 "$APP" 2> /dev/null; then
        status=0
        wait "$APP" || status=$?
        APP=
        app_log 15
        die "portapxe.exe exited with status $status after $(seconds "$start") s, before a drawn window showed"
    fi
    read -r colours window title < <(helper poll "$DISPLAY_X") || die "cannot read the screen of $DISPLAY_X"
    [ "$window" != 0 ] && [ "$colours" -gt 16 ] && [[ $title == *"\"$want_title"* ]] && break
    if [ "$SECONDS" -ge "$WAIT_S" ]; then
        helper png "$DISPLAY_X" "$OUT_DIR/window.png" || true
        xwininfo -root -children -display "$DISPLAY_X" || true
        app_log 15
        die "no drawn PortaPXE window after $WAIT_S s: $colours colours, PortaPXE window: $([ "$window" = 0 ] && echo none || echo "$title")"
    fi
done
to_window=$(seconds "$start")
helper png "$DISPLAY_X" "$OUT_DIR/window.png"
# The adapter line: egui-wgpu's debug "wgpu adapter: …", or its warning for a CPU rasteriser.
adapter=$(tr -d '\r' < "$OUT_DIR/stderr.txt" | grep -E 'wgpu adapter: |Software rasterizer detected' | tail -1 || true)
backend=$(sed -nE 's/.*backend: ([A-Za-z0-9]+).*/\1/p' <<< "$adapter")
renderer=$(sed -nE 's/.*backend: [A-Za-z0-9]+, device_type: ([A-Za-z]+), name: "([^"]*)".*/\2 (\1)/p' <<< "$adapter")
# PortaPXE's own lines: each renderer that failed before one drew, and the one that drew.
drawn_with=$(tr -d '\r' < "$OUT_DIR/stderr.txt" | sed -nE 's/.*window: drawn with (.*)/\1/p' | tail -1)
tr -d '\r' < "$OUT_DIR/stderr.txt" | sed -nE 's/.*(window: .* failed .*)/fallback:   \1/p'
echo "window:     $title"
echo "drawn:      $colours colours on screen, $to_window s after launch"
echo "renderer:   ${drawn_with:-unknown (no \"window: drawn with\" line in stderr.txt)}"
echo "backend:    ${backend:-unknown (no adapter line in stderr.txt)}${renderer:+, $renderer}"
echo "screenshot: $OUT_DIR/window.png"
if [ -n "$START" ]; then
    curl -sf --max-time 20 -o "$OUT_DIR/http-ipxe.efi" http://127.0.0.1:80/ipxe.efi ||
        { app_log 15; die "the window says it serves, but HTTP did not answer for ipxe.efi"; }
    echo "served:     ipxe.efi over HTTP, $(stat -c %s "$OUT_DIR/http-ipxe.efi") bytes, started from the window"
fi

step "close the window (WM_DELETE_WINDOW) and check the exit status"
closed_at=$(date +%s.%N)
helper close "$DISPLAY_X" "$window" || die "cannot send WM_DELETE_WINDOW to the window"
for _ in $(seq 300); do
    kill -0 "$APP" 2> /dev/null || break
    sleep 0.1
done
if kill -0 "$APP" 2> /dev/null; then
    app_log 15
    die "portapxe.exe still runs 30 s after its window was closed"
fi
status=0
wait "$APP" || status=$?
APP=
to_exit=$(seconds "$closed_at")
[ "$status" = 0 ] || { app_log 15; die "portapxe.exe exited with status $status after its window was closed"; }
if [ ! -s "$SETTINGS/config.toml" ] || [ "$(stat -c %Y "$SETTINGS/config.toml")" -le 946684800 ]; then
    die "portapxe.exe did not save its settings when its window was closed"
fi
# Wine's own processes of this session (explorer.exe) are connected to this Xvfb: let them
# leave before it goes, not die of a broken X connection.
timeout 60 wineserver -w || die "the Wine prefix did not go idle within 60 s of the close"
echo "closed:     exit status 0, $to_exit s after WM_DELETE_WINDOW; settings saved"
[ -n "$drawn_with" ] || die "portapxe.exe drew a window but did not log which renderer drew it"
echo "window check passed: drawn in $to_window s, $colours colours, with ${drawn_with}"
