//! The DHCP socket loop: receive, decide (pure), persist, send, report.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::lease_store::{LeaseStore, OpenError};
use super::leases::SnapshotError;
use super::leases::{LeaseTable, Timestamp};
use super::server::{Destination, DhcpSettings, Outcome, encode_reply, handle};
use dhcproto::v4::MessageType;

use crate::config::PoolRange;
use crate::detect::watch::Conflicts;
use crate::events::{EngineEvent, EventSink, Service, ServiceEvent};
use crate::next_boot::NextBootAnswers;
use crate::pxe::PxeRequest;

/// Where and how the DHCP service listens.
#[derive(Debug, Clone)]
pub struct DhcpServiceSettings {
    pub interface: String,
    pub interface_index: u32,
    /// 67 normally; replies go to `port + 1` (68) on clients.
    pub port: u16,
    pub pool: PoolRange,
    pub lease_file: PathBuf,
    pub decision: DhcpSettings,
    /// The one-off boots planned per machine: one may hand an x64 UEFI machine an
    /// ISO's own signed loader for its next boot.
    pub next_boot: Option<Arc<NextBootAnswers>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DhcpStartError {
    #[error(
        "cannot listen for DHCP on port {port} of {interface}: the port is in use by another process \
         (another DHCP server such as dnsmasq, dhcpd or a system service); stop it, or serve boot files only with --mode off"
    )]
    PortInUse { port: u16, interface: String },
    #[error(
        "cannot listen for DHCP on port {port} of {interface}: permission denied. Ports below 1024 need \
         root/Administrator, or on Linux: sudo setcap cap_net_bind_service,cap_net_raw+ep $(which portapxe)"
    )]
    Permission { port: u16, interface: String },
    #[error("cannot open the DHCP socket on {interface}: {source}")]
    Socket { interface: String, source: io::Error },
    #[error("cannot read the lease file {path}: {source}")]
    LeaseFile { path: PathBuf, source: io::Error },
}

