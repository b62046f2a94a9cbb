//! Stopping early: SIGINT/SIGTERM and the `--max-minutes` limit.
//!
//! Owns: one flag set by the signal handler, one deadline, and [`check`], which every
//! waiting loop of the suite calls so that a stop request ends the run within a poll
//! interval (then the suite cleans up and reports what it measured).
//! Must not touch: anything else; the handler only stores the signal number.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The signal that asked us to stop, 0 while none has.
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
static DEADLINE: OnceLock<(Instant, u64)> = OnceLock::new();

/// Why the run ends early; not a per-group failure, so groups let it pass through.
#[derive(Debug)]
pub struct Stopped(String);

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stopped {}

extern "C" fn on_signal(signal: i32) {
    SIGNALLED.store(signal, Ordering::SeqCst);
}

/// Route SIGINT and SIGTERM to the flag, and start the `--max-minutes` clock
/// (`--max-minutes 0` sets no limit, as `alarm(0)` did in the Python suite).
pub fn install(max_minutes: u64) -> anyhow::Result<()> {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }?;
    }
    if max_minutes > 0 {
        let limit = Duration::from_secs(max_minutes.saturating_mul(60));
        let _ = DEADLINE.set((Instant::now() + limit, max_minutes));
    }
    Ok(())
}

/// `Err` once a signal arrived or the run is past `--max-minutes`.
pub fn check() -> Result<(), Stopped> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => {}
        signal => return Err(Stopped(format!("stopped by signal {signal}"))),
    }
    match DEADLINE.get() {
        Some((deadline, minutes)) if Instant::now() >= *deadline => {
            Err(Stopped(format!("the suite ran longer than --max-minutes {minutes}")))
        }
        _ => Ok(()),
    }
}

/// Sleep `duration`, but end early (with `Err`) when the run has to stop.
pub fn sleep(duration: Duration) -> Result<(), Stopped> {
    let end = Instant::now() + duration;
    loop {
        check()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Whether `error` (anywhere in its chain) is a request to stop the whole run.
pub fn is_stop(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<Stopped>().is_some())
}
