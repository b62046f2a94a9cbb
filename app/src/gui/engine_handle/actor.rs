//! The engine thread: the actor that carries out the window's commands with a tokio
//! runtime (start, stop, scan, validate, save, interfaces, imaging, one-off boots) and
//! sends what changed to the window's snapshot (events, and every 250 ms).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portapxe_engine::clients::ClientRecord;
use portapxe_engine::config::{Config, ConfigStore};
use portapxe_engine::detect::probe::{ProbeSettings, probe};
use portapxe_engine::events::{MacAddr, NextBoot, TransferPhase};
use portapxe_engine::net::{find_up_interface, list_interfaces};
use portapxe_engine::next_boot::NextBootTable;
use portapxe_engine::{CaptureStatus, Engine, EngineError, EngineEvent, EventSink, StartOptions};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::event_text::Level;

use super::{
    CAPTURE_FILE, CaptureState, Command, ConflictEntry, LogLine, Privileges, REFRESH, Repaint, RunState, ScanState,
    StartFailure, UiSnapshot, Validation, imaging, is_elevated, now_ms, request_repaint, validate_config,
};

/// A change to the window's snapshot, made on the engine thread, applied on the window's.
pub(super) type Change = Box<dyn FnOnce(&mut UiSnapshot) + Send>;

#[derive(Clone)]
pub(super) struct Shared {
    pub(super) changes: std::sync::mpsc::Sender<Change>,
    pub(super) repaint: Repaint,
}

impl Shared {
    /// Sends `change` to the window (never waits) and asks for a frame to apply it.
    pub(super) fn update(&self, change: impl FnOnce(&mut UiSnapshot) + Send + 'static) {
        let _ = self.changes.send(Box::new(change));
        request_repaint(&self.repaint);
    }
}

pub(super) struct Actor {
    pub(super) shared: Shared,
    pub(super) events: EventSink,
    pub(super) store: Option<ConfigStore>,
    pub(super) engine: Option<Engine>,
    /// The config the running engine was started with, before imaging's entry.
    pub(super) serving: Option<Config>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) imaging: imaging::ImagingSide,
    /// One-off boots, kept across starts; every engine reads them when a machine asks.
    pub(super) next_boot: Arc<NextBootTable>,
    pub(super) sent: Sent,
}

/// What the periodic refresh last sent to the window.
#[derive(Default)]
pub(super) struct Sent {
    /// How many sightings of other servers the engine had.
    pub(super) sightings: usize,
    /// A tick (the clock for "last seen") is on its way to the window, not yet applied.
    pub(super) tick_pending: Arc<std::sync::atomic::AtomicBool>,
    pub(super) clients: Vec<ClientRecord>,
    pub(super) next_boots: Vec<(MacAddr, NextBoot)>,
}

impl Actor {
    pub(super) async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
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
            // Per-block progress changes nothing the window keeps (the clients table comes
            // from the registry): not sent, so a minimised window's queue stays small.
            Ok(EngineEvent::Transfer(transfer)) if matches!(transfer.phase, TransferPhase::Progress { .. }) => {}
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
        Self::refresh_from(&self.shared, &mut self.sent, Some(&engine));
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
        Self::refresh_from(&self.shared, &mut self.sent, self.engine.as_ref());
    }

    /// The clock, and what the engine (when one runs) has that the window lacks.
    fn refresh_from(shared: &Shared, sent: &mut Sent, engine: Option<&Engine>) {
        let clients = engine.map(Engine::clients).filter(|clients| *clients != sent.clients).inspect(|clients| {
            sent.clients = clients.clone();
        });
        let seen = engine.map(Engine::conflicts).filter(|seen| seen.len() != sent.sightings).inspect(|seen| {
            sent.sightings = seen.len();
        });
        // Nothing new, and the window has not yet taken the last tick (it draws no frame
        // while minimised): no second one behind it.
        let ticking = sent.tick_pending.swap(true, std::sync::atomic::Ordering::AcqRel);
        if clients.is_none() && seen.is_none() && ticking {
            return;
        }
        let tick_pending = sent.tick_pending.clone();
        shared.update(move |s| {
            tick_pending.store(false, std::sync::atomic::Ordering::Release);
            s.now_ms = now_ms();
            if let Some(clients) = clients {
                s.clients = clients;
            }
            // Sightings the engine knows but no event named yet (e.g. from the start probe).
            for server in seen.into_iter().flatten() {
                if !s.conflicts.iter().any(|c| c.server.key() == server.key()) {
                    let summary = server.describe();
                    s.conflicts.push(ConflictEntry { server, summary, expected: false });
                }
            }
        });
    }
}