/// A running DHCP service. Dropping it stops the loop; [`DhcpService::stop`] also waits for it.
pub struct DhcpService {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl DhcpService {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DhcpService {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A DHCP socket that is bound (the port is ours) but not answering yet: the
/// safety probe runs between [`bind`] and [`BoundDhcp::serve`].
pub struct BoundDhcp {
    socket: UdpSocket,
    settings: DhcpServiceSettings,
    leases: LeaseTable,
    store: LeaseStore,
    events: EventSink,
    local_addr: SocketAddr,
}

/// Loads the leases and takes the port.
pub async fn bind(settings: DhcpServiceSettings, events: EventSink) -> Result<BoundDhcp, DhcpStartError> {
    let (store, leases) = load_leases(&settings, &events).await?;
    let socket = open_socket(&InterfacePort {
        interface: settings.interface.clone(),
        index: settings.interface_index,
        address: settings.decision.server_ip,
        port: settings.port,
    })?;
    let local_addr = socket
        .local_addr()
        .map_err(|source| DhcpStartError::Socket { interface: settings.interface.clone(), source })?;
    Ok(BoundDhcp { socket, settings, leases, store, events, local_addr })
}

impl BoundDhcp {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts answering. What arrived while bound (our own probe's DISCOVERs, clients
    /// that will retransmit) is dropped first. `conflicts` hears of every client that
    /// accepts another server's offer.
    pub fn serve(self, conflicts: Conflicts) -> DhcpService {
        let Self { socket, settings, leases, store, events, local_addr } = self;
        let mut buf = [0u8; 1];
        while socket.try_recv_from(&mut buf).is_ok() {}
        let (stop_tx, stop_rx) = oneshot::channel();
        events.emit(EngineEvent::Service(ServiceEvent {
            service: Service::Dhcp,
            message: format!(
                "DHCP serving pool {} on {} (port {})",
                settings.pool,
                settings.interface,
                local_addr.port()
            ),
            ok: true,
        }));
        let state = ServeState { settings, leases, store: Arc::new(Mutex::new(store)), events, conflicts };
        let task = tokio::spawn(serve(socket, state, stop_rx));
        DhcpService { stop: Some(stop_tx), task: Some(task), local_addr }
    }
}

/// A lease file that cannot be parsed is kept aside (never overwritten) and the server starts empty.
async fn load_leases(
    settings: &DhcpServiceSettings,
    events: &EventSink,
) -> Result<(LeaseStore, LeaseTable), DhcpStartError> {
    let path = settings.lease_file.clone();
    let (pool, server_ip) = (settings.pool, settings.decision.server_ip);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(DhcpStartError::LeaseFile { path, source }),
    };
    let open = |bytes: Option<Vec<u8>>| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || LeaseStore::open(&path, pool, server_ip, bytes.as_deref()))
    };
    let io_error = |err: tokio::task::JoinError| io::Error::other(err.to_string());
    let lease_file_error = |source: io::Error| DhcpStartError::LeaseFile { path: path.clone(), source };
    let opened = match open(bytes).await.map_err(|err| lease_file_error(io_error(err)))? {
        Err(OpenError::Snapshot(err)) => {
            let kind = match err {
                SnapshotError::Unreadable(_) => "corrupt",
                SnapshotError::UnknownVersion { .. } => "newer-format",
            };
            let aside = path.with_extension(format!("{kind}-{}", now()));
            let moved = tokio::fs::rename(&path, &aside).await;
            events.emit(EngineEvent::Service(ServiceEvent {
                service: Service::Dhcp,
                message: format!(
                    "lease file {} cannot be used: {err}; kept it as {} ({}) and started from its journal alone",
                    path.display(),
                    aside.display(),
                    if moved.is_ok() { "moved" } else { "could not move" },
                ),
                ok: false,
            }));
            open(None).await.map_err(|err| lease_file_error(io_error(err)))?
        }
        other => other,
    };
    let (store, table, loaded) = opened.map_err(|err| match err {
        OpenError::Io { source, .. } => lease_file_error(source),
        OpenError::Snapshot(err) => lease_file_error(io::Error::other(err)),
    })?;
    let warn = |message: String| {
        events.emit(EngineEvent::Service(ServiceEvent { service: Service::Dhcp, message, ok: false }))
    };
    if loaded.skipped_records > 0 {
        warn(format!(
            "skipped {} unreadable record(s) of the lease file {}; every other lease was kept",
            loaded.skipped_records,
            path.display()
        ));
    }
    if let Some(err) = &loaded.compaction_failed {
        warn(compaction_failed_text(&path, err));
    }
    if loaded.unreadable_journal_lines > 0 {
        warn(format!(
            "skipped {} unreadable line(s) of the lease journal {} (a write cut short; no reply had gone out for it)",
            loaded.unreadable_journal_lines,
            store.journal_file().display()
        ));
    }
    Ok((store, table))
}

/// Where a DHCP-style socket listens: a port on one interface.
#[derive(Debug, Clone)]
pub(crate) struct InterfacePort {
    pub interface: String,
    /// Used to bind on macOS.
    pub index: u32,
    /// Used to bind on Windows.
    pub address: Ipv4Addr,
    pub port: u16,
}

/// One socket on 0.0.0.0:PORT tied to the chosen interface, so broadcasts are
/// received from and sent out of that interface only.
pub(crate) fn open_socket(at: &InterfacePort) -> Result<UdpSocket, DhcpStartError> {
    let socket_error = |source: io::Error| DhcpStartError::Socket { interface: at.interface.clone(), source };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(socket_error)?;
    socket.set_broadcast(true).map_err(socket_error)?;
    socket.set_nonblocking(true).map_err(socket_error)?;
    // A classroom switched on at once queues hundreds of requests; the default buffer drops them.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES);
    let bind_ip = bind_to_interface(&socket, at).map_err(socket_error)?;
    let address = SocketAddrV4::new(bind_ip, at.port);
    socket.bind(&address.into()).map_err(|source| match source.kind() {
        io::ErrorKind::AddrInUse => DhcpStartError::PortInUse { port: at.port, interface: at.interface.clone() },
        io::ErrorKind::PermissionDenied => {
            DhcpStartError::Permission { port: at.port, interface: at.interface.clone() }
        }
        _ => socket_error(source),
    })?;
    UdpSocket::from_std(socket.into()).map_err(socket_error)
}

/// Ties the socket to the interface; the address to bind: 0.0.0.0, except on Windows,
/// which delivers broadcasts to a socket bound to the interface's address and sends
/// from that interface.
fn bind_to_interface(socket: &Socket, at: &InterfacePort) -> io::Result<Ipv4Addr> {
    let interface = crate::socket::Interface { name: at.interface.clone(), index: at.index };
    crate::socket::bind_to_interface(socket, &interface, false)?;
    let tied_by_the_system =
        cfg!(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios"));
    Ok(if tied_by_the_system { Ipv4Addr::UNSPECIFIED } else { at.address })
}

/// A snapshot that could not be written (a full disk): nothing is lost, the journal has it.
fn compaction_failed_text(lease_file: &std::path::Path, err: &io::Error) -> String {
    format!(
        "cannot fold the lease journal into {} ({err}); serving from the journal, which holds every lease: \
         free some disk space",
        lease_file.display()
    )
}

struct ServeState {
    settings: DhcpServiceSettings,
    leases: LeaseTable,
    /// Shared with the blocking thread that writes it.
    store: Arc<Mutex<LeaseStore>>,
    events: EventSink,
    conflicts: Conflicts,
}

/// Requests are taken in batches of what is already queued on the socket: each batch
/// is decided, its lease changes reach the disk with one sync, then its replies go out.
/// No ACK leaves before its lease is on disk.
async fn serve(socket: UdpSocket, mut state: ServeState, mut stop: oneshot::Receiver<()>) {
    let mut buffers = vec![vec![0u8; MAX_PACKET]; MAX_BATCH];
    let mut received = Vec::with_capacity(MAX_BATCH);
    loop {
        received.clear();
        tokio::select! {
            _ = &mut stop => break,
            first = socket.recv_from(&mut buffers[0]) => match first {
                Ok((len, peer)) => received.push((len, peer)),
                Err(err) => {
                    tracing::warn!(%err, "DHCP receive failed");
                    continue;
                }
            },
        }
        while received.len() < MAX_BATCH {
            match socket.try_recv_from(&mut buffers[received.len()]) {
                Ok(one) => received.push(one),
                Err(_) => break,
            }
        }
        // Another server hands out addresses here: answer no one (the log says why).
        if state.conflicts.full_dhcp_halted() {
            continue;
        }
        let (outcomes, peers): (Vec<Outcome>, Vec<SocketAddr>) = received
            .iter()
            .zip(&buffers)
            .filter_map(|(&(len, peer), buf)| Some((state.decide(&buf[..len], peer)?, peer)))
            .unzip();
        let persisted = state.persist(&outcomes).await;
        for (outcome, peer) in outcomes.into_iter().zip(peers) {
            if persisted || outcome.persist.is_none() {
                state.send(&socket, &outcome, peer).await;
            }
            state.events.emit(EngineEvent::Dhcp(outcome.event));
        }
    }
}

const RECEIVE_BUFFER_BYTES: usize = 1 << 20;
/// Large enough for any DHCP message over Ethernet (RFC 2131 minimum is 576).
const MAX_PACKET: usize = 4096;
/// Requests decided and persisted together at most.
const MAX_BATCH: usize = 256;

impl ServeState {
    fn decide(&mut self, packet: &[u8], peer: SocketAddr) -> Option<Outcome> {
        let (message, request) = match PxeRequest::decode(packet) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::debug!(%peer, %err, "ignored a packet on the DHCP port");
                return None;
            }
        };
        self.conflicts.saw_request(&message);
        if request.message_type == MessageType::Request
            && let Some(server) = request.server_id.filter(|id| *id != self.settings.decision.server_ip)
        {
            self.conflicts.client_chose(server);
        }
        let one_off = self.settings.next_boot.as_ref().and_then(|planned| planned.one_off_x64_loader(request.mac));
        Some(handle(&message, &request, &self.settings.decision, &mut self.leases, now(), one_off.as_deref()))
    }

