//! What the window draws from: the [`UiSnapshot`] the engine thread's changes are applied
//! to, and its parts (run state, start failure, log, scan, validation, capture). Pure:
//! updated from engine events by `record`, unit-tested without a window.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use portapxe_engine::clients::ClientRecord;
use portapxe_engine::config::{BootEntry, Config, ConfigError};
use portapxe_engine::detect::ServerSighting;
use portapxe_engine::events::{MacAddr, NextBoot, TransferPhase};
use portapxe_engine::iso::IsoPlan;
use portapxe_engine::net::InterfaceInfo;
use portapxe_engine::served::MountedImage;
use portapxe_engine::signature::SecureBootProblem;
use portapxe_engine::{EngineError, EngineEvent, EngineStatus, SignedChain};

use crate::event_text::{Level, describe};
use crate::gui::imaging_state::ImagingState;

use super::{LOG_CAPACITY, Privileges, now_ms};

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
    pub secure_boot_problems: Vec<Option<SecureBootProblem>>,
    /// Per boot entry, for an ISO: its image read and mounted (what boots follows from it),
    /// or why the image cannot be read.
    pub iso_images: Vec<Option<Result<MountedImage, String>>>,
    /// Per boot entry, for an ISO read: what boots it (its own signed chain only where used).
    pub iso_plans: Vec<Option<IsoPlan>>,
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
        let iso_plans: Vec<Option<IsoPlan>> = config
            .boot
            .entries
            .iter()
            .zip(&iso_images)
            .map(|(entry, mounted)| match (entry, mounted) {
                (BootEntry::Iso { append, loader, .. }, Some(Ok(mounted))) => {
                    Some(portapxe_engine::iso_entry_plan(mounted, append, *loader))
                }
                _ => None,
            })
            .collect();
        let secure_boot_problems = config
            .boot
            .entries
            .iter()
            .zip(iso_images.iter().zip(&iso_plans))
            .map(|(entry, images)| match (entry, images) {
                (BootEntry::Iso { .. }, (Some(Ok(mounted)), Some(planned))) => {
                    portapxe_engine::iso_secure_boot_problem(planned, mounted)
                }
                (BootEntry::Iso { .. }, _) => None,
                _ => portapxe_engine::entry_secure_boot_problem(&config, entry),
            })
            .collect();
        Self { config, errors, signed_chain, signed_arm64, secure_boot_problems, iso_images, iso_plans }
    }

    /// A check with nothing found: no errors, the signed chain in use, every entry fine.
    pub fn passed(config: Config) -> Self {
        let secure_boot_problems = vec![None; config.boot.entries.len()];
        let iso_images = vec![None; config.boot.entries.len()];
        let iso_plans = vec![None; config.boot.entries.len()];
        Self {
            config,
            errors: Vec::new(),
            signed_chain: SignedChain::Used,
            signed_arm64: false,
            secure_boot_problems,
            iso_images,
            iso_plans,
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

#[cfg(test)]
mod tests {
    use super::*;

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
