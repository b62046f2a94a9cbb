use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use serde::Serialize;

use super::solicit::Provenance;
use crate::mac::MacAddr;
use crate::message_type::DhcpMessage;
use crate::pxe::pxe_sub_option;

/// PXE spec option 43 sub-option: the boot menu (type, description length, description …).
const PXE_BOOT_MENU: u8 = 9;

/// What a foreign server does on the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    /// Hands out addresses (yiaddr set): a DHCP server.
    AddressServer,
    /// PXE boot information without an address: a proxyDHCP server.
    ProxyDhcp,
}

impl fmt::Display for ServerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AddressServer => "DHCP server",
            Self::ProxyDhcp => "proxyDHCP server",
        })
    }
}

/// One server reply, reduced to what a technician needs to know about its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSighting {
    /// Option 54, or the packet's source address when the server sent none.
    pub server_id: Ipv4Addr,
    pub source: Ipv4Addr,
    /// The sender's Ethernet address, where the frame was seen (capture).
    pub mac: Option<MacAddr>,
    pub role: ServerRole,
    /// OFFER, ACK, NAK; REQUEST when a client's request named it.
    pub message: DhcpMessage,
    pub offered_address: Option<Ipv4Addr>,
    /// siaddr, when the server points clients at a boot server.
    pub next_server: Option<Ipv4Addr>,
    pub boot_file: Option<String>,
    /// Option 60 `PXEClient`/`HTTPClient` or option 43: it speaks PXE.
    pub pxe: bool,
    /// The first boot server type of its PXE menu (option 43 sub-option 9), which a
    /// client names when it asks for the boot file on port 4011.
    pub boot_server_type: Option<u16>,
    /// Whether it answers a client of this segment (see `solicit`).
    pub provenance: Provenance,
}

impl ServerSighting {
    /// What tells sightings apart: the same server in another role, or a forged reply
    /// naming a real server, is another sighting.
    pub fn key(&self) -> (Ipv4Addr, ServerRole, bool) {
        (self.server_id, self.role, self.provenance.serves_this_segment())
    }

    pub fn offers_boot(&self) -> bool {
        self.boot_file.is_some() || self.pxe
    }

    /// The maker of its network card, from the IEEE OUI table.
    pub fn vendor(&self) -> Option<&'static str> {
        self.mac.and_then(crate::clients::vendor)
    }

    /// One line in plain words.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.role, self.server_id);
        match (self.mac, self.vendor()) {
            (Some(mac), Some(vendor)) => text.push_str(&format!(" ({mac}, {vendor})")),
            (Some(mac), None) => text.push_str(&format!(" ({mac})")),
            _ => {}
        }
        if let Some(address) = self.offered_address {
            text.push_str(&format!(" offers {address}"));
        }
        match (&self.boot_file, self.next_server) {
            (Some(file), Some(next)) => text.push_str(&format!(", boot file {file} from {next}")),
            (Some(file), None) => text.push_str(&format!(", boot file {file}")),
            (None, _) if self.pxe => text.push_str(", PXE options"),
            _ => {}
        }
        text
    }
}

/// Reads a server's reply. `None` for anything that is not an OFFER, ACK or NAK.
pub fn classify(message: &Message, source: Ipv4Addr, mac: Option<MacAddr>) -> Option<ServerSighting> {
    if message.opcode() != Opcode::BootReply {
        return None;
    }
    let kind = message.opts().msg_type()?;
    if !matches!(kind, MessageType::Offer | MessageType::Ack | MessageType::Nak) {
        return None;
    }
    let opts = message.opts();
    let server_id = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(ip)) => *ip,
        _ => source,
    };
    let class_is_pxe = matches!(opts.get(OptionCode::ClassIdentifier),
        Some(DhcpOption::ClassIdentifier(class)) if class.starts_with(b"PXEClient") || class.starts_with(b"HTTPClient"));
    let boot_file = match opts.get(OptionCode::BootfileName) {
        Some(DhcpOption::BootfileName(name)) => text(name),
        _ => message.fname().and_then(text),
    };
    let offered = message.yiaddr();
    // An INFORM's ACK carries no address either; only offers and 4011 ACKs without one are proxies.
    let role = if offered.is_unspecified() && kind != MessageType::Nak && (class_is_pxe || boot_file.is_some()) {
        ServerRole::ProxyDhcp
    } else {
        ServerRole::AddressServer
    };
    Some(ServerSighting {
        server_id,
        source,
        mac,
        role,
        message: DhcpMessage(kind),
        offered_address: (!offered.is_unspecified()).then_some(offered),
        next_server: Some(message.siaddr()).filter(|ip| !ip.is_unspecified()),
        boot_file,
        pxe: class_is_pxe || opts.get(OptionCode::VendorExtensions).is_some(),
        boot_server_type: match opts.get(OptionCode::VendorExtensions) {
            Some(DhcpOption::VendorExtensions(bytes)) => pxe_sub_option(bytes, PXE_BOOT_MENU)
                .and_then(|menu| menu.get(..2))
                .map(|t| u16::from_be_bytes([t[0], t[1]])),
            _ => None,
        },
        provenance: Provenance::Unchecked,
    })
}

