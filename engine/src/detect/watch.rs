//! The passive watcher: while PortaPXE serves, any OFFER or ACK from another
//! server that reaches this host raises a conflict event at once.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::classify::{ConflictDetector, ServerRole, ServerSighting, classify};
use crate::events::{ConflictEvent, EngineEvent, EventSink, Service, ServiceEvent};
use crate::message_type::DhcpMessage;
use crate::pxe::decode_message;
use crate::socket::Interface;

/// Shared by the watcher and the DHCP services (which see clients choose other servers).
#[derive(Clone)]
pub struct Conflicts {
    detector: Arc<Mutex<ConflictDetector>>,
    events: EventSink,
    /// In proxy and boot-files-only modes a DHCP server is supposed to be there.
    address_servers_expected: bool,
    /// Full DHCP (not forced): set once another server's offer or ACK is seen, and our
    /// DHCP then answers no one. `None`: nothing stops (other modes, `--force-dhcp`).
    full_dhcp_halted: Option<Arc<AtomicBool>>,
}

impl Conflicts {
    pub fn new(ours: Vec<Ipv4Addr>, address_servers_expected: bool, events: EventSink) -> Self {
        Self {
            detector: Arc::new(Mutex::new(ConflictDetector::new(ours))),
            events,
            address_servers_expected,
            full_dhcp_halted: None,
        }
    }

    /// Full DHCP stops answering as soon as another server is seen handing out
    /// addresses: two would fight over every client, and ours may be the rogue.
    pub fn halting_full_dhcp(mut self) -> Self {
        self.full_dhcp_halted = Some(Arc::new(AtomicBool::new(false)));
        self
    }

    /// Another address server was seen while full DHCP served: it answers no one.
    pub fn full_dhcp_halted(&self) -> bool {
        self.full_dhcp_halted.as_ref().is_some_and(|halted| halted.load(Ordering::Relaxed))
    }

    /// Reports `sighting`, a reply another server sent, if it is a server not reported
    /// before. An address server stops full DHCP (see [`Self::halting_full_dhcp`]).
    pub fn observe(&self, sighting: ServerSighting) {
        let server = sighting.server_id;
        let role = sighting.role;
        let (ours, news) = self.with_detector(|detector| (detector.is_ours(&sighting), detector.observe(sighting)));
        // Halt before the report, so its words say what is true now.
        let halted_now = role == ServerRole::AddressServer
            && !ours
            && self.full_dhcp_halted.as_ref().is_some_and(|halted| !halted.swap(true, Ordering::Relaxed));
        self.report(news);
        if halted_now {
            self.events.emit(EngineEvent::Service(ServiceEvent {
                service: Service::Dhcp,
                message: format!(
                    "stopped answering DHCP: another DHCP server ({server}) hands out addresses on this network. \
                     Switch to proxy mode to boot machines beside it, or restart with --force-dhcp only if that \
                     server may be overruled"
                ),
                ok: false,
            }));
        }
    }

    fn with_detector<T>(&self, act: impl FnOnce(&mut ConflictDetector) -> T) -> T {
        match self.detector.lock() {
            Ok(mut detector) => act(&mut detector),
            Err(poisoned) => act(&mut poisoned.into_inner()),
        }
    }

    /// Says what a server seen for the first time means.
    fn report(&self, news: Option<ServerSighting>) {
        let Some(server) = news else { return };
        let expected = self.address_servers_expected && server.role == ServerRole::AddressServer;
        let summary = match server.role {
            ServerRole::AddressServer if expected => {
                format!("the network's DHCP server: {} (expected beside PortaPXE in this mode)", server.describe())
            }
            ServerRole::AddressServer if self.full_dhcp_halted() => format!(
                "another DHCP server is on this network: {}. PortaPXE stopped answering DHCP so the two do not \
                 fight over clients: use proxy mode beside it, or stop it and start again",
                server.describe()
            ),
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

    /// A client's REQUEST named `server_id` as the server whose offer it took. Reported,
    /// but it stops nothing: anyone can send such a REQUEST.
    pub fn client_chose(&self, server_id: Ipv4Addr) {
        let sighting = ServerSighting {
            server_id,
            source: server_id,
            mac: None,
            role: ServerRole::AddressServer,
            message: DhcpMessage::REQUEST,
            offered_address: None,
            next_server: None,
            boot_file: None,
            pxe: false,
            boot_server_type: None,
        };
        let news = self.with_detector(|detector| detector.observe(sighting));
        self.report(news);
    }

    pub fn servers(&self) -> Vec<ServerSighting> {
        self.with_detector(|detector| detector.servers())
    }
}

/// Listens on the DHCP client port of `interface` (shared with any DHCP client
/// there) for server replies until the task is aborted.
pub fn start(interface: &Interface, client_port: u16, conflicts: Conflicts) -> io::Result<JoinHandle<()>> {
    let socket = crate::socket::dhcp_client_socket(interface, client_port)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries(events: &mut tokio::sync::broadcast::Receiver<EngineEvent>) -> Vec<String> {
        std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|event| match event {
                EngineEvent::Conflict(conflict) => Some(conflict.summary),
                _ => None,
            })
            .collect()
    }

    fn offer(server: [u8; 4]) -> ServerSighting {
        ServerSighting {
            server_id: server.into(),
            source: server.into(),
            mac: None,
            role: ServerRole::AddressServer,
            message: DhcpMessage::OFFER,
            offered_address: Some([10, 77, 0, 60].into()),
            next_server: None,
            boot_server_type: None,
            boot_file: None,
            pxe: false,
        }
    }

    #[test]
    fn a_forged_request_stops_nothing_and_says_nothing_stopped() {
        let sink = EventSink::new();
        let mut events = sink.subscribe();
        let conflicts = Conflicts::new(vec![[10, 77, 0, 1].into()], false, sink).halting_full_dhcp();
        conflicts.client_chose([10, 77, 0, 9].into());
        assert!(!conflicts.full_dhcp_halted());
        let said = summaries(&mut events);
        assert_eq!(said.len(), 1);
        assert!(!said[0].contains("stopped answering"), "{said:?}");

        conflicts.observe(offer([10, 77, 0, 2]));
        assert!(conflicts.full_dhcp_halted());
        let said = summaries(&mut events);
        assert!(said[0].contains("PortaPXE stopped answering DHCP"), "{said:?}");
    }
}
