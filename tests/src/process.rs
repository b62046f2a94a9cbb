//! Child processes the lab starts: every wait is bounded, every kill is by PID.
//!
//! Owns: spawning helpers, [`Guarded`] (a child that is terminated when dropped, alone or
//! with the process group it leads) and [`run_bounded`] (run a command to completion or
//! kill it after a deadline).
//! Must not touch: any process it did not start.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// How often bounded waits look at the world again.
pub const POLL: Duration = Duration::from_millis(50);

/// Send `signal` to one process we started. A process that is already gone is fine.
pub fn signal_pid(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let _ = kill(Pid::from_raw(raw), signal);
}

/// Send `signal` to every member of a process group we started (its ID is the PID of the
/// [`Guarded::spawn_group`] leader). A group that is already gone is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else { return };
    let _ = killpg(Pid::from_raw(raw), signal);
}

/// The processes now in process group `pgid`, read from /proc. A process that ends while
/// it is being read is simply not listed.
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| stat_process_group(&stat))
                == Some(pgid)
        })
        .collect()
}

/// The process group (field 5 of proc(5)) in the text of a /proc/PID/stat file. The command
/// name before it may hold spaces and parentheses, so fields are counted from the last `)`.
pub fn stat_process_group(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
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
    /// Leads its own process group: stopping it stops the whole group.
    group: bool,
}

impl Guarded {
    pub fn spawn(name: impl Into<String>, command: &mut Command) -> Result<Self> {
        let name = name.into();
        let child = command.spawn().with_context(|| format!("cannot start {name} ({command:?}); is it installed?"))?;
        Ok(Self { name, child, status: None, group: false })
    }

    /// Like [`Guarded::spawn`], but the child leads a new process group, so that it and
    /// whatever it forks (per-transfer workers) are stopped together, by that group's ID.
    pub fn spawn_group(name: impl Into<String>, command: &mut Command) -> Result<Self> {
        command.process_group(0);
        let mut guarded = Self::spawn(name, command)?;
        guarded.group = true;
        Ok(guarded)
    }

    /// Its stdout, when the command was spawned with a piped stdout (taken once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Its stderr, when the command was spawned with a piped stderr (taken once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
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

    /// For a [`Guarded::spawn_group`] child: SIGTERM to its group, wait up to `grace` for
    /// the leader, then SIGKILL whatever is left of the group (forked workers outlive their
    /// leader). Returns the leader's exit status and whether it ended within the grace.
    pub fn terminate_group(&mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        let pgid = self.pid();
        let mut graceful = true;
        if self.try_status().is_none() {
            signal_group(pgid, Signal::SIGTERM);
            graceful = self.wait_timeout(grace).is_some();
        }
        // Bounded: a member that survives 50 SIGKILLs is stuck in the kernel; stop trying.
        for _ in 0..50 {
            if group_pids(pgid).is_empty() {
                break;
            }
            signal_group(pgid, Signal::SIGKILL);
            thread::sleep(Duration::from_millis(20));
        }
        (self.wait_timeout(Duration::from_secs(2)), graceful)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let grace = Duration::from_secs(3);
        let (_, graceful) = if self.group { self.terminate_group(grace) } else { self.terminate(grace) };
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

/// Read `reader` to its end on a thread (so a child never blocks on a full pipe); the text,
/// decoded lossily, arrives on the channel when the writer closes it.
pub fn drain(mut reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::stat_process_group;

    #[test]
    fn process_group_is_counted_from_the_last_parenthesis() {
        assert_eq!(stat_process_group("4242 (a) b (c)) S 1 4240 4240 0 -1"), Some(4240));
        assert_eq!(stat_process_group("17 (sh) R 1 17 17 0"), Some(17));
    }

    #[test]
    fn odd_stat_text_gives_none() {
        assert_eq!(stat_process_group(""), None);
        assert_eq!(stat_process_group("17 (sh"), None);
        assert_eq!(stat_process_group("17 (sh) R 1"), None);
        assert_eq!(stat_process_group("17 (sh) R 1 x"), None);
    }
}
