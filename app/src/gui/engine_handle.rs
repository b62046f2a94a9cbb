//! The window's one link to the engine: a background thread with its own tokio runtime
//! (`actor`). Commands go in over a channel; changes to what the window draws (the
//! [`UiSnapshot`], `snapshot`) come back over another, applied when the window asks for
//! the snapshot at the start of a frame; `privileges` says what this process may do.
//!
//! Owns: starting, stopping and scanning; listing interfaces; validating and saving
//! the config (they read the disk). Must not draw: the window only reads the snapshot.

use std::cell::{RefCell, RefMut};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use portapxe_engine::config::{Config, ConfigError, ConfigStore, validate};
use portapxe_engine::events::{MacAddr, NextBoot};
use portapxe_engine::imaging::hub::ImagingHub;
use portapxe_engine::net::find_interface;
use portapxe_engine::next_boot::NextBootTable;
use portapxe_engine::{EventSink, StartOptions};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::gui::imaging_state::ImagingCommand;

mod actor;
mod imaging;
mod privileges;
mod snapshot;

use actor::{Actor, Change, Sent, Shared};
pub use privileges::{Privileges, is_elevated};
pub use snapshot::{
    CaptureState, ConflictEntry, FailedService, LogLine, RunState, ScanState, StartFailure, UiSnapshot, Validation,
};

/// Log lines kept for the log panel; the oldest go first.
pub const LOG_CAPACITY: usize = 2000;
/// How often the snapshot is refreshed from the engine while it runs.
pub const REFRESH: Duration = Duration::from_millis(250);
/// The session's capture, in the data folder; replaced at every Start, so at most
/// one session's DHCP traffic (port 67/68/4011 frames only) is ever kept.
pub const CAPTURE_FILE: &str = "session.pcapng";

/// What the window asks the engine thread to do.
#[derive(Debug)]
pub enum Command {
    Start {
        config: Box<Config>,
        options: StartOptions,
    },
    Stop,
    /// Ask the network who answers DHCP (sends two DISCOVERs on `interface`).
    Scan {
        interface: String,
        listen: Duration,
    },
    /// Check `config` with the engine's own rules (reads the disk and the interface list).
    Validate(Box<Config>),
    Save(Box<Config>),
    RefreshInterfaces,
    Imaging(ImagingCommand),
    /// Plan `mac`'s next network boot (`None`: drop what was planned).
    NextBoot {
        mac: MacAddr,
        boot: Option<NextBoot>,
    },
}

/// Something a background task will hand back once; polled by the window each frame.
pub struct Pending<T>(mpsc::Receiver<T>);

impl<T> Pending<T> {
    /// `Some` once, when the result is there.
    pub fn poll(&self) -> Option<T> {
        self.0.try_recv().ok()
    }
}

type Repaint = Arc<Mutex<Option<egui::Context>>>;

/// Owned by the app. Dropping it stops the engine and joins the thread.
pub struct EngineHandle {
    commands: Option<UnboundedSender<Command>>,
    data_dir: Option<PathBuf>,
    /// Owned by the window's thread: changes from the engine thread arrive over `changes`
    /// and are applied when the window asks for the snapshot (at the start of a frame), so
    /// the engine thread never waits for a frame to be drawn.
    snapshot: RefCell<UiSnapshot>,
    changes: std::sync::mpsc::Receiver<Change>,
    events: EventSink,
    runtime: Option<tokio::runtime::Handle>,
    repaint: Repaint,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Starts the engine thread. `store` is where Save writes (`None`: saving says why not);
    /// the capture and exported diagnostics go to the platform's data folder.
    pub fn spawn(store: Option<ConfigStore>) -> std::io::Result<Self> {
        Self::spawn_in(store, default_data_dir())
    }

