//! udpcast's wire format (udpcast 20120424, the version Debian ships as `udp-sender` /
//! `udp-receiver`): the messages a sender exchanges with `udp-receiver`, parsed without
//! trusting a byte and built to the exact sizes the C structs have.
//!
//! Read from udpcast's `udpc-protoc.h` (message structs and opcodes), `socklib.h`
//! (ports: receivers use the port base, senders the port base + 1) and the receiver's
//! `receivedata.c` / `udpr-negotiate.c` (what it sends and accepts). Every field is in
//! network byte order; the C structs have natural alignment, so `struct hello` (26
//! bytes of fields) is sent as 28 bytes and a REQACK carries the "ready" bitmap of all
//! 1024 possible receivers right after its 16-byte header.

use std::fmt;
use std::net::Ipv4Addr;

/// udpcast's default port base: receivers listen on it, the sender on the next port.
pub const DEFAULT_PORT_BASE: u16 = 9000;
/// Payload bytes per data packet: udpcast's default and largest block (16-byte header
/// + 1456 = 1472 bytes of UDP payload, a full 1500-byte Ethernet frame).
pub const BLOCK_SIZE: u16 = 1456;
/// Blocks a slice may hold (the receiver's retransmit map has one bit per block).
pub const MAX_SLICE_BLOCKS: usize = 1024;
/// Receivers one session may have (the REQACK's ready bitmap has one bit each).
pub const MAX_RECEIVERS: usize = 1024;
/// Bytes of the retransmit map and of the ready bitmap.
pub const MAP_BYTES: usize = MAX_SLICE_BLOCKS / 8;
const READY_BYTES: usize = MAX_RECEIVERS / 8;

/// The receiver supports capabilities words, multicast and switched-network mode.
pub const CAP_NEW_GEN: u32 = 0x0001;
/// Big-endian (network order) fields: the only kind the receiver still speaks.
pub const CAP_BIG_ENDIAN: u32 = 0x0008;
/// What this sender announces: the same as udpcast's own sender (no FEC, no async).
pub const SENDER_CAPABILITIES: u32 = CAP_NEW_GEN | CAP_BIG_ENDIAN;

// Opcodes (enum opCode in udpc-protoc.h; HELLO is outside the enum).
const CMD_OK: u16 = 0;
const CMD_RETRANSMIT: u16 = 1;
const CMD_GO: u16 = 2;
const CMD_CONNECT_REQ: u16 = 3;
const CMD_DISCONNECT: u16 = 4;
const CMD_REQACK: u16 = 6;
const CMD_CONNECT_REPLY: u16 = 7;
const CMD_DATA: u16 = 8;
const CMD_HELLO: u16 = 0x0500;

/// Header bytes of a data packet (`struct dataBlock`).
pub const DATA_HEADER: usize = 16;
/// A REQACK: `struct reqack` (16 bytes) and the ready bitmap.
pub const REQACK_LEN: usize = 16 + READY_BYTES;
/// `struct connectReply`.
pub const CONNECT_REPLY_LEN: usize = 32;
/// `struct hello`, padded to its alignment as the C sender sends it.
pub const HELLO_LEN: usize = 28;

/// A message a receiver sends to the sender's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverMessage {
    /// "I have every block of this slice."
    Ok { slice: u32 },
    /// "Of this slice I have the blocks whose bit is set": an answer to the REQACK of
    /// round `round`.
    Retransmit { slice: u32, round: u32, received: Box<[u8; MAP_BYTES]> },
    /// Someone pressed a key at a receiver: start now.
    Go,
    /// "I want to join" (broadcast at start, or unicast after a HELLO).
    ConnectRequest { capabilities: u32, receive_buffer: u32 },
    /// The receiver leaves: after the last slice, or when it is stopped.
    Disconnect,
}

/// Why a datagram is not a receiver message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    TooShort {
        opcode: Option<u16>,
        len: usize,
    },
    /// A sender's message (another sender on the same ports) or an unknown opcode.
    NotFromReceiver(u16),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { opcode: Some(opcode), len } => {
                write!(f, "a udpcast message (opcode {opcode:#06x}) cut short at {len} bytes")
            }
            Self::TooShort { opcode: None, len } => write!(f, "{len} bytes: too short for a udpcast message"),
            Self::NotFromReceiver(opcode) if is_sender_opcode(*opcode) => {
                write!(f, "a udpcast sender's message (opcode {opcode:#06x}): another sender is on this port")
            }
            Self::NotFromReceiver(opcode) => write!(f, "unknown udpcast opcode {opcode:#06x}"),
        }
    }
}

