//! TFTP datagrams (RFC 1350, options RFC 2347–2349, windowsize RFC 7440):
//! what a client sends, parsed without trusting a byte, and what the server
//! sends, encoded into a caller's buffer.

use std::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// Bytes before the payload of a DATA packet (opcode, block number).
pub const DATA_HEADER_LEN: usize = 4;

/// TFTP error codes a server sends (RFC 1350, RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ErrorCode {
    /// "Not defined, see error message".
    Undefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    IllegalOperation = 4,
    UnknownTransferId = 5,
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: Mode,
    /// Options in the order sent, names lower-cased (option names are case-insensitive).
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Octet,
    Netascii,
    Mail,
}

/// What a client can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPacket {
    Read(Request),
    Write(Request),
    Ack(u16),
    Error { code: u16, message: String },
}

/// Why a datagram is not a packet a server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    TooShort,
    UnknownOpcode(u16),
    /// A string is not NUL-terminated or the options do not come in pairs.
    Malformed(&'static str),
    /// The file name or an option is not UTF-8 (names are served as text).
    NotUtf8,
    UnknownMode(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort => f.write_str("shorter than a TFTP header"),
            ParseError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseError::Malformed(what) => write!(f, "malformed: {what}"),
            ParseError::NotUtf8 => f.write_str("a name that is not UTF-8"),
            ParseError::UnknownMode(mode) => write!(f, "unknown transfer mode {mode:?}"),
        }
    }
}

/// Parses one datagram from a client. DATA and OACK are server packets; a
/// client sending them gets `UnknownOpcode` like any other stray.
pub fn parse(datagram: &[u8]) -> Result<ClientPacket, ParseError> {
    let (Some(opcode), Some(rest)) = (be16(datagram), datagram.get(2..)) else {
        return Err(ParseError::TooShort);
    };
    match opcode {
        OP_RRQ => parse_request(rest).map(ClientPacket::Read),
        OP_WRQ => parse_request(rest).map(ClientPacket::Write),
        OP_ACK => be16(rest).map(ClientPacket::Ack).ok_or(ParseError::TooShort),
        OP_ERROR => {
            let code = be16(rest).ok_or(ParseError::TooShort)?;
            // Clients do not always terminate the message; take what is there.
            let text = &rest[2..];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            Ok(ClientPacket::Error { code, message: String::from_utf8_lossy(text).into_owned() })
        }
        other => Err(ParseError::UnknownOpcode(other)),
    }
}

fn be16(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let Some(body) = body.strip_suffix(&[0]) else {
        return Err(ParseError::Malformed("the last string is not NUL-terminated"));
    };
    let mut fields = body.split(|b| *b == 0);
    let text = |field: Option<&[u8]>| -> Result<String, ParseError> {
        let field = field.ok_or(ParseError::Malformed("no transfer mode"))?;
        String::from_utf8(field.to_vec()).map_err(|_| ParseError::NotUtf8)
    };
    let filename = text(fields.next())?;
    let mode = text(fields.next())?;
    let mode = match mode.to_ascii_lowercase().as_str() {
        "octet" => Mode::Octet,
        "netascii" => Mode::Netascii,
        "mail" => Mode::Mail,
        _ => return Err(ParseError::UnknownMode(mode)),
    };
    let mut options = Vec::new();
    while let Some(name) = fields.next() {
        let value = fields.next().ok_or(ParseError::Malformed("an option without a value"))?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| ParseError::NotUtf8)?;
        let value = String::from_utf8(value.to_vec()).map_err(|_| ParseError::NotUtf8)?;
        options.push((name.to_ascii_lowercase(), value));
    }
    Ok(Request { filename, mode, options })
}

/// Writes the DATA header for `block` into the first [`DATA_HEADER_LEN`] bytes of `packet`.
pub fn write_data_header(packet: &mut [u8], block: u16) {
    packet[..2].copy_from_slice(&OP_DATA.to_be_bytes());
    packet[2..4].copy_from_slice(&block.to_be_bytes());
}

/// An OACK carrying `options` (name, value) in order.
pub fn oack(options: &[(&'static str, String)]) -> Vec<u8> {
    let mut packet = OP_OACK.to_be_bytes().to_vec();
    for (name, value) in options {
        packet.extend_from_slice(name.as_bytes());
        packet.push(0);
        packet.extend_from_slice(value.as_bytes());
        packet.push(0);
    }
    packet
}

/// An ERROR packet. The message must not name server paths: it goes on the wire.
pub fn error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut packet = OP_ERROR.to_be_bytes().to_vec();
    packet.extend_from_slice(&(code as u16).to_be_bytes());
    packet.extend(message.bytes().filter(|b| *b != 0));
    packet.push(0);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(body: &[u8]) -> Vec<u8> {
        let mut packet = OP_RRQ.to_be_bytes().to_vec();
        packet.extend_from_slice(body);
        packet
    }

    #[test]
    fn a_request_with_options_is_parsed_and_names_lowercased() {
        let packet = rrq(b"boot/x64.efi\x00OCTET\x00BlkSize\x001468\x00tsize\x000\x00windowsize\x0016\x00");
        let Ok(ClientPacket::Read(request)) = parse(&packet) else { panic!("{:?}", parse(&packet)) };
        assert_eq!(request.filename, "boot/x64.efi");
        assert_eq!(request.mode, Mode::Octet);
        assert_eq!(
            request.options,
            vec![
                ("blksize".to_owned(), "1468".to_owned()),
                ("tsize".to_owned(), "0".to_owned()),
                ("windowsize".to_owned(), "16".to_owned())
            ]
        );
    }

    #[test]
    fn acks_and_errors_are_parsed() {
        assert_eq!(parse(&[0, 4, 0xff, 0xfe]), Ok(ClientPacket::Ack(0xfffe)));
        assert_eq!(
            parse(b"\x00\x05\x00\x08bad option\x00"),
            Ok(ClientPacket::Error { code: 8, message: "bad option".to_owned() })
        );
        // Unterminated message, as some clients send it.
        assert_eq!(parse(b"\x00\x05\x00\x00gone"), Ok(ClientPacket::Error { code: 0, message: "gone".to_owned() }));
    }

    #[test]
    fn hostile_datagrams_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x00",
            b"\x00\x01",
            b"\x00\x01name",
            b"\x00\x01name\x00",
            b"\x00\x01name\x00octet",
            b"\x00\x01name\x00octet\x00blksize\x00",
            b"\x00\x01boot\xff.efi\x00octet\x00",
            b"\x00\x01name\x00binary\x00",
            b"\x00\x04\x00",
            b"\x00\x05\x00",
            b"\x00\x03\x00\x01data",
            b"\x00\x06blksize\x00512\x00",
            b"\xff\xff\xff\xff",
        ];
        for case in cases {
            assert!(parse(case).is_err(), "{case:?} parsed as {:?}", parse(case));
        }
        // Every truncation of a good request is handled.
        let good = rrq(b"file\x00octet\x00blksize\x001468\x00");
        for len in 0..good.len() {
            let _ = parse(&good[..len]);
        }
    }

    #[test]
    fn server_packets_are_encoded() {
        let mut data = [0xaau8; 6];
        write_data_header(&mut data, 0x0102);
        assert_eq!(data, [0, 3, 1, 2, 0xaa, 0xaa]);
        assert_eq!(oack(&[("blksize", "1468".to_owned())]), b"\x00\x06blksize\x001468\x00");
        assert_eq!(error(ErrorCode::FileNotFound, "no\x00pe"), b"\x00\x05\x00\x01nope\x00");
    }
}
