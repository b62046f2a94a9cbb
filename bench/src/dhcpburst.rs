//! A DHCP avalanche (case 5c): N PXE clients start DORA at the same instant.
//!
//! Every client has its own MAC and xid and sends what a BIOS PXE ROM sends (option 60
//! PXEClient, 93 = 0, 94, a parameter list with 66/67), broadcast from 0.0.0.0:68 on a
//! socket tied to one interface. All DISCOVERs go out back to back; each OFFER is
//! answered at once with a REQUEST; a NAK starts that client over; a client that heard
//! nothing for a second sends its last message again.
//!
//! Owns: the clients' state and their packets. Must run on a thread inside the
//! suite's client namespace (see [`portapxe_lab::netns::in_netns`]): it broadcasts.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};
use portapxe_lab::wire::{bootp_header, dhcp_client_socket};

use crate::stop;

/// A client that heard nothing for this long sends its last message again.
const RESEND_AFTER: Duration = Duration::from_secs(1);
/// How long one wait for replies lasts before resends are looked at.
const POLL: Duration = Duration::from_millis(50);
const VENDOR_CLASS: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";

/// What the burst achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstResult {
    pub count: usize,
    pub bound: usize,
    /// From the first DISCOVER to the last ACK, when every client got one.
    pub all_bound_s: Option<f64>,
    pub resends: u32,
    pub naks: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Discovering,
    Requesting,
    Bound,
}

struct Client {
    mac: [u8; 6],
    state: State,
    last: Vec<u8>,
    sent_at: Instant,
    bound_after: Option<Duration>,
}

/// The MAC and xid of client `n`: `base` keeps bursts of different runs apart.
fn identity(seed: u32, n: u16) -> ([u8; 6], u32) {
    let base = (seed.wrapping_mul(7919) & 0xFFFF) as u16;
    let [b0, b1] = base.to_be_bytes();
    let [n0, n1] = n.to_be_bytes();
    ([0x02, 0x50, b0, b1, n0, n1], (u32::from(base) << 16) | u32::from(n))
}

/// A broadcast client message of `kind`, as the BIOS PXE ROM lays it out, padded to the
/// 300-byte BOOTP minimum. `requested` adds options 50 and 54 for a REQUEST.
fn packet(xid: u32, mac: [u8; 6], kind: MessageType, requested: Option<(Ipv4Addr, Option<Ipv4Addr>)>) -> Vec<u8> {
    let mut p = bootp_header(mac, xid, true);
    p.extend_from_slice(&[53, 1, u8::from(kind)]);
    p.extend_from_slice(&[60, VENDOR_CLASS.len() as u8]);
    p.extend_from_slice(VENDOR_CLASS);
    p.extend_from_slice(&[93, 2, 0, 0]);
    p.extend_from_slice(&[94, 3, 1, 2, 1]);
    p.extend_from_slice(&[55, 7, 1, 3, 6, 43, 60, 66, 67]);
    if let Some((address, server)) = requested {
        p.extend_from_slice(&[50, 4]);
        p.extend_from_slice(&address.octets());
        if let Some(server) = server {
            p.extend_from_slice(&[54, 4]);
            p.extend_from_slice(&server.octets());
        }
    }
    p.push(255);
    if p.len() < 300 {
        p.resize(300, 0);
    }
    p
}

/// A server reply reduced to what the clients act on.
#[derive(Debug, PartialEq)]
struct Reply {
    xid: u32,
    kind: MessageType,
    yiaddr: Ipv4Addr,
    server: Option<Ipv4Addr>,
}

fn parse_reply(bytes: &[u8]) -> Option<Reply> {
    let message = Message::decode(&mut Decoder::new(bytes)).ok()?;
    let server = match message.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
        _ => None,
    };
    Some(Reply { xid: message.xid(), kind: message.opts().msg_type()?, yiaddr: message.yiaddr(), server })
}

