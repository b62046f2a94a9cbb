//! Another server the lab runs beside PortaPXE (dnsmasq, isc-dhcpd, Kea): started with its
//! output in a log file, ready when its log says so, its log shown when a test fails,
//! stopped by PID when dropped. One wrapper for every such daemon.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::Guarded;
use crate::server::tail_lines;

/// How long a daemon may take to say it is ready (Kea takes a few seconds here).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SIGTERM may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Daemon {
    name: String,
    process: Guarded,
    log: PathBuf,
    /// Files shown with the log when a test fails (a config, a lease file).
    shown: Vec<PathBuf>,
}

impl Daemon {
    /// Starts `command` with stdout and stderr in `log` (one handle, so lines stay whole).
    /// `install` says which packages provide it, for the error when it cannot start.
    pub fn start(name: &str, mut command: Command, log: &Path, install: &str) -> Result<Self> {
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
        eprintln!("[lab] starting {name}: {command:?}");
        let process = Guarded::spawn(name, &mut command).with_context(|| format!("({install})"))?;
        Ok(Self { name: name.to_owned(), process, log: log.to_path_buf(), shown: Vec::new() })
    }

    /// Shows `file` with the log when a test fails.
    pub fn show_on_failure(mut self, file: &Path) -> Self {
        self.shown.push(file.to_path_buf());
        self
    }

    /// Waits until `ready` holds for its log; fails, with the log, when it exits first,
    /// when `broken` finds a line in its log that means it will not work, or after 30 s.
    pub fn wait_ready(
        &mut self,
        ready: impl Fn(&str) -> bool,
        broken: impl Fn(&str) -> Option<String>,
    ) -> Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.try_status() {
                bail!("{} exited during start-up with {status}\n{}", self.name, self.report());
            }
            let log = self.log();
            if let Some(why) = broken(&log) {
                bail!("{} will not work: {why}\n{}", self.name, self.report());
            }
            if ready(&log) {
                eprintln!("[lab] {} ready after {:.1?}", self.name, started.elapsed());
                return Ok(started.elapsed());
            }
            if started.elapsed() >= READY_TIMEOUT {
                bail!("{} not ready within {READY_TIMEOUT:?}\n{}", self.name, self.report());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until it has written `pid_file` (daemons write it once they have bound) and
    /// the file names our child (`ip netns exec` execs, so it is the daemon itself).
    pub fn wait_for_pid_file(&mut self, pid_file: &Path) -> Result<()> {
        let written = crate::process::wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(pid_file).ok().and_then(|pid| pid.trim().parse::<u32>().ok())
        });
        if let Some(status) = self.process.try_status() {
            bail!("{} exited at once ({status})\n{}", self.name, self.report());
        }
        match written {
            Some(pid) if pid == self.process.pid() => Ok(()),
            Some(pid) => {
                bail!("{}'s pid file names {pid}, but the process started is {}", self.name, self.process.pid())
            }
            None => bail!("{} wrote no pid file within 5 s\n{}", self.name, self.report()),
        }
    }

    /// Its log so far (lossy: a daemon's log need not be UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `Some(status)` once it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.process.try_status()
    }

    /// Panics, with its log, when it has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.process.try_status() {
            panic!("{} exited during the test with {status}\n{}", self.name, self.report());
        }
    }

    /// The end of its log and the files shown with it.
    pub fn report(&self) -> String {
        let mut report = format!(
            "===== {} log {} (last 150 lines) =====\n{}\n",
            self.name,
            self.log.display(),
            tail_lines(&self.log(), 150)
        );
        for file in &self.shown {
            let text = std::fs::read(file).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            report.push_str(&format!("===== {} =====\n{text}\n", file.display()));
        }
        report + "====="
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
        let (_, graceful) = self.process.terminate(STOP_TIMEOUT);
        if !graceful {
            eprintln!("[lab] {} ignored SIGTERM for {STOP_TIMEOUT:?} and was killed", self.name);
        }
    }
}
