//! The download clients (curl, atftp, perfdhcp) as the suite runs them: their command
//! lines, a run watched for stalls, and a run with its output captured. Every run has
//! a time limit and ends early when the whole run has to stop.
//!
//! Owns: client processes (ordinary children, killed by PID). Must not touch: servers.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use portapxe_lab::process::{Guarded, drain};

use crate::procs::{command, placed};
use crate::stop;

/// How often a watched download looks at its output file.
const WATCH_POLL: Duration = Duration::from_millis(10);
/// How often a long wait looks whether the run has to stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// A TFTP client program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TftpClient {
    Curl,
    Atftp,
}

/// One TFTP download as the suite asks for it.
pub struct TftpGet<'a> {
    pub client: TftpClient,
    pub blksize: u32,
    pub window: u32,
    pub name: &'a str,
    pub dest: &'a Path,
    pub host: &'a str,
    pub netns: Option<&'a str>,
    pub cpu: Option<u32>,
    /// curl's own `--max-time` (atftp has none).
    pub timeout: u64,
}

impl TftpGet<'_> {
    /// curl for window 1 (`--tftp-blksize` only when not 512), atftp with options otherwise.
    pub fn argv(&self) -> Vec<String> {
        let dest = self.dest.display().to_string();
        let argv: Vec<String> = match self.client {
            TftpClient::Curl => {
                let mut argv = vec!["curl".into(), "-sS".into(), "--max-time".into(), self.timeout.to_string()];
                argv.extend(["-o".into(), dest]);
                if self.blksize != 512 {
                    argv.extend(["--tftp-blksize".into(), self.blksize.to_string()]);
                }
                argv.push(format!("tftp://{}/{}", self.host, self.name));
                argv
            }
            TftpClient::Atftp => {
                let mut argv = vec!["atftp".into(), "--option".into(), format!("blksize {}", self.blksize)];
                if self.window > 1 {
                    argv.extend(["--option".into(), format!("windowsize {}", self.window)]);
                }
                argv.extend(["--get", "-r", self.name, "-l"].map(String::from));
                argv.extend([dest, self.host.to_owned(), "69".to_owned()]);
                argv
            }
        };
        placed(argv, self.netns, self.cpu)
    }
}

/// A download that was watched: its time, its longest pause, and what went wrong.
pub struct Watched {
    pub seconds: Option<f64>,
    /// The longest time the output file did not grow (before the first byte and between
    /// bytes): a resend timeout in the transfer shows up as a pause of about that long.
    pub longest_pause: f64,
    pub error: Option<String>,
}

