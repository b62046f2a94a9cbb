//! One engine event in words, for the CLI's log lines and the window's log panel,
//! so both say the same thing the same way.

use portapxe_engine::EngineEvent;
use portapxe_engine::events::{DhcpEvent, TransferEvent, TransferPhase};

/// How much an event matters to the person watching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug,
    Info,
    Warn,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Debug, Level::Info, Level::Warn];

    pub fn label(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
        }
    }
}

/// The event as one log line, with how much it matters.
pub fn describe(event: &EngineEvent) -> (Level, String) {
    match event {
        EngineEvent::Dhcp(dhcp) => (Level::Info, describe_dhcp(dhcp)),
        EngineEvent::Transfer(transfer) => describe_transfer(transfer),
        EngineEvent::Service(service) if service.ok => {
            (Level::Info, format!("{}: {}", service.service, service.message))
        }
        EngineEvent::Service(service) => (Level::Warn, format!("{}: {}", service.service, service.message)),
        EngineEvent::Conflict(conflict) if conflict.expected => (Level::Info, conflict.summary.clone()),
        EngineEvent::Conflict(conflict) if !conflict.server.provenance.serves_this_segment() => {
            (Level::Warn, conflict.summary.clone())
        }
        EngineEvent::Conflict(conflict) => (Level::Warn, format!("CONFLICT: {}", conflict.summary)),
        EngineEvent::Imaging(imaging) => {
            use portapxe_engine::events::{ImagingWhat, SeatPhase};
            let level = match &imaging.what {
                ImagingWhat::CaptureFailed { .. } | ImagingWhat::Refused { .. } => Level::Warn,
                ImagingWhat::Seat { phase: SeatPhase::Failed, .. } => Level::Warn,
                _ => Level::Info,
            };
            (level, imaging.to_string())
        }
        EngineEvent::NextBoot(next) => (if next.given { Level::Info } else { Level::Warn }, next.to_string()),
        EngineEvent::Wire(wire) => (
            Level::Debug,
            format!(
                "seen: {} from server {} to {}{}",
                wire.message,
                wire.server,
                wire.client,
                wire.address.map(|a| format!(" ({a})")).unwrap_or_default()
            ),
        ),
    }
}

fn describe_dhcp(event: &DhcpEvent) -> String {
    let mut who = event.mac.to_string();
    if let Some(arch) = &event.arch {
        who.push_str(&format!(" ({arch}{})", if event.is_ipxe { ", iPXE" } else { "" }));
    }
    let answer = match (event.answered_text(), event.address) {
        (Some(kind), Some(ip)) => format!("{kind} {ip}"),
        (Some(kind), None) => kind,
        (None, _) => "no reply".to_string(),
    };
    let boot = event.boot.as_deref().map(|b| format!(", boot {b}")).unwrap_or_default();
    let note = event.note();
    let note = if note.is_empty() { String::new() } else { format!(" — {note}") };
    format!("DHCP {} from {who} → {answer}{boot}{note}", event.received_text())
}

fn describe_transfer(event: &TransferEvent) -> (Level, String) {
    let what = format!("{} {} {}", event.protocol, event.client, event.file);
    match &event.phase {
        TransferPhase::Started { size } => {
            (Level::Info, format!("{what}: started ({})", size.map_or("size unknown".into(), |s| format!("{s} bytes"))))
        }
        TransferPhase::Progress { bytes, .. } => (Level::Debug, format!("{what}: {bytes} bytes")),
        TransferPhase::Finished { bytes } => (Level::Info, format!("{what}: finished, {bytes} bytes")),
        TransferPhase::Failed { bytes, reason } => {
            (Level::Warn, format!("{what}: failed after {bytes} bytes: {reason}"))
        }
        TransferPhase::Refused { reason, .. } => (Level::Warn, format!("{what}: refused: {reason}")),
    }
}