fn is_sender_opcode(opcode: u16) -> bool {
    matches!(opcode, CMD_REQACK | CMD_CONNECT_REPLY | CMD_DATA | CMD_HELLO) || (9..=11).contains(&opcode)
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Parses what a receiver sent. Short fields are refused; bytes after a message
/// (the C receiver sends whole structs) are ignored.
pub fn parse_receiver_message(bytes: &[u8]) -> Result<ReceiverMessage, WireError> {
    let opcode = u16_at(bytes, 0).ok_or(WireError::TooShort { opcode: None, len: bytes.len() })?;
    let short = WireError::TooShort { opcode: Some(opcode), len: bytes.len() };
    match opcode {
        CMD_OK => Ok(ReceiverMessage::Ok { slice: u32_at(bytes, 4).ok_or(short)? }),
        CMD_RETRANSMIT => {
            let slice = u32_at(bytes, 4).ok_or(short)?;
            let round = u32_at(bytes, 8).ok_or(short)?;
            let map: [u8; MAP_BYTES] = bytes.get(12..12 + MAP_BYTES).ok_or(short)?.try_into().map_err(|_| short)?;
            Ok(ReceiverMessage::Retransmit { slice, round, received: Box::new(map) })
        }
        CMD_GO => Ok(ReceiverMessage::Go),
        CMD_CONNECT_REQ => Ok(ReceiverMessage::ConnectRequest {
            capabilities: u32_at(bytes, 4).ok_or(short)?,
            receive_buffer: u32_at(bytes, 8).ok_or(short)?,
        }),
        CMD_DISCONNECT => Ok(ReceiverMessage::Disconnect),
        other => Err(WireError::NotFromReceiver(other)),
    }
}

/// "A sender is here": broadcast to the receivers' port, so receivers started before
/// the sender ask to join.
pub fn hello(group: Ipv4Addr, block_size: u16) -> [u8; HELLO_LEN] {
    let mut out = [0u8; HELLO_LEN];
    out[0..2].copy_from_slice(&CMD_HELLO.to_be_bytes());
    out[4..8].copy_from_slice(&SENDER_CAPABILITIES.to_be_bytes());
    out[8..12].copy_from_slice(&group.octets());
    out[24..26].copy_from_slice(&block_size.to_be_bytes());
    out
}

/// The answer to a connect request: the receiver's number (`None`: refused, which the
/// receiver reports as "Too many clients already connected" and exits), the block size
/// and the multicast group the data goes to.
pub fn connect_reply(number: Option<u16>, block_size: u16, group: Ipv4Addr) -> [u8; CONNECT_REPLY_LEN] {
    let mut out = [0u8; CONNECT_REPLY_LEN];
    out[0..2].copy_from_slice(&CMD_CONNECT_REPLY.to_be_bytes());
    let number = number.map_or(-1i32, i32::from);
    out[4..8].copy_from_slice(&number.to_be_bytes());
    out[8..12].copy_from_slice(&u32::from(block_size).to_be_bytes());
    out[12..16].copy_from_slice(&SENDER_CAPABILITIES.to_be_bytes());
    out[16..20].copy_from_slice(&group.octets());
    out
}

/// The header of one data block; the block's bytes follow it in the same datagram.
/// `slice_bytes` is the size of the whole slice (the receiver learns it from any block).
pub fn data_header(slice: u32, block: u16, slice_bytes: u32) -> [u8; DATA_HEADER] {
    let mut out = [0u8; DATA_HEADER];
    out[0..2].copy_from_slice(&CMD_DATA.to_be_bytes());
    out[4..8].copy_from_slice(&slice.to_be_bytes());
    out[8..10].copy_from_slice(&block.to_be_bytes());
    out[12..16].copy_from_slice(&slice_bytes.to_be_bytes());
    out
}

/// "Who has all of this slice?" Receivers whose bit is set in `ready` already said so
/// and stay quiet; the others answer OK or RETRANSMIT quoting `round`. A slice of
/// 0 bytes is the end of the stream.
pub fn reqack(slice: u32, slice_bytes: u32, round: u32, ready: &ReadySet) -> [u8; REQACK_LEN] {
    let mut out = [0u8; REQACK_LEN];
    out[0..2].copy_from_slice(&CMD_REQACK.to_be_bytes());
    out[4..8].copy_from_slice(&slice.to_be_bytes());
    out[8..12].copy_from_slice(&slice_bytes.to_be_bytes());
    out[12..16].copy_from_slice(&round.to_be_bytes());
    out[16..].copy_from_slice(&ready.0);
    out
}

/// One bit per receiver number, least significant bit first in each byte (udpcast's
/// `BIT_ISSET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadySet([u8; READY_BYTES]);

impl Default for ReadySet {
    fn default() -> Self {
        Self([0; READY_BYTES])
    }
}

impl ReadySet {
    pub fn insert(&mut self, number: u16) {
        if let Some(byte) = self.0.get_mut(usize::from(number) / 8) {
            *byte |= 1 << (number % 8);
        }
    }

    pub fn contains(&self, number: u16) -> bool {
        self.0.get(usize::from(number) / 8).is_some_and(|byte| byte & (1 << (number % 8)) != 0)
    }
}

/// Whether block `block` is marked received in a RETRANSMIT's map.
pub fn map_has(map: &[u8; MAP_BYTES], block: usize) -> bool {
    map.get(block / 8).is_some_and(|byte| byte & (1 << (block % 8)) != 0)
}

/// The data group udpcast derives from the sender's address (`getDefaultMcastAddress`:
/// the low 27 bits of the address under 232.0.0.0/5), so a PortaPXE session and a
/// udpcast one from the same address agree.
pub fn default_group(address: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(address) & 0x07ff_ffff) | 0xe800_0000)
}

