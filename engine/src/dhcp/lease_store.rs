//! Leases on disk: a snapshot (`leases.json`, the whole table) plus an append-only
//! journal (`leases.json.journal`, one JSON line per changed lease).
//!
//! Rewriting the whole table before every ACK made the disk the server's speed limit
//! (one fsync and a table-sized write per ACK); appending only what changed, one
//! `fdatasync` for a whole batch of requests, keeps every acknowledged lease on disk
//! at a fraction of the cost. The journal is folded into the snapshot when it grows
//! past the table's size.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::leases::LeaseTable;
use crate::config::{PoolRange, write_atomically};

/// The journal is compacted once it holds more lines than this or the table's size, whichever is larger.
const MIN_COMPACTION_LINES: usize = 4096;

/// How the table was found on disk.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Journal lines that could not be read (a torn last line after a power cut).
    pub unreadable_journal_lines: usize,
}

pub struct LeaseStore {
    snapshot: PathBuf,
    journal_path: PathBuf,
    journal: File,
    journal_lines: usize,
}

impl LeaseStore {
    /// The journal that goes with `snapshot`.
    pub fn journal_path(snapshot: &Path) -> PathBuf {
        let mut name = snapshot.as_os_str().to_owned();
        name.push(".journal");
        PathBuf::from(name)
    }

    /// Reads the snapshot (`snapshot_bytes`, already read by the caller so it can keep
    /// an unreadable one aside) and the journal, and starts a fresh journal after
    /// writing both into one new snapshot.
    pub fn open(
        snapshot: &Path,
        pool: PoolRange,
        server_ip: Ipv4Addr,
        snapshot_bytes: Option<&[u8]>,
    ) -> Result<(Self, LeaseTable, Loaded), OpenError> {
        let mut table = match snapshot_bytes {
            Some(bytes) => LeaseTable::from_bytes(pool, server_ip, bytes).map_err(OpenError::Snapshot)?,
            None => LeaseTable::new(pool, server_ip),
        };
        let journal_path = Self::journal_path(snapshot);
        let journal_bytes = match std::fs::read(&journal_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(OpenError::Io { path: journal_path, source }),
        };
        let loaded = Loaded { unreadable_journal_lines: table.replay_journal(&journal_bytes) };
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|source| OpenError::Io { path: journal_path.clone(), source })?;
        let mut store = Self { snapshot: snapshot.to_path_buf(), journal_path, journal, journal_lines: 0 };
        if snapshot_bytes.is_some() || !journal_bytes.is_empty() {
            store.compact(&table).map_err(|source| OpenError::Io { path: store.snapshot.clone(), source })?;
        }
        Ok((store, table, loaded))
    }

    /// Appends journal lines ([`LeaseTable::journal_line`]) and waits until the disk has them.
    pub fn append(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        self.journal.write_all(&lines.concat())?;
        self.journal.sync_data()?;
        self.journal_lines += lines.len();
        Ok(())
    }

    /// The journal has outgrown a table of `table_len` leases: time to [`compact`](Self::compact).
    pub fn needs_compaction(&self, table_len: usize) -> bool {
        self.journal_lines > MIN_COMPACTION_LINES.max(table_len)
    }

    pub fn compact(&mut self, table: &LeaseTable) -> io::Result<()> {
        self.compact_to(&table.to_bytes())
    }

    /// Writes `snapshot` ([`LeaseTable::to_bytes`]) as the new snapshot, then empties the
    /// journal. A crash in between replays the old journal over the new snapshot: the same leases.
    pub fn compact_to(&mut self, snapshot: &[u8]) -> io::Result<()> {
        write_atomically(&self.snapshot, snapshot)?;
        self.journal.set_len(0)?;
        self.journal.sync_all()?;
        self.journal_lines = 0;
        Ok(())
    }

    pub fn journal_file(&self) -> &Path {
        &self.journal_path
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the lease file is not valid: {0}")]
    Snapshot(serde_json::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::leases::{ClientKey, Lease, LeaseState};
    use crate::events::MacAddr;

    const NOW: u64 = 1_000_000;

    fn pool() -> PoolRange {
        PoolRange { start: [10, 0, 0, 10].into(), end: [10, 0, 9, 255].into() }
    }

    fn bind(table: &mut LeaseTable, n: u16) -> Ipv4Addr {
        let mac = MacAddr([2, 0, 0, 0, (n >> 8) as u8, n as u8]);
        let client = ClientKey::new(mac, None);
        let ip = table.choose(&client, None, NOW).unwrap();
        let lease = Lease { ip, client, mac, state: LeaseState::Bound, expires: NOW + 3600, hostname: None };
        table.assign(lease, NOW).unwrap();
        ip
    }

    fn reopen(path: &Path) -> (LeaseStore, LeaseTable, Loaded) {
        let bytes = std::fs::read(path).ok();
        LeaseStore::open(path, pool(), [10, 0, 0, 1].into(), bytes.as_deref()).unwrap()
    }

    #[test]
    fn every_recorded_lease_survives_a_restart_without_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut store, mut table, _) = reopen(&path);
        for n in 0..100 {
            let ip = bind(&mut table, n);
            store.append(&[table.journal_line(ip).unwrap()]).unwrap();
        }
        // A crash: the store is dropped without a final compaction.
        drop(store);
        assert!(!path.exists(), "nothing was compacted yet");
        let (_, back, loaded) = reopen(&path);
        assert_eq!(loaded.unreadable_journal_lines, 0);
        assert_eq!(back.to_bytes(), table.to_bytes());
        assert!(path.exists(), "opening folds the journal into a snapshot");
        assert_eq!(std::fs::metadata(LeaseStore::journal_path(&path)).unwrap().len(), 0);
    }

    #[test]
    fn journal_is_compacted_when_it_outgrows_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut store, mut table, _) = reopen(&path);
        let ip = bind(&mut table, 1);
        let line = table.journal_line(ip).unwrap();
        for _ in 0..MIN_COMPACTION_LINES {
            store.append(std::slice::from_ref(&line)).unwrap();
        }
        assert!(!store.needs_compaction(table.len()));
        store.append(&[line]).unwrap();
        assert!(store.needs_compaction(table.len()));
        store.compact(&table).unwrap();
        assert_eq!(std::fs::metadata(store.journal_file()).unwrap().len(), 0);
        let (_, back, _) = reopen(&path);
        assert_eq!(back.to_bytes(), table.to_bytes());
    }

    #[test]
    fn torn_last_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut store, mut table, _) = reopen(&path);
        let ip = bind(&mut table, 7);
        store.append(&[table.journal_line(ip).unwrap()]).unwrap();
        drop(store);
        let mut journal = OpenOptions::new().append(true).open(LeaseStore::journal_path(&path)).unwrap();
        journal.write_all(b"{\"ip\":\"10.0.0.3").unwrap();
        let (_, back, loaded) = reopen(&path);
        assert_eq!(loaded.unreadable_journal_lines, 1);
        assert_eq!(back.get(ip).map(|l| l.state), Some(LeaseState::Bound));
    }
}
