use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder};

use super::ClientArch;
use crate::mac::MacAddr;

/// iPXE announces itself with user-class `iPXE` (option 77) and always sends its
/// own encapsulated options in 175; either is enough to know the loader already runs.
const IPXE_USER_CLASS: &[u8] = b"iPXE";
const IPXE_ENCAPSULATED_OPTIONS: u8 = 175;

/// What kind of network-boot client sent the message, from option 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// No PXE or HTTP-boot vendor class: an ordinary DHCP client.
    Plain,
    /// `PXEClient…`: firmware PXE, iPXE, or a chainloaded loader.
    Pxe,
    /// `HTTPClient…`: UEFI HTTP boot.
    Http,
}

/// Everything the PXE and DHCP decisions need from one client message, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxeRequest {
    pub mac: MacAddr,
    pub xid: u32,
    pub message_type: MessageType,
    /// Option 61, falling back to nothing: leases are keyed by MAC when absent.
    pub client_id: Option<Vec<u8>>,
    pub kind: ClientKind,
    pub vendor_class: Option<String>,
    pub arch: Option<ClientArch>,
    pub is_ipxe: bool,
    /// Option 97 (client machine GUID); some firmware omits it.
    pub guid: Option<Vec<u8>>,
    /// Option 94 (UNDI version) as (type, major, minor).
    pub nic_interface: Option<(u8, u8, u8)>,
    /// PXE boot item (option 43 sub-option 71) a client names when it asks a boot server on 4011.
    pub boot_item: Option<Vec<u8>>,
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub broadcast: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a DHCP message: {0}")]
    Malformed(String),
    #[error("not a client request (BOOTREPLY)")]
    NotARequest,
    #[error("hardware type is not Ethernet with a 6-byte address")]
    NotEthernet,
    #[error("no DHCP message type (plain BOOTP is not served)")]
    NoMessageType,
}

impl PxeRequest {
    /// Decodes hostile bytes without panicking. dhcproto asserts option 94's length
    /// and slices `chaddr` by the wire's `hlen`, so both are checked here first.
    pub fn decode(bytes: &[u8]) -> Result<(Message, PxeRequest), ParseError> {
        let message = decode_message(bytes)?;
        let request = Self::from_message(&message)?;
        Ok((message, request))
    }

    pub fn from_message(message: &Message) -> Result<Self, ParseError> {
        if message.opcode() != Opcode::BootRequest {
            return Err(ParseError::NotARequest);
        }
        if message.hlen() != 6 {
            return Err(ParseError::NotEthernet);
        }
        let mac: [u8; 6] =
            message.chaddr().get(..6).and_then(|bytes| bytes.try_into().ok()).ok_or(ParseError::NotEthernet)?;
        let opts = message.opts();
        let message_type = opts.msg_type().ok_or(ParseError::NoMessageType)?;

        let vendor_class = match opts.get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        };
        let kind = match vendor_class.as_deref() {
            Some(class) if class.starts_with("PXEClient") => ClientKind::Pxe,
            Some(class) if class.starts_with("HTTPClient") => ClientKind::Http,
            _ => ClientKind::Plain,
        };
        let arch = match opts.get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(arch)) => Some(ClientArch::from_code(u16::from(*arch))),
            _ => arch_from_vendor_class(vendor_class.as_deref()),
        };
        let user_class_is_ipxe = match opts.get(OptionCode::UserClass) {
            Some(DhcpOption::UserClass(bytes)) => user_class_names_ipxe(bytes),
            _ => false,
        };
        let has_ipxe_options = opts.get(OptionCode::Unknown(IPXE_ENCAPSULATED_OPTIONS)).is_some();

        Ok(Self {
            mac: MacAddr(mac),
            xid: message.xid(),
            message_type,
            client_id: match opts.get(OptionCode::ClientIdentifier) {
                Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => Some(id.clone()),
                _ => None,
            },
            kind,
            vendor_class,
            arch,
            is_ipxe: user_class_is_ipxe || has_ipxe_options,
            guid: match opts.get(OptionCode::ClientMachineIdentifier) {
                Some(DhcpOption::ClientMachineIdentifier(guid)) => Some(guid.clone()),
                _ => None,
            },
            nic_interface: match opts.get(OptionCode::ClientNetworkInterface) {
                Some(DhcpOption::ClientNetworkInterface(t, major, minor)) => Some((*t, *major, *minor)),
                _ => None,
            },
            boot_item: match opts.get(OptionCode::VendorExtensions) {
                Some(DhcpOption::VendorExtensions(bytes)) => pxe_sub_option(bytes, PXE_BOOT_ITEM).map(<[u8]>::to_vec),
                _ => None,
            },
            requested_ip: match opts.get(OptionCode::RequestedIpAddress) {
                Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
                _ => None,
            },
            server_id: match opts.get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(ip)) => Some(*ip),
                _ => None,
            },
            hostname: match opts.get(OptionCode::Hostname) {
                Some(DhcpOption::Hostname(name)) => Some(name.clone()),
                _ => None,
            },
            ciaddr: message.ciaddr(),
            giaddr: message.giaddr(),
            broadcast: message.flags().broadcast(),
        })
    }

    /// Whether this client wants to network-boot at all (as opposed to just an address).
    pub fn is_boot_client(&self) -> bool {
        self.kind != ClientKind::Plain || self.is_ipxe
    }
}

