#!/usr/bin/env python3
"""Packs PNG renderings of assets/portapxe.svg into a Windows .ico or a macOS .icns.

    icons.py ico OUT.ico PNG...     (sizes up to 256, one entry each, PNG-compressed)
    icons.py icns OUT.icns PNG...   (sizes 16..1024, the PNG element types of macOS 10.7+)
    icons.py check FILE.ico|FILE.icns SIZE...   (fails unless FILE holds exactly these sizes)

Standard library only, so it runs on a Linux CI host and on a Mac alike. The PNGs come
from rsvg-convert (installers/common.sh: render_png).
"""

import struct
import sys

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# icns element types that carry PNG data, by pixel size. 32, 64, 256, 512 and 1024 are
# also the @2x versions of the smaller sizes (ic11..ic14, ic10): macOS picks by pixels.
ICNS_TYPES = {16: [b"icp4"], 32: [b"icp5", b"ic11"], 64: [b"icp6", b"ic12"], 128: [b"ic07"],
              256: [b"ic08", b"ic13"], 512: [b"ic09", b"ic14"], 1024: [b"ic10"]}


def png_size(data, name):
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        sys.exit(f"icons.py: {name} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    if width != height:
        sys.exit(f"icons.py: {name} is {width}x{height}; icons are square")
    return width


def read_pngs(paths):
    pngs = {}
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        pngs[png_size(data, path)] = data
    return dict(sorted(pngs.items()))


def write_ico(out, pngs):
    if max(pngs) > 256:
        sys.exit("icons.py: .ico entries are at most 256 pixels")
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, blobs = b"", b""
    for size, data in pngs.items():
        byte_size = 0 if size == 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", byte_size, byte_size, 0, 0, 1, 32, len(data), offset)
        blobs += data
        offset += len(data)
    with open(out, "wb") as f:
        f.write(header + entries + blobs)


def write_icns(out, pngs):
    body = b""
    for size, data in pngs.items():
        if size not in ICNS_TYPES:
            sys.exit(f"icons.py: no icns element for {size} pixels")
        for kind in ICNS_TYPES[size]:
            body += kind + struct.pack(">I", 8 + len(data)) + data
    with open(out, "wb") as f:
        f.write(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def sizes_in(path):
    """The pixel sizes of the PNG images inside an .ico or .icns, parsed back from the file."""
    with open(path, "rb") as f:
        data = f.read()
    sizes = set()
    if data[:4] == b"icns":
        if struct.unpack(">I", data[4:8])[0] != len(data):
            sys.exit(f"icons.py: {path}: icns length field is wrong")
        at = 8
        while at < len(data):
            kind, length = data[at:at + 4], struct.unpack(">I", data[at + 4:at + 8])[0]
            if length < 8 or at + length > len(data):
                sys.exit(f"icons.py: {path}: element {kind!r} runs past the end")
            sizes.add(png_size(data[at + 8:at + length], f"{path}:{kind.decode()}"))
            at += length
    elif data[:4] == b"\0\0\1\0":
        count = struct.unpack("<H", data[4:6])[0]
        for i in range(count):
            _, _, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i:22 + 16 * i])
            if offset + length > len(data):
                sys.exit(f"icons.py: {path}: entry {i} runs past the end")
            sizes.add(png_size(data[offset:offset + length], f"{path}#{i}"))
    else:
        sys.exit(f"icons.py: {path} is neither an .ico nor an .icns")
    return sizes


def main(argv):
    if len(argv) < 4 or argv[1] not in ("ico", "icns", "check"):
        sys.exit(__doc__)
    if argv[1] == "check":
        want = {int(s) for s in argv[3:]}
        got = sizes_in(argv[2])
        if got != want:
            sys.exit(f"icons.py: {argv[2]} holds sizes {sorted(got)}, expected {sorted(want)}")
        print(f"{argv[2]}: sizes {sorted(got)}")
        return
    pngs = read_pngs(argv[3:])
    (write_ico if argv[1] == "ico" else write_icns)(argv[2], pngs)


if __name__ == "__main__":
    main(sys.argv)
