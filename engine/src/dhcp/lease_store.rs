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

use super::leases::{LeaseTable, SnapshotError};
use crate::config::{PoolRange, write_atomically};

/// The journal is compacted once it holds more lines than this or the table's size, whichever is larger.
const MIN_COMPACTION_LINES: usize = 4096;

/// How the table was found on disk.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Journal lines that could not be read (a torn last line after a power cut).
    pub unreadable_journal_lines: usize,
    /// Snapshot records that could not be read; the others were kept.
    pub skipped_records: usize,
    /// Folding the journal into a new snapshot failed (a full disk): the server still
    /// starts, appending to the journal it has.
    pub compaction_failed: Option<io::Error>,
}

pub struct LeaseStore {
    snapshot: PathBuf,
    journal_path: PathBuf,
    journal: File,
    /// Length of the journal up to its last whole line: where a failed append is cut back to.
    journal_len: u64,
    journal_lines: usize,
    /// Journal lines when a compaction last failed: the next try waits for more.
    failed_compaction_at: Option<usize>,
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
        let (mut table, skipped_records) = match snapshot_bytes {
            Some(bytes) => {
                let restored = LeaseTable::restore_snapshot(pool, server_ip, bytes).map_err(OpenError::Snapshot)?;
                (restored.table, restored.skipped_records)
            }
            None => (LeaseTable::new(pool, server_ip), 0),
        };
        let journal_path = Self::journal_path(snapshot);
        let journal_bytes = match std::fs::read(&journal_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(OpenError::Io { path: journal_path, source }),
        };
        let unreadable_journal_lines = table.replay_journal(&journal_bytes);
        let io_error = |source| OpenError::Io { path: journal_path.clone(), source };
        let journal = OpenOptions::new().create(true).append(true).open(&journal_path).map_err(io_error)?;
        // A torn last line (a crash, or a disk that filled mid-write) is cut off, so the
        // next line is not glued to it. Cutting frees space: it works on a full disk.
        let whole = journal_bytes.iter().rposition(|b| *b == b'\n').map_or(0, |last| last + 1);
        if whole < journal_bytes.len() {
            journal.set_len(whole as u64).and_then(|()| journal.sync_all()).map_err(io_error)?;
        }
        let journal_lines = journal_bytes[..whole].split(|b| *b == b'\n').filter(|line| !line.is_empty()).count();
        let mut store = Self {
            snapshot: snapshot.to_path_buf(),
            journal_path,
            journal,
            journal_len: whole as u64,
            journal_lines,
            failed_compaction_at: None,
        };
        let mut loaded = Loaded { unreadable_journal_lines, skipped_records, compaction_failed: None };
        if snapshot_bytes.is_some() || journal_lines > 0 {
            // Without room for a new snapshot the journal still holds every lease.
            // `compact` notes the failure, so it is retried only after the journal grew.
            if let Err(err) = store.compact(&table) {
                loaded.compaction_failed = Some(err);
            }
        }
        Ok((store, table, loaded))
    }

    /// Appends journal lines ([`LeaseTable::journal_line`]) and waits until the disk has
    /// them. When that fails (a full disk), the journal is cut back to where it was, so a
    /// half-written line never glues itself to the next one, and the caller sends no reply.
    pub fn append(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        let bytes = lines.concat();
        let written = self.journal.write_all(&bytes).and_then(|()| self.journal.sync_data());
        if let Err(err) = written {
            let _ = self.journal.set_len(self.journal_len).and_then(|()| self.journal.sync_data());
            return Err(err);
        }
        self.journal_len += bytes.len() as u64;
        self.journal_lines += lines.len();
        Ok(())
    }

    /// The journal has outgrown a table of `table_len` leases: time to [`compact`](Self::compact).
    pub fn needs_compaction(&self, table_len: usize) -> bool {
        let due = self.journal_lines > MIN_COMPACTION_LINES.max(table_len);
        // After a failure (no room for the snapshot) try again only once the journal grew
        // by as much again, not on every request.
        let retry = self.failed_compaction_at.is_none_or(|at| self.journal_lines >= at + MIN_COMPACTION_LINES);
        due && retry
    }

    pub fn compact(&mut self, table: &LeaseTable) -> io::Result<()> {
        self.compact_to(&table.to_bytes())
    }

    /// Writes `snapshot` ([`LeaseTable::to_bytes`]) as the new snapshot, then empties the
    /// journal. A crash in between replays the old journal over the new snapshot: the same leases.
    pub fn compact_to(&mut self, snapshot: &[u8]) -> io::Result<()> {
        if let Err(err) = write_atomically(&self.snapshot, snapshot) {
            self.failed_compaction_at = Some(self.journal_lines);
            return Err(err);
        }
        self.journal.set_len(0)?;
        self.journal.sync_all()?;
        self.journal_len = 0;
        self.journal_lines = 0;
        self.failed_compaction_at = None;
        Ok(())
    }

    pub fn journal_file(&self) -> &Path {
        &self.journal_path
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the lease file cannot be used: {0}")]
    Snapshot(SnapshotError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::leases::{ClientKey, Lease, LeaseState};
    use crate::mac::MacAddr;

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

    #[test]
    fn a_bad_record_costs_that_record_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut store, mut table, _) = reopen(&path);
        let ips: Vec<Ipv4Addr> = (0..3).map(|n| bind(&mut table, n)).collect();
        store.compact(&table).unwrap();
        let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        file["leases"][1]["state"] = serde_json::json!("no-such-state");
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let (_, back, loaded) = reopen(&path);
        assert_eq!(loaded.skipped_records, 1);
        assert!(back.get(ips[0]).is_some() && back.get(ips[2]).is_some(), "the other leases are kept");
    }

    #[test]
    fn a_file_of_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        std::fs::write(&path, br#"{"version": 99, "leases": []}"#).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let refused = LeaseStore::open(&path, pool(), [10, 0, 0, 1].into(), Some(&bytes)).err().unwrap();
        assert!(matches!(refused, OpenError::Snapshot(SnapshotError::UnknownVersion { found: 99 })), "{refused}");
        assert!(refused.to_string().contains("newer PortaPXE"), "{refused}");
    }

    #[test]
    fn a_torn_tail_is_cut_so_the_next_lease_is_not_glued_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut store, mut table, _) = reopen(&path);
        let first = bind(&mut table, 1);
        store.append(&[table.journal_line(first).unwrap()]).unwrap();
        drop(store);
        // A write cut short, then the server starts without room to compact (the
        // snapshot path is taken by a folder): it appends after the cut.
        let mut journal = OpenOptions::new().append(true).open(LeaseStore::journal_path(&path)).unwrap();
        journal.write_all(b"{\"ip\":\"10.0.0.3").unwrap();
        std::fs::create_dir(&path).unwrap();
        let (mut store, mut table, loaded) = LeaseStore::open(&path, pool(), [10, 0, 0, 1].into(), None).unwrap();
        assert_eq!(loaded.unreadable_journal_lines, 1);
        assert!(loaded.compaction_failed.is_some(), "the snapshot could not be written");
        let second = bind(&mut table, 2);
        store.append(&[table.journal_line(second).unwrap()]).unwrap();
        drop(store);
        std::fs::remove_dir(&path).unwrap();
        let (_, back, loaded) = reopen(&path);
        assert_eq!(loaded.unreadable_journal_lines, 0, "the torn line was cut before the next append");
        assert!(back.get(first).is_some() && back.get(second).is_some());
    }

    #[test]
    fn a_failed_compaction_is_not_retried_on_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leases.json");
        let (mut store, mut table, _) = reopen(&path);
        let ip = bind(&mut table, 1);
        let line = table.journal_line(ip).unwrap();
        for _ in 0..=MIN_COMPACTION_LINES {
            store.append(std::slice::from_ref(&line)).unwrap();
        }
        assert!(store.needs_compaction(table.len()));
        std::fs::create_dir(&path).unwrap(); // no room for the snapshot
        assert!(store.compact(&table).is_err());
        store.append(std::slice::from_ref(&line)).unwrap();
        assert!(!store.needs_compaction(table.len()), "not again at once");
        for _ in 0..MIN_COMPACTION_LINES {
            store.append(std::slice::from_ref(&line)).unwrap();
        }
        assert!(store.needs_compaction(table.len()), "again once the journal grew as much");
    }
}