/// Run `count` clients on `interface` (of the calling thread's namespace) for at most
/// `timeout`. `seed` picks the MACs and xids.
pub fn run(interface: &str, count: u16, timeout: Duration, seed: u32) -> Result<BurstResult> {
    let socket = dhcp_client_socket(interface).with_context(|| format!("DHCP client socket on {interface}"))?;
    // 40 OFFERs arrive at once; the default buffer would drop some.
    socket2::SockRef::from(&socket).set_recv_buffer_size(1 << 20)?;
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);

    let start = Instant::now();
    let mut clients: HashMap<u32, Client> = HashMap::new();
    let mut order = Vec::with_capacity(usize::from(count));
    for n in 0..count {
        let (mac, xid) = identity(seed, n);
        let last = packet(xid, mac, MessageType::Discover, None);
        socket.send_to(&last, to)?;
        clients
            .insert(xid, Client { mac, state: State::Discovering, last, sent_at: Instant::now(), bound_after: None });
        order.push(xid);
    }
    let (mut resends, mut naks) = (0, 0);
    let deadline = start + timeout;
    let mut pending = clients.len();
    while pending > 0 && Instant::now() < deadline {
        stop::check()?;
        for reply in receive_batch(&socket)? {
            let Some(client) = clients.get_mut(&reply.xid) else { continue };
            let now = Instant::now();
            match (reply.kind, client.state) {
                (MessageType::Offer, State::Discovering) => {
                    client.last =
                        packet(reply.xid, client.mac, MessageType::Request, Some((reply.yiaddr, reply.server)));
                    client.state = State::Requesting;
                    socket.send_to(&client.last, to)?;
                    client.sent_at = now;
                }
                (MessageType::Ack, State::Requesting) => {
                    client.state = State::Bound;
                    client.bound_after = Some(now - start);
                    pending -= 1;
                }
                (MessageType::Nak, State::Requesting) => {
                    naks += 1;
                    client.state = State::Discovering;
                    client.last = packet(reply.xid, client.mac, MessageType::Discover, None);
                    socket.send_to(&client.last, to)?;
                    client.sent_at = now;
                }
                _ => {}
            }
        }
        let now = Instant::now();
        for xid in &order {
            let Some(client) = clients.get_mut(xid) else { continue };
            if client.state != State::Bound && now - client.sent_at >= RESEND_AFTER {
                socket.send_to(&client.last, to)?;
                client.sent_at = now;
                resends += 1;
            }
        }
    }
    let times: Vec<Duration> = clients.values().filter_map(|c| c.bound_after).collect();
    let all_bound_s = (times.len() == clients.len()).then(|| times.iter().max().map(Duration::as_secs_f64)).flatten();
    Ok(BurstResult { count: clients.len(), bound: times.len(), all_bound_s, resends, naks })
}

/// Wait up to [`POLL`] for a reply, then take every reply already queued.
fn receive_batch(socket: &UdpSocket) -> Result<Vec<Reply>> {
    let mut buf = [0u8; 4096];
    let mut replies = Vec::new();
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(POLL))?;
    let Ok(n) = socket.recv(&mut buf) else { return Ok(replies) };
    replies.extend(parse_reply(&buf[..n]));
    socket.set_nonblocking(true)?;
    while let Ok(n) = socket.recv(&mut buf) {
        replies.extend(parse_reply(&buf[..n]));
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Encodable;

    #[test]
    fn identities_differ_per_client_and_seed() {
        let (mac, xid) = identity(1, 0x0102);
        assert_eq!(mac, [0x02, 0x50, 0x1E, 0xEF, 0x01, 0x02]);
        assert_eq!(xid, 0x1EEF_0102);
        assert_ne!(identity(2, 0x0102).1, xid);
    }

    #[test]
    fn a_request_carries_the_offer_and_the_pxe_identity() {
        let server = Ipv4Addr::new(10, 77, 0, 1);
        let bytes =
            packet(7, [2, 0x50, 0, 0, 0, 1], MessageType::Request, Some((Ipv4Addr::new(10, 77, 1, 9), Some(server))));
        // 240 header bytes and 68 of options: past the 300-byte minimum, so no padding.
        assert_eq!(bytes.len(), 308);
        assert_eq!(packet(7, [2, 0x50, 0, 0, 0, 1], MessageType::Discover, None).len(), 300);
        let message = Message::decode(&mut Decoder::new(&bytes)).expect("valid DHCP");
        assert_eq!((message.xid(), message.flags().broadcast()), (7, true));
        assert_eq!(message.opts().msg_type(), Some(MessageType::Request));
        assert_eq!(message.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(server)));
        assert_eq!(
            message.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 77, 1, 9)))
        );
        assert_eq!(
            message.opts().get(OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(VENDOR_CLASS.to_vec()))
        );
    }

    #[test]
    fn replies_parse_and_junk_does_not() {
        let mut offer = Message::default();
        offer.set_xid(0x1EEF_0001).set_yiaddr(Ipv4Addr::new(10, 77, 1, 1));
        offer.opts_mut().insert(DhcpOption::MessageType(MessageType::Offer));
        offer.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 77, 0, 1)));
        let bytes = offer.to_vec().expect("encodes");
        let reply = parse_reply(&bytes).expect("parses");
        assert_eq!(
            reply,
            Reply {
                xid: 0x1EEF_0001,
                kind: MessageType::Offer,
                yiaddr: Ipv4Addr::new(10, 77, 1, 1),
                server: Some(Ipv4Addr::new(10, 77, 0, 1))
            }
        );
        assert_eq!(parse_reply(&[]), None);
        assert_eq!(parse_reply(&bytes[..100]), None);
        let mut no_type = bytes[..240].to_vec();
        no_type.push(255);
        assert_eq!(parse_reply(&no_type), None);
    }
}
