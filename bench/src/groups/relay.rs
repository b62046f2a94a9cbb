//! Group `relay` (cases 2a–2c): TFTP over an emulated LAN round trip. Two namespaces are
//! joined by `bench/delayline.c` (a user-space delay line between two taps, as the kernel
//! here has no netem), calibrated with UDP echoes until the round trip is near `--rtt-us`.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portapxe_lab::netns::in_netns;
use portapxe_lab::process::run_bounded;

use crate::clients::{TftpClient, TftpGet, exit_text, head, run_captured};
use crate::clock::log;
use crate::procs::{Launch, Proc};
use crate::records::median;
use crate::report::DelayLine;
use crate::servers::Place;
use crate::stop;
use crate::suite::{MB, Suite};

const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const ECHO_PORT: u16 = 7;
const ECHO_PROBES: usize = 200;
/// The echo server ends after this long without a probe, should the client never come.
const ECHO_IDLE: Duration = Duration::from_secs(10);

/// The delay line between the client and server namespaces.
struct Line<'a> {
    client_ns: &'a str,
    server_ns: &'a str,
    program: String,
    log: std::path::PathBuf,
}

impl Line<'_> {
    /// Start the line with `one_way_us` of delay each way and address both ends.
    fn start(&self, one_way_us: u64) -> Result<Proc> {
        let argv = [&self.program, self.client_ns, "pxbr0", self.server_ns, "pxbr1", &one_way_us.to_string(), "3600"];
        let mut line = Launch::new(&argv).pipe_stdout().start(&self.log)?;
        // It prints "ready" once both taps exist; the addresses can only be set then.
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = line.take_stdout() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let _ = tx.send(first);
                // Keep the pipe open and empty until the line ends: a write to a closed
                // pipe would kill it with SIGPIPE.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
        }
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if first.trim() != "ready" {
            bail!("delayline did not start: {}", line.log_text());
        }
        for (ns, address, tap) in [(self.client_ns, "10.98.0.2/24", "pxbr0"), (self.server_ns, "10.98.0.1/24", "pxbr1")]
        {
            portapxe_lab::process::run_ok("ip", &["-n", ns, "addr", "add", address, "dev", tap])?;
        }
        for (ns, tap) in [(self.client_ns, "pxbr0"), (self.server_ns, "pxbr1")] {
            portapxe_lab::process::run_ok("ip", &["-n", ns, "link", "set", tap, "up"])?;
        }
        stop::sleep(Duration::from_millis(500))?;
        Ok(line)
    }
}

impl Suite {
    pub fn tftp_relay(&mut self) -> Result<()> {
        let (server_ns, client_ns) = (format!("{}-rsrv", self.tag), format!("{}-rcli", self.tag));
        self.add_netns(&server_ns)?;
        self.add_netns(&client_ns)?;
        self.relay_client_ns = Some(client_ns.clone());
        let program = self.work().join("delayline").display().to_string();
        let source = concat!(env!("CARGO_MANIFEST_DIR"), "/delayline.c");
        let mut gcc = std::process::Command::new("gcc");
        gcc.args(["-O2", "-o", &program, source]);
        let built = run_bounded("gcc", &mut gcc, Duration::from_secs(120))?;
        if !built.success() {
            bail!("gcc could not build {source}: {}", built.stderr.trim());
        }
        let line = Line { client_ns: &client_ns, server_ns: &server_ns, program, log: self.logs.join("delayline.log") };

        // Calibrate: the line itself and the two stacks already cost some round trip;
        // add only what is missing to reach --rtt-us. Delays are not simply additive (the
        // line's own wake-up overlaps the hold time), so adjust a few times until the
        // measured round trip is within 10 % of the target.
        let target = self.s.rtt_us as f64;
        let mut running = line.start(0)?;
        let base = measure_rtt(&server_ns, &client_ns)?;
        let (mut rtt, mut one_way_us) = (base, 0u64);
        for _ in 0..4 {
            let close_enough = (rtt * 1e6 - target).abs() <= 0.1 * target;
            if close_enough || (rtt * 1e6 > target && one_way_us == 0) {
                break;
            }
            one_way_us = (one_way_us as f64 + (target - rtt * 1e6) / 2.0).max(0.0) as u64;
            running.stop();
            running = line.start(one_way_us)?;
            rtt = measure_rtt(&server_ns, &client_ns)?;
        }
        self.delay_line = Some(DelayLine { base_rtt: base, one_way_us, measured_rtt: rtt });
        log!(
            "  delay line: {:.3} ms round trip without delay; {one_way_us} us added each way; {:.3} ms measured \
             (UDP echo, median of {ECHO_PROBES})",
            base * 1e3,
            rtt * 1e3
        );
        let result = self.relay_cases(&server_ns, &client_ns);
        let stats = running.log_text();
        running.stop();
        if let Some(last) = stats.trim().lines().last() {
            log!("  {last}");
        }
        result
    }

