//! The real `portapxe serve` running in the lab's server namespace.
//!
//! Owns: the server process (started through `ip netns exec`, stopped with SIGTERM
//! by PID), its stderr log and events file, and waiting until it is ready. When a
//! test panics while a [`Server`] is alive, its log and events are printed.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::binary;
use crate::events::{self, Event, EventsExt};
use crate::netns::{BRIDGE, Lab};
use crate::process::{Guarded, POLL};

/// How long the server may take to bind DHCP, TFTP and HTTP.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long SIGTERM may take to end the server.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What to start: everything `serve` needs besides the interface.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub root: PathBuf,
    /// `--state-dir`; `None` leaves the leases where the platform keeps them (a newcomer's start).
    pub state_dir: Option<PathBuf>,
    /// Run with this `HOME`, no `XDG_*` and no PortaPXE variables: a fresh user account.
    pub home: Option<PathBuf>,
    /// `--mode`: `dhcp` (the default here) or `proxy` (see [`ServerSpec::proxy`]).
    pub mode: String,
    /// `START-END`, passed as `--pool` (in `dhcp` mode only).
    pub pool: String,
    pub http_port: u16,
    /// Further flags (`--kernel vmlinuz`, …).
    pub extra: Vec<String>,
    /// Start with this soft open-file limit (a desktop session's is 1024), under the
    /// hard one: the server is expected to raise it.
    pub open_files_soft: Option<u64>,
}

impl ServerSpec {
    /// Root and state under the lab directory, pool 10.77.N.100-10.77.N.150, HTTP 80.
    pub fn new(lab: &Lab) -> Result<Self> {
        let root = lab.dir().join("root");
        let state_dir = lab.dir().join("state");
        std::fs::create_dir_all(&root)?;
        std::fs::create_dir_all(&state_dir)?;
        Ok(Self {
            root,
            state_dir: Some(state_dir),
            home: None,
            mode: "dhcp".into(),
            pool: format!("{}-{}", lab.ip(100), lab.ip(150)),
            http_port: 80,
            extra: Vec::new(),
            open_files_soft: None,
        })
    }

    /// `--mode proxy`: proxyDHCP beside the network's DHCP server; no `--pool` is passed.
    pub fn proxy(mut self) -> Self {
        self.mode = "proxy".into();
        self
    }

    /// `--mode off`: TFTP and HTTP only, for a network whose own DHCP server points at
    /// PortaPXE (`portapxe export`); ready without any DHCP service.
    pub fn off(mut self) -> Self {
        self.mode = "off".into();
        self
    }

    /// Start as a new user would: a fresh `HOME` (`home`, made if missing), no `XDG_*`
    /// variables, no `--state-dir` and no config file.
    pub fn as_newcomer(mut self, home: &Path) -> Self {
        self.state_dir = None;
        self.home = Some(home.to_path_buf());
        self
    }

    /// A flag without a value (`--force-dhcp`, …).
    pub fn flag(mut self, flag: &str) -> Self {
        self.extra.push(flag.to_owned());
        self
    }

    pub fn arg(mut self, flag: &str, value: impl Into<String>) -> Self {
        self.extra.push(flag.to_owned());
        self.extra.push(value.into());
        self
    }

