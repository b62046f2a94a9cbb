//! The engine thread's side of classroom imaging: the hub the HTTP routes talk to (its
//! image folder is `images` in the window's data folder), the seats sent to the imaging
//! entry, and the multicast restore session running beside the engine.
//!
//! PortaPXE's generated menus ask per MAC what to boot first (`next_boot`), so a capture
//! or a restore only tells the hub: serving goes on, nothing is cut off. With the user's
//! own iPXE script there is no such question in the menu: then serving starts again with
//! the imaging entry added and the seats pinned to it (a few seconds; full DHCP's safety
//! probe runs again), refused while a capture arrives or a restore runs.

use std::sync::Arc;

use portapxe_engine::config::Config;
use portapxe_engine::events::MacAddr;
use portapxe_engine::imaging::entry::{AgentFiles, add_imaging_entry, check_agent_served, set_agent_boot};
use portapxe_engine::imaging::hub::{ImagingHub, RestoreOffer, Seats};
use portapxe_engine::imaging::image::{self, Image};
use portapxe_engine::imaging::multicast::wire::{DEFAULT_PORT_BASE, default_group};
use portapxe_engine::imaging::multicast::{Link, SenderSettings, StartWhen, run_session};
use portapxe_engine::net::find_up_interface;

use super::{Actor, Shared};
use crate::gui::imaging_state::{CaptureProgress, CaptureRow, ImageRow, ImagingCommand, ImagingState, RestoreSeats};

/// What the actor keeps for imaging.
#[derive(Default)]
pub(super) struct ImagingSide {
    pub hub: Option<Arc<ImagingHub>>,
    /// Seats sent to the imaging entry while serving (`Some(empty)`: every machine).
    pins: Option<Vec<MacAddr>>,
    restore: Option<tokio::task::JoinHandle<()>>,
}

impl ImagingSide {
    pub fn new(hub: Option<Arc<ImagingHub>>) -> Self {
        Self { hub, ..Self::default() }
    }
}

fn notice(shared: &Shared, result: Result<String, String>) {
    shared.update(move |s| s.imaging.notice = Some(result));
}

/// Says why an imaging action cannot be done; serving goes on unchanged.
fn refuse(shared: &Shared, why: String) -> Option<Config> {
    notice(shared, Err(why));
    None
}

impl Actor {
    /// `config` as it is served: with the imaging entry while seats are sent to it.
    pub(super) fn with_imaging(&self, mut config: Config) -> Config {
        let (Some(pins), Some(hub)) = (&self.imaging.pins, &self.imaging.hub) else { return config };
        match find_up_interface(&config.interface).ok().and_then(|found| found.facts()) {
            Some(facts) => add_imaging_entry(&mut config, hub, facts.address, &AgentFiles::default(), pins),
            None => notice(&self.shared, Err(format!("{} has no IPv4 address: imaging is off", config.interface))),
        }
        config
    }

    /// The person stopped serving: no seat goes to imaging any more, captures still
    /// waiting end, and the restore session stops.
    pub(super) fn end_imaging(&mut self) {
        self.imaging.pins = None;
        if let Some(task) = self.imaging.restore.take() {
            task.abort();
            self.shared.update(move |s| s.imaging.end_session(Err("serving was stopped".into())));
        }
        if let Some(hub) = &self.imaging.hub {
            hub.stop_all();
        }
    }

