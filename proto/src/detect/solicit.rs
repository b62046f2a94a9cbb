//! Whether a server reply answers a client of this segment, told from the packet:
//! a real DHCP server here answers a request that was broadcast here (so PortaPXE's
//! own DHCP port saw it, with the same transaction ID and client address), whatever
//! its `giaddr` says (clients ignore it). A reply that answers no request seen here is
//! forged or stray, or relayed for another subnet (`giaddr` outside ours): anyone on
//! the segment can send one, so it is reported but stops nothing. This stops naive
//! forgeries only: whoever also broadcasts the matching DISCOVER first is
//! indistinguishable from a real server and still halts full DHCP, which is the safe
//! side to err on. Pure: the caller gives the time.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::Message;
use ipnet::Ipv4Net;
use serde::Serialize;

/// How long a client request counts as open. A server that pings before offering
/// answers within 3 s; a client retries its DISCOVER within seconds.
pub const REQUEST_MEMORY: Duration = Duration::from_secs(60);

/// Requests remembered at most: a flood of DISCOVERs forgets the oldest.
pub const MAX_REQUESTS: usize = 8192;

/// Where a foreign server's reply comes from, as far as the packet tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// It answers a client request seen on this segment: a server serving it.
    AnswersClient,
    /// Relayed for another network: `giaddr` is a relay agent outside this subnet.
    RelayedElsewhere { relay: Ipv4Addr },
    /// It answers no client request seen here in the last minute: forged, or stray.
    Unsolicited,
    /// Requests are not watched in this mode: taken as a real server.
    Unchecked,
}

impl Provenance {
    /// Whether the reply counts as a server handing out addresses on this segment.
    pub fn serves_this_segment(self) -> bool {
        matches!(self, Self::AnswersClient | Self::Unchecked)
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnswersClient => f.write_str("answers a client on this network"),
            Self::RelayedElsewhere { relay } => {
                write!(f, "was relayed for another network (relay agent {relay}), so it is no server of this network")
            }
            Self::Unsolicited => f.write_str(
                "answers no client request seen here: forged, or a stray packet (anyone on the network can send one)",
            ),
            Self::Unchecked => f.write_str("was not checked"),
        }
    }
}

/// The parts of a reply that name the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub xid: u32,
    /// The client's hardware address (`chaddr`), first 6 bytes.
    pub client: [u8; 6],
    /// `giaddr`, when a relay agent forwarded the exchange.
    pub relay: Option<Ipv4Addr>,
}

impl ReplyTo {
    pub fn of(message: &Message) -> Self {
        let (xid, client) = exchange(message);
        Self { xid, client, relay: Some(message.giaddr()).filter(|ip| !ip.is_unspecified()) }
    }
}

/// What a request and the replies to it share: the transaction ID and the client's
/// hardware address (`chaddr`, first 6 bytes).
pub fn exchange(message: &Message) -> (u32, [u8; 6]) {
    let mut client = [0u8; 6];
    let chaddr = message.chaddr();
    let len = chaddr.len().min(6);
    client[..len].copy_from_slice(&chaddr[..len]);
    (message.xid(), client)
}

/// Client requests seen on this segment recently, and the subnet they belong to.
#[derive(Debug, Clone)]
pub struct RecentRequests {
    subnet: Ipv4Net,
    seen: HashMap<(u32, [u8; 6]), Instant>,
    order: VecDeque<((u32, [u8; 6]), Instant)>,
    /// When a request younger than [`REQUEST_MEMORY`] was last forgotten for room:
    /// until that request would have expired, an unmatched reply proves nothing.
    overflowed: Option<Instant>,
}

impl RecentRequests {
    pub fn new(subnet: Ipv4Net) -> Self {
        Self { subnet, seen: HashMap::new(), order: VecDeque::new(), overflowed: None }
    }

    /// A client broadcast a request (DISCOVER, REQUEST, INFORM) with `xid`.
    pub fn saw(&mut self, xid: u32, client: [u8; 6], now: Instant) {
        self.forget_old(now);
        if self.order.len() >= MAX_REQUESTS
            && let Some((key, at)) = self.order.pop_front()
            && self.seen.get(&key) == Some(&at)
        {
            self.seen.remove(&key);
            self.overflowed = Some(now);
        }
        self.seen.insert((xid, client), now);
        self.order.push_back(((xid, client), now));
    }