    /// As [`Self::spawn`], with the data folder (capture, diagnostics) chosen by the caller.
    pub fn spawn_in(store: Option<ConfigStore>, data_dir: Option<PathBuf>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let runtime_handle = runtime.handle().clone();
        let (tx, rx) = unbounded_channel();
        let events = EventSink::new();
        let hub = data_dir.as_ref().map(|dir| ImagingHub::new(dir.join("images"), events.clone()));
        let snapshot =
            RefCell::new(UiSnapshot { imaging: imaging::initial_state(hub.as_deref()), ..UiSnapshot::default() });
        let (changes_tx, changes) = std::sync::mpsc::channel();
        let repaint: Repaint = Arc::default();
        let actor = Actor {
            shared: Shared { changes: changes_tx, repaint: Arc::clone(&repaint) },
            events: events.clone(),
            store,
            engine: None,
            serving: None,
            data_dir: data_dir.clone(),
            imaging: imaging::ImagingSide::new(hub),
            next_boot: NextBootTable::new(),
            sent: Sent::default(),
        };
        let thread = std::thread::Builder::new().name("portapxe-engine".into()).spawn(move || {
            runtime.block_on(actor.run(rx));
            // Scans and dialogs still running are dropped with the runtime.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
        let handle = Self {
            commands: Some(tx),
            data_dir,
            snapshot,
            changes,
            events,
            runtime: Some(runtime_handle),
            repaint,
            thread: Some(thread),
        };
        handle.send(Command::RefreshInterfaces);
        Ok(handle)
    }

    /// A handle with no engine thread: commands go nowhere and the snapshot holds
    /// only what the caller puts in it. For drawing a fixed state (tests, benchmarks).
    pub fn detached(snapshot: UiSnapshot) -> Self {
        Self {
            commands: None,
            data_dir: None,
            snapshot: RefCell::new(snapshot),
            changes: std::sync::mpsc::channel().1,
            events: EventSink::new(),
            runtime: None,
            repaint: Arc::default(),
            thread: None,
        }
    }

    /// Where the session's capture and exported diagnostics are kept (`None`: no home folder).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data_dir.as_deref()
    }

    /// Never blocks: the command is queued for the engine thread.
    pub fn send(&self, command: Command) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(command);
        }
    }

    /// The engine thread asks `ctx` to repaint whenever the snapshot changes.
    pub fn set_repaint(&self, ctx: &egui::Context) {
        *lock(&self.repaint) = Some(ctx.clone());
    }

    /// The snapshot, with every change the engine thread sent so far applied. Held for a
    /// frame by the window's own thread only (not `Sync`): no other thread waits for it.
    pub fn snapshot(&self) -> RefMut<'_, UiSnapshot> {
        let mut snapshot = self.snapshot.borrow_mut();
        while let Ok(change) = self.changes.try_recv() {
            change(&mut snapshot);
        }
        snapshot
    }

    /// The event stream every engine this handle starts reports into. Tests and the
    /// capture of another process can feed it; the registry and the log read it.
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Runs `future` on the engine thread's runtime (a file dialog, say); the
    /// window polls the result.
    pub fn spawn_task<F>(&self, future: F) -> Pending<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let repaint = Arc::clone(&self.repaint);
        // Detached: the task is dropped and the result never comes.
        if let Some(runtime) = &self.runtime {
            runtime.spawn(async move {
                let _ = tx.send(future.await);
                request_repaint(&repaint);
            });
        }
        Pending(rx)
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // Closing the channel ends the actor, which stops a running engine first.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn request_repaint(repaint: &Repaint) {
    if let Some(ctx) = lock(repaint).as_ref() {
        ctx.request_repaint();
    }
}

/// The platform's data folder for PortaPXE (e.g. `~/.local/share/portapxe`), or next
/// to the settings when [`super::CONFIG_DIR_ENV`] overrides where they live.
pub fn default_data_dir() -> Option<PathBuf> {
    match std::env::var_os(super::CONFIG_DIR_ENV) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => portapxe_engine::config::project_dirs().map(|dirs| dirs.data_dir().to_path_buf()),
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The engine's own checks, plus why the chosen interface cannot be served on.
pub fn validate_config(config: &Config) -> Vec<ConfigError> {
    let interface = if config.interface.trim().is_empty() { None } else { Some(find_interface(&config.interface)) };
    let mut errors = Vec::new();
    let facts = match interface {
        Some(Ok(found)) => found.facts(),
        Some(Err(err)) => {
            errors.push(ConfigError { field: "interface".into(), message: err.to_string() });
            None
        }
        None => None,
    };
    errors.extend(validate(config, facts.as_ref()));
    errors
}
