//! The window's one link to the engine: a background thread with its own tokio
//! runtime. Commands go in over a channel; what the window draws comes out as a
//! [`UiSnapshot`] behind a mutex, refreshed from engine events and every 250 ms.
//!
//! Owns: starting, stopping and scanning; listing interfaces; validating and saving
//! the config (they read the disk). Must not draw: the window only reads the snapshot.

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use portapxe_engine::clients::ClientRecord;
use portapxe_engine::config::{BootEntry, Config, ConfigError, ConfigStore, validate};
use portapxe_engine::detect::ServerSighting;
use portapxe_engine::detect::probe::{ProbeSettings, probe};
use portapxe_engine::events::{MacAddr, NextBoot, TransferPhase};
use portapxe_engine::imaging::hub::ImagingHub;
use portapxe_engine::net::{InterfaceInfo, find_interface, find_up_interface, list_interfaces};
use portapxe_engine::next_boot::NextBootTable;
use portapxe_engine::served::MountedImage;
use portapxe_engine::{
    CaptureStatus, Engine, EngineError, EngineEvent, EngineStatus, EventSink, SignedChain, StartOptions,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::event_text::{Level, describe};
use crate::gui::imaging_state::{ImagingCommand, ImagingState};

mod imaging;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Stopped,
    Starting,
    Running,
    Stopping,
}

/// Which service a start failure belongs to, for its status light.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedService {
    Dhcp,
    Tftp,
    Http,
    /// The interface or the config, not one service.
    Setup,
}

/// Why the last start failed, in the engine's own words.
#[derive(Debug, Clone, PartialEq)]
pub struct StartFailure {
    pub message: String,
    pub service: FailedService,
    /// The full-DHCP safety gate refused: these servers already hand out addresses.
    pub foreign_servers: Vec<ServerSighting>,
}

impl StartFailure {
    pub fn from_error(err: &EngineError) -> Self {
        let service = match err {
            EngineError::Dhcp(_) | EngineError::Probe(_) | EngineError::ForeignDhcpServer { .. } => FailedService::Dhcp,
            EngineError::Tftp(_) => FailedService::Tftp,
            EngineError::Http(_) => FailedService::Http,
            EngineError::Interface(_)
            | EngineError::Invalid(_)
            | EngineError::NoStateDir
            | EngineError::StateDir { .. }
            | EngineError::Iso(_)
            | EngineError::Cancelled => FailedService::Setup,
        };
        let foreign_servers = match err {
            EngineError::ForeignDhcpServer { servers, .. } => servers.clone(),
            _ => Vec::new(),
        };
        Self { message: err.to_string(), service, foreign_servers }
    }
}

/// Another DHCP or proxyDHCP server seen on the segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictEntry {
    pub server: ServerSighting,
    pub summary: String,
    /// The network's own DHCP server beside proxy/boot-files-only mode: not a fault.
    pub expected: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at_ms: u64,
    pub level: Level,
    /// The client the line is about, when it names one.
    pub mac: Option<MacAddr>,
    pub ip: Option<Ipv4Addr>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum ScanState {
    #[default]
    Idle,
    Running {
        interface: String,
    },
    Done {
        interface: String,
        servers: Vec<ServerSighting>,
    },
    Failed(String),
}

/// Validation of one config, so the window can tell a stale answer from a fresh one.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    pub config: Config,
    pub errors: Vec<ConfigError>,
    /// What x64 UEFI machines get with this config (the signed chain, or iPXE and why).
    pub signed_chain: SignedChain,
    /// Whether ARM64 UEFI machines get the signed chain too (Debian's arm64 loaders served).
    pub signed_arm64: bool,
    /// Per boot entry, why it cannot boot with Secure Boot on (`None`: it can).
    pub secure_boot_problems: Vec<Option<String>>,
    /// Per boot entry, for an ISO: its image read and mounted (what boots follows from it),
    /// or why the image cannot be read.
    pub iso_images: Vec<Option<Result<MountedImage, String>>>,
}

