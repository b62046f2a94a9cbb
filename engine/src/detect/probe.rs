//! The active probe: ask the segment who answers DHCP, as a client would.
//!
//! Two DISCOVERs with random client MACs (one plain, one like PXE firmware) go out
//! as broadcasts with the broadcast flag set, so every server's answer is a
//! broadcast we can hear; proxies that answered are then asked on port 4011.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use dhcproto::Encodable;
use dhcproto::v4::{Architecture, DhcpOption, Flags, Message, MessageType, Opcode};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use super::classify::{ConflictDetector, ServerRole, ServerSighting, classify};
use super::watch::Conflicts;
use crate::capture::live::CaptureSinks;
use crate::events::EventSink;
use crate::pxe::{PXE_BOOT_ITEM, decode_message};

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub interface: crate::socket::Interface,
    /// Our address on the interface, if it has one: the source of the 4011 probe.
    pub address: Option<Ipv4Addr>,
    /// How long to collect answers.
    pub listen: Duration,
    /// 67 normally; the probe listens on `server_port + 1`.
    pub server_port: u16,
    pub boot_server_port: u16,
    /// Servers not to report (our own addresses).
    pub ours: Vec<Ipv4Addr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "cannot listen for DHCP answers on port {port} of {interface}: permission denied. The probe needs \
         root/Administrator, or on Linux: sudo setcap cap_net_bind_service,cap_net_raw+ep $(which portapxe)"
    )]
    Permission { port: u16, interface: String },
    #[error("cannot probe on {interface}: {source}")]
    Socket { interface: String, source: io::Error },
}

/// Every foreign server that answered within `settings.listen`, address servers first.
/// Where packet capture can run, each server's MAC is filled in from its frames.
pub async fn probe(settings: &ProbeSettings) -> Result<Vec<ServerSighting>, ProbeError> {
    let sniffed = Conflicts::new(Vec::new(), false, EventSink::new());
    let sinks = CaptureSinks {
        ours: Ipv4Addr::UNSPECIFIED,
        conflicts: sniffed.clone(),
        events: EventSink::new(),
        recorder: None,
    };
    let capture = crate::capture::live::start(&settings.interface.name, sinks).ok();
    let result = probe_sockets(settings).await;
    if let Some(capture) = capture {
        // Joining waits for frames already read; the thread wakes every 50 ms.
        let _ = tokio::task::spawn_blocking(move || drop(capture)).await;
    }
    let macs = sniffed.servers();
    result.map(|mut servers| {
        for server in &mut servers {
            server.mac = macs.iter().find(|seen| seen.server_id == server.server_id).and_then(|seen| seen.mac);
        }
        servers
    })
}

/// How often the probe repeats its DISCOVERs while it listens.
const RESEND_EVERY: Duration = Duration::from_millis(1500);

async fn probe_sockets(settings: &ProbeSettings) -> Result<Vec<ServerSighting>, ProbeError> {
    let socket_error = |source: io::Error| ProbeError::Socket { interface: settings.interface.name.clone(), source };
    let client_port = settings.server_port.wrapping_add(1);
    let socket =
        crate::socket::dhcp_client_socket(&settings.interface, client_port).map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied => {
                ProbeError::Permission { port: client_port, interface: settings.interface.name.clone() }
            }
            _ => socket_error(source),
        })?;
    let plain = discover(random_mac(), false);
    let pxe = discover(random_mac(), true);
    let broadcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, settings.server_port);
    let mut detector = ConflictDetector::new(settings.ours.clone());
    // Like a real client, ask again while listening: a server that checks an address
    // before offering it (dnsmasq pings for up to 3 s, busybox udhcpd arps) answers late,
    // and a lost broadcast must not hide a server.
    let deadline = Instant::now() + settings.listen;
    loop {
        for message in [&plain, &pxe] {
            let bytes = message.to_vec().map_err(|err| socket_error(io::Error::other(err)))?;
            socket.send_to(&bytes, broadcast).await.map_err(socket_error)?;
        }
        let resend = (Instant::now() + RESEND_EVERY).min(deadline);
        collect(&socket, &[plain.xid(), pxe.xid()], resend, &mut detector, false).await;
        if resend >= deadline {
            break;
        }
    }

    // A proxy may give its boot file only on 4011; ask each one that answered.
    if let Some(address) = settings.address {
        let proxies: Vec<(Ipv4Addr, Option<u16>)> = detector
            .servers()
            .iter()
            .filter(|server| server.role == ServerRole::ProxyDhcp)
            .map(|server| (server.server_id, server.boot_server_type))
            .collect();
        if !proxies.is_empty() {
            let asker = UdpSocket::bind((address, 0)).await.map_err(socket_error)?;
            let mut xids = Vec::new();
            for (proxy, boot_server_type) in proxies {
                let request = boot_server_request(&pxe, address, boot_server_type);
                xids.push(request.xid());
                let bytes = request.to_vec().map_err(|err| socket_error(io::Error::other(err)))?;
                let _ = asker.send_to(&bytes, SocketAddrV4::new(proxy, settings.boot_server_port)).await;
            }
            collect(&asker, &xids, Instant::now() + Duration::from_secs(1), &mut detector, true).await;
        }
    }
    Ok(detector.servers())
}