fn text(bytes: &[u8]) -> Option<String> {
    let trimmed = bytes.split(|b| *b == 0).next().unwrap_or_default();
    (!trimmed.is_empty()).then(|| String::from_utf8_lossy(trimmed).into_owned())
}

/// Which foreign servers were seen, so each is reported once (and again when it
/// starts doing something new, e.g. a proxy that starts handing out addresses).
#[derive(Debug, Clone, Default)]
pub struct ConflictDetector {
    ours: Vec<Ipv4Addr>,
    /// Keyed also by whether it serves this segment: a forged reply naming a server
    /// must not hide that server's real replies.
    seen: HashMap<(Ipv4Addr, ServerRole, bool), ServerSighting>,
}

/// Servers remembered at most. A real segment has one or two; 20,000 REQUESTs naming
/// random server IDs once made 20,000 entries and a 7 MB status file. Past the limit
/// new ones are neither kept nor reported (the first 64 already say what is wrong).
pub const MAX_SERVERS: usize = 64;

impl ConflictDetector {
    /// `ours`: our own server addresses, never reported.
    pub fn new(ours: Vec<Ipv4Addr>) -> Self {
        Self { ours, seen: HashMap::new() }
    }

    /// Whether `sighting` is one of our own replies.
    pub fn is_ours(&self, sighting: &ServerSighting) -> bool {
        self.ours.contains(&sighting.server_id) || self.ours.contains(&sighting.source)
    }

    /// The sighting if it is news: a foreign server, or a role of it, not seen before.
    pub fn observe(&mut self, sighting: ServerSighting) -> Option<ServerSighting> {
        if self.is_ours(&sighting) {
            return None;
        }
        let key = sighting.key();
        // Doubtful sightings have a limit of their own: a flood of forged replies must
        // not take the places of real servers.
        let full = self.seen.keys().filter(|(_, _, serves)| *serves == key.2).count() >= MAX_SERVERS;
        match self.seen.get_mut(&key) {
            Some(known) => {
                // Fill in what a later reply tells (boot file from the PXE probe, MAC from capture).
                if known.boot_file.is_none() && sighting.boot_file.is_some() {
                    known.boot_file = sighting.boot_file;
                    known.next_server = sighting.next_server.or(known.next_server);
                }
                known.mac = known.mac.or(sighting.mac);
                known.pxe |= sighting.pxe;
                None
            }
            None if full => None,
            None => {
                self.seen.insert(key, sighting.clone());
                Some(sighting)
            }
        }
    }

