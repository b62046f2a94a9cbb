//! Everything the engine tells the outside world, as typed [`EngineEvent`]s.
//!
//! Only the types live here; the engine's `EventSink` carries them (a channel, so it
//! is the engine's, not this crate's).

use std::net::{Ipv4Addr, SocketAddr};

use serde::Serialize;

pub use crate::mac::MacAddr;

mod dhcp;
mod imaging;
mod next_boot;
pub use crate::message_type::DhcpMessage;
pub use dhcp::{DhcpEvent, DhcpReason, DhcpRole};
pub use imaging::{ImagingEvent, ImagingWhat, SeatPhase, TaskGiven};
pub use next_boot::{NextBoot, NextBootEvent};

/// One thing that happened inside the engine.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineEvent {
    #[serde(serialize_with = "dhcp::with_note")]
    Dhcp(DhcpEvent),
    Transfer(TransferEvent),
    Service(ServiceEvent),
    Conflict(ConflictEvent),
    /// Another server's reply to a client, seen by packet capture.
    Wire(WireDhcp),
    /// Capture and restore of disk images.
    Imaging(ImagingEvent),
    /// A machine got (or missed) the one-off boot planned for it.
    NextBoot(NextBootEvent),
}

/// A DHCP reply from another server, as captured.
#[derive(Debug, Clone, Serialize)]
pub struct WireDhcp {
    pub client: MacAddr,
    pub server: Ipv4Addr,
    pub server_mac: MacAddr,
    pub message: DhcpMessage,
    pub address: Option<Ipv4Addr>,
}

/// Another DHCP or proxyDHCP server showed up on the segment.
#[derive(Debug, Clone, Serialize)]
pub struct ConflictEvent {
    pub server: crate::detect::ServerSighting,
    /// What it means and what to do, in plain words.
    pub summary: String,
    /// The network's own DHCP server in proxy or boot-files-only mode: expected, not a fault.
    pub expected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tftp,
    Http,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tftp => "TFTP",
            Self::Http => "HTTP",
        })
    }
}

/// Progress of one file transfer (TFTP read or HTTP GET).
#[derive(Debug, Clone, Serialize)]
pub struct TransferEvent {
    pub protocol: Protocol,
    pub client: SocketAddr,
    /// The file as the client named it.
    pub file: String,
    pub phase: TransferPhase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum TransferPhase {
    Started {
        size: Option<u64>,
    },
    Progress {
        bytes: u64,
        size: Option<u64>,
    },
    Finished {
        bytes: u64,
    },
    Failed {
        bytes: u64,
        reason: String,
    },
    /// Refused before a byte was sent: bad path, not found, write request, ….
    Refused {
        reason: String,
        /// The file is not there (as opposed to a name or request we refuse).
        not_found: bool,
    },
}

/// A service started, stopped or failed.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceEvent {
    pub service: Service,
    pub message: String,
    pub ok: bool,
}

/// Which part of the engine a [`ServiceEvent`] is about (its name in the event stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Engine,
    Dhcp,
    ProxyDhcp,
    Tftp,
    Http,
    /// The watcher for other DHCP servers.
    Detect,
    Capture,
    /// Router advertisements ("no router here").
    Ipv6,
    /// What is booted: the signed chain, kernels that need Secure Boot off.
    Boot,
    /// The open-file limit.
    Files,
}

impl Service {
    /// A help beside serving: when it fails, serving goes on and the log says why.
    pub fn is_help(self) -> bool {
        matches!(self, Self::Capture | Self::Ipv6 | Self::Boot | Self::Files)
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Engine => "engine",
            Self::Dhcp => "dhcp",
            Self::ProxyDhcp => "proxydhcp",
            Self::Tftp => "tftp",
            Self::Http => "http",
            Self::Detect => "detect",
            Self::Capture => "capture",
            Self::Ipv6 => "ipv6",
            Self::Boot => "boot",
            Self::Files => "files",
        })
    }
}
