//! The proxyDHCP driver: one socket on 67 and one on 4011, both on the chosen interface.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::decide::{ProxyPort, ProxySettings, decide};
use crate::answer::{Destination, Reply};
use crate::dhcp::DhcpStartError;
use crate::dhcp::server::encode_reply;
use crate::dhcp::service::{InterfacePort, open_socket};
use crate::events::{EngineEvent, EventSink, Service, ServiceEvent};
use crate::next_boot::NextBootAnswers;
use crate::pxe::PxeRequest;

#[derive(Debug, Clone)]
pub struct ProxyServiceSettings {
    pub interface: String,
    pub interface_index: u32,
    /// 67 normally; proxy offers go to clients on `dhcp_port + 1`.
    pub dhcp_port: u16,
    pub boot_server_port: u16,
    pub decision: ProxySettings,
    /// As for full DHCP (`dhcp::service`): a one-off boot may hand an ISO's own loader.
    pub next_boot: Option<Arc<NextBootAnswers>>,
}

pub struct ProxyService {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    dhcp_addr: SocketAddr,
    boot_server_addr: SocketAddr,
}

impl ProxyService {
    pub fn dhcp_addr(&self) -> SocketAddr {
        self.dhcp_addr
    }

    pub fn boot_server_addr(&self) -> SocketAddr {
        self.boot_server_addr
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

impl Drop for ProxyService {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

pub async fn start(settings: ProxyServiceSettings, events: EventSink) -> Result<ProxyService, DhcpStartError> {
    let at = |port| InterfacePort {
        interface: settings.interface.clone(),
        index: settings.interface_index,
        address: settings.decision.server_ip,
        port,
    };
    let dhcp = open_socket(&at(settings.dhcp_port))?;
    let boot_server = open_socket(&at(settings.boot_server_port))?;
    let socket_error = |source| DhcpStartError::Socket { interface: settings.interface.clone(), source };
    let dhcp_addr = dhcp.local_addr().map_err(socket_error)?;
    let boot_server_addr = boot_server.local_addr().map_err(socket_error)?;
    events.emit(EngineEvent::Service(ServiceEvent {
        service: Service::ProxyDhcp,
        message: format!(
            "proxyDHCP answering PXE clients on {} (ports {} and {}); addresses come from the network's DHCP server",
            settings.interface,
            dhcp_addr.port(),
            boot_server_addr.port()
        ),
        ok: true,
    }));
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(serve(dhcp, boot_server, settings, events, stop_rx));
    Ok(ProxyService { stop: Some(stop_tx), task: Some(task), dhcp_addr, boot_server_addr })
}

async fn serve(
    dhcp: UdpSocket,
    boot_server: UdpSocket,
    settings: ProxyServiceSettings,
    events: EventSink,
    mut stop: oneshot::Receiver<()>,
) {
    let mut dhcp_buf = vec![0u8; 4096];
    let mut boot_buf = vec![0u8; 4096];
    let client_port = settings.dhcp_port.wrapping_add(1);
    loop {
        let (port, socket, bytes, peer) = tokio::select! {
            _ = &mut stop => break,
            received = dhcp.recv_from(&mut dhcp_buf) => match received {
                Ok((len, peer)) => (ProxyPort::Dhcp, &dhcp, &dhcp_buf[..len], peer),
                Err(err) => { tracing::warn!(%err, "proxyDHCP receive failed on port 67"); continue }
            },
            received = boot_server.recv_from(&mut boot_buf) => match received {
                Ok((len, peer)) => (ProxyPort::BootServer, &boot_server, &boot_buf[..len], peer),
                Err(err) => { tracing::warn!(%err, "proxyDHCP receive failed on port 4011"); continue }
            },
        };
        let (message, request) = match PxeRequest::decode(bytes) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::debug!(%peer, %err, "ignored a packet on a proxyDHCP port");
                continue;
            }
        };
        let one_off = settings.next_boot.as_ref().and_then(|planned| planned.one_off_x64_loader(request.mac));
        let outcome = decide(&message, &request, &settings.decision, port, one_off.as_deref());
        if let Some(Reply { message: reply, destination }) = &outcome.reply {
            let target: SocketAddr = match destination {
                Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, client_port).into(),
                Destination::Relay(relay) => SocketAddrV4::new(*relay, settings.dhcp_port).into(),
                // Proxy replies never go to a client's own address: it has none from us.
                Destination::Sender | Destination::Client(_) => peer,
            };
            match encode_reply(reply) {
                Ok(bytes) => {
                    if let Err(err) = socket.send_to(&bytes, target).await {
                        tracing::warn!(%err, %target, "proxyDHCP send failed");
                    }
                }
                Err(err) => tracing::warn!(%err, "proxyDHCP reply could not be encoded"),
            }
        }
        events.emit(EngineEvent::Dhcp(outcome.event));
    }
}
