//! Ends iPXE's wait for IPv6 on a segment with no IPv6 router.
//!
//! iPXE's "Configuring (net0 …)" waits for IPv6 router discovery (about 13 s) before
//! it goes on with the IPv4 address it already has. One router advertisement that
//! says "no router here" (router lifetime 0, no prefix, no managed/other flags) ends
//! that wait, and it makes nobody's router and hands out no IPv6 address. PortaPXE
//! sends one in answer to each router solicitation, in full DHCP mode only: there it
//! owns the segment (the safety gate saw no other DHCP server).
//!
//! Owns: reading a solicitation and deciding whether and where to answer, with rate
//! limits ([`Responder`], pure); the socket that does it is the engine's
//! (`router_advert::service`, Unix only).
//! Must not touch: DHCP, or any interface but the serving one.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use crate::mac::MacAddr;

/// ICMPv6 router solicitation (RFC 4861 §4.1).
const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 router advertisement (RFC 4861 §4.2).
const ROUTER_ADVERTISEMENT: u8 = 134;
/// NDP option: source link-layer address.
const SOURCE_LINK_LAYER_ADDRESS: u8 = 1;

/// The advertisement: type 134, code 0, checksum 0 (the kernel computes it for ICMPv6
/// raw sockets), current hop limit 0 (unspecified: hosts keep theirs), no M/O flags,
/// router lifetime 0 (not a default router), reachable time and retransmit timer 0
/// (unspecified), and no options: no prefix, so no address is configured from it.
pub const ADVERTISEMENT: [u8; 16] = [ROUTER_ADVERTISEMENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Link-local all-nodes: where an answer to a solicitation from `::` goes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Link-local all-routers: where hosts send their solicitations.
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// One source gets at most one answer in this time (iPXE solicits again after about 1 s).
const PER_SOURCE_INTERVAL_MS: u64 = 500;
/// At most this many answers in one second, whatever floods the segment.
const MAX_ANSWERS_PER_SECOND: u32 = 100;
/// Sources remembered for the per-source limit; past this the oldest are forgotten.
const MAX_SOURCES: usize = 4096;

/// A router solicitation, as far as the answer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// The soliciting host's MAC, when it sent its link-layer address.
    pub mac: Option<MacAddr>,
}

impl Solicitation {
    /// Reads an ICMPv6 message as a raw socket hands it over (no IPv6 header).
    /// Anything else, or a solicitation RFC 4861 §6.1.1 says to drop, is `None`.
    pub fn parse(message: &[u8]) -> Option<Self> {
        let (&kind, rest) = message.split_first()?;
        let (&code, _) = rest.split_first()?;
        if kind != ROUTER_SOLICITATION || code != 0 || message.len() < 8 {
            return None;
        }
        let mut mac = None;
        let mut options = &message[8..];
        while !options.is_empty() {
            let (&kind, &units) = (options.first()?, options.get(1)?);
            let len = usize::from(units) * 8;
            if len == 0 || len > options.len() {
                return None;
            }
            if kind == SOURCE_LINK_LAYER_ADDRESS && len == 8 {
                let bytes: [u8; 6] = options[2..8].try_into().ok()?;
                mac = Some(MacAddr(bytes));
            }
            options = &options[len..];
        }
        Some(Self { mac })
    }
}

/// Where an answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Back to the soliciting host's own address.
    Unicast(Ipv6Addr),
    /// A host with no address yet (it solicited from `::`): all nodes on the link.
    AllNodes,
}

/// Why a solicitation got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Not a router solicitation (or a malformed one).
    NotASolicitation,
    /// This source was answered less than [`PER_SOURCE_INTERVAL_MS`] ago.
    AnsweredJustNow,
    /// [`MAX_ANSWERS_PER_SECOND`] answers went out this second already.
    RateLimited,
}

/// Decides, for each ICMPv6 message that arrives, whether to answer and where.
#[derive(Debug, Default)]
pub struct Responder {
    last_answer_ms: HashMap<Ipv6Addr, u64>,
    second_started_ms: u64,
    answers_this_second: u32,
}

