//! Who may start a transfer now. One address must not take every transfer slot: a
//! student's flood of unanswered requests from one machine held all 512 for minutes.
//! A refusal is reported once per burst from an address, not once per packet.
//! Pure: the service holds it behind a lock.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

/// Transfers served at once, from every client together.
pub const MAX_TRANSFERS: usize = 512;
/// Transfers served at once to one address. A booting machine reads one file at a
/// time; a classroom's machines each have their own address. 64 still lets a
/// benchmark run 40 clients from one host.
pub const MAX_TRANSFERS_PER_CLIENT: usize = 64;
/// Addresses remembered as refused (to report each burst once); beyond, forgotten.
const MAX_REMEMBERED_REFUSALS: usize = 4096;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowded {
    /// [`MAX_TRANSFERS`] are running.
    Server,
    /// [`MAX_TRANSFERS_PER_CLIENT`] are running for this address.
    Client,
}

impl fmt::Display for Crowded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server => write!(f, "server busy: {MAX_TRANSFERS} transfers in progress"),
            Self::Client => {
                write!(f, "too many transfers to this address at once (at most {MAX_TRANSFERS_PER_CLIENT})")
            }
        }
    }
}

/// A request that was not admitted, and whether it is the first of its burst from that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub why: Crowded,
    /// Report this one; later ones of the same burst are answered but not reported.
    pub first: bool,
}

#[derive(Debug, Default)]
pub struct Admission {
    active: usize,
    per_client: HashMap<IpAddr, usize>,
    refused: HashSet<IpAddr>,
}

impl Admission {
    /// Counts a transfer for `client` if it may start now.
    pub fn admit(&mut self, client: IpAddr) -> Result<(), Refused> {
        let mine = self.per_client.get(&client).copied().unwrap_or(0);
        let why = if self.active >= MAX_TRANSFERS {
            Crowded::Server
        } else if mine >= MAX_TRANSFERS_PER_CLIENT {
            Crowded::Client
        } else {
            self.active += 1;
            *self.per_client.entry(client).or_insert(0) += 1;
            return Ok(());
        };
        if self.refused.len() >= MAX_REMEMBERED_REFUSALS && !self.refused.contains(&client) {
            self.refused.clear();
        }
        let first = self.refused.insert(client);
        Err(Refused { why, first })
    }

    /// A transfer of `client`'s ended. Its next refusal is reported again.
    /// Transfers admitted and not yet released.
    pub fn active(&self) -> usize {
        self.active
    }

    pub fn release(&mut self, client: IpAddr) {
        self.active = self.active.saturating_sub(1);
        if let Some(count) = self.per_client.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&client);
            }
        }
        self.refused.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 77, 0, last])
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let mut admission = Admission::default();
        for _ in 0..MAX_TRANSFERS_PER_CLIENT {
            admission.admit(ip(66)).unwrap();
        }
        assert_eq!(admission.admit(ip(66)), Err(Refused { why: Crowded::Client, first: true }));
        assert_eq!(admission.admit(ip(66)), Err(Refused { why: Crowded::Client, first: false }), "reported once");
        assert_eq!(admission.admit(ip(10)), Ok(()), "another machine still gets a slot");
        admission.release(ip(66));
        assert_eq!(admission.admit(ip(66)), Ok(()));
        assert_eq!(admission.admit(ip(66)), Err(Refused { why: Crowded::Client, first: true }), "a new burst");
    }

    #[test]
    fn the_server_cap_holds_for_everyone() {
        let mut admission = Admission::default();
        for n in 0..MAX_TRANSFERS {
            admission.admit(IpAddr::from([10, 0, (n / 250) as u8, (n % 250) as u8])).unwrap();
        }
        assert_eq!(admission.active, MAX_TRANSFERS);
        assert_eq!(admission.admit(ip(1)), Err(Refused { why: Crowded::Server, first: true }));
        admission.release(IpAddr::from([10, 0, 0, 0]));
        assert_eq!(admission.admit(ip(1)), Ok(()));
    }

    #[test]
    fn remembered_refusals_stay_bounded() {
        let mut admission = Admission::default();
        for n in 0..MAX_TRANSFERS {
            admission.admit(IpAddr::from([10, 0, (n / 250) as u8, (n % 250) as u8])).unwrap();
        }
        for n in 0..(MAX_REMEMBERED_REFUSALS as u32 * 3) {
            let _ = admission.admit(IpAddr::from(std::net::Ipv4Addr::from(0x0a80_0000 | n)));
        }
        assert!(admission.refused.len() <= MAX_REMEMBERED_REFUSALS);
    }
}
