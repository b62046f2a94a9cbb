//! The lease table: which address belongs to which client until when. Pure: time
//! comes in as `now` (seconds since the Unix epoch), persistence as bytes.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::dhcp::PoolRange;
use crate::mac::MacAddr;

/// Seconds since the Unix epoch.
pub type Timestamp = u64;

/// How long an offered address stays reserved for the client it was offered to.
pub const OFFER_HOLD_SECS: u64 = 60;
/// How long an address a client declined (someone else uses it) stays out of the pool.
pub const DECLINE_HOLD_SECS: u64 = 600;
const FILE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseState {
    Offered,
    Bound,
    Released,
    Declined,
}

/// Who a lease belongs to: option 61 when the client sends one, else its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKey {
    Mac(MacAddr),
    ClientId(String),
}

impl ClientKey {
    /// A client-id that is just "Ethernet" + the MAC (what iPXE and udhcpc send) is the
    /// same client as the bare MAC (what PXE firmware sends), so one machine keeps one
    /// address across the firmware → iPXE handover.
    pub fn new(mac: MacAddr, client_id: Option<&[u8]>) -> Self {
        match client_id {
            Some([1, rest @ ..]) if rest == mac.0 => Self::Mac(mac),
            Some(id) => Self::ClientId(id.iter().map(|b| format!("{b:02x}")).collect()),
            None => Self::Mac(mac),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub client: ClientKey,
    pub mac: MacAddr,
    pub state: LeaseState,
    pub expires: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl Lease {
    fn is_active(&self, now: Timestamp) -> bool {
        matches!(self.state, LeaseState::Offered | LeaseState::Bound | LeaseState::Declined) && self.expires > now
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum LeaseError {
    #[error("the pool {pool} is exhausted: every address is leased")]
    PoolExhausted { pool: PoolRange },
    #[error("{ip} is not in the pool")]
    OutsidePool { ip: Ipv4Addr },
    #[error("{ip} belongs to another client")]
    TakenByOther { ip: Ipv4Addr },
}

#[derive(Serialize)]
struct LeaseFile {
    version: u32,
    leases: Vec<Lease>,
}

/// The file as read: each lease kept as JSON until it is checked, so one bad record
/// costs that record, not the whole table.
#[derive(Deserialize)]
struct StoredLeaseFile {
    version: u32,
    leases: Vec<serde_json::Value>,
}

/// Why a saved lease table cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("it is not a lease file ({0})")]
    Unreadable(serde_json::Error),
    #[error("it was written by a newer PortaPXE (format {found}; this one reads format {FILE_VERSION})")]
    UnknownVersion { found: u32 },
}

/// A saved table, and how many of its records could not be read.
#[derive(Debug)]
pub struct Restored {
    pub table: LeaseTable,
    pub skipped_records: usize,
}

/// All leases of one pool, indexed both ways.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    pool: PoolRange,
    /// Never handed out: the server's own address.
    reserved: Ipv4Addr,
    by_ip: BTreeMap<Ipv4Addr, Lease>,
    by_client: HashMap<ClientKey, Ipv4Addr>,
    /// Where the search for a never-used address resumes, so a large pool is not rescanned.
    next_unused: u32,
}

impl LeaseTable {
    pub fn new(pool: PoolRange, reserved: Ipv4Addr) -> Self {
        Self { pool, reserved, by_ip: BTreeMap::new(), by_client: HashMap::new(), next_unused: u32::from(pool.start) }
    }

    pub fn pool(&self) -> PoolRange {
        self.pool
    }

    pub fn get(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }

    pub fn lease_of(&self, client: &ClientKey) -> Option<&Lease> {
        self.by_client.get(client).and_then(|ip| self.by_ip.get(ip))
    }

    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.by_ip.values()
    }

    /// The address to offer: the client's own (even expired), the one it asks
    /// for if free, a never-used one, then the longest-expired one.
    pub fn choose(
        &self,
        client: &ClientKey,
        requested: Option<Ipv4Addr>,
        now: Timestamp,
    ) -> Result<Ipv4Addr, LeaseError> {
        if let Some(lease) = self.lease_of(client)
            && lease.state != LeaseState::Declined
            && self.pool.contains(lease.ip)
        {
            return Ok(lease.ip);
        }
        if let Some(ip) = requested.filter(|ip| self.is_free(*ip, now)) {
            return Ok(ip);
        }
        if let Some(ip) = self.find_unused() {
            return Ok(ip);
        }
        if let Some(expired) =
            self.by_ip.values().filter(|lease| !lease.is_active(now)).min_by_key(|lease| lease.expires)
        {
            return Ok(expired.ip);
        }
        // Under a flood of DISCOVERs, an offer nobody took is worth less than a real client.
        self.by_ip
            .values()
            .filter(|lease| lease.state == LeaseState::Offered)
            .min_by_key(|lease| lease.expires)
            .map(|lease| lease.ip)
            .ok_or(LeaseError::PoolExhausted { pool: self.pool })
    }

    fn is_free(&self, ip: Ipv4Addr, now: Timestamp) -> bool {
        self.pool.contains(ip) && ip != self.reserved && self.by_ip.get(&ip).is_none_or(|lease| !lease.is_active(now))
    }

    fn find_unused(&self) -> Option<Ipv4Addr> {
        let start = u32::from(self.pool.start);
        let end = u32::from(self.pool.end);
        let from = self.next_unused.clamp(start, end);
        (from..=end)
            .chain(start..from)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != self.reserved && !self.by_ip.contains_key(ip))
    }

    /// Records `ip` for `client` in `state` until `expires`, taking it from an
    /// expired holder if need be.
    pub fn assign(&mut self, lease: Lease, now: Timestamp) -> Result<(), LeaseError> {
        let (ip, client) = (lease.ip, lease.client.clone());
        if !self.pool.contains(ip) || ip == self.reserved {
            return Err(LeaseError::OutsidePool { ip });
        }
        if let Some(existing) = self.by_ip.get(&ip)
            && existing.client != client
            && existing.state != LeaseState::Offered
            && existing.is_active(now)
        {
            return Err(LeaseError::TakenByOther { ip });
        }
        self.insert(lease);
        Ok(())
    }

    /// Puts `lease` in both indexes, dropping whatever it replaces: the client's
    /// previous address and the address's previous holder.
    fn insert(&mut self, lease: Lease) {
        let (ip, client) = (lease.ip, lease.client.clone());
        if let Some(old_ip) = self.by_client.get(&client).copied()
            && old_ip != ip
        {
            self.by_ip.remove(&old_ip);
        }
        if let Some(previous) = self.by_ip.get(&ip)
            && previous.client != client
        {
            self.by_client.remove(&previous.client);
        }
        if u32::from(ip) == self.next_unused {
            self.next_unused = self.next_unused.saturating_add(1);
        }
        if lease.state == LeaseState::Declined {
            self.by_client.remove(&client);
        } else {
            self.by_client.insert(client, ip);
        }
        self.by_ip.insert(ip, lease);
    }

    /// Takes back a lease read from disk, as it was; one outside the current pool
    /// (the pool may have changed) is dropped.
    fn restore(&mut self, lease: Lease) {
        if self.pool.contains(lease.ip) && lease.ip != self.reserved && lease.state != LeaseState::Offered {
            self.insert(lease);
        }
    }

    /// The client gave its address back; it stays remembered so the same client gets it again.
    pub fn release(&mut self, client: &ClientKey, ip: Ipv4Addr, now: Timestamp) -> bool {
        match self.by_ip.get_mut(&ip) {
            Some(lease) if &lease.client == client && lease.state == LeaseState::Bound => {
                lease.state = LeaseState::Released;
                lease.expires = now;
                true
            }
            _ => false,
        }
    }

    /// The client found `ip` in use by someone else: keep it out of the pool for a while.
    pub fn decline(&mut self, client: &ClientKey, ip: Ipv4Addr, now: Timestamp) -> bool {
        match self.by_ip.get_mut(&ip) {
            Some(lease) if &lease.client == client => {
                lease.state = LeaseState::Declined;
                lease.expires = now + DECLINE_HOLD_SECS;
                self.by_client.remove(client);
                true
            }
            _ => false,
        }
    }

    /// Offers the client never took are forgotten (they were never persisted).
    pub fn drop_offer(&mut self, client: &ClientKey) {
        if let Some(ip) = self.by_client.get(client).copied()
            && self.by_ip.get(&ip).is_some_and(|lease| lease.state == LeaseState::Offered)
        {
            self.by_ip.remove(&ip);
            self.by_client.remove(client);
        }
    }

    /// What survives a restart: bound, released and declined leases, not offers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let leases = self.by_ip.values().filter(|lease| lease.state != LeaseState::Offered).cloned().collect();
        let file = LeaseFile { version: FILE_VERSION, leases };
        serde_json::to_vec_pretty(&file).unwrap_or_default()
    }