impl Validation {
    /// Checks `config` (reads the disk: the boot files, kernels' signatures).
    pub fn of(config: Config, errors: Vec<ConfigError>) -> Self {
        let signed_chain = portapxe_engine::signed_chain(&config);
        let signed_arm64 = portapxe_engine::signed_chain_arm64(&config);
        // Each ISO is read once: what boots and its Secure Boot verdict both come from it.
        let iso_images: Vec<Option<Result<MountedImage, String>>> = config
            .boot
            .entries
            .iter()
            .map(|entry| match entry {
                BootEntry::Iso { image, .. } => Some(portapxe_engine::iso_entry_mount(&config, image)),
                _ => None,
            })
            .collect();
        let secure_boot_problems = config
            .boot
            .entries
            .iter()
            .zip(&iso_images)
            .map(|(entry, mounted)| match (entry, mounted) {
                (BootEntry::Iso { append, .. }, Some(Ok(mounted))) => {
                    portapxe_engine::iso_secure_boot_problem(mounted, append)
                }
                (BootEntry::Iso { .. }, _) => None,
                _ => portapxe_engine::entry_secure_boot_problem(&config, entry),
            })
            .collect();
        Self { config, errors, signed_chain, signed_arm64, secure_boot_problems, iso_images }
    }

    /// A check with nothing found: no errors, the signed chain in use, every entry fine.
    pub fn passed(config: Config) -> Self {
        let secure_boot_problems = vec![None; config.boot.entries.len()];
        let iso_images = vec![None; config.boot.entries.len()];
        Self {
            config,
            errors: Vec::new(),
            signed_chain: SignedChain::Used,
            signed_arm64: false,
            secure_boot_problems,
            iso_images,
        }
    }
}

/// Everything the window draws from. Cloned or locked briefly each frame.
#[derive(Debug, Clone)]
pub struct UiSnapshot {
    pub state: RunState,
    pub status: Option<EngineStatus>,
    /// Most recently seen first; kept after a stop so the last boots stay readable.
    pub clients: Vec<ClientRecord>,
    pub conflicts: Vec<ConflictEntry>,
    pub log: VecDeque<LogLine>,
    pub last_error: Option<StartFailure>,
    /// Services that reported a failure while running (service name, message).
    pub service_errors: Vec<(portapxe_engine::events::Service, String)>,
    pub scan: ScanState,
    /// `None` until the first listing arrived.
    pub interfaces: Option<Vec<InterfaceInfo>>,
    pub validation: Option<Validation>,
    /// Where the config was last saved, or why it could not be.
    pub saved: Option<Result<PathBuf, String>>,
    /// The clock the snapshot was taken at (ms since the epoch): "last seen" is relative to it.
    pub now_ms: u64,
    /// What this process may do, where the OS tells (`None`: not known).
    pub privileges: Option<Privileges>,
    /// Windows: whether the process runs elevated (as administrator); `None` elsewhere.
    pub elevated: Option<bool>,
    /// The packet capture of the current or last session.
    pub capture: CaptureState,
    /// Classroom imaging: images, captures, the restore session and its seats.
    pub imaging: ImagingState,
    /// One-off boots planned and not used yet, by MAC.
    pub next_boots: Vec<(MacAddr, NextBoot)>,
}

/// Whether the session's DHCP traffic is being (or was) recorded, and where.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CaptureState {
    /// No engine was started yet.
    #[default]
    NotStarted,
    /// Recorded to this pcapng file (still growing while the engine runs).
    Recording(PathBuf),
    /// Not recorded, and why (in the engine's words, with what to grant).
    Unavailable(String),
}

/// Whether the process may bind ports below 1024 and capture packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    pub bind_low_ports: bool,
    pub capture: bool,
}

impl Privileges {
    /// From the `CapEff:` line of Linux's `/proc/self/status`.
    pub fn from_proc_status(status: &str) -> Option<Self> {
        let hex = status.lines().find_map(|line| line.strip_prefix("CapEff:"))?.trim();
        let effective = u64::from_str_radix(hex, 16).ok()?;
        const NET_BIND_SERVICE: u64 = 1 << 10;
        const NET_RAW: u64 = 1 << 13;
        Some(Self { bind_low_ports: effective & NET_BIND_SERVICE != 0, capture: effective & NET_RAW != 0 })
    }

