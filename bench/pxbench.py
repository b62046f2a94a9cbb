#!/usr/bin/env python3
"""PortaPXE benchmark suite: TFTP, HTTP and DHCP side by side with Debian's servers.

Started by bench/run (see BENCHMARKS.md). Needs root: every server and client
runs inside network namespaces this script creates and deletes, so nothing
reaches a real network and ports 67/69/80 of the host are never touched.

For each case, each round starts every server in turn on the same files,
measures, and stops it again (rounds interleave servers, so a load change on
the machine hits all of them alike). The table gives the median with min-max
over the rounds, and PortaPXE / best peer.

Part of PortaPXE's benchmark suite (bench/), not of the product or its tests.
"""

import argparse
import ctypes
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ATFTPD_CACHE = Path("/var/cache/portapxe-bench/atftpd")
MB = 1_000_000
MIB = 1 << 20

# ---------------------------------------------------------------- utilities


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load1():
    return os.getloadavg()[0]


def sh(cmd, timeout=30, check=True, **kw):
    """Run a short command and return its CompletedProcess."""
    res = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res.returncode}): {res.stderr.strip()[:500]}")
    return res


_libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def enter_netns(name):
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def proc_status(pid, field):
    """A /proc/PID/status field in bytes (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid):
    """User + system CPU of a process and of the children it has reaped, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14-17 of proc(5) (utime, stime, cutime, cstime); index 0 here is field 3.
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def group_pids(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def group_rss(pgid):
    return sum(proc_status(pid, "VmRSS") or 0 for pid in group_pids(pgid))


def udp_rcvbuf_errors():
    """Datagrams this network namespace dropped because a socket's receive buffer was full."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def bound_ports():
    """(udp ports, tcp listening ports) bound in this network namespace."""
    udp, tcp = set(), set()
    for name, out, want_listen in (("/proc/net/udp", udp, False), ("/proc/net/tcp", tcp, True)):
        with open(name) as f:
            next(f)
            for line in f:
                parts = line.split()
                port = int(parts[1].split(":")[1], 16)
                if want_listen and parts[3] != "0A":
                    continue
                out.add(port)
    return udp, tcp


def run_watching(argv, dest, limit):
    """Run a download client; return (seconds, longest pause without progress, error or None).

    The output file is polled every 10 ms; a pause is time in which it did not grow
    (from the start until the first byte, and between bytes). A resend timeout in
    the transfer shows up as a pause of about that timeout.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last_size, last_change, pause = -1, t0, 0.0
    while True:
        try:
            proc.wait(0.01)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.perf_counter()
        try:
            size = os.stat(dest).st_size
        except OSError:
            size = -1
        if size != last_size:
            last_size, last_change = size, now
        pause = max(pause, now - last_change)
        if now - t0 > limit:
            proc.kill()
            proc.wait()
            proc.stderr.close()
            return None, pause, f"not done after {limit} s (stalled)"
    dt = time.perf_counter() - t0
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    err = None if proc.returncode == 0 else f"exit {proc.returncode}: {stderr.strip()[-200:]}"
    return dt, pause, err


STALL_SECONDS = 1.0

# ---------------------------------------------------------------- processes


class Proc:
    """A process this suite started, in its own process group; stop() ends the group."""

    live = []
    started = 0

    def __init__(self, argv, logfile, env=None, netns=None, cpu=None, stdout=None):
        # One log per start: readiness checks must never see an earlier instance's lines.
        Proc.started += 1
        logfile = Path(logfile)
        logfile = logfile.with_name(f"{logfile.stem}-{Proc.started}{logfile.suffix}")
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + list(argv)
        if netns is not None:
            argv = ["ip", "netns", "exec", netns] + list(argv)
        self.argv = [str(a) for a in argv]
        self.logfile = Path(logfile)
        self.log = open(self.logfile, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        # ip netns exec and taskset exec the program: this pid is the server's pid.
        self.p = subprocess.Popen(self.argv, stdout=stdout or self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                                  env=full_env, start_new_session=True)
        self.pid = self.p.pid
        Proc.live.append(self)

    def alive(self):
        return self.p.poll() is None

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, grace=3.0):
        if self in Proc.live:
            Proc.live.remove(self)
        if self.p.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (forked transfer children, workers).
        for _ in range(50):
            if not group_pids(self.pid):
                break
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        try:
            self.p.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()
        if self.p.stdout:
            self.p.stdout.close()

    @classmethod
    def stop_all(cls):
        for proc in list(cls.live):
            proc.stop(grace=1.0)


# ---------------------------------------------------------------- readiness probes


def tftp_ready(host, deadline, proc=None, port=69):
    rrq = b"\x00\x01ready.txt\x00octet\x00"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return False
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            s.sendto(rrq, (host, port))
            data, addr = s.recvfrom(2048)
            if data[:2] == b"\x00\x03":
                s.sendto(b"\x00\x04" + data[2:4], addr)
                return True
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.02)
    return False


def http_ready(host, deadline, proc=None, port=80):
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            return False
        try:
            conn = http.client.HTTPConnection(host, port, timeout=0.5)
            conn.request("GET", "/ready.txt")
            if conn.getresponse().status == 200:
                conn.close()
                return True
            conn.close()
        except OSError:
            pass
        time.sleep(0.02)
    return False


def log_ready(proc, pattern, deadline):
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        if rx.search(proc.log_text()):
            return True
        if not proc.alive():
            return False
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- the suite


