//! The passive watcher: while PortaPXE serves, any OFFER or ACK from another
//! server that reaches this host raises a conflict event at once.

use std::io;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::classify::{ConflictDetector, ServerRole, ServerSighting, classify};
use crate::events::{ConflictEvent, EngineEvent, EventSink};
use crate::pxe::decode_message;

/// Shared by the watcher and the DHCP services (which see clients choose other servers).
#[derive(Clone)]
pub struct Conflicts {
    detector: Arc<Mutex<ConflictDetector>>,
    events: EventSink,
    /// In proxy and boot-files-only modes a DHCP server is supposed to be there.
    address_servers_expected: bool,
}

impl Conflicts {
    pub fn new(ours: Vec<Ipv4Addr>, address_servers_expected: bool, events: EventSink) -> Self {
        Self { detector: Arc::new(Mutex::new(ConflictDetector::new(ours))), events, address_servers_expected }
    }

    /// Reports `sighting` if it is a foreign server not reported before.
    pub fn observe(&self, sighting: ServerSighting) {
        let news = match self.detector.lock() {
            Ok(mut detector) => detector.observe(sighting),
            Err(poisoned) => poisoned.into_inner().observe(sighting),
        };
        if let Some(server) = news {
            let expected = self.address_servers_expected && server.role == ServerRole::AddressServer;
            let summary = match server.role {
                ServerRole::AddressServer if expected => {
                    format!("the network's DHCP server: {} (expected beside PortaPXE in this mode)", server.describe())
                }
                ServerRole::AddressServer => format!(
                    "another DHCP server is on this network: {}. Clients may take its offer instead of ours; \
                     use proxy mode beside it, or stop it",
                    server.describe()
                ),
                ServerRole::ProxyDhcp => format!(
                    "another PXE (proxyDHCP) server is on this network: {}. PXE clients may boot from it instead",
                    server.describe()
                ),
            };
            self.events.emit(EngineEvent::Conflict(ConflictEvent { server, summary, expected }));
        }
    }

    /// A client's REQUEST named `server_id` as the server whose offer it took.
    pub fn client_chose(&self, server_id: Ipv4Addr) {
        self.observe(ServerSighting {
            server_id,
            source: server_id,
            mac: None,
            role: ServerRole::AddressServer,
            message: "REQUEST (a client accepted its offer)".into(),
            offered_address: None,
            next_server: None,
            boot_file: None,
            pxe: false,
            boot_server_type: None,
        });
    }

    pub fn servers(&self) -> Vec<ServerSighting> {
        match self.detector.lock() {
            Ok(detector) => detector.servers(),
            Err(poisoned) => poisoned.into_inner().servers(),
        }
    }
}

/// Listens on the DHCP client port of `interface` (shared with any DHCP client
/// there) for server replies until the task is aborted.
pub fn start(interface: &str, client_port: u16, conflicts: Conflicts) -> io::Result<JoinHandle<()>> {
    let socket = super::probe::client_socket(interface, client_port)?;
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, std::net::SocketAddr::V4(peer))) = socket.recv_from(&mut buf).await else { continue };
            if let Ok(message) = decode_message(&buf[..len])
                && let Some(sighting) = classify(&message, *peer.ip(), None)
            {
                conflicts.observe(sighting);
            }
        }
    }))
}