    /// Rebuilds a table from a saved file. Leases outside the current pool are
    /// dropped (the pool may have changed).
    #[cfg(test)]
    pub(crate) fn from_bytes(pool: PoolRange, reserved: Ipv4Addr, bytes: &[u8]) -> Result<Self, SnapshotError> {
        Self::restore_snapshot(pool, reserved, bytes).map(|restored| restored.table)
    }

    /// Rebuilds a table from a saved file, skipping (and counting) records that cannot
    /// be read. A file of a newer format is refused whole: its records may not mean
    /// what this version reads into them.
    pub fn restore_snapshot(pool: PoolRange, reserved: Ipv4Addr, bytes: &[u8]) -> Result<Restored, SnapshotError> {
        let file: StoredLeaseFile = serde_json::from_slice(bytes).map_err(SnapshotError::Unreadable)?;
        if file.version > FILE_VERSION {
            return Err(SnapshotError::UnknownVersion { found: file.version });
        }
        let mut table = Self::new(pool, reserved);
        let mut skipped_records = 0;
        for record in file.leases {
            match serde_json::from_value::<Lease>(record) {
                Ok(lease) => table.restore(lease),
                Err(_) => skipped_records += 1,
            }
        }
        Ok(Restored { table, skipped_records })
    }

    /// One line of the lease journal: the lease at `ip` as it is now.
    pub fn journal_line(&self, ip: Ipv4Addr) -> Option<Vec<u8>> {
        let mut line = serde_json::to_vec(self.by_ip.get(&ip)?).ok()?;
        line.push(b'\n');
        Some(line)
    }

