#!/usr/bin/env python3
"""A DHCP avalanche: N PXE clients start DORA at the same instant.

Run inside the client network namespace of the benchmark (bench/pxbench.py
does that). Every client has its own MAC and xid and sends what a BIOS PXE ROM
sends (option 60 PXEClient, 93 = 0, a parameter list with 66/67). All
DISCOVERs go out back to back; each OFFER is answered at once with a REQUEST;
the time of every ACK is recorded. A client that heard nothing for
--resend seconds sends its last message again. Prints one JSON object:
bound count, seconds from the first DISCOVER to the last ACK, resends, NAKs.

  dhcpburst.py --iface IF --count 40 [--mode broadcast|relay]
               [--server IP --giaddr IP] [--timeout 5]

broadcast: what PXE clients do (from 0.0.0.0:68 to 255.255.255.255:67 with the
broadcast flag set; the socket is tied to IF). relay: as a relay agent
(from GIADDR:67 to SERVER:67, giaddr set), like perfdhcp here.
Part of PortaPXE's benchmark suite (bench/), not of the product.
"""

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK = 1, 2, 3, 4, 5, 6


def options(msg_type, extra=b""):
    out = bytes([53, 1, msg_type])
    out += bytes([60, 32]) + b"PXEClient:Arch:00000:UNDI:002001"
    out += bytes([93, 2, 0, 0])
    out += bytes([94, 3, 1, 2, 1])
    out += bytes([55, 7, 1, 3, 6, 43, 60, 66, 67])
    return out + extra + b"\xff"


def packet(xid, mac, msg_type, broadcast, giaddr, extra=b""):
    flags = 0x8000 if broadcast else 0
    head = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1, 1, 6, 1 if giaddr != b"\0\0\0\0" else 0,
        xid, 0, flags,
        b"\0\0\0\0", b"\0\0\0\0", b"\0\0\0\0", giaddr,
        mac + b"\0" * 10, b"", b"",
    )
    body = head + MAGIC + options(msg_type, extra)
    return body + b"\0" * max(0, 300 - len(body))


def parse(data):
    if len(data) < 240 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    yiaddr = data[16:20]
    opts, i = {}, 240
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        length = data[i + 1]
        opts[code] = data[i + 2:i + 2 + length]
        i += 2 + length
    kind = opts.get(53, b"\0")[0]
    return xid, kind, yiaddr, opts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--mode", choices=["broadcast", "relay"], default="broadcast")
    ap.add_argument("--server", default="255.255.255.255")
    ap.add_argument("--giaddr", default="0.0.0.0")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--resend", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=os.getpid())
    args = ap.parse_args()
    if not 1 <= args.count <= 1000 or not 0 < args.timeout <= 60:
        sys.exit("count must be 1..1000 and timeout 0..60 s")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, args.iface.encode())
    if args.mode == "broadcast":
        sock.bind(("0.0.0.0", 68))
        dest = ("255.255.255.255", 67)
        giaddr = b"\0\0\0\0"
    else:
        sock.bind((args.giaddr, 67))
        dest = (args.server, 67)
        giaddr = socket.inet_aton(args.giaddr)
    broadcast = args.mode == "broadcast"

    base = (args.seed * 7919) & 0xFFFF
    clients = {}
    for n in range(args.count):
        mac = bytes([0x02, 0x50, (base >> 8) & 0xFF, base & 0xFF, n >> 8, n & 0xFF])
        xid = ((base << 16) | n) & 0xFFFFFFFF
        clients[xid] = {"mac": mac, "state": "discover", "last": None, "sent_at": 0.0, "bound_at": None}

    start = time.monotonic()
    for xid, c in clients.items():
        c["last"] = packet(xid, c["mac"], DISCOVER, broadcast, giaddr)
        sock.sendto(c["last"], dest)
        c["sent_at"] = time.monotonic()
    resends = naks = 0
    deadline = start + args.timeout
    pending = len(clients)
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.05)
        now = time.monotonic()
        if ready:
            while True:
                try:
                    data = sock.recv(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                parsed = parse(data)
                if not parsed:
                    continue
                xid, kind, yiaddr, opts = parsed
                c = clients.get(xid)
                if not c:
                    continue
                now = time.monotonic()
                if kind == OFFER and c["state"] == "discover":
                    extra = bytes([50, 4]) + yiaddr
                    if 54 in opts:
                        extra += bytes([54, 4]) + opts[54]
                    c["last"] = packet(xid, c["mac"], REQUEST, broadcast, giaddr, extra)
                    c["state"] = "request"
                    sock.sendto(c["last"], dest)
                    c["sent_at"] = now
                elif kind == ACK and c["state"] == "request":
                    c["state"] = "bound"
                    c["bound_at"] = now - start
                    pending -= 1
                elif kind == NAK and c["state"] == "request":
                    naks += 1
                    c["state"] = "discover"
                    c["last"] = packet(xid, c["mac"], DISCOVER, broadcast, giaddr)
                    sock.sendto(c["last"], dest)
                    c["sent_at"] = now
        for xid, c in clients.items():
            if c["state"] != "bound" and now - c["sent_at"] >= args.resend:
                sock.sendto(c["last"], dest)
                c["sent_at"] = now
                resends += 1
    times = sorted(c["bound_at"] for c in clients.values() if c["bound_at"] is not None)
    print(json.dumps({
        "count": args.count,
        "bound": len(times),
        "all_bound_s": times[-1] if len(times) == args.count else None,
        "first_bound_s": times[0] if times else None,
        "median_bound_s": times[len(times) // 2] if times else None,
        "resends": resends,
        "naks": naks,
    }))
    return 0 if len(times) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
