//! Hand-built packets for the hostile-input tests: DHCP messages (valid and broken)
//! and a minimal raw TFTP client.
//!
//! Owns: byte layouts only. Sockets are opened by the caller inside a client
//! namespace (see [`crate::netns::in_netns`]).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dhcproto::Decodable;
use dhcproto::v4::{DhcpOption, Message, MessageType};

pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// A small deterministic PRNG (xorshift64*), so a failing flood can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The fixed 236-byte BOOTP header of a client request plus the magic cookie.
pub fn bootp_header(mac: [u8; 6], xid: u32, broadcast: bool) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    if broadcast {
        p[10] = 0x80;
    }
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&MAGIC_COOKIE);
    p
}

/// A well-formed PXE DISCOVER (BIOS, arch 0).
pub fn discover(mac: [u8; 6], xid: u32) -> Vec<u8> {
    let mut p = bootp_header(mac, xid, true);
    p.extend_from_slice(&[53, 1, 1]);
    p.extend_from_slice(&[93, 2, 0, 0]);
    p.extend_from_slice(&[94, 3, 1, 2, 1]);
    let vendor = b"PXEClient:Arch:00000:UNDI:002001";
    p.extend_from_slice(&[60, vendor.len() as u8]);
    p.extend_from_slice(vendor);
    p.extend_from_slice(&[55, 4, 1, 3, 66, 67]);
    p.push(255);
    pad_to_bootp_minimum(p)
}

fn pad_to_bootp_minimum(mut p: Vec<u8>) -> Vec<u8> {
    if p.len() < 300 {
        p.resize(300, 0);
    }
    p
}