    /// What `reply` is, as of `now`.
    pub fn provenance(&mut self, reply: &ReplyTo, now: Instant) -> Provenance {
        self.forget_old(now);
        if self.seen.contains_key(&(reply.xid, reply.client)) {
            return Provenance::AnswersClient;
        }
        // A flood of requests pushed some out: the one this reply answers may be among
        // them, so it counts as a real server (the safe side: never the rogue).
        if self.overflowed.is_some_and(|at| now.saturating_duration_since(at) < REQUEST_MEMORY) {
            return Provenance::Unchecked;
        }
        match reply.relay.filter(|relay| !self.subnet.contains(relay)) {
            Some(relay) => Provenance::RelayedElsewhere { relay },
            None => Provenance::Unsolicited,
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some(&(key, at)) = self.order.front() {
            if now.saturating_duration_since(at) < REQUEST_MEMORY {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&key) == Some(&at) {
                self.seen.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

    fn requests() -> RecentRequests {
        RecentRequests::new("10.77.0.0/24".parse().unwrap())
    }

    fn reply(xid: u32, relay: Option<[u8; 4]>) -> ReplyTo {
        ReplyTo { xid, client: CLIENT, relay: relay.map(Ipv4Addr::from) }
    }

    #[test]
    fn a_reply_to_a_request_seen_here_answers_a_client() {
        let mut recent = requests();
        let now = Instant::now();
        recent.saw(7, CLIENT, now);
        assert_eq!(recent.provenance(&reply(7, None), now + Duration::from_secs(3)), Provenance::AnswersClient);
        // Relayed through an agent on this subnet: still a server of this segment.
        assert_eq!(recent.provenance(&reply(7, Some([10, 77, 0, 254])), now), Provenance::AnswersClient);
        assert!(Provenance::AnswersClient.serves_this_segment());
    }

    #[test]
    fn a_reply_nobody_asked_for_is_unsolicited() {
        let mut recent = requests();
        let now = Instant::now();
        recent.saw(7, CLIENT, now);
        assert_eq!(recent.provenance(&reply(8, None), now), Provenance::Unsolicited);
        let other_client = ReplyTo { client: [2, 0, 0, 0, 0, 9], ..reply(7, None) };
        assert_eq!(recent.provenance(&other_client, now), Provenance::Unsolicited);
        // A minute later the request is forgotten.
        assert_eq!(recent.provenance(&reply(7, None), now + REQUEST_MEMORY), Provenance::Unsolicited);
        assert!(!Provenance::Unsolicited.serves_this_segment());
        assert!(Provenance::Unsolicited.to_string().contains("forged"));
    }

    #[test]
    fn a_reply_relayed_for_another_subnet_is_not_a_server_here() {
        let mut recent = requests();
        let now = Instant::now();
        recent.saw(7, CLIENT, now);
        let relayed = recent.provenance(&reply(8, Some([192, 168, 9, 1])), now);
        assert_eq!(relayed, Provenance::RelayedElsewhere { relay: [192, 168, 9, 1].into() });
        assert!(!relayed.serves_this_segment());
        assert!(relayed.to_string().contains("192.168.9.1"));
        // A reply to a client of this segment serves it, whatever its giaddr says: clients
        // ignore giaddr, so a rogue cannot slip past the halt by setting one.
        assert_eq!(recent.provenance(&reply(7, Some([192, 168, 9, 1])), now), Provenance::AnswersClient);
    }

    #[test]
    fn a_flood_of_requests_is_bounded_and_forgets_the_oldest() {
        let mut recent = requests();
        let now = Instant::now();
        for xid in 0..(MAX_REQUESTS as u32 + 100) {
            recent.saw(xid, CLIENT, now);
        }
        assert_eq!(recent.seen.len(), MAX_REQUESTS);
        // A forgotten request may be the one a reply answers: such a reply halts, as a
        // real server's does, until the flood's requests would have expired anyway.
        assert_eq!(recent.provenance(&reply(0, None), now), Provenance::Unchecked);
        assert!(Provenance::Unchecked.serves_this_segment());
        assert_eq!(recent.provenance(&reply(MAX_REQUESTS as u32 + 99, None), now), Provenance::AnswersClient);
        // The same request seen again is refreshed, not counted twice as live.
        recent.saw(5_000_000, CLIENT, now);
        recent.saw(5_000_000, CLIENT, now + Duration::from_secs(30));
        assert_eq!(
            recent.provenance(&reply(5_000_000, None), now + Duration::from_secs(70)),
            Provenance::AnswersClient
        );
        // A minute after the last request pushed out, replies are judged again.
        assert_eq!(recent.provenance(&reply(1, None), now + Duration::from_secs(91)), Provenance::Unsolicited);
    }
}