/// Run a download client, looking at `dest` every 10 ms; kill it after `limit`.
pub fn run_watching(argv: &[String], dest: &Path, limit: Duration) -> Result<Watched> {
    let started = Instant::now();
    let mut client = Client::spawn(argv, false)?;
    let (mut last_size, mut last_change, mut pause) = (None, started, 0.0f64);
    let status = loop {
        if let Some(status) = client.wait_for(WATCH_POLL) {
            break status;
        }
        stop::check()?;
        let now = Instant::now();
        let size = std::fs::metadata(dest).ok().map(|m| m.len());
        if size != last_size {
            (last_size, last_change) = (size, now);
        }
        pause = pause.max((now - last_change).as_secs_f64());
        if now - started > limit {
            drop(client); // killed by PID
            let error = format!("not done after {} s (stalled)", limit.as_secs());
            return Ok(Watched { seconds: None, longest_pause: pause, error: Some(error) });
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let error = (!status.success()).then(|| format!("{}: {}", exit_text(status), tail(&client.stderr(), 200)));
    Ok(Watched { seconds: Some(seconds), longest_pause: pause, error })
}

/// A client's exit status and output.
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run `argv` with its output captured. `Ok(None)` when it is not done within `timeout`
/// (it is killed then); `Err` when it cannot start or the run has to stop.
pub fn run_captured(argv: &[String], timeout: Duration) -> Result<Option<Captured>> {
    let mut client = Client::spawn(argv, true)?;
    let Some(status) = client.wait_until(Instant::now() + timeout)? else {
        return Ok(None); // killed by PID when dropped
    };
    Ok(Some(Captured { status, stdout: client.stdout(), stderr: client.stderr() }))
}

/// [`run_captured`] for a client whose overrunning is an error of the whole group.
pub fn run_captured_or_fail(argv: &[String], timeout: Duration) -> Result<Captured> {
    match run_captured(argv, timeout)? {
        Some(captured) => Ok(captured),
        None => bail!("`{}` did not finish within {} s; killed it", argv.join(" "), timeout.as_secs()),
    }
}

/// A running client, its stderr (and stdout, when captured) read on threads.
///
/// Its end is seen the moment it happens, not at the next poll: waits block on its stderr
/// closing, which the clients do only by exiting. Timings of transfers that last a few
/// milliseconds depend on that.
pub struct Client {
    process: Guarded,
    stdout: Option<Receiver<String>>,
    stderr: Option<Receiver<String>>,
    stderr_text: String,
}

impl Client {
    /// Start `argv`; stdout is captured when `capture_stdout`, else discarded.
    pub fn spawn(argv: &[String], capture_stdout: bool) -> Result<Self> {
        let mut command: Command = command(argv);
        let stdout = if capture_stdout { Stdio::piped() } else { Stdio::null() };
        command.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
        let mut process = Guarded::spawn(argv.first().cloned().unwrap_or_default(), &mut command)?;
        let stdout = process.take_stdout().map(drain);
        let stderr = process.take_stderr().map(drain);
        Ok(Self { process, stdout, stderr, stderr_text: String::new() })
    }

    /// Wait at most `timeout` for the client to end.
    pub fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        if let Some(stderr) = &self.stderr {
            match stderr.recv_timeout(timeout) {
                Ok(text) => {
                    self.stderr_text = text;
                    self.stderr = None;
                }
                Err(RecvTimeoutError::Timeout) => return self.process.try_status(),
                Err(RecvTimeoutError::Disconnected) => self.stderr = None,
            }
        }
        // Its stderr is closed: the exit itself follows within moments.
        loop {
            if let Some(status) = self.process.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Wait until `deadline` for the client to end; `Ok(None)` when it is still running
    /// then, `Err` when the run has to stop.
    pub fn wait_until(&mut self, deadline: Instant) -> Result<Option<ExitStatus>> {
        loop {
            stop::check()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(status) = self.wait_for(left.min(STOP_POLL)) {
                return Ok(Some(status));
            }
            if left.is_zero() {
                return Ok(None);
            }
        }
    }

    /// Kill it now (by PID), if it is still running.
    pub fn kill(&mut self) {
        self.process.terminate(Duration::ZERO);
    }

    /// What it printed on stdout (taken once; empty if not captured).
    pub fn stdout(&mut self) -> String {
        self.stdout.take().and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok()).unwrap_or_default()
    }

    /// What it printed on stderr, once it has ended.
    pub fn stderr(&mut self) -> String {
        if let Some(rx) = self.stderr.take() {
            self.stderr_text = rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
        }
        self.stderr_text.clone()
    }
}

/// "exit N" as Python's subprocess gave it; a signal shows as a negative code.
pub fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("exit -{signal}"),
        (None, None) => "exit ?".to_owned(),
    }
}

/// The last `n` characters of `text`, trimmed.
pub fn tail(text: &str, n: usize) -> String {
    let text = text.trim();
    let skip = text.chars().count().saturating_sub(n);
    text.chars().skip(skip).collect()
}

/// The first `n` characters of `text`.
pub fn head(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(client: TftpClient, blksize: u32, window: u32) -> TftpGet<'static> {
        TftpGet {
            client,
            blksize,
            window,
            name: "single.bin",
            dest: Path::new("/o/single.out"),
            host: "127.0.0.1",
            netns: None,
            cpu: Some(0),
            timeout: 300,
        }
    }

    #[test]
    fn curl_gives_the_block_size_only_when_not_512() {
        assert_eq!(
            get(TftpClient::Curl, 512, 1).argv(),
            [
                "taskset",
                "-c",
                "0",
                "curl",
                "-sS",
                "--max-time",
                "300",
                "-o",
                "/o/single.out",
                "tftp://127.0.0.1/single.bin"
            ]
        );
        let argv = get(TftpClient::Curl, 1468, 1).argv();
        assert_eq!(argv[9..], ["--tftp-blksize", "1468", "tftp://127.0.0.1/single.bin"]);
    }

    #[test]
    fn atftp_gives_the_window_only_above_one() {
        let argv = get(TftpClient::Atftp, 1468, 1).argv();
        assert_eq!(
            argv[3..],
            [
                "atftp",
                "--option",
                "blksize 1468",
                "--get",
                "-r",
                "single.bin",
                "-l",
                "/o/single.out",
                "127.0.0.1",
                "69"
            ]
        );
        let argv = get(TftpClient::Atftp, 8192, 64).argv();
        assert_eq!(argv[4..8], ["--option", "blksize 8192", "--option", "windowsize 64"]);
    }

    #[test]
    fn tails_and_heads_count_characters() {
        assert_eq!(tail("  abcdéf \n", 3), "déf");
        assert_eq!(tail("ab", 10), "ab");
        assert_eq!(head("éabc", 2), "éa");
    }
}