impl Responder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `message` came from `from` at `now_ms` (any monotonic milliseconds).
    pub fn decide(&mut self, message: &[u8], from: Ipv6Addr, now_ms: u64) -> Result<Destination, Silence> {
        Solicitation::parse(message).ok_or(Silence::NotASolicitation)?;
        if now_ms.saturating_sub(self.second_started_ms) >= 1000 {
            self.second_started_ms = now_ms;
            self.answers_this_second = 0;
        }
        if self.answers_this_second >= MAX_ANSWERS_PER_SECOND {
            return Err(Silence::RateLimited);
        }
        if let Some(&last) = self.last_answer_ms.get(&from)
            && now_ms.saturating_sub(last) < PER_SOURCE_INTERVAL_MS
        {
            return Err(Silence::AnsweredJustNow);
        }
        if self.last_answer_ms.len() >= MAX_SOURCES {
            self.last_answer_ms.retain(|_, &mut last| now_ms.saturating_sub(last) < PER_SOURCE_INTERVAL_MS);
            if self.last_answer_ms.len() >= MAX_SOURCES {
                self.last_answer_ms.clear();
            }
        }
        self.last_answer_ms.insert(from, now_ms);
        self.answers_this_second += 1;
        Ok(if from.is_unspecified() { Destination::AllNodes } else { Destination::Unicast(from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What iPXE sends: a solicitation with its MAC in a source link-layer address option.
    const FROM_IPXE: [u8; 16] = [133, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0, 0xb1, 0x05, 0x01];

    fn link_local(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last)
    }

    #[test]
    fn the_advertisement_says_no_router_and_offers_nothing() {
        assert_eq!(ADVERTISEMENT[0], 134);
        assert_eq!(ADVERTISEMENT[1], 0, "code");
        assert_eq!(ADVERTISEMENT[5] & 0xc0, 0, "no managed or other-config flag");
        assert_eq!(&ADVERTISEMENT[6..8], &[0, 0], "router lifetime 0");
        assert_eq!(ADVERTISEMENT.len(), 16, "no options: no prefix, no MTU, no route");
    }

    #[test]
    fn a_solicitation_is_read_with_its_mac() {
        let solicitation = Solicitation::parse(&FROM_IPXE).unwrap();
        assert_eq!(solicitation.mac, Some(MacAddr([0x52, 0x54, 0, 0xb1, 0x05, 0x01])));
        assert_eq!(Solicitation::parse(&FROM_IPXE[..8]), Some(Solicitation { mac: None }));
    }

    #[test]
    fn other_and_malformed_messages_are_not_solicitations() {
        let mut advertisement = FROM_IPXE;
        advertisement[0] = 134;
        let mut code = FROM_IPXE;
        code[1] = 1;
        let mut zero_length_option = FROM_IPXE;
        zero_length_option[9] = 0;
        let mut overlong_option = FROM_IPXE;
        overlong_option[9] = 2;
        for message in
            [&advertisement[..], &code[..], &zero_length_option[..], &overlong_option[..], &FROM_IPXE[..7], &[]]
        {
            assert_eq!(Solicitation::parse(message), None, "{message:?}");
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..64 {
            for _ in 0..200 {
                let mut message: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as u8
                    })
                    .collect();
                if let Some(first) = message.first_mut() {
                    *first = 133;
                }
                if let Some(code) = message.get_mut(1) {
                    *code = 0;
                }
                let _ = Solicitation::parse(&message);
            }
        }
    }

    #[test]
    fn each_host_is_answered_where_it_can_hear() {
        let mut responder = Responder::new();
        assert_eq!(responder.decide(&FROM_IPXE, link_local(1), 0), Ok(Destination::Unicast(link_local(1))));
        assert_eq!(responder.decide(&FROM_IPXE, Ipv6Addr::UNSPECIFIED, 0), Ok(Destination::AllNodes));
        assert_eq!(responder.decide(&ADVERTISEMENT, link_local(2), 0), Err(Silence::NotASolicitation));
    }

    #[test]
    fn a_host_soliciting_again_at_once_is_answered_once() {
        let mut responder = Responder::new();
        assert!(responder.decide(&FROM_IPXE, link_local(1), 1_000).is_ok());
        assert_eq!(responder.decide(&FROM_IPXE, link_local(1), 1_100), Err(Silence::AnsweredJustNow));
        assert!(responder.decide(&FROM_IPXE, link_local(2), 1_100).is_ok(), "another host is answered");
        assert!(responder.decide(&FROM_IPXE, link_local(1), 1_000 + PER_SOURCE_INTERVAL_MS).is_ok());
    }

    #[test]
    fn a_flood_gets_a_bounded_number_of_answers_per_second() {
        let mut responder = Responder::new();
        let answered = (0..1000u16).filter(|&n| responder.decide(&FROM_IPXE, link_local(n), 5_000).is_ok()).count();
        assert_eq!(answered, MAX_ANSWERS_PER_SECOND as usize);
        assert_eq!(responder.decide(&FROM_IPXE, link_local(5000), 5_999), Err(Silence::RateLimited));
        assert!(responder.decide(&FROM_IPXE, link_local(5000), 6_000).is_ok(), "the next second answers again");
    }

    #[test]
    fn remembered_sources_stay_bounded() {
        let mut responder = Responder::new();
        for n in 0..(MAX_SOURCES as u32 * 3) {
            let from = Ipv6Addr::from(0xfe80_0000_0000_0000_0000_0000_0000_0000u128 | u128::from(n));
            let _ = responder.decide(&FROM_IPXE, from, u64::from(n) * 20);
        }
        assert!(responder.last_answer_ms.len() <= MAX_SOURCES);
    }
}