    /// Applies journal lines written after the last snapshot, oldest first, so the
    /// newest state of each lease wins. Returns how many lines could not be read: a
    /// torn last line after a power cut belongs to a reply that was never sent.
    pub fn replay_journal(&mut self, journal: &[u8]) -> usize {
        let mut unreadable = 0;
        for line in journal.split(|b| *b == b'\n').filter(|line| !line.is_empty()) {
            match serde_json::from_slice::<Lease>(line) {
                Ok(lease) => self.restore(lease),
                Err(_) => unreadable += 1,
            }
        }
        unreadable
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_000_000;

    fn table() -> LeaseTable {
        LeaseTable::new(PoolRange { start: [10, 0, 0, 10].into(), end: [10, 0, 0, 13].into() }, [10, 0, 0, 11].into())
    }

    fn key(n: u8) -> (ClientKey, MacAddr) {
        let mac = MacAddr([2, 0, 0, 0, 0, n]);
        (ClientKey::new(mac, None), mac)
    }

    fn lease(client: ClientKey, mac: MacAddr, ip: Ipv4Addr, state: LeaseState, expires: Timestamp) -> Lease {
        Lease { ip, client, mac, state, expires, hostname: None }
    }

    fn bind(table: &mut LeaseTable, n: u8, now: Timestamp) -> Ipv4Addr {
        let (client, mac) = key(n);
        let ip = table.choose(&client, None, now).unwrap();
        table.assign(lease(client, mac, ip, LeaseState::Bound, now + 3600), now).unwrap();
        ip
    }

    #[test]
    fn skips_reserved_and_exhausts() {
        let mut t = table();
        assert_eq!(bind(&mut t, 1, NOW), Ipv4Addr::new(10, 0, 0, 10));
        assert_eq!(bind(&mut t, 2, NOW), Ipv4Addr::new(10, 0, 0, 12));
        assert_eq!(bind(&mut t, 3, NOW), Ipv4Addr::new(10, 0, 0, 13));
        let (client, mac) = key(4);
        assert!(matches!(t.choose(&client, None, NOW), Err(LeaseError::PoolExhausted { .. })));
        // An offer nobody took yields to a new client when nothing else is left.
        t.release(&key(1).0, Ipv4Addr::new(10, 0, 0, 10), NOW);
        t.assign(lease(key(5).0, key(5).1, Ipv4Addr::new(10, 0, 0, 10), LeaseState::Offered, NOW + 60), NOW).unwrap();
        assert_eq!(t.choose(&client, None, NOW + 1).unwrap(), Ipv4Addr::new(10, 0, 0, 10));
        t.assign(lease(client.clone(), mac, Ipv4Addr::new(10, 0, 0, 10), LeaseState::Offered, NOW + 61), NOW + 1)
            .unwrap();
        assert!(t.lease_of(&key(5).0).is_none());
        // After expiry, the longest-expired address is reused.
        assert_eq!(t.choose(&client, None, NOW + 4000).unwrap(), Ipv4Addr::new(10, 0, 0, 10));
    }

    #[test]
    fn same_client_same_address_even_after_release() {
        let mut t = table();
        let ip = bind(&mut t, 1, NOW);
        let (client, _) = key(1);
        assert!(t.release(&client, ip, NOW + 5));
        bind(&mut t, 2, NOW + 6);
        assert_eq!(t.choose(&client, None, NOW + 7).unwrap(), ip);
    }

    #[test]
    fn requested_address_honoured_when_free() {
        let t = table();
        let (client, _) = key(1);
        assert_eq!(t.choose(&client, Some([10, 0, 0, 13].into()), NOW).unwrap(), Ipv4Addr::new(10, 0, 0, 13));
        assert_eq!(t.choose(&client, Some([10, 0, 0, 11].into()), NOW).unwrap(), Ipv4Addr::new(10, 0, 0, 10));
        assert_eq!(t.choose(&client, Some([10, 9, 9, 9].into()), NOW).unwrap(), Ipv4Addr::new(10, 0, 0, 10));
    }

    #[test]
    fn active_lease_of_another_is_not_taken() {
        let mut t = table();
        let ip = bind(&mut t, 1, NOW);
        let (client, mac) = key(2);
        let err = t.assign(lease(client, mac, ip, LeaseState::Bound, NOW + 10), NOW).unwrap_err();
        assert_eq!(err, LeaseError::TakenByOther { ip });
    }

    #[test]
    fn declined_address_is_held_back() {
        let mut t = table();
        let ip = bind(&mut t, 1, NOW);
        let (client, _) = key(1);
        assert!(t.decline(&client, ip, NOW));
        assert_ne!(t.choose(&client, None, NOW + 1).unwrap(), ip);
    }

    #[test]
    fn persistence_round_trip_drops_offers_and_foreign_pool() {
        let mut t = table();
        let bound = bind(&mut t, 1, NOW);
        let (client, mac) = key(2);
        t.assign(lease(client.clone(), mac, [10, 0, 0, 12].into(), LeaseState::Offered, NOW + 60), NOW).unwrap();
        let bytes = t.to_bytes();
        let back = LeaseTable::from_bytes(t.pool(), [10, 0, 0, 11].into(), &bytes).unwrap();
        assert_eq!(back.lease_of(&key(1).0).map(|l| l.ip), Some(bound));
        assert!(back.lease_of(&client).is_none());
        let smaller = PoolRange { start: [10, 0, 0, 12].into(), end: [10, 0, 0, 13].into() };
        let moved = LeaseTable::from_bytes(smaller, [10, 0, 0, 11].into(), &bytes).unwrap();
        assert_eq!(moved.leases().count(), 0);
        assert!(LeaseTable::from_bytes(smaller, [10, 0, 0, 11].into(), b"{not json").is_err());
    }

    #[test]
    fn journal_replayed_over_snapshot_gives_the_newest_state() {
        let mut t = table();
        let first = bind(&mut t, 1, NOW);
        let snapshot = t.to_bytes();
        let mut journal = Vec::new();
        let second = bind(&mut t, 2, NOW);
        journal.extend(t.journal_line(second).unwrap());
        let (client, _) = key(1);
        assert!(t.release(&client, first, NOW + 5));
        journal.extend(t.journal_line(first).unwrap());
        let (declining, _) = key(2);
        assert!(t.decline(&declining, second, NOW + 6));
        journal.extend(t.journal_line(second).unwrap());
        journal.extend(b"{\"ip\":\"10.0.0.1");

        let mut back = LeaseTable::from_bytes(t.pool(), [10, 0, 0, 11].into(), &snapshot).unwrap();
        assert_eq!(back.replay_journal(&journal), 1);
        assert_eq!(back.get(first).unwrap().state, LeaseState::Released);
        assert_eq!(back.get(second).unwrap().state, LeaseState::Declined);
        assert!(back.lease_of(&declining).is_none());
        assert_eq!(back.lease_of(&client).map(|l| l.ip), Some(first));
        assert_eq!(back.to_bytes(), t.to_bytes());
    }

    #[test]
    fn journal_follows_a_client_to_a_new_address() {
        let mut t = table();
        let old = bind(&mut t, 1, NOW);
        let (client, mac) = key(1);
        let snapshot = t.to_bytes();
        let new: Ipv4Addr = [10, 0, 0, 13].into();
        t.assign(lease(client.clone(), mac, new, LeaseState::Bound, NOW + 3600), NOW).unwrap();
        let mut back = LeaseTable::from_bytes(t.pool(), [10, 0, 0, 11].into(), &snapshot).unwrap();
        assert_eq!(back.replay_journal(&t.journal_line(new).unwrap()), 0);
        assert!(back.get(old).is_none());
        assert_eq!(back.lease_of(&client).map(|l| l.ip), Some(new));
    }

    #[test]
    fn client_id_keys_differ_from_mac() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        assert_ne!(ClientKey::new(mac, Some(&[1, 2])), ClientKey::new(mac, None));
        assert_eq!(ClientKey::new(mac, Some(&[1, 0xab])), ClientKey::ClientId("01ab".into()));
        assert_eq!(ClientKey::new(mac, Some(&[1, 2, 0, 0, 0, 0, 1])), ClientKey::Mac(mac));
    }
}