/// Offset of `hlen` in the BOOTP header, and of the first option after the magic cookie.
const HLEN_OFFSET: usize = 2;
const OPTIONS_OFFSET: usize = 240;
const CLIENT_NETWORK_INTERFACE: u8 = 94;

/// The checks dhcproto would otherwise turn into a panic.
fn precheck(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(HLEN_OFFSET).is_some_and(|&hlen| usize::from(hlen) > 16) {
        return Some("hardware address length over 16");
    }
    // dhcproto checks each part of an option, and joins the parts of one that appears
    // more than once (RFC 3396): lengths are checked part by part and as totals per code.
    let mut totals: [Option<usize>; 256] = [None; 256];
    let mut rest = bytes.get(OPTIONS_OFFSET..).unwrap_or_default();
    loop {
        match rest {
            [] | [255, ..] | [_] => break,
            [0, tail @ ..] => rest = tail,
            [code, len, tail @ ..] => {
                if let Some(problem) = option_length_problem(*code, usize::from(*len)) {
                    return Some(problem);
                }
                let total = &mut totals[usize::from(*code)];
                *total = Some(total.unwrap_or(0) + usize::from(*len));
                match tail.get(usize::from(*len)..) {
                    Some(after) => rest = after,
                    None => break,
                }
            }
        }
    }
    totals.iter().enumerate().find_map(|(code, total)| {
        let total = (*total)?;
        option_length_problem(u8::try_from(code).ok()?, total)
    })
}

/// Options whose (joined) length dhcproto 0.15 checks with `debug_assert!` (a panic in
/// a debug build; found by the fuzz targets: option 155 of 2 bytes, and option 152 given
/// twice): refused here. A zero-length option 80 given twice is still empty.
fn option_length_problem(code: u8, len: usize) -> Option<&'static str> {
    match (code, len) {
        (RAPID_COMMIT, 1..) => Some("option 80 (rapid commit) must be empty"),
        (CLIENT_FQDN, ..=2) => Some("option 81 (client FQDN) must be at least 3 bytes long"),
        (CLIENT_NETWORK_INTERFACE, len) if len != 3 => Some("option 94 must be 3 bytes long"),
        (152..=155, len) if len != 4 => Some("bulk lease query times (options 152-155) must be 4 bytes long"),
        _ => None,
    }
}

const RAPID_COMMIT: u8 = 80;
const CLIENT_FQDN: u8 = 81;

/// Decodes any DHCP message (request or reply) from hostile bytes without panicking.
pub fn decode_message(bytes: &[u8]) -> Result<Message, ParseError> {
    if let Some(problem) = precheck(bytes) {
        return Err(ParseError::Malformed(problem.into()));
    }
    // Backstop for any decoder panic not yet known: one bad packet must not stop a service.
    std::panic::catch_unwind(|| {
        let message =
            Message::decode(&mut Decoder::new(bytes)).map_err(|err| ParseError::Malformed(err.to_string()))?;
        // dhcproto slices chaddr by hlen when asked for it.
        if message.hlen() > 16 {
            return Err(ParseError::NotEthernet);
        }
        Ok(message)
    })
    .unwrap_or_else(|_| Err(ParseError::Malformed("the DHCP decoder rejected this packet".into())))
}

/// PXE spec sub-option of option 43: the boot server type and layer asked for.
pub const PXE_BOOT_ITEM: u8 = 71;

/// Walks option 43's sub-options (code, length, value…) for one code.
pub(crate) fn pxe_sub_option(bytes: &[u8], wanted: u8) -> Option<&[u8]> {
    let mut rest = bytes;
    loop {
        match rest {
            [] | [255, ..] => return None,
            [0, tail @ ..] => rest = tail,
            [code, len, tail @ ..] => {
                let value = tail.get(..usize::from(*len))?;
                if *code == wanted {
                    return Some(value);
                }
                rest = &tail[usize::from(*len)..];
            }
            [_] => return None,
        }
    }
}