    /// Writes the batch's lease changes; false when they could not be written.
    async fn persist(&mut self, outcomes: &[Outcome]) -> bool {
        let mut changed: Vec<Ipv4Addr> = outcomes.iter().filter_map(|outcome| outcome.persist).collect();
        if changed.is_empty() {
            return true;
        }
        changed.sort_unstable();
        changed.dedup();
        let lines: Vec<Vec<u8>> = changed.iter().filter_map(|ip| self.leases.journal_line(*ip)).collect();
        let compact = self.store_needs_compaction().then(|| self.leases.to_bytes());
        let store = Arc::clone(&self.store);
        let written = tokio::task::spawn_blocking(move || {
            let mut store = store.lock().map_err(|_| io::Error::other("lease store poisoned"))?;
            store.append(&lines)?;
            // The journal holds the batch now: a failed compaction must not hold its replies back.
            Ok::<_, io::Error>(compact.and_then(|snapshot| store.compact_to(&snapshot).err()))
        })
        .await;
        match written {
            Ok(Ok(compaction_failed)) => {
                if let Some(err) = compaction_failed {
                    let message = compaction_failed_text(&self.settings.lease_file, &err);
                    self.events.emit(EngineEvent::Service(ServiceEvent { service: Service::Dhcp, message, ok: false }));
                }
                true
            }
            failure => {
                let reason = match failure {
                    Ok(Err(err)) => err.to_string(),
                    Err(err) => err.to_string(),
                    Ok(Ok(_)) => String::new(),
                };
                // Never acknowledge a lease that would be lost on a crash.
                self.events.emit(EngineEvent::Service(ServiceEvent {
                    service: Service::Dhcp,
                    message: format!(
                        "cannot write leases to {} ({reason}); {} repl{} withheld",
                        self.settings.lease_file.display(),
                        changed.len(),
                        if changed.len() == 1 { "y" } else { "ies" }
                    ),
                    ok: false,
                }));
                false
            }
        }
    }

    fn store_needs_compaction(&self) -> bool {
        self.store.lock().is_ok_and(|store| store.needs_compaction(self.leases.len()))
    }

    async fn send(&self, socket: &UdpSocket, outcome: &Outcome, peer: SocketAddr) {
        let Some(reply) = &outcome.reply else { return };
        let client_port = self.settings.port.wrapping_add(1);
        let target: SocketAddr = match reply.destination {
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port).into(),
            Destination::Client(ip) => SocketAddrV4::new(ip, client_port).into(),
            Destination::Relay(ip) => SocketAddrV4::new(ip, self.settings.port).into(),
            Destination::Sender => peer,
        };
        match encode_reply(&reply.message) {
            Ok(bytes) => {
                if let Err(err) = socket.send_to(&bytes, target).await {
                    tracing::warn!(%err, %target, "DHCP send failed");
                }
            }
            Err(err) => tracing::warn!(%err, "DHCP reply could not be encoded"),
        }
    }
}

fn now() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
