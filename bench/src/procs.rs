//! Servers (and the delay line) the suite starts: each in its own process group, with its
//! output in a log file of its own, stopped by that group's ID.
//!
//! Owns: [`Launch`] (what to run, where, pinned to which CPU) and [`Proc`] (the running
//! group). A `Proc` that is dropped without [`Proc::stop`] (a group aborted half-way) is
//! stopped with a short grace, so nothing outlives the run. Must not touch: processes the
//! suite did not start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use portapxe_lab::process::Guarded;

/// How long a server may take to stop after SIGTERM in a normal round.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The grace when a group is aborted: the next group should not wait long.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Starts so far: every start gets a log of its own, so a readiness check can never
/// see an earlier instance's lines.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// `ip netns exec NS taskset -c CPU argv…`, with either prefix left out when not asked
/// for. Both exec the program, so the child's PID is the program's PID.
pub fn placed(argv: Vec<String>, netns: Option<&str>, cpu: Option<u32>) -> Vec<String> {
    let mut full = Vec::with_capacity(argv.len() + 6);
    if let Some(ns) = netns {
        full.extend(["ip", "netns", "exec", ns].map(str::to_owned));
    }
    if let Some(cpu) = cpu {
        full.extend(["taskset".to_owned(), "-c".to_owned(), cpu.to_string()]);
    }
    full.extend(argv);
    full
}

/// A `Command` for `argv[0] argv[1..]` (argv is never empty where the suite builds it).
pub fn command(argv: &[String]) -> Command {
    let mut command = Command::new(argv.first().map(String::as_str).unwrap_or("true"));
    command.args(argv.iter().skip(1));
    command
}

/// What to start, before it is started.
pub struct Launch {
    argv: Vec<String>,
    netns: Option<String>,
    cpu: Option<u32>,
    env: Vec<(String, String)>,
    pipe_stdout: bool,
}

impl Launch {
    pub fn new<S: ToString>(argv: &[S]) -> Self {
        Self {
            argv: argv.iter().map(ToString::to_string).collect(),
            netns: None,
            cpu: None,
            env: Vec::new(),
            pipe_stdout: false,
        }
    }

    pub fn netns(mut self, ns: Option<&str>) -> Self {
        self.netns = ns.map(str::to_owned);
        self
    }

    pub fn cpu(mut self, cpu: Option<u32>) -> Self {
        self.cpu = cpu;
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    /// stdout to a pipe (read with [`Proc::take_stdout`]) instead of the log.
    pub fn pipe_stdout(mut self) -> Self {
        self.pipe_stdout = true;
        self
    }

    /// Start it in a new process group. `log` names the log; a start number is added
    /// (`tftp-dnsmasq.log` becomes `tftp-dnsmasq-7.log`).
    pub fn start(self, log: &Path) -> Result<Proc> {
        let n = STARTED.fetch_add(1, Ordering::SeqCst) + 1;
        let log = numbered(log, n);
        let argv = placed(self.argv, self.netns.as_deref(), self.cpu);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open log {}", log.display()))?;
        let mut command = command(&argv);
        command.envs(self.env).stdin(Stdio::null()).stderr(file.try_clone()?);
        if self.pipe_stdout {
            command.stdout(Stdio::piped());
        } else {
            command.stdout(file);
        }
        let name = argv.iter().find(|a| !["ip", "netns", "exec", "taskset"].contains(&a.as_str())).cloned();
        let guarded = Guarded::spawn_group(name.unwrap_or_default(), &mut command)?;
        Ok(Proc { guarded, log, stopped: false })
    }
}

fn numbered(log: &Path, n: u32) -> PathBuf {
    let stem = log.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match log.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    log.with_file_name(name)
}

/// A started process group.
pub struct Proc {
    guarded: Guarded,
    log: PathBuf,
    stopped: bool,
}

impl Proc {
    /// The leader's PID, which is also the group's ID.
    pub fn pid(&self) -> u32 {
        self.guarded.pid()
    }

    pub fn alive(&mut self) -> bool {
        self.guarded.is_running()
    }

    /// Its log so far (lossy: a server's log need not be UTF-8).
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    /// The last `n` characters of its log, for an error message.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let skip = text.chars().count().saturating_sub(n);
        text.chars().skip(skip).collect()
    }

    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.guarded.take_stdout()
    }

    /// SIGTERM to the group, up to 3 s for the leader, then SIGKILL for what is left.
    pub fn stop(mut self) {
        self.stop_with(STOP_GRACE);
    }

    fn stop_with(&mut self, grace: Duration) {
        if !self.stopped {
            self.stopped = true;
            self.guarded.terminate_group(grace);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop_with(ABORT_GRACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_prefixes_netns_then_taskset() {
        let argv = vec!["curl".to_owned(), "-sS".to_owned()];
        assert_eq!(placed(argv.clone(), None, None), ["curl", "-sS"]);
        assert_eq!(placed(argv.clone(), None, Some(0)), ["taskset", "-c", "0", "curl", "-sS"]);
        assert_eq!(
            placed(argv, Some("pxb1-rcli"), Some(1)),
            ["ip", "netns", "exec", "pxb1-rcli", "taskset", "-c", "1", "curl", "-sS"]
        );
    }

    #[test]
    fn every_start_gets_its_own_log_name() {
        assert_eq!(numbered(Path::new("/w/logs/tftp-atftpd.log"), 7), Path::new("/w/logs/tftp-atftpd-7.log"));
        assert_eq!(numbered(Path::new("/w/logs/delayline"), 2), Path::new("/w/logs/delayline-2"));
    }
}
