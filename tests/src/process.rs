//! Child processes the lab starts: every wait is bounded, every kill is by PID.
//!
//! Owns: spawning helpers, [`Guarded`] (a child that is terminated when dropped) and
//! [`run_bounded`] (run a command to completion or kill it after a deadline).
//! Must not touch: any process it did not start.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How often bounded waits look at the world again.
pub const POLL: Duration = Duration::from_millis(50);

/// Send `signal` to one process we started. A process that is already gone is fine.
pub fn signal_pid(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = kill(Pid::from_raw(raw), signal);
}

/// Poll `check` until it yields `Some`, or give up after `timeout`.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Guarded {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl Guarded {
    pub fn spawn(name: impl Into<String>, command: &mut Command) -> Result<Self> {
        let name = name.into();
        let child = command.spawn().with_context(|| format!("cannot start {name} ({command:?}); is it installed?"))?;
        Ok(Self { name, child, status: None })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Wait at most `timeout` for the process to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_status())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status and whether
    /// the process ended within the grace period (false: it had to be killed).
    pub fn terminate(&mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        if let Some(status) = self.try_status() {
            return (Some(status), true);
        }
        signal_pid(self.pid(), Signal::SIGTERM);
        if let Some(status) = self.wait_timeout(grace) {
            return (Some(status), true);
        }
        signal_pid(self.pid(), Signal::SIGKILL);
        (self.wait_timeout(Duration::from_secs(5)), false)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let (_, graceful) = self.terminate(Duration::from_secs(3));
        if !graceful {
            eprintln!("[lab] {} (pid {}) ignored SIGTERM and was killed", self.name, self.pid());
        }
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n--- stdout ---\n{}--- stderr ---\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Run `command` to completion; kill it by PID and fail if it takes longer than `timeout`.
pub fn run_bounded(name: &str, command: &mut Command, timeout: Duration) -> Result<Finished> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Guarded::spawn(name, command)?;
    let stdout = child.child.stdout.take().map(drain);
    let stderr = child.child.stderr.take().map(drain);
    let status = child.wait_timeout(timeout);
    // A daemon child (dhclient) may keep the pipes open: never wait long for them.
    let collect = |reader: Option<mpsc::Receiver<String>>| {
        reader.and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok()).unwrap_or_default()
    };
    match status {
        Some(status) => Ok(Finished { status, stdout: collect(stdout), stderr: collect(stderr) }),
        None => {
            drop(child); // SIGTERM/SIGKILL by PID, so the pipes close and the readers end
            let (out, err) = (collect(stdout), collect(stderr));
            bail!("{name} did not finish within {timeout:?}; killed it\n--- stdout ---\n{out}--- stderr ---\n{err}")
        }
    }
}

/// Run a short command that must succeed (network set-up and the like).
pub fn run_ok<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Finished> {
    let mut command = Command::new(program);
    command.args(args);
    let shown =
        format!("{program} {}", args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>().join(" "));
    let finished = run_bounded(&shown, &mut command, Duration::from_secs(30))?;
    if !finished.success() {
        bail!("`{shown}` failed: {finished}");
    }
    Ok(finished)
}

fn drain(mut reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}