/// What a sender sent, parsed: for tests that play the receiver's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderMessage {
    Hello { group: Ipv4Addr, block_size: u16 },
    ConnectReply { number: i32, block_size: u32, group: Ipv4Addr },
    Data { slice: u32, block: u16, slice_bytes: u32, payload_len: usize },
    Reqack { slice: u32, slice_bytes: u32, round: u32, ready: ReadySet },
}

pub fn parse_sender_message(bytes: &[u8]) -> Option<SenderMessage> {
    let ip = |at: usize| -> Option<Ipv4Addr> { Some(Ipv4Addr::from(u32_at(bytes, at)?)) };
    match u16_at(bytes, 0)? {
        CMD_HELLO if bytes.len() >= 26 => Some(SenderMessage::Hello { group: ip(8)?, block_size: u16_at(bytes, 24)? }),
        CMD_CONNECT_REPLY => Some(SenderMessage::ConnectReply {
            number: u32_at(bytes, 4)? as i32,
            block_size: u32_at(bytes, 8)?,
            group: ip(16)?,
        }),
        CMD_DATA => Some(SenderMessage::Data {
            slice: u32_at(bytes, 4)?,
            block: u16_at(bytes, 8)?,
            slice_bytes: u32_at(bytes, 12)?,
            payload_len: bytes.len().checked_sub(DATA_HEADER)?,
        }),
        CMD_REQACK => Some(SenderMessage::Reqack {
            slice: u32_at(bytes, 4)?,
            slice_bytes: u32_at(bytes, 8)?,
            round: u32_at(bytes, 12)?,
            ready: ReadySet(bytes.get(16..16 + READY_BYTES)?.try_into().ok()?),
        }),
        _ => None,
    }
}

/// Receiver messages built as the C receiver builds them: for the sender's tests.
pub mod receiver {
    use super::*;

    pub fn ok(slice: u32) -> Vec<u8> {
        let mut out = vec![0u8; 8];
        out[4..8].copy_from_slice(&slice.to_be_bytes());
        out
    }

    /// A RETRANSMIT naming the blocks received (all others are asked for again).
    pub fn retransmit(slice: u32, round: u32, received: impl IntoIterator<Item = usize>) -> Vec<u8> {
        let mut out = vec![0u8; 12 + MAP_BYTES];
        out[0..2].copy_from_slice(&CMD_RETRANSMIT.to_be_bytes());
        out[4..8].copy_from_slice(&slice.to_be_bytes());
        out[8..12].copy_from_slice(&round.to_be_bytes());
        for block in received {
            if let Some(byte) = out.get_mut(12 + block / 8) {
                *byte |= 1 << (block % 8);
            }
        }
        out
    }