/// Option 77 comes raw (`iPXE`, as QEMU's ROM sends it) or in RFC 3004 form
/// (length-prefixed class names); accept both.
fn user_class_names_ipxe(bytes: &[u8]) -> bool {
    if bytes == IPXE_USER_CLASS {
        return true;
    }
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        let Some(name) = tail.get(..len) else { return false };
        if name == IPXE_USER_CLASS {
            return true;
        }
        rest = &tail[len..];
    }
    false
}

/// `PXEClient:Arch:00007:UNDI:003010` carries the architecture too; firmware that
/// omits option 93 still sends this.
fn arch_from_vendor_class(class: Option<&str>) -> Option<ClientArch> {
    let code = class?.split(':').skip_while(|part| *part != "Arch").nth(1)?;
    code.parse::<u16>().ok().map(ClientArch::from_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Encodable;
    use dhcproto::v4::{Architecture, Flags, UnknownOption};

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn discover(extra: Vec<DhcpOption>) -> Message {
        let mut msg = Message::default();
        msg.set_opcode(Opcode::BootRequest).set_chaddr(&MAC).set_xid(0xdead_beef);
        msg.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
        for opt in extra {
            msg.opts_mut().insert(opt);
        }
        msg
    }

    fn parse(extra: Vec<DhcpOption>) -> PxeRequest {
        let bytes = discover(extra).to_vec().unwrap();
        PxeRequest::decode(&bytes).unwrap().1
    }

    #[test]
    fn qemu_bios_ipxe_rom_is_ipxe_bios() {
        let req = parse(vec![
            DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(0)),
            DhcpOption::UserClass(b"iPXE".to_vec()),
        ]);
        assert_eq!(req.mac, MacAddr(MAC));
        assert_eq!(req.kind, ClientKind::Pxe);
        assert_eq!(req.arch, Some(ClientArch::Bios));
        assert!(req.is_ipxe);
        assert_eq!(req.message_type, MessageType::Discover);
    }

    #[test]
    fn rfc3004_user_class_and_option_175_mean_ipxe() {
        let rfc3004 = parse(vec![DhcpOption::UserClass(b"\x03abc\x04iPXE".to_vec())]);
        assert!(rfc3004.is_ipxe);
        let only_175 = parse(vec![DhcpOption::Unknown(UnknownOption::new(OptionCode::Unknown(175), vec![1, 1, 1]))]);
        assert!(only_175.is_ipxe);
        let other_class = parse(vec![DhcpOption::UserClass(b"\x07PXE-ROM".to_vec())]);
        assert!(!other_class.is_ipxe);
        let truncated = parse(vec![DhcpOption::UserClass(b"\x09iPXE".to_vec())]);
        assert!(!truncated.is_ipxe);
    }

    #[test]
    fn ovmf_native_pxe_is_uefi_x64_not_ipxe() {
        let req = parse(vec![
            DhcpOption::ClassIdentifier(b"PXEClient:Arch:00007:UNDI:003000".to_vec()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(7)),
            DhcpOption::ClientNetworkInterface(1, 3, 0),
            DhcpOption::ClientMachineIdentifier(vec![0; 17]),
        ]);
        assert_eq!(req.arch, Some(ClientArch::UefiX64));
        assert!(!req.is_ipxe);
        assert_eq!(req.nic_interface, Some((1, 3, 0)));
        assert_eq!(req.guid.as_deref(), Some(&[0u8; 17][..]));
    }

    #[test]
    fn boot_item_is_read_from_option_43() {
        let req = parse(vec![DhcpOption::VendorExtensions(vec![0, 71, 4, 0x80, 0x00, 0, 0, 255])]);
        assert_eq!(req.boot_item, Some(vec![0x80, 0, 0, 0]));
        let cut = parse(vec![DhcpOption::VendorExtensions(vec![71, 9, 1])]);
        assert_eq!(cut.boot_item, None);
        let other = parse(vec![DhcpOption::VendorExtensions(vec![6, 1, 8, 255])]);
        assert_eq!(other.boot_item, None);
    }

    #[test]
    fn http_client_and_arch_from_vendor_class_when_93_missing() {
        let req = parse(vec![DhcpOption::ClassIdentifier(b"HTTPClient:Arch:00016:UNDI:003000".to_vec())]);
        assert_eq!(req.kind, ClientKind::Http);
        assert_eq!(req.arch, Some(ClientArch::HttpX64));
    }

    #[test]
    fn plain_client_is_not_a_boot_client() {
        let req = parse(vec![DhcpOption::Hostname("laptop".into())]);
        assert_eq!(req.kind, ClientKind::Plain);
        assert!(!req.is_boot_client());
        assert_eq!(req.arch, None);
    }

    #[test]
    fn broadcast_flag_and_addresses_are_read() {
        let mut msg = discover(vec![]);
        msg.set_flags(Flags::default().set_broadcast()).set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
        let req = PxeRequest::decode(&msg.to_vec().unwrap()).unwrap().1;
        assert!(req.broadcast);
        assert_eq!(req.giaddr, Ipv4Addr::new(10, 1, 0, 1));
    }

    fn valid_bytes() -> Vec<u8> {
        discover(vec![
            DhcpOption::ClassIdentifier(b"PXEClient:Arch:00000:UNDI:002001".to_vec()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(0)),
        ])
        .to_vec()
        .unwrap()
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let good = valid_bytes();
        // Every truncation of a valid message.
        for len in 0..good.len() {
            let _ = PxeRequest::decode(&good[..len]);
        }
        // Option 94 with a bad length trips a debug_assert inside dhcproto.
        let mut bad94 = good[..240].to_vec();
        bad94.extend_from_slice(&[53, 1, 1, 94, 1, 1, 255]);
        assert!(matches!(PxeRequest::decode(&bad94), Err(ParseError::Malformed(_))));
        // So do options 80, 81 and 152-155 (155 found by the capture_frame fuzz target):
        // refused by the precheck, never reaching the decoder's panic backstop.
        for option in [[80u8, 1, 0, 0, 0], [81, 2, 0, 0, 0], [94, 0, 0, 0, 0], [152, 3, 0, 0, 0], [155, 2, 0, 0, 0]] {
            let mut bytes = good[..240].to_vec();
            bytes.extend_from_slice(&[53, 1, 1]);
            bytes.extend_from_slice(&option[..2 + usize::from(option[1])]);
            bytes.push(255);
            match decode_message(&bytes) {
                Err(ParseError::Malformed(why)) => assert!(why.contains("must be"), "option {}: {why}", option[0]),
                other => panic!("option {} with length {}: {other:?}", option[0], option[1]),
            }
        }
        // Given twice, an option's parts are joined: two 4-byte option 152s make 8 bytes.
        let mut split = good[..240].to_vec();
        split.extend_from_slice(&[53, 1, 1, 81, 3, 0, 0, 0, 12, 1, b'x', 81, 0, 255]);
        assert!(matches!(decode_message(&split), Err(ParseError::Malformed(why)) if why.contains("must be")));
        let mut twice = good[..240].to_vec();
        twice.extend_from_slice(&[53, 1, 1, 152, 4, 0, 1, 0, 0, 152, 4, 0, 1, 0, 0, 255]);
        assert!(matches!(decode_message(&twice), Err(ParseError::Malformed(why)) if why.contains("must be")));
        let mut fine = good[..240].to_vec();
        fine.extend_from_slice(&[53, 1, 1, 80, 0, 155, 4, 0, 0, 0, 1, 255]);
        assert!(decode_message(&fine).is_ok(), "the right lengths still decode");
        // chaddr is sliced by hlen inside dhcproto.
        for hlen in [0u8, 5, 7, 16, 17, 255] {
            let mut bytes = good.clone();
            bytes[2] = hlen;
            assert!(PxeRequest::decode(&bytes).is_err(), "hlen {hlen}");
        }
        // Option lengths that run past the end, and 93 with one byte.
        for tail in [&[53u8, 1, 1, 60, 200, b'P'][..], &[53, 1, 1, 93, 1, 0], &[53, 1, 1, 255, 255, 255]] {
            let mut bytes = good[..240].to_vec();
            bytes.extend_from_slice(tail);
            let _ = PxeRequest::decode(&bytes);
        }
        // Deterministic pseudo-random noise after the fixed header.
        let mut state = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut bytes = good[..240].to_vec();
            for _ in 0..(state % 64) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                bytes.push(state as u8);
            }
            let _ = PxeRequest::decode(&bytes);
        }
    }

    #[test]
    fn bootreply_and_missing_type_are_rejected() {
        let mut msg = discover(vec![]);
        msg.set_opcode(Opcode::BootReply);
        assert_eq!(PxeRequest::decode(&msg.to_vec().unwrap()).unwrap_err(), ParseError::NotARequest);
        let mut bootp = discover(vec![]);
        bootp.opts_mut().remove(OptionCode::MessageType);
        assert_eq!(PxeRequest::decode(&bootp.to_vec().unwrap()).unwrap_err(), ParseError::NoMessageType);
    }
}