    /// Everything seen so far, address servers first.
    pub fn servers(&self) -> Vec<ServerSighting> {
        let mut all: Vec<ServerSighting> = self.seen.values().cloned().collect();
        all.sort_by_key(|s| (s.role != ServerRole::AddressServer, s.server_id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROGUE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

    fn reply(kind: MessageType, yiaddr: Ipv4Addr, opts: Vec<DhcpOption>) -> Message {
        let mut msg = Message::default();
        msg.set_opcode(Opcode::BootReply).set_chaddr(&[2, 0, 0, 0, 0, 1]).set_yiaddr(yiaddr);
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        msg.opts_mut().insert(DhcpOption::ServerIdentifier(ROGUE));
        for opt in opts {
            msg.opts_mut().insert(opt);
        }
        msg
    }

    #[test]
    fn address_server_with_pxe_boot_file() {
        let mut msg = reply(MessageType::Offer, Ipv4Addr::new(10, 77, 0, 50), vec![]);
        msg.set_siaddr(ROGUE).set_fname_str("pxelinux.0");
        let s = classify(&msg, ROGUE, None).unwrap();
        assert_eq!(s.role, ServerRole::AddressServer);
        assert_eq!(s.offered_address, Some(Ipv4Addr::new(10, 77, 0, 50)));
        assert_eq!(s.boot_file.as_deref(), Some("pxelinux.0"));
        assert_eq!(s.next_server, Some(ROGUE));
        assert!(s.offers_boot());
        assert_eq!(s.describe(), "DHCP server 10.77.0.2 offers 10.77.0.50, boot file pxelinux.0 from 10.77.0.2");
    }

    #[test]
    fn proxy_offer_has_no_address_but_pxe_class() {
        let msg = reply(
            MessageType::Offer,
            Ipv4Addr::UNSPECIFIED,
            vec![DhcpOption::ClassIdentifier(b"PXEClient".to_vec()), DhcpOption::VendorExtensions(vec![6, 1, 8, 255])],
        );
        let s = classify(&msg, ROGUE, None).unwrap();
        assert_eq!(s.role, ServerRole::ProxyDhcp);
        assert!(s.pxe && s.offered_address.is_none());
        assert_eq!(s.boot_server_type, None);
        let menu = reply(
            MessageType::Offer,
            Ipv4Addr::UNSPECIFIED,
            vec![
                DhcpOption::ClassIdentifier(b"PXEClient".to_vec()),
                DhcpOption::VendorExtensions(vec![6, 1, 3, 9, 7, 0x80, 0x00, 4, b'B', b'o', b'o', b't', 255]),
            ],
        );
        assert_eq!(classify(&menu, ROGUE, None).unwrap().boot_server_type, Some(0x8000));
    }

    #[test]
    fn requests_and_informs_acks_without_pxe_are_not_proxies() {
        let mut request = reply(MessageType::Discover, Ipv4Addr::UNSPECIFIED, vec![]);
        request.set_opcode(Opcode::BootRequest);
        assert!(classify(&request, ROGUE, None).is_none());
        let inform_ack = reply(MessageType::Ack, Ipv4Addr::UNSPECIFIED, vec![]);
        assert_eq!(classify(&inform_ack, ROGUE, None).unwrap().role, ServerRole::AddressServer);
    }

    #[test]
    fn detector_reports_each_foreign_server_once_and_never_ours() {
        let ours = Ipv4Addr::new(10, 77, 0, 1);
        let mut detector = ConflictDetector::new(vec![ours]);
        let offer = reply(MessageType::Offer, Ipv4Addr::new(10, 77, 0, 50), vec![]);
        let sighting = classify(&offer, ROGUE, None).unwrap();
        assert!(detector.observe(sighting.clone()).is_some());
        assert!(detector.observe(sighting.clone()).is_none());
        let mut later = sighting.clone();
        later.boot_file = Some("ipxe.efi".into());
        assert!(detector.observe(later).is_none());
        assert_eq!(detector.servers()[0].boot_file.as_deref(), Some("ipxe.efi"));
        let mut own = sighting;
        own.server_id = ours;
        own.source = ours;
        assert!(detector.observe(own).is_none());
    }

    #[test]
    fn the_detector_keeps_a_bounded_number_of_servers() {
        let mut detector = ConflictDetector::new(vec![Ipv4Addr::new(10, 77, 0, 1)]);
        let offer = reply(MessageType::Offer, Ipv4Addr::new(10, 77, 0, 50), vec![]);
        let sighting = classify(&offer, ROGUE, None).unwrap();
        let reported = (0..20_000u32)
            .filter(|n| {
                let id = Ipv4Addr::from(0x0a00_0000 | n);
                detector.observe(ServerSighting { server_id: id, source: id, ..sighting.clone() }).is_some()
            })
            .count();
        assert_eq!(reported, MAX_SERVERS);
        assert_eq!(detector.servers().len(), MAX_SERVERS);
    }

    #[test]
    fn a_flood_of_forged_replies_does_not_hide_a_real_server() {
        let mut detector = ConflictDetector::new(vec![Ipv4Addr::new(10, 77, 0, 1)]);
        let offer = reply(MessageType::Offer, Ipv4Addr::new(10, 77, 0, 50), vec![]);
        let real = classify(&offer, ROGUE, None).unwrap();
        let forged = ServerSighting { provenance: Provenance::Unsolicited, ..real.clone() };
        let reported = (0..1_000u32)
            .filter(|n| {
                let id = Ipv4Addr::from(0x0a00_0000 | n);
                detector.observe(ServerSighting { server_id: id, source: id, ..forged.clone() }).is_some()
            })
            .count();
        assert_eq!(reported, MAX_SERVERS, "forged ones have their own limit");
        assert!(detector.observe(real).is_some(), "the real server is still reported");
    }
}
