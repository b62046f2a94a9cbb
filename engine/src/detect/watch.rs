//! The passive watcher: while PortaPXE serves, any OFFER or ACK from another
//! server that reaches this host raises a conflict event at once.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dhcproto::v4::Message;
use ipnet::Ipv4Net;
use tokio::task::JoinHandle;

use super::classify::{ConflictDetector, ServerRole, ServerSighting, classify};
use super::solicit::{Provenance, RecentRequests, ReplyTo, exchange};
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
    /// Client requests our DHCP service saw (full DHCP), to tell replies that answer
    /// them from forged ones and ones relayed for another network.
    requests: Option<Arc<Mutex<RecentRequests>>>,
    /// Replies waiting for a second look (see [`start`]).
    rechecks: Arc<AtomicUsize>,
}

/// How long an unmatched reply waits for our DHCP service to read the request it
/// may answer (both arrive at once on different sockets).
const RECHECK_AFTER: Duration = Duration::from_millis(250);
/// Replies waiting for that second look at most; more are judged at once.
const MAX_RECHECKS: usize = 256;

impl Conflicts {
    pub fn new(ours: Vec<Ipv4Addr>, address_servers_expected: bool, events: EventSink) -> Self {
        Self {
            detector: Arc::new(Mutex::new(ConflictDetector::new(ours))),
            events,
            address_servers_expected,
            full_dhcp_halted: None,
            requests: None,
            rechecks: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Our DHCP service reads every client request on `subnet`'s segment: replies are
    /// then checked against them, and forged or foreign ones stop nothing.
    pub fn checking_replies(mut self, subnet: Ipv4Net) -> Self {
        self.requests = Some(Arc::new(Mutex::new(RecentRequests::new(subnet))));
        self
    }

    /// A client's request (any BOOTREQUEST) was seen on the segment.
    pub fn saw_request(&self, request: &Message) {
        if let Some(requests) = &self.requests {
            let (xid, client) = exchange(request);
            lock(requests).saw(xid, client, Instant::now());
        }
    }

    /// What the packet tells of where `reply` comes from.
    pub fn provenance(&self, reply: &ReplyTo) -> Provenance {
        match &self.requests {
            Some(requests) => lock(requests).provenance(reply, Instant::now()),
            None => Provenance::Unchecked,
        }
    }

    /// Reports `sighting`, a reply another server sent to a client (`reply`), with
    /// what its packet tells of its origin.
    pub fn observe_reply(&self, sighting: ServerSighting, reply: &ReplyTo) {
        self.observe_as(sighting, self.provenance(reply));
    }

    fn observe_as(&self, mut sighting: ServerSighting, provenance: Provenance) {
        sighting.provenance = provenance;
        self.observe(sighting);
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
        let sighting_serves = sighting.provenance.serves_this_segment();
        let (ours, news) = self.with_detector(|detector| (detector.is_ours(&sighting), detector.observe(sighting)));
        // Halt before the report, so its words say what is true now.
        let halted_now = role == ServerRole::AddressServer
            && sighting_serves
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
        act(&mut lock(&self.detector))
    }

    /// Says what a server seen for the first time means.
    fn report(&self, news: Option<ServerSighting>) {
        let Some(server) = news else { return };
        let expected = self.address_servers_expected && server.role == ServerRole::AddressServer;
        let summary = match server.role {
            _ if !server.provenance.serves_this_segment() => format!(
                "ignored {} naming {}: it {}. Nothing changes here",
                server.message,
                server.describe(),
                server.provenance
            ),
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
            provenance: Provenance::Unchecked,
        };
        let news = self.with_detector(|detector| detector.observe(sighting));
        self.report(news);
    }

    pub fn servers(&self) -> Vec<ServerSighting> {
        self.with_detector(|detector| detector.servers())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
                judge(&conflicts, sighting, ReplyTo::of(&message));
            }
        }
    }))
}

/// Reports a reply; one that answers no request seen yet gets a second look shortly
/// after, because our DHCP service reads the request on another socket.
fn judge(conflicts: &Conflicts, sighting: ServerSighting, reply: ReplyTo) {
    let provenance = conflicts.provenance(&reply);
    if provenance != Provenance::Unsolicited {
        return conflicts.observe_as(sighting, provenance);
    }
    let waiting = Arc::clone(&conflicts.rechecks);
    if waiting.fetch_add(1, Ordering::Relaxed) >= MAX_RECHECKS {
        waiting.fetch_sub(1, Ordering::Relaxed);
        return conflicts.observe_as(sighting, provenance);
    }
    let conflicts = conflicts.clone();
    tokio::spawn(async move {
        tokio::time::sleep(RECHECK_AFTER).await;
        conflicts.observe_reply(sighting, &reply);
        waiting.fetch_sub(1, Ordering::Relaxed);
    });
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
            provenance: Provenance::Unchecked,
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

    #[test]
    fn a_reply_that_answers_no_request_seen_here_stops_nothing() {
        let sink = EventSink::new();
        let mut events = sink.subscribe();
        let conflicts = Conflicts::new(vec![[10, 77, 0, 1].into()], false, sink)
            .checking_replies("10.77.0.0/24".parse().unwrap())
            .halting_full_dhcp();
        let client = [0x52, 0x54, 0, 0, 0, 7];
        let forged = ReplyTo { xid: 41, client, relay: None };
        conflicts.observe_reply(offer([10, 77, 0, 2]), &forged);
        let relayed = ReplyTo { xid: 42, client, relay: Some([192, 168, 9, 1].into()) };
        conflicts.observe_reply(offer([10, 77, 0, 3]), &relayed);
        assert!(!conflicts.full_dhcp_halted());
        let said = summaries(&mut events);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("ignored OFFER naming DHCP server 10.77.0.2"), "{said:?}");
        assert!(said[0].contains(": it answers no client request seen here: forged"), "{said:?}");
        assert!(said[0].ends_with("Nothing changes here"), "{said:?}");
        assert!(said[1].contains("relay agent 192.168.9.1"), "{said:?}");

        // The same server answering a request a client broadcast here is real.
        let mut request = Message::default();
        request.set_xid(43).set_chaddr(&client);
        conflicts.saw_request(&request);
        conflicts.observe_reply(offer([10, 77, 0, 2]), &ReplyTo { xid: 43, client, relay: None });
        assert!(conflicts.full_dhcp_halted());
        let said = summaries(&mut events);
        assert!(said.iter().any(|s| s.contains("PortaPXE stopped answering DHCP")), "{said:?}");
        let servers = conflicts.servers();
        assert_eq!(servers.len(), 3, "the forged sighting does not hide the real one: {servers:?}");
    }
}