    /// This process's privileges, where the OS says (Linux); `None` elsewhere.
    pub fn of_this_process() -> Option<Self> {
        if cfg!(target_os = "linux") {
            std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(Self::from_proc_status)
        } else {
            None
        }
    }
}

/// Windows: whether this process runs as administrator (an elevated token).
#[cfg(windows)]
pub fn is_elevated() -> Option<bool> {
    // SAFETY: IsUserAnAdmin takes no arguments and only reads this process's token.
    Some(unsafe { windows_sys::Win32::UI::Shell::IsUserAnAdmin() } != 0)
}

/// Elevation is a Windows notion; elsewhere capabilities say it (see [`Privileges`]).
#[cfg(not(windows))]
pub fn is_elevated() -> Option<bool> {
    None
}

impl Default for UiSnapshot {
    fn default() -> Self {
        Self {
            state: RunState::Stopped,
            status: None,
            clients: Vec::new(),
            conflicts: Vec::new(),
            log: VecDeque::new(),
            last_error: None,
            service_errors: Vec::new(),
            scan: ScanState::Idle,
            interfaces: None,
            validation: None,
            saved: None,
            now_ms: now_ms(),
            privileges: None,
            elevated: None,
            capture: CaptureState::NotStarted,
            imaging: ImagingState::default(),
            next_boots: Vec::new(),
        }
    }
}

impl UiSnapshot {
    pub fn push_log(&mut self, line: LogLine) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Records one engine event: a log line, a conflict, a service failure.
    pub fn record(&mut self, event: &EngineEvent, now: u64) {
        match event {
            EngineEvent::Conflict(conflict) => {
                let entry = ConflictEntry {
                    server: conflict.server.clone(),
                    summary: conflict.summary.clone(),
                    expected: conflict.expected,
                };
                match self.conflicts.iter_mut().find(|c| c.server.key() == entry.server.key()) {
                    Some(existing) => *existing = entry,
                    None => self.conflicts.push(entry),
                }
            }
            EngineEvent::Service(service) if !service.ok && !service.service.is_help() => {
                self.service_errors.push((service.service, service.message.clone()));
            }
            EngineEvent::Imaging(imaging) => self.imaging.on_imaging(imaging),
            _ => {}
        }
        // Per-block progress would drown the log; the clients table shows it.
        if let EngineEvent::Transfer(transfer) = event
            && matches!(transfer.phase, TransferPhase::Progress { .. })
        {
            return;
        }
        let (mac, ip) = match event {
            EngineEvent::Dhcp(dhcp) => (Some(dhcp.mac), dhcp.address),
            EngineEvent::Wire(wire) => (Some(wire.client), wire.address),
            EngineEvent::Transfer(transfer) => {
                let ip = match transfer.client.ip() {
                    std::net::IpAddr::V4(ip) => Some(ip),
                    std::net::IpAddr::V6(_) => None,
                };
                let mac = ip.and_then(|ip| self.clients.iter().find(|c| c.address == Some(ip))).map(|c| c.mac);
                (mac, ip)
            }
            _ => (None, None),
        };
        let (level, text) = describe(event);
        self.push_log(LogLine { at_ms: now, level, mac, ip, text });
    }
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