    fn relay_cases(&mut self, server_ns: &str, client_ns: &str) -> Result<()> {
        let size = self.size("relay.bin");
        let place = Place { host: SERVER_IP, netns: Some(server_ns), cpu: None };
        for (case, window) in [("2a", 1), ("2b", 64)] {
            for round in 1..=self.s.runs {
                for server in ["portapxe", "atftpd"] {
                    self.records.note_load(case);
                    let proc = self.tftp_server(server, place)?;
                    let dest = self.out.join("relay.out");
                    let _ = std::fs::remove_file(&dest);
                    let host = SERVER_IP.to_string();
                    let get = TftpGet {
                        client: TftpClient::Atftp,
                        blksize: 1468,
                        window,
                        name: "relay.bin",
                        dest: &dest,
                        host: &host,
                        netns: Some(client_ns),
                        cpu: None,
                        timeout: self.s.client_timeout,
                    };
                    let started = Instant::now();
                    let (seconds, error) = match run_captured(&get.argv(), Duration::from_secs(self.s.client_timeout))?
                    {
                        Some(done) if done.status.success() => (started.elapsed().as_secs_f64(), None),
                        Some(done) => (0.0, Some(format!("{}: {}", exit_text(done.status), head(&done.stderr, 200)))),
                        None => (0.0, Some(format!("no end after {} s", self.s.client_timeout))),
                    };
                    proc.stop();
                    let error = error.or_else(|| self.check_file(&dest, "relay.bin"));
                    let _ = std::fs::remove_file(&dest);
                    match error {
                        Some(error) => self.records.fail(case, server, error),
                        None => {
                            let rate = size as f64 / seconds / MB;
                            self.records.record(case, server, rate);
                            log!("  {case} round {round} {server}: {rate:.2} MB/s ({seconds:.2} s)");
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Median UDP echo round trip through the delay line ([`ECHO_PROBES`] probes, 2 ms apart),
/// or -1 when no echo came back.
fn measure_rtt(server_ns: &str, client_ns: &str) -> Result<f64> {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (bound_tx, bound_rx) = mpsc::channel();
        let echo = scope.spawn(|| in_netns(server_ns, || echo_server(bound_tx, &done)));
        let bound = bound_rx.recv_timeout(Duration::from_secs(10));
        let rtt = match bound {
            Ok(Ok(())) => in_netns(client_ns, echo_probes).and_then(|r| r),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(anyhow::anyhow!("the echo server in {server_ns} did not start")),
        };
        done.store(true, Ordering::SeqCst);
        let _ = echo.join();
        rtt
    })
}

/// Echo every datagram on 10.98.0.1:7 until `done`, or [`ECHO_IDLE`] without one.
fn echo_server(bound: mpsc::Sender<Result<()>>, done: &AtomicBool) {
    let socket = match UdpSocket::bind(SocketAddrV4::new(SERVER_IP, ECHO_PORT)) {
        Ok(socket) => socket,
        Err(error) => {
            let _ = bound.send(Err(error).context("echo server: bind 10.98.0.1:7"));
            return;
        }
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = bound.send(Ok(()));
    let mut last = Instant::now();
    let mut buf = [0u8; 64];
    while !done.load(Ordering::SeqCst) && last.elapsed() < ECHO_IDLE {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
            last = Instant::now();
        }
    }
}

fn echo_probes() -> Result<f64> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let to = SocketAddrV4::new(SERVER_IP, ECHO_PORT);
    let mut times = Vec::with_capacity(ECHO_PROBES);
    let mut buf = [0u8; 64];
    for _ in 0..ECHO_PROBES {
        stop::check()?;
        let sent = Instant::now();
        if socket.send_to(b"x", to).is_ok() && socket.recv_from(&mut buf).is_ok() {
            times.push(sent.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(if times.is_empty() { -1.0 } else { median(&times) })
}