    /// Whether serving again now would cut off a capture arriving or a restore running.
    fn busy(&self) -> Option<&'static str> {
        if self.imaging.restore.as_ref().is_some_and(|task| !task.is_finished()) {
            return Some("the restore session under way");
        }
        self.imaging.hub.as_ref().is_some_and(|hub| hub.receiving()).then_some("the capture arriving")
    }

    /// Why `macs` cannot be sent to imaging now, when that needs serving again.
    fn cannot_serve_again(&self, macs: &[MacAddr]) -> Option<String> {
        let changes = match &self.imaging.pins {
            None => true,
            Some(pins) if pins.is_empty() => false,
            Some(pins) => macs.is_empty() || macs.iter().any(|mac| !pins.contains(mac)),
        };
        let what = self.busy().filter(|_| changes)?;
        Some(format!(
            "serving must restart to send these machines to imaging, which would cut off {what}: wait until it \
             ends, or press Stop"
        ))
    }

    /// Carries out one imaging command. Returns the config to serve again with when the
    /// seats sent to imaging changed.
    pub(super) async fn imaging(&mut self, command: ImagingCommand) -> Option<Config> {
        match command {
            ImagingCommand::ListImages => {
                self.list_images().await;
                None
            }
            ImagingCommand::Capture { mac, name } => self.capture(mac, name),
            ImagingCommand::Restore { image, seats, wait } => self.restore(image, seats, wait),
            ImagingCommand::StopRestore => {
                if let Some(task) = self.imaging.restore.take() {
                    task.abort();
                }
                if let Some(hub) = &self.imaging.hub {
                    hub.end_restore();
                }
                self.shared.update(move |s| s.imaging.end_session(Err("stopped from the window".into())));
                None
            }
            ImagingCommand::CancelCapture(mac) => {
                let cancelled = self.imaging.hub.as_ref().is_some_and(|hub| hub.cancel_capture(mac));
                let said = if cancelled {
                    Ok(format!("capture of {mac} cancelled"))
                } else {
                    Err(format!("no capture of {mac} to cancel"))
                };
                notice(&self.shared, said);
                None
            }
            ImagingCommand::Wake { interface, macs } => {
                let sent = tokio::task::spawn_blocking(move || {
                    let found = find_up_interface(&interface).map_err(|err| err.to_string())?;
                    let facts = found.facts().ok_or_else(|| format!("{interface} has no IPv4 address to send from"))?;
                    portapxe_engine::wake::wake(&(&found).into(), &facts, &macs)
                        .map(|woken| format!("wake packets sent for {} machines to {}", woken.macs.len(), woken.to))
                        .map_err(|err| err.to_string())
                })
                .await
                .unwrap_or_else(|err| Err(err.to_string()));
                notice(&self.shared, sent);
                None
            }
        }
    }

    async fn list_images(&self) {
        let Some(hub) = &self.imaging.hub else { return };
        let folder = hub.images().to_path_buf();
        let listed = tokio::task::spawn_blocking(move || {
            if !folder.exists() {
                return Ok(Vec::new());
            }
            image::list(&folder).map(|all| all.iter().map(ImageRow::from_listed).collect()).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|err| Err(err.to_string()));
        self.shared.update(move |s| s.imaging.images = Some(listed));
    }

    /// The config being served, and the agent served with it; else why imaging cannot begin.
    fn ready_to_image(&self) -> Result<(Arc<ImagingHub>, Config), String> {
        let hub = self.imaging.hub.clone().ok_or("this system names no data folder to keep images in")?;
        let config = match (&self.engine, &self.serving) {
            (Some(_), Some(config)) => config.clone(),
            _ => return Err("start serving first: the machines boot the imaging agent from PortaPXE".into()),
        };
        check_agent_served(&config, &AgentFiles::default()).map_err(|err| err.to_string())?;
        Ok((hub, config))
    }

    /// Whether the menu served asks the hub per MAC (PortaPXE's generated menu): then the
    /// hub is told how seats start the agent, and nothing needs serving again.
    fn asked_by_menu(&self, hub: &ImagingHub, config: &Config) -> Result<bool, String> {
        if config.boot.ipxe_script.is_some() {
            return Ok(false);
        }
        let found = find_up_interface(&config.interface).map_err(|err| err.to_string())?;
        let facts = found.facts().ok_or_else(|| format!("{} has no IPv4 address: imaging is off", config.interface))?;
        set_agent_boot(config, hub, facts.address, &AgentFiles::default());
        Ok(true)
    }

    /// Sends `macs` (every machine when empty) to the imaging entry, beside those already
    /// sent. Returns whether that changed what is served (then it serves again).
    fn pin(&mut self, macs: &[MacAddr]) -> bool {
        match &mut self.imaging.pins {
            Some(pins) if pins.is_empty() => false,
            Some(pins) if !macs.is_empty() => {
                let before = pins.len();
                for mac in macs {
                    if !pins.contains(mac) {
                        pins.push(*mac);
                    }
                }
                pins.len() != before
            }
            pins => {
                *pins = Some(macs.to_vec());
                true
            }
        }
    }

    fn capture(&mut self, mac: MacAddr, name: String) -> Option<Config> {
        let (hub, config) = match self.ready_to_image() {
            Ok(ready) => ready,
            Err(why) => return refuse(&self.shared, why),
        };
        let by_menu = match self.asked_by_menu(&hub, &config) {
            Ok(by_menu) => by_menu,
            Err(why) => return refuse(&self.shared, why),
        };
        if let Some(why) = self.cannot_serve_again(&[mac]).filter(|_| !by_menu) {
            return refuse(&self.shared, why);
        }
        if let Err(err) = hub.arm_capture(mac, &name) {
            return refuse(&self.shared, err.to_string());
        }
        let serve_again = !by_menu && self.pin(&[mac]);
        self.shared.update(move |s| {
            s.imaging.captures.push(CaptureRow { mac, name: name.clone(), state: CaptureProgress::Waiting });
            s.imaging.notice = Some(Ok(format!("capture of {mac} into {name:?}: network-boot that machine now")));
        });
        serve_again.then_some(config)
    }

    fn restore(&mut self, name: String, seats: RestoreSeats, wait: std::time::Duration) -> Option<Config> {
        let (hub, config) = match self.ready_to_image() {
            Ok(ready) => ready,
            Err(why) => return refuse(&self.shared, why),
        };
        if self.imaging.restore.as_ref().is_some_and(|task| !task.is_finished()) {
            return refuse(&self.shared, "a restore session is already running: stop it first".into());
        }
        let wanted = match &seats {
            RestoreSeats::NextThatBoot(_) => Vec::new(),
            RestoreSeats::Only(macs) => macs.clone(),
        };
        let by_menu = match self.asked_by_menu(&hub, &config) {
            Ok(by_menu) => by_menu,
            Err(why) => return refuse(&self.shared, why),
        };
        if let Some(why) = self.cannot_serve_again(&wanted).filter(|_| !by_menu) {
            return refuse(&self.shared, why);
        }
        let prepared = (|| -> Result<_, String> {
            let image = Image::open(hub.images(), &name).map_err(|err| err.to_string())?;
            let stream = image.stream().map_err(|err| err.to_string())?;
            let interface = find_up_interface(&config.interface).map_err(|err| err.to_string())?;
            let facts = interface.facts().ok_or_else(|| format!("{} has no IPv4 address", interface.name))?;
            let link = Link {
                interface: (&interface).into(),
                address: facts.address,
                broadcast: *portapxe_engine::wake::destination(&facts).ip(),
                port_base: DEFAULT_PORT_BASE,
            };
            Ok((image, stream, link))
        })();
        let (image, mut stream, link) = match prepared {
            Ok(prepared) => prepared,
            Err(why) => return refuse(&self.shared, why),
        };
        let (count, offer_seats, pins) = match seats {
            RestoreSeats::NextThatBoot(count) => (count.max(1), Seats::Any, Vec::new()),
            RestoreSeats::Only(macs) => (macs.len().max(1), Seats::Only(macs.clone()), macs),
        };
        let settings = SenderSettings::new(default_group(link.address), StartWhen { seats: Some(count), wait });
        hub.offer_restore(RestoreOffer {
            name: image.manifest.name.clone(),
            id: image.manifest.id.clone(),
            port_base: link.port_base,
            seats: offer_seats,
        });
        let serve_again = !by_menu && self.pin(&pins);
        let total = stream.len();
        self.shared.update(move |s| {
            s.imaging.begin_restore(name.clone(), total);
            s.imaging.notice = Some(Ok(format!("restore of {name:?} offered: network-boot the seats now")));
        });
        // The sender never waits for the window's lock (held while a frame is drawn):
        // its events go through a channel to a task that updates the snapshot.
        let (events, mut arrived) = tokio::sync::mpsc::unbounded_channel();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some(event) = arrived.recv().await {
                shared.update(move |s: &mut super::UiSnapshot| s.imaging.on_session(&event));
            }
        });
        let shared = self.shared.clone();
        self.imaging.restore = Some(tokio::spawn(async move {
            let report = |event: &_| {
                let _ = events.send(Clone::clone(event));
            };
            let ended = run_session(&link, settings, &mut stream, report).await;
            hub.end_restore();
            if let Err(err) = ended {
                shared.update(move |s| s.imaging.end_session(Err(err.to_string())));
            }
        }));
        serve_again.then_some(config)
    }
}

/// The folder the window keeps images in, for the imaging tab to show.
pub(super) fn initial_state(hub: Option<&ImagingHub>) -> ImagingState {
    ImagingState { folder: hub.map(|hub| hub.images().to_path_buf()), ..ImagingState::default() }
}