/// Broken DHCP messages, each named for the failure report.
pub fn hostile_dhcp(mac: [u8; 6], rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let header = |xid: u32| bootp_header(mac, xid, true);
    let with = |xid: u32, options: &[u8]| {
        let mut p = header(xid);
        p.extend_from_slice(options);
        p
    };
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty datagram".into(), Vec::new()),
        ("one byte".into(), vec![1]),
        ("truncated BOOTP header (100 bytes)".into(), header(1)[..100].to_vec()),
        ("header without magic cookie (236 bytes)".into(), header(2)[..236].to_vec()),
        ("magic cookie, no options, no end".into(), header(3)),
        ("wrong magic cookie".into(), {
            let mut p = header(4);
            p[236..240].copy_from_slice(&[1, 2, 3, 4]);
            p.extend_from_slice(&[53, 1, 1, 255]);
            p
        }),
        ("option 53 with length 0".into(), with(5, &[53, 0, 255])),
        ("option 53 with length 5".into(), with(6, &[53, 5, 1, 1, 1, 1, 1, 255])),
        ("option 53 unknown type 0".into(), with(7, &[53, 1, 0, 255])),
        ("option 53 unknown type 200".into(), with(8, &[53, 1, 200, 255])),
        ("option 94 with length 2".into(), with(9, &[53, 1, 1, 94, 2, 1, 2, 93, 2, 0, 0, 255])),
        ("option 94 with length 5".into(), with(10, &[53, 1, 1, 94, 5, 1, 2, 1, 0, 0, 93, 2, 0, 0, 255])),
        ("option 94 with length 0".into(), with(11, &[53, 1, 1, 94, 0, 255])),
        ("option 93 with length 1".into(), with(12, &[53, 1, 1, 93, 1, 7, 255])),
        ("option 93 with length 0".into(), with(13, &[53, 1, 1, 93, 0, 255])),
        ("option 93 with length 3".into(), with(14, &[53, 1, 1, 93, 3, 0, 7, 0, 255])),
        ("option 93 with arch 0xffff".into(), with(15, &[53, 1, 1, 93, 2, 0xff, 0xff, 255])),
        ("option 60 running past the end".into(), with(16, &[53, 1, 1, 60, 200, b'P', b'X', b'E'])),
        ("option length 255 as last byte".into(), with(17, &[53, 1, 1, 77, 255])),
        ("option code as last byte".into(), with(18, &[53, 1, 1, 60])),
        ("option 77 with length 0".into(), with(19, &[53, 1, 1, 77, 0, 255])),
        (
            "option 77 RFC 3004 entry longer than the option".into(),
            with(20, &[53, 1, 1, 77, 5, 16, b'i', b'P', b'X', b'E', 255]),
        ),
        ("option 77 RFC 3004 zero-length entry".into(), with(21, &[53, 1, 1, 77, 2, 0, 0, 255])),
        ("option 43 with sub-option past its end".into(), with(22, &[53, 1, 1, 43, 4, 6, 10, 0, 0, 255])),
        ("option 43 length 1".into(), with(23, &[53, 1, 1, 43, 1, 6, 255])),
        ("option 52 overload into empty sname/file".into(), with(24, &[53, 1, 1, 52, 1, 3, 255])),
        ("option 52 with length 0".into(), with(25, &[53, 1, 1, 52, 0, 255])),
        ("option 55 with length 0".into(), with(26, &[53, 1, 1, 55, 0, 255])),
        ("option 61 with length 0".into(), with(27, &[53, 1, 1, 61, 0, 255])),
        ("option 12 hostname not UTF-8".into(), with(28, &[53, 1, 1, 12, 4, 0xff, 0xfe, 0x00, 0x80, 255])),
        ("option 50 requested IP with length 2".into(), with(29, &[53, 1, 3, 50, 2, 10, 77, 255])),
        ("option 54 server id with length 1".into(), with(30, &[53, 1, 3, 54, 1, 10, 50, 4, 10, 77, 0, 100, 255])),
        ("REQUEST without server id or requested IP".into(), with(31, &[53, 1, 3, 255])),
        ("two option 53s".into(), with(32, &[53, 1, 1, 53, 1, 3, 255])),
        ("RELEASE of an address never leased".into(), {
            let mut p = with(33, &[53, 1, 7, 54, 4, 10, 77, 0, 1, 255]);
            p[12..16].copy_from_slice(&[10, 77, 0, 120]);
            p
        }),
        ("DECLINE without requested IP".into(), with(34, &[53, 1, 4, 255])),
        ("INFORM from 0.0.0.0".into(), with(35, &[53, 1, 8, 255])),
        ("BOOTREPLY sent to the server".into(), {
            let mut p = with(36, &[53, 1, 2, 255]);
            p[0] = 2;
            p
        }),
        ("hlen 255".into(), {
            let mut p = with(37, &[53, 1, 1, 255]);
            p[2] = 255;
            p
        }),
        ("hlen 0".into(), {
            let mut p = with(38, &[53, 1, 1, 255]);
            p[2] = 0;
            p
        }),
        ("htype 0 and op 0".into(), {
            let mut p = with(39, &[53, 1, 1, 255]);
            p[0] = 0;
            p[1] = 0;
            p
        }),
        ("1,400 pad bytes without end".into(), {
            let mut p = with(40, &[53, 1, 1]);
            p.resize(p.len() + 1400, 0);
            p
        }),
        ("hops 255 with giaddr of the server subnet".into(), {
            let mut p = with(41, &[53, 1, 1, 93, 2, 0, 0, 255]);
            p[3] = 255;
            p[24..28].copy_from_slice(&[10, 77, 0, 1]);
            p
        }),
    ];
    for i in 0..20 {
        let mut p = header(1000 + i);
        let n = (rng.next_u32() % 300) as usize;
        p.extend(rng.bytes(n));
        cases.push((format!("random options #{i} ({n} bytes)"), p));
    }
    for i in 0..10 {
        let n = (rng.next_u32() % 1400) as usize;
        cases.push((format!("random datagram #{i} ({n} bytes)"), rng.bytes(n)));
    }
    cases
}

/// A UDP socket on port 68 that may broadcast, bound to `interface`.
pub fn dhcp_client_socket(interface: &str) -> Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 68)).into()).context("bind 0.0.0.0:68")?;
    Ok(socket.into())
}

