//! The DHCP socket loop: receive, decide (pure), persist, send, report.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::leases::{LeaseTable, Timestamp};
use super::server::{Destination, DhcpSettings, encode_reply, handle};
use dhcproto::v4::MessageType;

use crate::config::{PoolRange, write_atomically};
use crate::detect::watch::Conflicts;
use crate::events::{EngineEvent, EventSink, ServiceEvent};
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
    events: EventSink,
    local_addr: SocketAddr,
}

/// Loads the leases and takes the port.
pub async fn bind(settings: DhcpServiceSettings, events: EventSink) -> Result<BoundDhcp, DhcpStartError> {
    let leases = load_leases(&settings, &events).await?;
    let socket = open_socket(&InterfacePort {
        interface: settings.interface.clone(),
        index: settings.interface_index,
        address: settings.decision.server_ip,
        port: settings.port,
    })?;
    let local_addr = socket
        .local_addr()
        .map_err(|source| DhcpStartError::Socket { interface: settings.interface.clone(), source })?;
    Ok(BoundDhcp { socket, settings, leases, events, local_addr })
}

impl BoundDhcp {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts answering. What arrived while bound (our own probe's DISCOVERs, clients
    /// that will retransmit) is dropped first. `conflicts` hears of every client that
    /// accepts another server's offer.
    pub fn serve(self, conflicts: Conflicts) -> DhcpService {
        let Self { socket, settings, leases, events, local_addr } = self;
        let mut buf = [0u8; 1];
        while socket.try_recv_from(&mut buf).is_ok() {}
        let (stop_tx, stop_rx) = oneshot::channel();
        events.emit(EngineEvent::Service(ServiceEvent {
            service: "dhcp".into(),
            message: format!(
                "DHCP serving pool {} on {} (port {})",
                settings.pool,
                settings.interface,
                local_addr.port()
            ),
            ok: true,
        }));
        let task = tokio::spawn(serve(socket, settings, leases, events, conflicts, stop_rx));
        DhcpService { stop: Some(stop_tx), task: Some(task), local_addr }
    }
}

/// A lease file that cannot be parsed is kept aside (never overwritten) and the server starts empty.
async fn load_leases(settings: &DhcpServiceSettings, events: &EventSink) -> Result<LeaseTable, DhcpStartError> {
    let path = settings.lease_file.clone();
    let (pool, server_ip) = (settings.pool, settings.decision.server_ip);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(LeaseTable::new(pool, server_ip)),
        Err(source) => return Err(DhcpStartError::LeaseFile { path, source }),
    };
    match LeaseTable::from_bytes(pool, server_ip, &bytes) {
        Ok(table) => Ok(table),
        Err(err) => {
            let aside = path.with_extension(format!("corrupt-{}", now()));
            let moved = tokio::fs::rename(&path, &aside).await;
            events.emit(EngineEvent::Service(ServiceEvent {
                service: "dhcp".into(),
                message: format!(
                    "lease file {} is unreadable ({err}); kept it as {} ({}) and started with no leases",
                    path.display(),
                    aside.display(),
                    if moved.is_ok() { "moved" } else { "could not move" },
                ),
                ok: false,
            }));
            Ok(LeaseTable::new(pool, server_ip))
        }
    }
}

/// Where a DHCP-style socket listens: a port on one interface.
#[derive(Debug, Clone)]
pub(crate) struct InterfacePort {
    pub interface: String,
    /// Used to bind on macOS.
    #[cfg_attr(not(any(target_os = "macos", target_os = "ios")), allow(dead_code))]
    pub index: u32,
    /// Used to bind on Windows.
    #[cfg_attr(
        any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios"),
        allow(dead_code)
    )]
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

#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_to_interface(socket: &Socket, at: &InterfacePort) -> io::Result<Ipv4Addr> {
    socket.bind_device(Some(at.interface.as_bytes()))?;
    Ok(Ipv4Addr::UNSPECIFIED)
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn bind_to_interface(socket: &Socket, at: &InterfacePort) -> io::Result<Ipv4Addr> {
    socket.bind_device_by_index_v4(std::num::NonZeroU32::new(at.index))?;
    Ok(Ipv4Addr::UNSPECIFIED)
}

/// Windows delivers broadcasts to a socket bound to the interface's address and
/// sends from that interface.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios")))]
fn bind_to_interface(_socket: &Socket, at: &InterfacePort) -> io::Result<Ipv4Addr> {
    Ok(at.address)
}

async fn serve(
    socket: UdpSocket,
    settings: DhcpServiceSettings,
    mut leases: LeaseTable,
    events: EventSink,
    conflicts: Conflicts,
    mut stop: oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; 4096];
    let client_port = settings.port.wrapping_add(1);
    loop {
        let (len, peer) = tokio::select! {
            _ = &mut stop => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(err) => {
                    tracing::warn!(%err, "DHCP receive failed");
                    continue;
                }
            },
        };
        let (message, request) = match PxeRequest::decode(&buf[..len]) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::debug!(%peer, %err, "ignored a packet on the DHCP port");
                continue;
            }
        };
        if request.message_type == MessageType::Request
            && let Some(server) = request.server_id.filter(|id| *id != settings.decision.server_ip)
        {
            conflicts.client_chose(server);
        }
        let outcome = handle(&message, &request, &settings.decision, &mut leases, now());
        if outcome.persist {
            let bytes = leases.to_bytes();
            let path = settings.lease_file.clone();
            let written = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
            if !matches!(written, Ok(Ok(()))) {
                // Never acknowledge a lease that would be lost on a crash.
                events.emit(EngineEvent::Service(ServiceEvent {
                    service: "dhcp".into(),
                    message: format!("cannot write leases to {}; reply withheld", settings.lease_file.display()),
                    ok: false,
                }));
                continue;
            }
        }
        if let Some(reply) = &outcome.reply {
            let target = match reply.destination {
                Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port),
                Destination::Client(ip) => SocketAddrV4::new(ip, client_port),
                Destination::Relay(ip) => SocketAddrV4::new(ip, settings.port),
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
        events.emit(EngineEvent::Dhcp(outcome.event));
    }
}

fn now() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