    /// The snapshot, locked for as long as the guard lives: keep it short.
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

/// A change to the window's snapshot, made on the engine thread, applied on the window's.
type Change = Box<dyn FnOnce(&mut UiSnapshot) + Send>;

#[derive(Clone)]
struct Shared {
    changes: std::sync::mpsc::Sender<Change>,
    repaint: Repaint,
}

impl Shared {
    /// Sends `change` to the window (never waits) and asks for a frame to apply it.
    fn update(&self, change: impl FnOnce(&mut UiSnapshot) + Send + 'static) {
        let _ = self.changes.send(Box::new(change));
        request_repaint(&self.repaint);
    }
}

struct Actor {
    shared: Shared,
    events: EventSink,
    store: Option<ConfigStore>,
    engine: Option<Engine>,
    /// The config the running engine was started with, before imaging's entry.
    serving: Option<Config>,
    data_dir: Option<PathBuf>,
    imaging: imaging::ImagingSide,
    /// One-off boots, kept across starts; every engine reads them when a machine asks.
    next_boot: Arc<NextBootTable>,
    sent: Sent,
}

/// What the periodic refresh last sent to the window.
#[derive(Default)]
struct Sent {
    clients: Vec<ClientRecord>,
    next_boots: Vec<(MacAddr, NextBoot)>,
}

impl Actor {
    async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
        let mut events = self.events.subscribe();
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Start { config, options }) => {
                        // Commands that came during the start, carried out after it.
                        let mut later = VecDeque::new();
                        self.start(*config, options, &mut commands, &mut events, &mut later).await;
                        while let Some(command) = later.pop_front() {
                            self.handle(command).await;
                        }
                    }
                    Some(Command::Imaging(command)) => {
                        // A capture or restore serves again with the imaging entry.
                        if let Some(config) = self.imaging(command).await {
                            let mut later = VecDeque::new();
                            self.start(config, StartOptions::default(), &mut commands, &mut events, &mut later).await;
                            while let Some(command) = later.pop_front() {
                                self.handle(command).await;
                            }
                        }
                    }
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                event = events.recv() => self.on_event(event),
                _ = tick.tick() => self.refresh(),
            }
        }
        self.stop().await;
    }

    fn on_event(&self, event: Result<EngineEvent, RecvError>) {
        match event {
            Ok(event) => self.shared.update(move |s| s.record(&event, now_ms())),
            Err(RecvError::Lagged(missed)) => self.shared.update(move |s| {
                s.push_log(LogLine {
                    at_ms: now_ms(),
                    level: Level::Warn,
                    mac: None,
                    ip: None,
                    text: format!("{missed} events were dropped: the window could not keep up"),
                })
            }),
            Err(RecvError::Closed) => {}
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            // Starts come through `run`, which keeps listening for Stop while they go on.
            Command::Start { config, options } => {
                let (_tx, mut none) = unbounded_channel();
                let mut events = self.events.subscribe();
                self.start(*config, options, &mut none, &mut events, &mut VecDeque::new()).await
            }
            Command::Stop => {
                self.end_imaging();
                self.stop().await
            }
            Command::Imaging(command) => {
                if let Some(config) = self.imaging(command).await {
                    let (_tx, mut none) = unbounded_channel();
                    let mut events = self.events.subscribe();
                    self.start(config, StartOptions::default(), &mut none, &mut events, &mut VecDeque::new()).await
                }
            }
            Command::Scan { interface, listen } => self.scan(interface, listen),
            Command::NextBoot { mac, boot } => {
                match boot {
                    Some(boot) => self.next_boot.plan(mac, boot),
                    None => drop(self.next_boot.cancel(mac)),
                }
                let planned = self.next_boot.all();
                self.sent.next_boots = planned.clone();
                self.shared.update(move |s| s.next_boots = planned);
            }
            Command::Validate(config) => {
                let shared = self.shared.clone();
                // Reads the disk (root, boot files) and the interface list: not on a runtime worker.
                let _ = tokio::task::spawn_blocking(move || {
                    let errors = validate_config(&config);
                    let validation = Validation::of(*config, errors);
                    shared.update(move |s| s.validation = Some(validation));
                })
                .await;
            }
            Command::Save(config) => {
                let result = match &self.store {
                    Some(store) => store.save(&config).map(|()| store.path()).map_err(|err| err.to_string()),
                    None => Err("this system has no home folder to keep settings in".to_string()),
                };
                self.shared.update(move |s| s.saved = Some(result));
            }
            Command::RefreshInterfaces => {
                let (interfaces, privileges, elevated) =
                    tokio::task::spawn_blocking(|| (list_interfaces(), Privileges::of_this_process(), is_elevated()))
                        .await
                        .unwrap_or_default();
                self.shared.update(move |s| {
                    s.interfaces = Some(interfaces);
                    s.privileges = privileges;
                    s.elevated = elevated;
                });
            }
        }
    }

    /// Starts an engine; a Stop that comes meanwhile (full DHCP's safety probe takes
    /// 4.5 s) cancels the start. Events keep reaching the log; other commands wait in `later`.
    async fn start(
        &mut self,
        config: Config,
        mut options: StartOptions,
        commands: &mut UnboundedReceiver<Command>,
        events: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
        later: &mut VecDeque<Command>,
    ) {
        self.stop().await;
        self.shared.update(move |s| {
            s.state = RunState::Starting;
            s.last_error = None;
            s.service_errors.clear();
            s.conflicts.clear();
        });
        // Leases beside the capture, in the window's data folder, unless Settings chose a
        // folder (with PORTAPXE_CONFIG_DIR that folder is not the platform's).
        let mut config = config;
        if config.state_dir.is_none() {
            config.state_dir = self.data_dir.clone();
        }
        let capture_file = self.capture_file(&options);
        if options.capture_file.is_none() {
            options.capture_file = capture_file.clone();
        }
        // The agent's routes are always served; the entry only while seats are sent to it.
        options.imaging = options.imaging.or_else(|| self.imaging.hub.clone());
        options.next_boot = self.next_boot.clone();
        let asked = config.clone();
        let config = self.with_imaging(config);
        let cancel = options.cancel.get_or_insert_with(Default::default).clone();
        let starting = Engine::start_with(config, self.events.clone(), options);
        tokio::pin!(starting);
        let mut listening = true;
        let result = loop {
            tokio::select! {
                result = &mut starting => break result,
                event = events.recv() => self.on_event(event),
                command = commands.recv(), if listening => match command {
                    Some(Command::Stop) => {
                        cancel.cancel();
                        self.end_imaging();
                        self.shared.update(move |s| s.state = RunState::Stopping);
                    }
                    Some(Command::Start { .. }) => {} // one start at a time; the button is not shown
                    Some(command) => later.push_back(command),
                    None => {
                        listening = false;
                        cancel.cancel();
                    }
                },
            }
        };
        match result {
            Ok(engine) => {
                let status = engine.status().clone();
                let capture = match (&status.capture, capture_file) {
                    (CaptureStatus::Running, Some(file)) => CaptureState::Recording(file),
                    (CaptureStatus::Running, None) => {
                        CaptureState::Unavailable("no data folder to record the capture in".into())
                    }
                    (other, _) => CaptureState::Unavailable(other.to_string()),
                };
                self.engine = Some(engine);
                self.serving = Some(asked);
                self.shared.update(move |s| {
                    s.state = RunState::Running;
                    s.status = Some(status);
                    s.capture = capture;
                });
                self.refresh();
            }
            Err(EngineError::Cancelled) => {
                self.shared.update(move |s| {
                    s.state = RunState::Stopped;
                    s.status = None;
                    s.push_log(LogLine {
                        at_ms: now_ms(),
                        level: Level::Info,
                        mac: None,
                        ip: None,
                        text: "start cancelled: nothing is served".into(),
                    });
                });
            }
            Err(err) => {
                let failure = StartFailure::from_error(&err);
                self.shared.update(move |s| {
                    s.state = RunState::Stopped;
                    s.status = None;
                    s.push_log(LogLine {
                        at_ms: now_ms(),
                        level: Level::Warn,
                        mac: None,
                        ip: None,
                        text: format!("cannot start: {}", failure.message),
                    });
                    s.last_error = Some(failure);
                });
            }
        }
    }

    /// Where this session's capture goes: the data folder, made if missing (when it
    /// cannot be, the engine's recorder says so in the log and serving goes on).
    fn capture_file(&self, options: &StartOptions) -> Option<PathBuf> {
        if let Some(file) = &options.capture_file {
            return Some(file.clone());
        }
        let dir = self.data_dir.as_ref()?;
        let _ = portapxe_engine::config::create_private_dir(dir);
        Some(dir.join(CAPTURE_FILE))
    }

    async fn stop(&mut self) {
        let Some(engine) = self.engine.take() else { return };
        Self::refresh_from(&self.shared, &mut self.sent, &engine);
        self.shared.update(move |s| s.state = RunState::Stopping);
        engine.stop().await;
        self.shared.update(move |s| {
            s.state = RunState::Stopped;
            s.status = None;
        });
    }

    fn scan(&self, interface: String, listen: Duration) {
        let shared = self.shared.clone();
        let ours = self.engine.as_ref().map(|engine| vec![engine.status().server_ip]).unwrap_or_default();
        let scanning = interface.clone();
        shared.update(move |s| s.scan = ScanState::Running { interface: scanning });
        tokio::spawn(async move {
            let result = match find_up_interface(&interface) {
                Ok(found) => probe(&ProbeSettings {
                    interface: (&found).into(),
                    address: found.facts().map(|facts| facts.address),
                    listen,
                    server_port: 67,
                    boot_server_port: 4011,
                    ours,
                })
                .await
                .map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            };
            shared.update(move |s| {
                s.scan = match result {
                    Ok(servers) => ScanState::Done { interface, servers },
                    Err(message) => ScanState::Failed(message),
                }
            });
        });
    }

    /// Every 250 ms. Only what changed since the last refresh is sent: while the window
    /// draws no frame (minimised) the changes wait in the channel, so unchanged tables must
    /// not pile up there.
    fn refresh(&mut self) {
        // Plans are used up by the engine when their machine boots.
        let planned = self.next_boot.all();
        if planned != self.sent.next_boots {
            self.sent.next_boots = planned.clone();
            self.shared.update(move |s| s.next_boots = planned);
        }
        match &self.engine {
            Some(engine) => Self::refresh_from(&self.shared, &mut self.sent, engine),
            None => self.shared.update(move |s| s.now_ms = now_ms()),
        }
    }

    fn refresh_from(shared: &Shared, sent: &mut Sent, engine: &Engine) {
        let clients = engine.clients();
        let seen = engine.conflicts();
        let clients = (clients != sent.clients).then(|| {
            sent.clients = clients.clone();
            clients
        });
        shared.update(move |s| {
            s.now_ms = now_ms();
            if let Some(clients) = clients {
                s.clients = clients;
            }
            // Sightings the engine knows but no event named yet (e.g. from the start probe).
            for server in seen {
                if !s.conflicts.iter().any(|c| c.server.key() == server.key()) {
                    let summary = server.describe();
                    s.conflicts.push(ConflictEntry { server, summary, expected: false });
                }
            }
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_cap_eff() {
        let root = "Name:\tportapxe\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(Privileges::from_proc_status(root), Some(Privileges { bind_low_ports: true, capture: true }));
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(Privileges::from_proc_status(user), Some(Privileges { bind_low_ports: false, capture: false }));
        let setcap = "CapEff:\t0000000000002400\n";
        assert_eq!(Privileges::from_proc_status(setcap), Some(Privileges { bind_low_ports: true, capture: true }));
        assert_eq!(Privileges::from_proc_status("Name: x\n"), None);
    }

    #[test]
    fn the_log_is_bounded_and_progress_stays_out_of_it() {
        let mut snapshot = UiSnapshot::default();
        let transfer = |phase| {
            EngineEvent::Transfer(portapxe_engine::events::TransferEvent {
                protocol: portapxe_engine::events::Protocol::Tftp,
                client: "10.0.0.9:2000".parse().unwrap(),
                file: "ipxe.efi".into(),
                phase,
            })
        };
        snapshot.record(&transfer(TransferPhase::Progress { bytes: 1, size: None }), 1);
        assert!(snapshot.log.is_empty());
        for n in 0..LOG_CAPACITY as u64 + 10 {
            snapshot.record(&transfer(TransferPhase::Started { size: None }), n);
        }
        assert_eq!(snapshot.log.len(), LOG_CAPACITY);
        assert_eq!(snapshot.log.front().map(|l| l.at_ms), Some(10));
        assert_eq!(snapshot.log[0].ip, Some(std::net::Ipv4Addr::new(10, 0, 0, 9)));
    }
}
