//! Everything the engine tells the outside world happens through [`EngineEvent`]s.
//!
//! Services emit into an [`EventSink`]; the CLI logs them, the GUI and the client
//! registry subscribe. Emitting never blocks and never fails: with no subscriber,
//! or a subscriber that lags, events are dropped rather than slowing a transfer.

use std::net::{Ipv4Addr, SocketAddr};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it loses some.
const EVENT_BACKLOG: usize = 4096;

/// A hardware address as the DHCP client sent it (Ethernet: 6 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// Written as `52:54:00:12:34:56` in event streams, lease files and configs.
impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!("`{s}` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)"));
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(parts) {
            *byte = u8::from_str_radix(part, 16)
                .map_err(|_| format!("`{s}` is not a MAC address: `{part}` is not a hex byte"))?;
        }
        Ok(MacAddr(mac))
    }
}

/// One thing that happened inside the engine.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineEvent {
    Dhcp(DhcpEvent),
    Transfer(TransferEvent),
    Service(ServiceEvent),
    Conflict(ConflictEvent),
    /// Another server's reply to a client, seen by packet capture.
    Wire(WireDhcp),
}

/// A DHCP reply from another server, as captured.
#[derive(Debug, Clone, Serialize)]
pub struct WireDhcp {
    pub client: MacAddr,
    pub server: Ipv4Addr,
    pub server_mac: MacAddr,
    pub message: String,
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

/// What the DHCP service did with one client message.
#[derive(Debug, Clone, Serialize)]
pub struct DhcpEvent {
    pub mac: MacAddr,
    /// DHCP message type received, e.g. "DISCOVER".
    pub received: String,
    /// What we answered ("OFFER", "ACK", "NAK") or `None` when we stayed silent.
    pub answered: Option<String>,
    pub address: Option<Ipv4Addr>,
    /// Client architecture as a human label ("BIOS", "UEFI x64", …), when the client sent one.
    pub arch: Option<String>,
    /// Option 60 as the client sent it.
    pub vendor_class: Option<String>,
    pub is_ipxe: bool,
    /// The boot file or URL we handed out, if any.
    pub boot: Option<String>,
    /// Why we answered the way we did, in plain words.
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tftp,
    Http,
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
    },
}

/// A service started, stopped or failed.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceEvent {
    pub service: String,
    pub message: String,
    pub ok: bool,
}

/// Cheap to clone; every service holds one.
#[derive(Clone)]
pub struct EventSink {
    tx: broadcast::Sender<EngineEvent>,
}

impl Default for EventSink {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_BACKLOG);
        Self { tx }
    }

    pub fn emit(&self, event: EngineEvent) {
        // An error only means nobody listens right now, which is fine.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }
}