/// `boot_server_round`: answers to our 4011 requests, which come from proxies even when
/// they echo our own address in yiaddr (dnsmasq does).
async fn collect(
    socket: &UdpSocket,
    xids: &[u32],
    deadline: Instant,
    detector: &mut ConflictDetector,
    boot_server_round: bool,
) {
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok((len, peer))) = timeout_at(deadline, socket.recv_from(&mut buf)).await {
        let (Ok(message), std::net::SocketAddr::V4(peer)) = (decode_message(&buf[..len]), peer) else { continue };
        if !xids.contains(&message.xid()) {
            continue;
        }
        if let Some(mut sighting) = classify(&message, *peer.ip(), None) {
            if boot_server_round {
                sighting.role = ServerRole::ProxyDhcp;
                sighting.offered_address = None;
            }
            detector.observe(sighting);
        }
    }
}

/// A locally administered unicast MAC, so the probe never poses as a real machine.
fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    mac.iter_mut().for_each(|byte| *byte = fastrand::u8(..));
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac
}

fn discover(mac: [u8; 6], pxe: bool) -> Message {
    let mut message = Message::default();
    message
        .set_opcode(Opcode::BootRequest)
        .set_xid(fastrand::u32(..))
        .set_chaddr(&mac)
        .set_flags(Flags::default().set_broadcast());
    let opts = message.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Discover));
    opts.insert(DhcpOption::ParameterRequestList(vec![
        dhcproto::v4::OptionCode::SubnetMask,
        dhcproto::v4::OptionCode::Router,
        dhcproto::v4::OptionCode::TFTPServerName,
        dhcproto::v4::OptionCode::BootfileName,
        dhcproto::v4::OptionCode::VendorExtensions,
        dhcproto::v4::OptionCode::ClassIdentifier,
    ]));
    if pxe {
        opts.insert(DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()));
        opts.insert(DhcpOption::ClientSystemArchitecture(Architecture::from(0)));
        opts.insert(DhcpOption::ClientNetworkInterface(1, 2, 1));
        let mut guid = vec![0u8];
        guid.extend_from_slice(&fastrand::u128(..).to_be_bytes());
        opts.insert(DhcpOption::ClientMachineIdentifier(guid));
    }
    message
}

/// What a PXE client asks a boot server on 4011 once it has an address; a menu-style
/// proxy answers with the file only when the request names one of its boot items.
fn boot_server_request(discover: &Message, address: Ipv4Addr, boot_server_type: Option<u16>) -> Message {
    let mut request = discover.clone();
    request.set_xid(fastrand::u32(..)).set_ciaddr(address).set_flags(Flags::default());
    request.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
    if let Some(kind) = boot_server_type {
        let [high, low] = kind.to_be_bytes();
        request.opts_mut().insert(DhcpOption::VendorExtensions(vec![PXE_BOOT_ITEM, 4, high, low, 0, 0, 255]));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pxe::PxeRequest;

    #[test]
    fn probe_messages_look_like_clients_with_random_local_macs() {
        let mac = random_mac();
        assert_eq!(mac[0] & 0x03, 0x02, "locally administered, unicast");
        let pxe = discover(mac, true);
        let request = PxeRequest::decode(&pxe.to_vec().unwrap()).unwrap().1;
        assert!(request.broadcast);
        assert_eq!(request.vendor_class.as_deref(), Some("PXEClient:Arch:00000:UNDI:002001"));
        let plain = PxeRequest::decode(&discover(mac, false).to_vec().unwrap()).unwrap().1;
        assert!(!plain.is_boot_client());
        let asked = boot_server_request(&pxe, Ipv4Addr::new(10, 0, 0, 9), Some(0x8000));
        let asked = PxeRequest::decode(&asked.to_vec().unwrap()).unwrap().1;
        assert_eq!(asked.boot_item, Some(vec![0x80, 0, 0, 0]));
        assert_eq!(asked.message_type, MessageType::Request);
        assert_eq!(asked.ciaddr, Ipv4Addr::new(10, 0, 0, 9));
    }
}
