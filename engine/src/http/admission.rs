//! Which connections are served: at most so many at once, and so many from one client
//! address, so one host on the LAN (1,000 idle or slow connections) cannot take every
//! connection, file descriptor and buffer from the machines that boot. Pure counting
//! ([`Counts`]) behind a lock; a [`Ticket`] gives its place back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections from one client address at once. A booting machine uses one or two
/// (iPXE keeps one alive; UEFI HTTP boot opens one per file); 16 leaves room for a
/// NAT'd lab behind one address.
pub const PER_CLIENT: usize = 16;

/// Connections at once when the open-file limit leaves room: a classroom of 40 machines
/// needs about 80.
pub const MOST: usize = 1024;

/// A refused client is logged at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Clients remembered for that (oldest forgotten first).
const REPORTED_MAX: usize = 256;

/// How many connections the service may hold at once for an open-file soft limit of
/// `open_files`: each holds a socket and, while it sends, a file (two descriptors: the
/// open file and the handle its body streams from); TFTP may take up to
/// 1,024 descriptors (512 transfers), so HTTP takes a quarter of the limit, between 16
/// and [`MOST`].
pub fn connection_cap(open_files: u64) -> usize {
    usize::try_from(open_files / 4).unwrap_or(MOST).clamp(16, MOST)
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    FromClient { limit: usize },
    Overall { limit: usize },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FromClient { limit } => write!(f, "it already has {limit} connections open"),
            Self::Overall { limit } => write!(f, "{limit} connections are open, the most this server holds"),
        }
    }
}

/// Open connections, overall and per client.
#[derive(Debug, Default)]
pub struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
    reported: HashMap<IpAddr, Instant>,
}

impl Counts {
    /// Takes a place for `client`, or says why not.
    pub fn admit(&mut self, client: IpAddr, cap: usize) -> Result<(), Refused> {
        let from_client = self.per_client.get(&client).copied().unwrap_or(0);
        if from_client >= PER_CLIENT {
            return Err(Refused::FromClient { limit: PER_CLIENT });
        }
        if self.total >= cap {
            return Err(Refused::Overall { limit: cap });
        }
        self.total += 1;
        self.per_client.insert(client, from_client + 1);
        Ok(())
    }

    /// Gives `client`'s place back.
    pub fn release(&mut self, client: IpAddr) {
        let Some(count) = self.per_client.get_mut(&client) else { return };
        *count -= 1;
        if *count == 0 {
            self.per_client.remove(&client);
        }
        self.total -= 1;
    }

    /// Whether a refusal of `client` at `now` should be logged (once a minute per client).
    pub fn should_report(&mut self, client: IpAddr, now: Instant) -> bool {
        if self.reported.get(&client).is_some_and(|last| now.duration_since(*last) < REPORT_EVERY) {
            return false;
        }
        if self.reported.len() >= REPORTED_MAX
            && let Some(oldest) = self.reported.iter().min_by_key(|(_, at)| **at).map(|(ip, _)| *ip)
        {
            self.reported.remove(&oldest);
        }
        self.reported.insert(client, now);
        true
    }

    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }
}

/// The service's counts, shared by the accept loop and the connections' tickets.
#[derive(Debug, Clone)]
pub struct Admission {
    counts: Arc<Mutex<Counts>>,
    cap: usize,
}

/// A place taken; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    counts: Arc<Mutex<Counts>>,
    client: IpAddr,
}

impl Admission {
    pub fn new(cap: usize) -> Self {
        Self { counts: Arc::default(), cap }
    }

    /// A ticket for `client`, or why it is refused and whether to log it.
    pub fn admit(&self, client: IpAddr) -> Result<Ticket, (Refused, bool)> {
        let mut counts = lock(&self.counts);
        match counts.admit(client, self.cap) {
            Ok(()) => Ok(Ticket { counts: self.counts.clone(), client }),
            Err(refused) => Err((refused, counts.should_report(client, Instant::now()))),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.counts).release(self.client);
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    // Every change is one short update: a poisoned lock still holds whole counts.
    counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 5));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 6));

    #[test]
    fn one_client_cannot_take_more_than_its_share() {
        let mut counts = Counts::default();
        for _ in 0..PER_CLIENT {
            counts.admit(A, 100).unwrap();
        }
        assert_eq!(counts.admit(A, 100), Err(Refused::FromClient { limit: PER_CLIENT }));
        counts.admit(B, 100).expect("another machine still gets in");
        counts.release(A);
        counts.admit(A, 100).expect("a place given back is taken again");
        assert_eq!(counts.total(), PER_CLIENT + 1);
    }

    #[test]
    fn the_service_holds_at_most_its_cap() {
        let mut counts = Counts::default();
        counts.admit(A, 2).unwrap();
        counts.admit(B, 2).unwrap();
        assert_eq!(counts.admit(IpAddr::from([10, 0, 0, 7]), 2), Err(Refused::Overall { limit: 2 }));
        counts.release(B);
        counts.release(B); // a place never taken is not given back
        assert_eq!(counts.total(), 1);
    }

    #[test]
    fn the_cap_follows_the_open_file_limit() {
        assert_eq!(connection_cap(1024), 256);
        assert_eq!(connection_cap(20_000), MOST);
        assert_eq!(connection_cap(40), 16);
    }

    #[test]
    fn a_refused_client_is_reported_once_a_minute() {
        let mut counts = Counts::default();
        let start = Instant::now();
        assert!(counts.should_report(A, start));
        assert!(!counts.should_report(A, start + Duration::from_secs(30)));
        assert!(counts.should_report(B, start + Duration::from_secs(30)));
        assert!(counts.should_report(A, start + Duration::from_secs(61)));
    }

    #[test]
    fn tickets_give_their_place_back() {
        let admission = Admission::new(1);
        let ticket = admission.admit(A).unwrap();
        assert!(matches!(admission.admit(B), Err((Refused::Overall { .. }, true))));
        drop(ticket);
        assert!(admission.admit(B).is_ok());
    }
}