    pub fn connect_request() -> Vec<u8> {
        let mut out = vec![0u8; 12];
        out[0..2].copy_from_slice(&CMD_CONNECT_REQ.to_be_bytes());
        out[4..8].copy_from_slice(&SENDER_CAPABILITIES.to_be_bytes());
        out[8..12].copy_from_slice(&212_992u32.to_be_bytes());
        out
    }

    pub fn disconnect() -> Vec<u8> {
        CMD_DISCONNECT.to_be_bytes().iter().copied().chain([0, 0]).collect()
    }

    pub fn go() -> Vec<u8> {
        CMD_GO.to_be_bytes().iter().copied().chain([0, 0]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_messages_round_trip() {
        assert_eq!(parse_receiver_message(&receiver::ok(7)), Ok(ReceiverMessage::Ok { slice: 7 }));
        assert_eq!(parse_receiver_message(&receiver::go()), Ok(ReceiverMessage::Go));
        assert_eq!(parse_receiver_message(&receiver::disconnect()), Ok(ReceiverMessage::Disconnect));
        assert_eq!(
            parse_receiver_message(&receiver::connect_request()),
            Ok(ReceiverMessage::ConnectRequest { capabilities: SENDER_CAPABILITIES, receive_buffer: 212_992 })
        );
        let Ok(ReceiverMessage::Retransmit { slice, round, received }) =
            parse_receiver_message(&receiver::retransmit(3, 2, [0, 9, 1023]))
        else {
            panic!("not a retransmit");
        };
        assert_eq!((slice, round), (3, 2));
        assert!(map_has(&received, 0) && map_has(&received, 9) && map_has(&received, 1023));
        assert!(!map_has(&received, 1) && !map_has(&received, 8));
    }

    #[test]
    fn hostile_bytes_are_refused_without_panic() {
        for len in 0..20 {
            let bytes = vec![0u8; len];
            let _ = parse_receiver_message(&bytes);
            let _ = parse_sender_message(&bytes);
        }
        assert_eq!(
            parse_receiver_message(&[0, 1, 0, 0, 0, 0, 0, 3]),
            Err(WireError::TooShort { opcode: Some(1), len: 8 })
        );
        assert_eq!(parse_receiver_message(&[0, 8, 0, 0]), Err(WireError::NotFromReceiver(8)));
        assert!(WireError::NotFromReceiver(8).to_string().contains("another sender"));
    }

    #[test]
    fn sender_messages_have_the_c_sizes_and_fields() {
        let group = Ipv4Addr::new(234, 77, 0, 1);
        let hello = hello(group, BLOCK_SIZE);
        assert_eq!(hello[..2], [0x05, 0x00]);
        assert_eq!(parse_sender_message(&hello), Some(SenderMessage::Hello { group, block_size: 1456 }));
        let reply = connect_reply(Some(2), BLOCK_SIZE, group);
        assert_eq!(
            parse_sender_message(&reply),
            Some(SenderMessage::ConnectReply { number: 2, block_size: 1456, group })
        );
        let refused = connect_reply(None, BLOCK_SIZE, group);
        assert_eq!(refused[4..8], [0xff; 4], "refusal is client number -1");
        let mut ready = ReadySet::default();
        ready.insert(0);
        ready.insert(9);
        let ack = reqack(5, 1456 * 3, 1, &ready);
        assert_eq!(ack.len(), 144);
        assert_eq!(ack[16], 0b0000_0001);
        assert_eq!(ack[17], 0b0000_0010);
        assert_eq!(
            parse_sender_message(&ack),
            Some(SenderMessage::Reqack { slice: 5, slice_bytes: 4368, round: 1, ready })
        );
        assert_eq!(data_header(1, 2, 3), [0, 8, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn the_default_group_is_udpcasts() {
        // udp-sender on 10.77.0.1 prints "Using mcast address 234.77.0.1".
        assert_eq!(default_group(Ipv4Addr::new(10, 77, 0, 1)), Ipv4Addr::new(234, 77, 0, 1));
        assert_eq!(default_group(Ipv4Addr::new(192, 168, 50, 1)), Ipv4Addr::new(232, 168, 50, 1));
    }
}