    fn args(&self, events: &Path) -> Vec<String> {
        let mut args = vec![
            "serve".to_owned(),
            "--interface".into(),
            BRIDGE.into(),
            "--root".into(),
            self.root.display().to_string(),
            "--mode".into(),
            self.mode.clone(),
            "--events".into(),
            events.display().to_string(),
        ];
        if let Some(state_dir) = &self.state_dir {
            args.extend(["--state-dir".into(), state_dir.display().to_string()]);
        }
        if self.mode == "dhcp" {
            args.extend(["--pool".into(), self.pool.clone()]);
        }
        if self.http_port != 80 {
            args.extend(["--http-port".into(), self.http_port.to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// A running `portapxe serve`.
pub struct Server {
    process: Option<Guarded>,
    pub log: PathBuf,
    pub events_path: PathBuf,
    pub ip: Ipv4Addr,
    pub http_port: u16,
    ns: String,
    mode: String,
}

impl Server {
    /// Start the server and wait until DHCP and TFTP report that they run and HTTP accepts connections.
    /// Each start in a lab gets its own log and events file (`server-N.log`, `events-N.jsonl`).
    pub fn start(lab: &Lab, spec: &ServerSpec) -> Result<Self> {
        let binary = binary::portapxe();
        let n = (1..).find(|n| !lab.dir().join(format!("server-{n}.log")).exists()).unwrap_or(1);
        let log = lab.dir().join(format!("server-{n}.log"));
        let events_path = lab.dir().join(format!("events-{n}.jsonl"));
        let args = spec.args(&events_path);
        let mut command = lab.server_command(&binary.display().to_string());
        command.args(&args).env("RUST_BACKTRACE", "1").env("NO_COLOR", "1").stdin(Stdio::null());
        if let Some(home) = &spec.home {
            std::fs::create_dir_all(home)?;
            command.env("HOME", home);
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name.starts_with("XDG_") || name.starts_with("PORTAPXE_") {
                    command.env_remove(&*name);
                }
            }
        }
        if let Some(soft) = spec.open_files_soft {
            use nix::sys::resource::{Resource, getrlimit, setrlimit};
            use std::os::unix::process::CommandExt;
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
            // SAFETY: setrlimit is a plain system call, safe between fork and exec; the
            // limit passes through `ip netns exec` to the server.
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).map_err(std::io::Error::from)
                });
            }
        }
        // stdout and stderr share one file; append mode keeps their lines whole.
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        command.stdout(log_file.try_clone()?).stderr(log_file);
        eprintln!("[lab] starting: ip netns exec {} {} {}", lab.server_ns(), binary.display(), args.join(" "));
        let process = Guarded::spawn("portapxe serve", &mut command)?;
        let mut server = Self {
            process: Some(process),
            log,
            events_path,
            ip: lab.server_ip(),
            http_port: spec.http_port,
            ns: lab.server_ns().to_owned(),
            mode: spec.mode.clone(),
        };
        server.wait_ready().with_context(|| format!("portapxe did not become ready\n{}", server.report()))?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let deadline = started + READY_TIMEOUT;
        loop {
            if let Some(status) = self.process.as_mut().and_then(Guarded::try_status) {
                bail!("portapxe exited during start-up with {status}");
            }
            let events = events::read(&self.events_path)?;
            if let Some(failed) = events.failed_service() {
                bail!("service {} failed to start: {}", failed.service, failed.message);
            }
            // HTTP is checked by connecting (the server reports no HTTP service event).
            let needed: &[&str] = if self.mode == "off" { &["tftp"] } else { &["dhcp", "tftp"] };
            let missing: Vec<&str> = needed
                .iter()
                .copied()
                .filter(|name| !events.services().iter().any(|s| s.ok && s.service.to_lowercase().contains(name)))
                .collect();
            if missing.is_empty() && self.http_answers() {
                eprintln!("[lab] portapxe ready after {:.1?}", started.elapsed());
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "not ready within {READY_TIMEOUT:?}: no {{\"kind\":\"service\",\"ok\":true}} event yet for {missing:?}, \
                     HTTP {}:{} answers: {}",
                    self.ip,
                    self.http_port,
                    self.http_answers()
                );
            }
            std::thread::sleep(POLL * 4);
        }
    }

    /// Does a TCP connect to the HTTP port succeed (from inside the namespace)?
    pub fn http_answers(&self) -> bool {
        let to = SocketAddr::from((self.ip, self.http_port));
        crate::netns::in_netns(&self.ns, || TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok())
            .unwrap_or(false)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Guarded::pid)
    }

    /// All events so far; panics (with the server log) when a line breaks the contract.
    pub fn events(&self) -> Vec<Event> {
        match events::read(&self.events_path) {
            Ok(events) => events,
            Err(error) => panic!("{error:#}"),
        }
    }

    /// Wait until `done` holds for the events, or fail with `what` after `timeout`.
    pub fn wait_for_events(&self, what: &str, timeout: Duration, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let found = crate::process::wait_until(timeout, || {
            let events = self.events();
            done(&events).then_some(events)
        });
        found.unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
    }

    /// Wait (5 s) until the guest's kernel and initrd were both sent whole.
    pub fn wait_for_kernel_and_initrd(&self) -> Vec<Event> {
        self.wait_for_events("the kernel and initrd transfers to finish", Duration::from_secs(5), |e| {
            crate::expect::has_finished(e, "vmlinuz") && crate::expect::has_finished(e, "initrd.img")
        })
    }

    /// Panics when the server has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.process.as_mut().and_then(Guarded::try_status) {
            panic!("portapxe is no longer running: it exited with {status}");
        }
    }

    /// SIGTERM by PID and wait for the exit; panics when it has to be killed.
    pub fn stop(&mut self) -> ExitStatus {
        let Some(mut process) = self.process.take() else { panic!("server already stopped") };
        let (status, graceful) = process.terminate(STOP_TIMEOUT);
        assert!(graceful, "portapxe did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it");
        status.unwrap_or_else(|| panic!("portapxe could not be reaped"))
    }

    /// Log and events, for failure messages.
    pub fn report(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let events = std::fs::read_to_string(&self.events_path).unwrap_or_default();
        let events: Vec<&str> = events.lines().filter(|l| !l.contains("\"phase\":\"progress\"")).collect();
        format!(
            "===== portapxe log {} (last 150 lines) =====\n{}\n===== events {} (without progress, last 150) =====\n{}\n=====",
            self.log.display(),
            tail_lines(&log, 150),
            self.events_path.display(),
            events[events.len().saturating_sub(150)..].join("\n")
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
        drop(self.process.take());
    }
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The record of client `mac` in a `--status FILE` the server writes, once it is there.
pub fn status_client(status: &Path, mac: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(status).ok()?;
    let snapshot: serde_json::Value = serde_json::from_str(&text).ok()?;
    let clients = snapshot["clients"].as_array()?;
    clients.iter().find(|c| c["mac"].as_str().is_some_and(|m| m.eq_ignore_ascii_case(mac))).cloned()
}

/// Every lease (MAC, address) a server keeps in `lease_file` (its snapshot) and the
/// journal beside it, oldest first; unreadable parts are skipped.
pub fn leases_on_disk(lease_file: &Path) -> Vec<(String, std::net::Ipv4Addr)> {
    let mut journal = lease_file.as_os_str().to_owned();
    journal.push(".journal");
    let snapshot: Option<serde_json::Value> =
        std::fs::read(lease_file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let journal = std::fs::read_to_string(journal).unwrap_or_default();
    let in_snapshot = snapshot.and_then(|file| file["leases"].as_array().cloned()).unwrap_or_default();
    let in_journal = journal.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok());
    in_snapshot
        .into_iter()
        .chain(in_journal)
        .filter_map(|lease| Some((lease["mac"].as_str()?.to_owned(), lease["ip"].as_str()?.parse().ok()?)))
        .collect()
}