/// Send a valid DISCOVER and wait up to `timeout` for the OFFER with the same xid.
pub fn probe_offer(socket: &UdpSocket, to: SocketAddr, mac: [u8; 6], xid: u32, timeout: Duration) -> Result<Message> {
    socket.send_to(&discover(mac, xid), to)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no OFFER for a valid DISCOVER (xid {xid:#010x}) within {timeout:?}");
        }
        socket.set_read_timeout(Some(left))?;
        let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
        let Ok(message) = Message::decode(&mut dhcproto::Decoder::new(&buf[..n])) else { continue };
        if message.xid() == xid
            && message.opts().get(dhcproto::v4::OptionCode::MessageType)
                == Some(&DhcpOption::MessageType(MessageType::Offer))
        {
            return Ok(message);
        }
    }
}

/// Drop whatever is queued on `socket`.
pub fn drain(socket: &UdpSocket) {
    let _ = socket.set_nonblocking(true);
    let mut buf = [0u8; 2048];
    while socket.recv_from(&mut buf).is_ok() {}
    let _ = socket.set_nonblocking(false);
}

// ---------------------------------------------------------------------------
// TFTP

pub const TFTP_DATA: u16 = 3;
pub const TFTP_ERROR: u16 = 5;

/// A packet the server sent back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TftpReply {
    Data { block: u16, bytes: Vec<u8> },
    Error { code: u16, message: String },
    Oack(Vec<u8>),
    Other(Vec<u8>),
}

impl TftpReply {
    fn parse(bytes: &[u8]) -> Self {
        let opcode = bytes.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let field = || bytes.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
        match opcode {
            Some(TFTP_DATA) => Self::Data { block: field(), bytes: bytes.get(4..).unwrap_or_default().to_vec() },
            Some(TFTP_ERROR) => Self::Error {
                code: field(),
                message: String::from_utf8_lossy(bytes.get(4..).unwrap_or_default()).trim_end_matches('\0').to_owned(),
            },
            Some(6) => Self::Oack(bytes.to_vec()),
            _ => Self::Other(bytes.to_vec()),
        }
    }
}

/// RRQ (opcode 1) or WRQ (opcode 2) for `file` in octet mode.
pub fn tftp_request(opcode: u16, file: &[u8]) -> Vec<u8> {
    let mut p = opcode.to_be_bytes().to_vec();
    p.extend_from_slice(file);
    p.push(0);
    p.extend_from_slice(b"octet\0");
    p
}

/// Send one request and collect every reply for `window` (answering nothing, so a
/// server that wrongly sends DATA shows it, and its retransmissions, here).
pub fn tftp_replies(server: SocketAddr, request: &[u8], window: Duration) -> Result<Vec<TftpReply>> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.send_to(request, server)?;
    let deadline = Instant::now() + window;
    let mut replies = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let reply = TftpReply::parse(&buf[..n]);
                if matches!(reply, TftpReply::Data { .. } | TftpReply::Oack(_)) {
                    // Tell the server to stop, so its transfer ends here.
                    let mut error = vec![0, 5, 0, 0];
                    error.extend_from_slice(b"test client aborts\0");
                    let _ = socket.send_to(&error, from);
                }
                replies.push(reply);
            }
            Err(_) => break,
        }
    }
    Ok(replies)
}

/// Download `file` with plain RFC 1350 (512-byte blocks, lock-step ACKs).
pub fn tftp_read(server: SocketAddr, file: &str, timeout: Duration) -> Result<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    socket.send_to(&tftp_request(1, file.as_bytes()), server)?;
    let deadline = Instant::now() + timeout;
    let mut data = Vec::new();
    let mut expected: u16 = 1;
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let (n, from) = socket.recv_from(&mut buf).context("TFTP read timed out")?;
        match TftpReply::parse(&buf[..n]) {
            TftpReply::Data { block, bytes } => {
                socket.send_to(&[0, 4, (block >> 8) as u8, block as u8], from)?;
                if block == expected {
                    data.extend_from_slice(&bytes);
                    expected = expected.wrapping_add(1);
                    if bytes.len() < 512 {
                        return Ok(data);
                    }
                }
            }
            TftpReply::Error { code, message } => bail!("TFTP ERROR {code}: {message}"),
            other => bail!("unexpected TFTP reply {other:?}"),
        }
    }
    bail!("TFTP read of {file} did not finish within {timeout:?}")
}