class Suite:
    def __init__(self, args):
        self.args = args
        self.tag = f"pxb{os.getpid() % 100000}"
        self.ns_main = f"{self.tag}-main"
        self.namespaces = []
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.tag}-", dir="/dev/shm"))
        os.chmod(self.work, 0o755)
        self.disk = Path(tempfile.mkdtemp(prefix=f"{self.tag}-state-", dir="/var/tmp"))
        self.root = self.work / "root"
        self.out = self.work / "out"
        self.logs = self.work / "logs"
        for d in (self.root, self.out, self.logs):
            d.mkdir()
            os.chmod(d, 0o755)
        self.files = {}
        self.results = {}  # case id -> {server: [values]}
        self.failures = {}  # case id -> {server: [reasons]}
        self.loads = {}  # case id -> [load1]
        self.notes = {}  # case id -> [text]
        self.started = datetime.datetime.now().astimezone()
        self.load_start = os.getloadavg()

    # ---- setup and teardown

    def add_netns(self, name):
        sh(["ip", "netns", "add", name])
        self.namespaces.append(name)
        sh(["ip", "-n", name, "link", "set", "lo", "up"])

    def cleanup(self):
        Proc.stop_all()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.namespaces.clear()
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.disk, ignore_errors=True)

    def make_files(self):
        a = self.args
        sizes = {
            "single.bin": a.tftp_mib * MIB,
            "multi.bin": a.multi_mib * MIB,
            "relay.bin": a.relay_mib * MIB,
            "window.bin": a.window_mib * MIB,
            "http.bin": a.http_mib * MIB,
        }
        (self.root / "ready.txt").write_bytes(b"ready\n")
        os.chmod(self.root / "ready.txt", 0o644)
        for name, size in sizes.items():
            path = self.root / name
            h = hashlib.sha256()
            with open(path, "wb") as f:
                left = size
                while left:
                    chunk = os.urandom(min(left, 8 * MIB))
                    h.update(chunk)
                    f.write(chunk)
                    left -= len(chunk)
            os.chmod(path, 0o644)
            self.files[name] = (size, h.hexdigest())
        log(f"files in {self.root}: " + ", ".join(f"{n} {s / MIB:g} MiB" for n, s in sizes.items()))

    # ---- recording

    def record(self, case, server, value):
        self.results.setdefault(case, {}).setdefault(server, []).append(value)

    def fail(self, case, server, reason):
        log(f"  FAIL {case} {server}: {reason}")
        self.failures.setdefault(case, {}).setdefault(server, []).append(reason)

    def note_load(self, case):
        self.loads.setdefault(case, []).append(load1())

    def note(self, case, text):
        self.notes.setdefault(case, [])
        if text not in self.notes[case]:
            self.notes[case].append(text)

    def check_file(self, path, name):
        size, digest = self.files[name]
        try:
            if path.stat().st_size != size:
                return f"{path.name}: {path.stat().st_size} bytes, expected {size}"
        except OSError as e:
            return f"{path.name}: {e}"
        if sha256_file(path) != digest:
            return f"{path.name}: content differs"
        return None

    # ---- servers

    def portapxe(self, name, iface="lo", mode="off", netns=None, cpu=None, extra=()):
        argv = [self.args.bin, "serve", "--mode", mode, "--interface", iface, "--root", self.root,
                "--tftp-port", "69", "--http-port", "80", *extra]
        return Proc(argv, self.logs / f"{name}.log", netns=netns, cpu=cpu)

    def tftp_server(self, server, host="127.0.0.1", netns=None, cpu=None):
        log_base = self.logs / f"tftp-{server}.log"
        if server == "portapxe":
            iface = "lo" if netns is None else "pxbr1"
            proc = self.portapxe("portapxe-tftp", iface=iface, netns=netns, cpu=cpu)
        elif server == "tftpd-hpa":
            proc = Proc(["in.tftpd", "-L", "-4", "-u", "nobody", "-s", self.root], log_base,
                        netns=netns, cpu=cpu)
        elif server == "atftpd":
            proc = Proc([self.args.atftpd, "--daemon", "--no-fork", "--port", "69", "--bind-address", host,
                         "--logfile", "-", "--user", "nobody", "--group", "nogroup", "--maxthread", "200",
                         self.root], log_base, netns=netns, cpu=cpu)
        elif server == "dnsmasq":
            proc = Proc(["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
                         "--port=0", "--user=nobody", "--pid-file=", f"--listen-address={host}",
                         "--bind-interfaces", "--enable-tftp", f"--tftp-root={self.root}", "--tftp-max=200"],
                        log_base, netns=netns, cpu=cpu)
        else:
            raise ValueError(server)
        if netns is None:
            ok = tftp_ready(host, time.monotonic() + 10, proc)
        else:
            ok = self.remote_tftp_ready(netns_client=self.ns_rcli, host=host)
        if not ok:
            text = proc.log_text()[-800:]
            proc.stop()
            raise RuntimeError(f"{server} did not start serving TFTP: {text}")
        return proc

    def remote_tftp_ready(self, netns_client, host):
        code = ("import socket,time,sys\n"
                "d=time.monotonic()+10\n"
                "while time.monotonic()<d:\n"
                " s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(0.3)\n"
                " try:\n"
                f"  s.sendto(b'\\x00\\x01ready.txt\\x00octet\\x00',('{host}',69));b,a=s.recvfrom(2048)\n"
                "  if b[:2]==b'\\x00\\x03': s.sendto(b'\\x00\\x04'+b[2:4],a); sys.exit(0)\n"
                " except OSError: pass\n"
                " time.sleep(0.05)\n"
                "sys.exit(1)\n")
        res = subprocess.run(["ip", "netns", "exec", netns_client, sys.executable, "-c", code],
                             capture_output=True, timeout=20)
        return res.returncode == 0

    def http_server(self, server):
        if server == "portapxe":
            proc = self.portapxe("portapxe-http")
        elif server == "nginx":
            self.nginx_conf()
            proc = self.nginx_proc("nginx")
        else:
            raise ValueError(server)
        if not http_ready("127.0.0.1", time.monotonic() + 10, proc):
            text = proc.log_text()[-800:]
            proc.stop()
            raise RuntimeError(f"{server} did not start serving HTTP: {text}")
        return proc

    # ---- TFTP clients

    def tftp_get(self, client, blksize, window, name, dest, host="127.0.0.1", netns=None, cpu=None, timeout=300):
        if client == "curl":
            argv = ["curl", "-sS", "--max-time", str(timeout), "-o", dest]
            if blksize != 512:
                argv += ["--tftp-blksize", str(blksize)]
            argv.append(f"tftp://{host}/{name}")
        else:
            argv = ["atftp", "--option", f"blksize {blksize}"]
            if window > 1:
                argv += ["--option", f"windowsize {window}"]
            argv += ["--get", "-r", name, "-l", dest, host, "69"]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        if netns is not None:
            argv = ["ip", "netns", "exec", netns] + argv
        return [str(a) for a in argv]

    # ================================================================ (1) one client

    def tftp_single(self):
        a = self.args
        servers = ["portapxe", "tftpd-hpa", "atftpd", "dnsmasq"]
        win_servers = ["portapxe", "atftpd"]
        # The big-block window cases use a smaller file and a short time limit: a stalled
        # transfer waits a resend timeout per window and would otherwise run for many minutes.
        cases = [
            ("1a", "curl", 512, 1, servers, "single.bin"),
            ("1b", "curl", 1468, 1, servers, "single.bin"),
            ("1c", "curl", 65464, 1, servers, "single.bin"),
            ("1d", "atftp", 1468, 16, win_servers, "single.bin"),
            ("1e", "atftp", 1468, 64, win_servers, "single.bin"),
            ("1f", "atftp", 8192, 16, win_servers, "window.bin"),
            ("1g", "atftp", 8192, 64, win_servers, "window.bin"),
            ("1h", "atftp", 65464, 16, win_servers, "window.bin"),
            ("1i", "atftp", 65464, 64, win_servers, "window.bin"),
        ]
        for case, client, blk, win, svs, name in cases:
            if a.only_cases and case not in a.only_cases:
                continue
            size = self.files[name][0]
            limit = a.client_timeout if name == "single.bin" else a.window_timeout
            for rnd in range(a.runs):
                for server in svs:
                    self.note_load(case)
                    proc = self.tftp_server(server, cpu=0)
                    dest = self.out / "single.out"
                    dest.unlink(missing_ok=True)
                    argv = self.tftp_get(client, blk, win, name, dest, cpu=0)
                    drops0 = udp_rcvbuf_errors()
                    dt, pause, err = run_watching(argv, dest, limit)
                    drops = udp_rcvbuf_errors() - drops0
                    proc.stop()
                    err = err or self.check_file(dest, name)
                    dest.unlink(missing_ok=True)
                    self.record(f"{case}-drops", server, drops)
                    self.record(f"{case}-pause", server, pause)
                    if err:
                        self.fail(case, server, f"{err}; {drops} datagrams dropped at a full receive buffer")
                    else:
                        self.record(case, server, size / dt / MB)
                        log(f"  {case} round {rnd + 1} {server}: {size / dt / MB:.1f} MB/s ({dt:.2f} s), "
                            f"longest pause {pause:.2f} s, {drops} receive-buffer drops")
            drops = {s: int(statistics.median(v)) for s, v in self.results.get(f"{case}-drops", {}).items()}
            if any(drops.values()):
                self.note(case, "UDP datagrams dropped at a full receive buffer per transfer (median): "
                          + ", ".join(f"{s} {d}" for s, d in drops.items()))
            pauses = {s: max(v) for s, v in self.results.get(f"{case}-pause", {}).items()}
            if any(p >= STALL_SECONDS for p in pauses.values()):
                self.note(case, f"longest pause without progress (stall ≥ {STALL_SECONDS:g} s): "
                          + ", ".join(f"{s} {p:.1f} s" for s, p in pauses.items()))

    # ================================================================ (2) emulated LAN latency

    def tftp_relay(self):
        a = self.args
        self.ns_rsrv, self.ns_rcli = f"{self.tag}-rsrv", f"{self.tag}-rcli"
        self.add_netns(self.ns_rsrv)
        self.add_netns(self.ns_rcli)
        gcc_out = self.work / "delayline"
        sh(["gcc", "-O2", "-o", gcc_out, HERE / "delayline.c"], timeout=120)

        def start_line(one_way_us):
            line = Proc([gcc_out, self.ns_rcli, "pxbr0", self.ns_rsrv, "pxbr1", one_way_us, 3600],
                        self.logs / "delayline.log", stdout=subprocess.PIPE)
            if line.p.stdout.readline().strip() != b"ready":
                raise RuntimeError("delayline did not start: " + line.log_text())
            sh(["ip", "-n", self.ns_rcli, "addr", "add", "10.98.0.2/24", "dev", "pxbr0"])
            sh(["ip", "-n", self.ns_rsrv, "addr", "add", "10.98.0.1/24", "dev", "pxbr1"])
            sh(["ip", "-n", self.ns_rcli, "link", "set", "pxbr0", "up"])
            sh(["ip", "-n", self.ns_rsrv, "link", "set", "pxbr1", "up"])
            time.sleep(0.5)
            return line

        # Calibrate: the line itself and the two stacks already cost some round trip;
        # add only what is missing to reach --rtt-us.
        # Delays are not simply additive (the line's own wake-up overlaps the hold time),
        # so adjust a few times until the measured round trip is within 10 % of the target.
        line = start_line(0)
        base = rtt = self.measure_rtt()
        one_way_us = 0
        for _ in range(4):
            if abs(rtt * 1e6 - a.rtt_us) <= 0.1 * a.rtt_us or rtt * 1e6 > a.rtt_us and one_way_us == 0:
                break
            one_way_us = max(0, int(one_way_us + (a.rtt_us - rtt * 1e6) / 2))
            line.stop()
            line = start_line(one_way_us)
            rtt = self.measure_rtt()
        self.measured_rtt, self.base_rtt, self.one_way_us = rtt, base, one_way_us
        log(f"  delay line: {base * 1e3:.3f} ms round trip without delay; {one_way_us} us added each way; "
            f"{rtt * 1e3:.3f} ms measured (UDP echo, median of 200)")
        size = self.files["relay.bin"][0]
        try:
            for case, win, svs in (("2a", 1, ["portapxe", "atftpd"]), ("2b", 64, ["portapxe", "atftpd"])):
                for rnd in range(a.runs):
                    for server in svs:
                        self.note_load(case)
                        proc = self.tftp_server(server, host="10.98.0.1", netns=self.ns_rsrv)
                        dest = self.out / "relay.out"
                        dest.unlink(missing_ok=True)
                        argv = self.tftp_get("atftp", 1468, win, "relay.bin", dest, host="10.98.0.1",
                                             netns=self.ns_rcli)
                        t0 = time.perf_counter()
                        try:
                            res = subprocess.run(argv, capture_output=True, text=True, timeout=a.client_timeout)
                            dt = time.perf_counter() - t0
                            err = None if res.returncode == 0 else f"exit {res.returncode}: {res.stderr[:200]}"
                        except subprocess.TimeoutExpired:
                            dt, err = None, f"no end after {a.client_timeout} s"
                        proc.stop()
                        err = err or self.check_file(dest, "relay.bin")
                        dest.unlink(missing_ok=True)
                        if err:
                            self.fail(case, server, err)
                        else:
                            self.record(case, server, size / dt / MB)
                            log(f"  {case} round {rnd + 1} {server}: {size / dt / MB:.2f} MB/s ({dt:.2f} s)")
        finally:
            line.stop()
            stats = line.log_text().strip().splitlines()
            if stats:
                log("  " + stats[-1])

    def measure_rtt(self):
        """Median UDP echo round trip through the delay line (200 probes)."""
        server_code = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('10.98.0.1',7))\n"
                       "s.settimeout(10)\n"
                       "try:\n"
                       " while True:\n  b,a=s.recvfrom(64)\n  s.sendto(b,a)\n"
                       "except OSError: pass\n")
        echo = Proc([sys.executable, "-c", server_code], self.logs / "echo.log", netns=self.ns_rsrv)
        time.sleep(0.3)
        client_code = ("import socket,time,statistics\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                       "s.settimeout(1)\nr=[]\n"
                       "for i in range(200):\n t=time.perf_counter();s.sendto(b'x',('10.98.0.1',7))\n"
                       " try:\n  s.recvfrom(64);r.append(time.perf_counter()-t)\n except OSError: pass\n"
                       " time.sleep(0.002)\n"
                       "print(statistics.median(r) if r else -1)\n")
        res = subprocess.run(["ip", "netns", "exec", self.ns_rcli, sys.executable, "-c", client_code],
                             capture_output=True, text=True, timeout=60)
        echo.stop()
        try:
            return float(res.stdout.strip())
        except ValueError:
            return -1.0

    # ================================================================ (3) 40 clients

    def tftp_multi(self):
        a = self.args
        servers = ["portapxe", "tftpd-hpa", "atftpd", "dnsmasq"]
        n = a.clients
        for rnd in range(a.runs):
            for server in servers:
                self.note_load("3a")
                proc = self.tftp_server(server)
                dests = [self.out / f"multi{i}.out" for i in range(n)]
                for d in dests:
                    d.unlink(missing_ok=True)
                cpu0 = proc_cpu_seconds(proc.pid)
                clients_cpu0 = children_cpu_seconds()
                t0 = time.perf_counter()
                clients = [subprocess.Popen(self.tftp_get("curl", 1468, 1, "multi.bin", d), stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE) for d in dests]
                errs = []
                deadline = time.monotonic() + a.client_timeout
                for c in clients:
                    try:
                        c.wait(max(0.1, deadline - time.monotonic()))
                        if c.returncode != 0:
                            errs.append(f"client exit {c.returncode}: {c.stderr.read().decode()[:120]}")
                    except subprocess.TimeoutExpired:
                        c.kill()
                        c.wait()
                        errs.append(f"client not done after {a.client_timeout} s")
                dt = time.perf_counter() - t0
                clients_cpu = children_cpu_seconds() - clients_cpu0
                cpu1 = proc_cpu_seconds(proc.pid)
                # tftpd-hpa serves each transfer in a forked process that it has not
                # reaped by then, so its CPU time cannot be read off the server.
                server_cpu = (cpu1 - cpu0 if cpu0 is not None and cpu1 is not None and server != "tftpd-hpa"
                              else None)
                for c in clients:
                    c.stderr.close()
                hwm = proc_status(proc.pid, "VmHWM") if server in ("portapxe", "atftpd", "dnsmasq") else None
                proc.stop()
                bad = [e for d in dests if (e := self.check_file(d, "multi.bin"))]
                for d in dests:
                    d.unlink(missing_ok=True)
                if errs or bad:
                    self.fail("3a", server, f"{len(errs)} client errors, {len(bad)} files wrong: "
                                            + "; ".join((errs + bad)[:3]))
                    continue
                self.record("3a", server, dt)
                if hwm is not None:
                    self.record("3b", server, hwm / MB)
                if server_cpu is not None:
                    self.record("3c", server, server_cpu)
                self.record("3d", server, clients_cpu)
                log(f"  3a round {rnd + 1} {server}: {n} clients in {dt:.2f} s, all byte-exact"
                    + (f", server VmHWM {hwm / MB:.1f} MB" if hwm else "")
                    + (f", server CPU {server_cpu:.2f} s" if server_cpu is not None else "")
                    + f", clients' CPU {clients_cpu:.2f} s")

    # ================================================================ (4) HTTP

    def http(self):
        a = self.args
        servers = ["portapxe", "nginx"]
        size = self.files["http.bin"][0]
        for server in servers:
            proc = self.http_server(server)
            try:
                problems = self.check_ranges()
            finally:
                proc.stop()
            if problems:
                self.fail("4c", server, "; ".join(problems))
            else:
                self.record("4c", server, 1.0)
                log(f"  4c {server}: Range requests all right")
        curl = ["curl", "-sS", "-o", "/dev/null", "--max-time", str(a.client_timeout),
                "-w", "%{http_code} %{size_download}", "http://127.0.0.1/http.bin"]
        for rnd in range(a.runs):
            for server in servers:
                self.note_load("4a")
                proc = self.http_server(server)
                t0 = time.perf_counter()
                res = subprocess.run(curl, capture_output=True, text=True, timeout=a.client_timeout + 10)
                dt = time.perf_counter() - t0
                if res.stdout.strip() != f"200 {size}":
                    self.fail("4a", server, f"curl: {res.stdout.strip()} {res.stderr.strip()[:200]}")
                else:
                    self.record("4a", server, size / dt / MB)
                    log(f"  4a round {rnd + 1} {server}: {size / dt / MB:.0f} MB/s")
                proc.stop()
            for server in servers:
                self.note_load("4b")
                proc = self.http_server(server)
                t0 = time.perf_counter()
                # Each client from its own loopback address, as 40 machines would be:
                # PortaPXE admits 16 connections per client address (http/admission).
                clients = [subprocess.Popen(curl[:1] + ["--interface", f"127.0.{i // 250}.{i % 250 + 2}"] + curl[1:],
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                           for i in range(a.clients)]
                outs = []
                for c in clients:
                    try:
                        out, err = c.communicate(timeout=a.client_timeout + 10)
                        outs.append(out.strip())
                    except subprocess.TimeoutExpired:
                        c.kill()
                        c.communicate()
                        outs.append("timeout")
                dt = time.perf_counter() - t0
                hwm = proc_status(proc.pid, "VmHWM") if server == "portapxe" else None
                proc.stop()
                bad = [o for o in outs if o != f"200 {size}"]
                if bad:
                    self.fail("4b", server, f"{len(bad)} of {a.clients} transfers wrong: {bad[:3]}")
                else:
                    self.record("4b", server, a.clients * size / dt / MB)
                    log(f"  4b round {rnd + 1} {server}: {a.clients} clients {a.clients * size / dt / MB:.0f} MB/s "
                        f"total ({dt:.2f} s)" + (f", VmHWM {hwm / MB:.1f} MB" if hwm else ""))

    def check_ranges(self):
        path = self.root / "http.bin"
        size = path.stat().st_size
        data = path.read_bytes()
        problems = []
        cases = [("bytes=0-0", 0, 1), ("bytes=1000-1999", 1000, 2000), ("bytes=-4096", size - 4096, size),
                 (f"bytes={size - 10000}-", size - 10000, size),
                 (f"bytes={size // 2}-{size // 2 + MIB - 1}", size // 2, size // 2 + MIB)]
        for header, start, end in cases:
            conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
            conn.request("GET", "/http.bin", headers={"Range": header})
            r = conn.getresponse()
            body = r.read()
            want_cr = f"bytes {start}-{end - 1}/{size}"
            if r.status != 206:
                problems.append(f"{header}: status {r.status}")
            elif r.getheader("Content-Range") != want_cr:
                problems.append(f"{header}: Content-Range {r.getheader('Content-Range')!r}, want {want_cr!r}")
            elif body != data[start:end]:
                problems.append(f"{header}: {len(body)} bytes, not bytes {start}-{end - 1} of the file")
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
        conn.request("GET", "/http.bin", headers={"Range": f"bytes={size + 10}-"})
        r = conn.getresponse()
        r.read()
        if r.status != 416:
            problems.append(f"range past the end: status {r.status}, want 416")
        conn.close()
        return problems

    # ================================================================ (5) DHCP

    def dhcp(self):
        a = self.args
        self.ns_dsrv, self.ns_dcli = f"{self.tag}-dsrv", f"{self.tag}-dcli"
        self.add_netns(self.ns_dsrv)
        self.add_netns(self.ns_dcli)
        sh(["ip", "-n", self.ns_dsrv, "link", "add", "pxbs0", "type", "veth", "peer", "name", "pxbc0",
            "netns", self.ns_dcli])
        sh(["ip", "-n", self.ns_dsrv, "addr", "add", "10.77.0.1/16", "dev", "pxbs0"])
        sh(["ip", "-n", self.ns_dcli, "addr", "add", "10.77.0.2/16", "dev", "pxbc0"])
        sh(["ip", "-n", self.ns_dsrv, "link", "set", "pxbs0", "up"])
        sh(["ip", "-n", self.ns_dcli, "link", "set", "pxbc0", "up"])
        time.sleep(0.5)
        servers = ["portapxe", "kea", "dnsmasq"]
        for rnd in range(a.runs):
            for server in servers:
                # Rate: perfdhcp as a relay, every client new (a /16 pool, so no exhaustion).
                self.note_load("5a")
                proc = self.dhcp_server(server)
                cmd = ["ip", "netns", "exec", self.ns_dcli, "perfdhcp", "-4", "-l", "10.77.0.2", "-r",
                       str(a.dhcp_rate), "-R", "65000", "-p", str(a.dhcp_seconds), "10.77.0.1"]
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=a.dhcp_seconds + 60)
                proc.stop()
                stats = parse_perfdhcp(res.stdout)
                if stats is None:
                    self.fail("5a", server, f"perfdhcp: {res.stdout[-300:]} {res.stderr[-300:]}")
                else:
                    self.record("5a", server, stats["rate"])
                    self.record("5b", server, stats["drops_pct"])
                    log(f"  5a round {rnd + 1} {server}: {stats['rate']:.0f} DORA/s, "
                        f"{stats['drops_pct']:.1f} % of DISCOVERs without an ACK (offered {a.dhcp_rate}/s)")
                # Avalanche: 40 PXE clients at once, broadcast, fresh server.
                self.note_load("5c")
                proc = self.dhcp_server(server)
                cmd = ["ip", "netns", "exec", self.ns_dcli, sys.executable, HERE / "dhcpburst.py",
                       "--iface", "pxbc0", "--count", str(a.clients), "--timeout", "10"]
                res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
                proc.stop()
                try:
                    burst = json.loads(res.stdout)
                except ValueError:
                    burst = None
                if not burst or burst["all_bound_s"] is None:
                    self.fail("5c", server, f"dhcpburst: {res.stdout.strip()} {res.stderr.strip()[-300:]}")
                else:
                    self.record("5c", server, burst["all_bound_s"])
                    if burst["resends"]:
                        self.note("5c", f"{server}: {burst['resends']} resends in a round")
                    log(f"  5c round {rnd + 1} {server}: {a.clients} clients bound in "
                        f"{burst['all_bound_s'] * 1e3:.0f} ms (resends {burst['resends']})")

    def dhcp_server(self, server):
        state = self.disk / f"{server}-{time.monotonic_ns()}"
        state.mkdir()
        deadline = time.monotonic() + 15
        if server == "portapxe":
            proc = self.portapxe("portapxe-dhcp", iface="pxbs0", mode="dhcp", netns=self.ns_dsrv,
                                 extra=["--pool", "10.77.1.1-10.77.255.254", "--state-dir", state])
            ok = log_ready(proc, r"DHCP serving pool", deadline)
        elif server == "kea":
            conf = state / "kea.json"
            conf.write_text(json.dumps({"Dhcp4": {
                "interfaces-config": {"interfaces": ["pxbs0"], "dhcp-socket-type": "raw"},
                "lease-database": {"type": "memfile", "persist": True, "name": str(state / "kea-leases.csv"),
                                   "lfc-interval": 0},
                "valid-lifetime": 3600,
                "subnet4": [{"id": 1, "subnet": "10.77.0.0/16", "pools": [{"pool": "10.77.1.1 - 10.77.255.254"}]}],
                "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
            }}))
            proc = Proc(["kea-dhcp4", "-c", conf], self.logs / "kea.log", netns=self.ns_dsrv,
                        env={"KEA_LOCKFILE_DIR": str(state), "KEA_PIDFILE_DIR": str(state)})
            ok = log_ready(proc, r"DHCP4_STARTED", deadline)
        elif server == "dnsmasq":
            os.chmod(state, 0o777)  # dnsmasq writes its lease file as nobody
            proc = Proc(["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--port=0",
                         "--user=nobody", "--pid-file=", "--interface=pxbs0", "--bind-interfaces",
                         "--dhcp-range=10.77.1.1,10.77.255.254,255.255.0.0,1h", "--dhcp-lease-max=70000",
                         "--no-ping", f"--dhcp-leasefile={state / 'dnsmasq.leases'}", "--quiet-dhcp"],
                        self.logs / "dnsmasq-dhcp.log", netns=self.ns_dsrv)
            ok = log_ready(proc, r"DHCP, IP range", deadline)
        else:
            raise ValueError(server)
        if not ok:
            text = proc.log_text()[-800:]
            proc.stop()
            raise RuntimeError(f"{server} did not start DHCP: {text}")
        time.sleep(0.2)
        return proc

    # ================================================================ (6) start-up and idle

    def startup(self):
        a = self.args
        specs = {
            "portapxe": ({69}, {80}),
            "dnsmasq": ({69}, set()),
            "tftpd-hpa": ({69}, set()),
            "atftpd": ({69}, set()),
            "nginx": (set(), {80}),
        }
        for rnd in range(a.runs):
            for server, (udp_want, tcp_want) in specs.items():
                udp, tcp = bound_ports()
                if udp & udp_want or tcp & tcp_want:
                    raise RuntimeError(f"ports still bound before starting {server}: {udp} {tcp}")
                self.note_load("6a")
                if server == "nginx":
                    self.nginx_conf()
                t0 = time.perf_counter()
                if server == "portapxe":
                    proc = self.portapxe("portapxe-startup")
                elif server == "nginx":
                    proc = self.nginx_proc("startup-nginx")
                else:
                    proc = self.tftp_server_nowait(server)
                bound = None
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    udp, tcp = bound_ports()
                    if udp_want <= udp and tcp_want <= tcp:
                        bound = time.perf_counter() - t0
                        break
                    time.sleep(0.0005)
                time.sleep(a.idle_seconds)
                rss = group_rss(proc.pid)
                proc.stop()
                if bound is None:
                    self.fail("6a", server, "ports not bound within 10 s")
                    continue
                self.record("6a", server, bound * 1e3)
                self.record("6b", server, rss / MB)
                log(f"  6 round {rnd + 1} {server}: bound after {bound * 1e3:.1f} ms, "
                    f"RSS {rss / MB:.1f} MB after {a.idle_seconds} s idle")

    def tftp_server_nowait(self, server):
        log_base = self.logs / f"startup-{server}.log"
        host = "127.0.0.1"
        if server == "tftpd-hpa":
            return Proc(["in.tftpd", "-L", "-4", "-u", "nobody", "-s", self.root], log_base)
        if server == "atftpd":
            return Proc([self.args.atftpd, "--daemon", "--no-fork", "--port", "69", "--bind-address", host,
                         "--logfile", "-", "--user", "nobody", "--group", "nogroup", self.root], log_base)
        if server == "dnsmasq":
            return Proc(["dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--port=0",
                         "--user=nobody", "--pid-file=", f"--listen-address={host}", "--bind-interfaces",
                         "--enable-tftp", f"--tftp-root={self.root}"], log_base)
        raise ValueError(server)

    def nginx_conf(self):
        conf_dir = self.work / "nginx"
        conf_dir.mkdir(exist_ok=True)
        temp = {k: conf_dir / k for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        (conf_dir / "nginx.conf").write_text(f"""
daemon off;
master_process on;
worker_processes auto;
user nobody nogroup;
pid {conf_dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path {temp['body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  server {{ listen 127.0.0.1:80; root {self.root}; }}
}}
""")

    def nginx_proc(self, name):
        conf_dir = self.work / "nginx"
        return Proc(["nginx", "-p", conf_dir, "-c", conf_dir / "nginx.conf", "-e", "stderr"], self.logs / f"{name}.log")

    # ================================================================ report

    def machine(self):
        def first_line(cmd):
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
                return (r.stdout + r.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return "?"

        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) * 1024
        os_name = "?"
        try:
            for line in Path("/etc/os-release").read_text().splitlines():
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip('"')
        except OSError:
            pass
        return {
            "date": self.started.strftime("%Y-%m-%d %H:%M %Z"),
            "machine": f"{os_name}, kernel {platform.release()}, {os.cpu_count()} vCPU ({cpu}), "
                       f"{mem / 2**30:.0f} GiB RAM",
            "portapxe": f"{first_line([self.args.bin, '--version'])} ({self.args.provenance})",
            "peers": "; ".join([
                first_line(["in.tftpd", "-V"]), first_line([self.args.atftpd, "-V"]),
                first_line(["dnsmasq", "-v"]), first_line(["nginx", "-v"]),
                "kea-dhcp4 " + first_line(["kea-dhcp4", "-v"]),
            ]),
            "clients": "; ".join([first_line(["curl", "-V"]).split(" (")[0], first_line(["atftp", "-V"]),
                                  "perfdhcp " + first_line(["perfdhcp", "-v"]).replace("VERSION: ", "")]),
        }

    def table(self):
        a = self.args
        peer_cols = ["tftpd-hpa", "atftpd", "dnsmasq", "nginx", "kea"]
        spec = case_specs(a, getattr(self, "measured_rtt", None))
        rows = []
        verdicts = []
        for case, label, unit, better, target in spec:
            if case not in self.results and case not in self.failures and case not in DERIVED:
                continue
            vals = self.results.get(case, {})
            fails = self.failures.get(case, {})
            if case in DERIVED:
                vals = DERIVED[case](self.results)
                if not vals:
                    continue

            def cell(server):
                v = vals.get(server)
                f = fails.get(server)
                if not v and not f:
                    return "—"
                text = fmt_stats(v, unit) if v else ""
                if f:
                    text += f" FAIL×{len(f)}"
                return text.strip()

            pp = vals.get("portapxe")
            peers = {s: statistics.median(v) for s, v in vals.items() if s != "portapxe" and v}
            ratio_text, ratio, verdict = "—", None, ""
            if pp and peers and better in ("high", "low") and case not in SELF_ONLY:
                best_name = max(peers, key=peers.get) if better == "high" else min(peers, key=peers.get)
                if peers[best_name]:
                    ratio = statistics.median(pp) / peers[best_name]
                    ratio_text = f"{ratio:.2f} (vs {best_name})"
            if pp:
                verdict = judge(target, ratio=ratio, value=statistics.median(pp), values=pp)
            if target and target[0] == "nostall":
                pauses = self.results.get(f"{case}-pause", {}).get("portapxe", [])
                if pauses:
                    worst = max(pauses)
                    verdict = "met" if worst < STALL_SECONDS else f"MISS (stalled {worst:.1f} s)"
            if fails.get("portapxe"):
                verdict = "MISS (failed runs)"
            load = self.loads.get(case) or self.loads.get(case[:-1] + "a") or []
            load_text = f"{statistics.median(load):.1f}" if load else ""
            rows.append([case, label, unit, cell("portapxe")] + [cell(s) for s in peer_cols]
                        + [ratio_text, target_text(target), verdict, load_text])
            verdicts.append((case, label, verdict))
        header = ["#", "case", "unit", "PortaPXE"] + peer_cols + ["PortaPXE / best peer", "target", "met?", "load1"]
        # Drop peer columns nobody filled.
        keep = [i for i, h in enumerate(header) if h not in peer_cols or any(r[i] != "—" for r in rows)]
        header = [header[i] for i in keep]
        rows = [[r[i] for i in keep] for r in rows]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines), verdicts

    def report(self):
        a = self.args
        m = self.machine_info
        table, verdicts = self.table()
        end_load = os.getloadavg()
        out = [
            f"### Run of {m['date']}",
            "",
            f"- Command: `{' '.join(sys.argv_display)}`",
            f"- Machine: {m['machine']}",
            f"- PortaPXE: {m['portapxe']}",
            f"- Peers: {m['peers']}",
            f"- Clients: {m['clients']}",
            f"- Load average (1/5/15 min) at start {fmt_load(self.load_start)}, at end {fmt_load(end_load)}; "
            "the load1 column is the median of the 1-minute load taken before each measurement of that case.",
            f"- Rounds: {a.runs}; every cell is the median (min–max) over the rounds. Sizes: single-client TFTP "
            f"{a.tftp_mib} MiB (window cases with 8192/65464 blocks {a.window_mib} MiB, "
            f"stalled after {a.window_timeout} s), latency TFTP {a.relay_mib} MiB, {a.clients} clients × {a.multi_mib} MiB, "
            f"HTTP {a.http_mib} MiB; DHCP offered {a.dhcp_rate}/s for {a.dhcp_seconds} s.",
        ]
        if getattr(self, "measured_rtt", None):
            out.append(f"- Delay line (bench/delayline.c, two namespaces joined by taps): {self.base_rtt * 1e3:.3f} ms "
                       f"UDP round trip with no delay, {self.one_way_us} µs added each way for a {a.rtt_us} µs "
                       f"target; measured {self.measured_rtt * 1e3:.3f} ms (median of 200 UDP echoes).")
        out += ["", table, ""]
        for case, notes in self.notes.items():
            for n in notes:
                out.append(f"- {case}: {n}")
        for case, by_server in self.failures.items():
            for server, reasons in by_server.items():
                out.append(f"- {case} {server} failed {len(reasons)}×: {reasons[0]}")
        return "\n".join(out) + "\n", verdicts


# ---------------------------------------------------------------- table helpers

# (case, label, unit, better, target). target: (kind, threshold) or None.
def case_specs(a, rtt):
    rtt_text = f"~{a.rtt_us / 1000:g} ms RTT" if rtt is None else f"{rtt * 1e3:.2f} ms RTT"
    return [
        ("1a", f"TFTP 1 client, blksize 512 (curl), pinned", "MB/s", "high", ("ratio>=", 1.0)),
        ("1b", f"TFTP 1 client, blksize 1468 (curl), pinned", "MB/s", "high", ("ratio>=", 1.0)),
        ("1c", f"TFTP 1 client, blksize 65464 (curl), pinned", "MB/s", "high", ("ratio>=", 1.0)),
        ("1d", "TFTP 1 client, 1468 × window 16 (atftp), pinned", "MB/s", "high", ("ratio>=", 1.0)),
        ("1e", "TFTP 1 client, 1468 × window 64 (atftp), pinned", "MB/s", "high", ("ratio>=", 1.0)),
        ("1f", "TFTP 1 client, 8192 × window 16 (atftp), pinned", "MB/s", "high", ("nostall", None)),
        ("1g", "TFTP 1 client, 8192 × window 64 (atftp), pinned", "MB/s", "high", ("nostall", None)),
        ("1h", "TFTP 1 client, 65464 × window 16 (atftp), pinned", "MB/s", "high", ("nostall", None)),
        ("1i", "TFTP 1 client, 65464 × window 64 (atftp), pinned", "MB/s", "high", ("nostall", None)),
        ("2a", f"TFTP over {rtt_text}, 1468 × window 1 (atftp)", "MB/s", "high", None),
        ("2b", f"TFTP over {rtt_text}, 1468 × window 64 (atftp)", "MB/s", "high", None),
        ("2c", "speed-up window 64 / window 1 over that RTT", "×", "high", ("value>=", 20.0)),
        ("3a", f"TFTP {a.clients} clients × {a.multi_mib} MiB at once, blksize 1468 (curl), byte-exact",
         "s wall", "low", ("ratio<=", 0.9)),
        ("3b", f"server peak RSS (VmHWM) during 3a", "MB", "low", ("value<=", 20.0)),
        ("3c", "server CPU time (user + system) during 3a", "s", "low", None),
        ("3d", f"the {a.clients} curl clients' CPU time during 3a", "s", "low", None),
        ("4a", f"HTTP 1 client, {a.http_mib} MiB (curl)", "MB/s", "high", ("ratio>=", 0.8)),
        ("4b", f"HTTP {a.clients} clients × {a.http_mib} MiB at once (total)", "MB/s", "high", ("ratio>=", 0.8)),
        ("4c", "HTTP Range requests: 206, Content-Range and bytes right; 416 past the end", "pass", "none",
         ("pass", None)),
        ("5a", f"DHCP DORA rate, perfdhcp relay, new clients, /16 pool", "DORA/s", "high", None),
        ("5b", f"DHCP DISCOVERs without an ACK at {a.dhcp_rate}/s offered", "%", "low", None),
        ("5c", f"DHCP avalanche: {a.clients} PXE clients (broadcast) until all bound", "s", "low",
         ("value<=", 0.25)),
        ("6a", "headless start: launch until TFTP (and HTTP) ports are bound", "ms", "low", None),
        ("6b", f"idle RSS {a.idle_seconds} s after start (process group)", "MB", "low", None),
    ]


def _speedup(results):
    w1, w64 = results.get("2a", {}), results.get("2b", {})
    out = {}
    for server in w1:
        if w1.get(server) and w64.get(server):
            out[server] = [statistics.median(w64[server]) / statistics.median(w1[server])]
    return out


DERIVED = {"2c": _speedup}
SELF_ONLY = {"2c", "3b", "3d", "4c", "5b"}


def fmt_num(v):
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_stats(values, unit):
    if unit == "pass":
        return "pass"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt_num(med)
    return f"{fmt_num(med)} ({fmt_num(min(values))}–{fmt_num(max(values))})"


def fmt_load(triple):
    return "/".join(f"{x:.2f}" for x in triple)


def target_text(target):
    if target is None:
        return "—"
    kind, thr = target
    thr = thr if thr is not None else 0
    return {"ratio>=": f"≥ {thr:g}× best peer", "ratio<=": f"≤ {thr:g}× best peer", "value>=": f"≥ {thr:g}",
            "value<=": f"≤ {thr:g}", "nostall": "no stall", "pass": "pass"}[kind]


def judge(target, ratio=None, value=None, values=None):
    if target is None:
        return ""
    kind, thr = target
    if kind.startswith("ratio") and ratio is None:
        return ""
    if kind == "ratio>=":
        return "met" if ratio >= thr else "MISS"
    if kind == "ratio<=":
        return "met" if ratio <= thr else "MISS"
    if kind == "value>=":
        return "met" if value >= thr else "MISS"
    if kind == "value<=":
        return "met" if value <= thr else "MISS"
    if kind == "pass":
        return "met"
    if kind == "nostall":
        # Decided in table() from the longest pauses.
        return ""
    return ""


def parse_perfdhcp(text):
    rate = re.search(r"Rate: ([\d.]+) 4-way exchanges/second", text)
    sent = re.findall(r"sent packets: (\d+)", text)
    recv = re.findall(r"received packets: (\d+)", text)
    if not rate or len(sent) < 2 or len(recv) < 2:
        return None
    discovers, acks = int(sent[0]), int(recv[1])
    return {"rate": float(rate.group(1)), "drops_pct": 100.0 * (1 - acks / discovers) if discovers else 100.0}


# ---------------------------------------------------------------- main

GROUPS = ["tftp1", "relay", "multi", "http", "dhcp", "startup"]


def parse_args():
    ap = argparse.ArgumentParser(description="PortaPXE benchmarks against tftpd-hpa, atftpd, dnsmasq, nginx, Kea.")
    ap.add_argument("--bin", help="portapxe binary (default: build target/release/portapxe with cargo)")
    ap.add_argument("--atftpd", default=str(ATFTPD_CACHE / "usr/sbin/atftpd"))
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups: {','.join(GROUPS)}")
    ap.add_argument("--cases", default="", help="only these single-client cases, e.g. 1a,1e")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes and 1 round, to try the suite out")
    ap.add_argument("--tftp-mib", type=int, default=64)
    ap.add_argument("--relay-mib", type=int, default=16)
    ap.add_argument("--window-mib", type=int, default=8, help="file for the big-block window cases 1f-1i")
    ap.add_argument("--window-timeout", type=int, default=20, help="seconds before 1f-1i count as stalled")
    ap.add_argument("--multi-mib", type=int, default=20)
    ap.add_argument("--http-mib", type=int, default=512)
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--rtt-us", type=int, default=400)
    ap.add_argument("--dhcp-rate", type=int, default=6000)
    ap.add_argument("--dhcp-seconds", type=int, default=10)
    ap.add_argument("--idle-seconds", type=float, default=2.0)
    ap.add_argument("--client-timeout", type=int, default=300)
    ap.add_argument("--max-minutes", type=int, default=90, help="give up (and clean up) after this long")
    ap.add_argument("--out", help="also write the markdown report to this file")
    a = ap.parse_args()
    if a.quick:
        a.runs = 1 if a.runs == 3 else a.runs
        a.tftp_mib, a.relay_mib, a.multi_mib, a.http_mib, a.window_mib = 8, 1, 2, 64, 2
        a.window_timeout = 20
        a.dhcp_seconds = 3
        a.idle_seconds = 1.0
    a.only = [g.strip() for g in a.only.split(",") if g.strip()]
    a.only_cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    bad = [g for g in a.only if g not in GROUPS]
    if bad:
        ap.error(f"unknown group(s) {bad}; choose from {GROUPS}")
    if not 1 <= a.runs <= 20 or not 1 <= a.clients <= 200:
        ap.error("runs must be 1..20 and clients 1..200")
    return a


def check_tools(a):
    need = {"ip": "iproute2", "taskset": "util-linux", "curl": "curl", "atftp": "atftp", "in.tftpd": "tftpd-hpa",
            "dnsmasq": "dnsmasq-base", "nginx": "nginx", "kea-dhcp4": "kea-dhcp4-server", "perfdhcp": "kea-admin",
            "gcc": "gcc"}
    missing = [pkg for tool, pkg in need.items() if shutil.which(tool) is None]
    if not Path(a.atftpd).exists():
        missing.append("atftpd (apt-get download atftpd; dpkg -x into /var/cache/portapxe-bench/atftpd)")
    if missing:
        sys.exit("missing: " + ", ".join(missing) + "\nrun once: sudo bench/install-deps.sh")


def git_state():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "engine", "app", "Cargo.lock"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return "?"
    return head + (" with uncommitted changes in engine/app" if dirty else "")


def build(a):
    if a.bin:
        a.bin = str(Path(a.bin).resolve())
        if not os.access(a.bin, os.X_OK):
            sys.exit(f"--bin {a.bin} is not an executable file")
        a.provenance = f"given with --bin {a.bin}; repository at {git_state()} when the run started"
        return
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
    log("building: cargo build --release -p portapxe")
    res = subprocess.run([cargo, "build", "--release", "-p", "portapxe"], cwd=REPO, timeout=3600)
    if res.returncode != 0:
        sys.exit("cargo build --release -p portapxe failed; fix the build or pass --bin PATH")
    a.bin = str(REPO / "target/release/portapxe")
    a.provenance = f"built by the suite with cargo build --release -p portapxe from {git_state()}"


def main():
    sys.argv_display = ["bench/run"] + sys.argv[1:]
    a = parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (network namespaces, ports 67/69/80 inside them): sudo bench/run")
    check_tools(a)
    build(a)

    def on_signal(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    def on_alarm(signum, frame):
        raise TimeoutError(f"the suite ran longer than --max-minutes {a.max_minutes}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(a.max_minutes * 60)

    suite = Suite(a)
    # Run a private copy: another build replacing target/release/portapxe mid-run must not change what is measured.
    private = suite.work / "portapxe"
    shutil.copy2(a.bin, private)
    a.bin = str(private)
    suite.machine_info = suite.machine()
    error = None
    try:
        log(f"load average {fmt_load(os.getloadavg())}; portapxe {a.bin}")
        suite.add_netns(suite.ns_main)
        enter_netns(suite.ns_main)  # this process and everything it starts: a private loopback
        suite.make_files()
        steps = [("tftp1", suite.tftp_single), ("relay", suite.tftp_relay), ("multi", suite.tftp_multi),
                 ("http", suite.http), ("dhcp", suite.dhcp), ("startup", suite.startup)]
        for group, step in steps:
            if group in a.only:
                log(f"== {group} (load {load1():.2f})")
                try:
                    step()
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                    log(f"  group {group} aborted: {e}")
                    suite.note(group, f"aborted: {e}")
                    Proc.stop_all()
    except BaseException as e:  # noqa: BLE001 - report what was measured, then say why it stopped
        error = e
    finally:
        signal.alarm(0)
        suite.cleanup()
    report, verdicts = suite.report()
    if error is not None:
        report += f"\n- The suite stopped early: {error!r}\n"
    print(report)
    if a.out:
        Path(a.out).write_text(report)
    if error is not None:
        return 2
    misses = [v for v in verdicts if v[2].startswith("MISS")]
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
