//! What a read request gets, and how its transfer is reported.
//!
//! [`TftpHandler::open`] turns a wire name into bytes to send: a generated file
//! (a map lookup) or a real file resolved by [`paths`] and opened; a refusal
//! says which TFTP error the client gets and the full reason goes to the event.
//! A [`TransferReport`] then reports `Started`, `Progress` (bytes the client has
//! acknowledged) and `Finished`/`Failed`. Both run on the transfer's own thread,
//! so opening and reading block freely.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::packet::{ErrorCode, Mode};
use crate::events::{EngineEvent, EventSink, Protocol, TransferEvent, TransferPhase};
use crate::paths::{self, PathError, RelativePath};
use crate::served::{Served, ServedItem};

/// What a client that tries to write is told (as a TFTP ERROR message).
pub const READ_ONLY_MESSAGE: &str = "PortaPXE's TFTP is read-only";

/// Progress events for one transfer are at least this far apart.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Serves read requests out of one root (what the engine added first: generated files, ISO images), refuses writes.
#[derive(Clone)]
pub struct TftpHandler {
    root: PathBuf,
    served: Served,
    events: EventSink,
    progress_interval: Duration,
}

/// A refused request: what the client is told. The message never names server paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

/// An opened request, ready to send.
pub struct Opened {
    pub source: BlockSource,
    pub report: TransferReport,
}

impl TftpHandler {
    pub fn new(root: PathBuf, served: Served, events: EventSink) -> Self {
        Self { root, served, events, progress_interval: PROGRESS_INTERVAL }
    }

    /// Change how often a transfer reports progress (tests use zero).
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// Find what `requested` names and open it (blocking). On success the
    /// transfer has started (a `Started` event is out); on failure a `Refused`
    /// event is out and the refusal is what the client should be told.
    pub fn open(&self, client: SocketAddr, requested: &str) -> Result<Opened, Refusal> {
        self.open_as(client, requested, Mode::Octet)
    }

    /// [`open`](Self::open) in transfer mode `mode`: netascii sends text with CR LF line
    /// ends (RFC 1350 and RFC 764: LF → CR LF, a lone CR → CR NUL), read whole, so
    /// only files up to [`NETASCII_MAX`].
    pub fn open_as(&self, client: SocketAddr, requested: &str, mode: Mode) -> Result<Opened, Refusal> {
        let relative = paths::normalise(requested).map_err(|e| self.refuse_path(client, requested, &e))?;
        let (source, size) = match self.served.lookup(relative.as_str()) {
            Some(ServedItem::Generated(content)) => {
                let size = content.len() as u64;
                (BlockSource::Memory(content), size)
            }
            Some(ServedItem::InImage(span)) => {
                let file = span.open().map_err(|error| {
                    self.report_refusal(client, requested, &error, false);
                    Refusal { code: ErrorCode::Undefined, message: "the server cannot read this file".to_owned() }
                })?;
                (BlockSource::File { file, start: span.offset, len: span.len }, span.len)
            }
            None => {
                let (file, size) = open_file(&self.root, self.served.loader_dir(), relative)
                    .map_err(|e| self.refuse_path(client, requested, &e))?;
                (BlockSource::File { file, start: 0, len: size }, size)
            }
        };
        let (source, size) = match mode {
            Mode::Netascii => {
                let text = source.read_all(size).map_err(|error| {
                    self.report_refusal(client, requested, &error, false);
                    Refusal { code: ErrorCode::Undefined, message: error.to_string() }
                })?;
                let text = Bytes::from(to_netascii(&text));
                let size = text.len() as u64;
                (BlockSource::Memory(text), size)
            }
            Mode::Octet | Mode::Mail => (source, size),
        };
        let report = TransferReport {
            events: self.events.clone(),
            client,
            file: requested.to_owned(),
            size,
            progress_interval: self.progress_interval,
            last_progress: Instant::now(),
            ended: false,
        };
        report.emit(TransferPhase::Started { size: Some(size) });
        Ok(Opened { source, report })
    }

    /// A write request: refused, and reported.
    pub fn refuse_write(&self, client: SocketAddr, requested: &str) -> Refusal {
        tracing::debug!(%client, file = ?requested, "TFTP write request refused");
        let reason = format!("write request refused: {READ_ONLY_MESSAGE}");
        emit(&self.events, client, requested, TransferPhase::Refused { reason, not_found: false });
        Refusal { code: ErrorCode::Undefined, message: READ_ONLY_MESSAGE.to_owned() }
    }

    /// A request refused before anything was opened (bad mode, server busy).
    pub fn refuse(&self, client: SocketAddr, requested: &str, error: &dyn std::fmt::Display) -> Refusal {
        self.report_refusal(client, requested, error, false);
        Refusal { code: ErrorCode::Undefined, message: error.to_string() }
    }

    fn refuse_path(&self, client: SocketAddr, requested: &str, error: &PathError) -> Refusal {
        self.report_refusal(client, requested, error, error.is_not_found());
        tftp_error(error)
    }

    fn report_refusal(&self, client: SocketAddr, requested: &str, error: &dyn std::fmt::Display, not_found: bool) {
        tracing::debug!(%client, file = ?requested, "TFTP request refused: {error}");
        emit(&self.events, client, requested, TransferPhase::Refused { reason: error.to_string(), not_found });
    }
}

/// What the client is told for a refused path. Firmware acts on the code (iPXE
/// maps 1 to "not found", 2 to "permission denied", 0 to "operation not
/// supported"), so refusals use the standard codes; the full reason, which may
/// name server paths, goes only to the event.
pub fn tftp_error(error: &PathError) -> Refusal {
    let (code, message) = match error {
        PathError::NotFound { .. } | PathError::NotAFile { .. } | PathError::RootUnavailable { .. } => {
            (ErrorCode::FileNotFound, "file not found")
        }
        PathError::Io { .. } => (ErrorCode::Undefined, "the server cannot read this file"),
        _ => (ErrorCode::AccessViolation, "access violation"),
    };
    Refusal { code, message: message.to_owned() }
}

/// Resolve, open, and check what was opened (blocking).
fn open_file(root: &Path, loader_dir: Option<&Path>, relative: RelativePath) -> Result<(File, u64), PathError> {
    let resolved = paths::resolve_normalised(root, loader_dir, relative)?;
    let opened = File::open(resolved.path()).and_then(|file| {
        let metadata = file.metadata()?;
        Ok((file, metadata))
    });
    let (file, metadata) = opened.map_err(|e| paths::open_error(resolved.relative(), root, e))?;
    // Checked again on the open handle: the file may have been swapped since.
    if !metadata.is_file() {
        return Err(PathError::NotAFile {
            relative: resolved.relative().to_string(),
            root: root.to_path_buf(),
            kind: "not a regular file any more",
        });
    }
    Ok((file, metadata.len()))
}

/// Largest file sent in netascii (text; boot files go in octet mode).
pub const NETASCII_MAX: u64 = 16 * 1024 * 1024;

/// Text with network line ends: LF → CR LF, a CR not before LF → CR NUL (RFC 764).
pub fn to_netascii(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 32);
    for (index, &byte) in text.iter().enumerate() {
        match byte {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' if text.get(index + 1) == Some(&b'\n') => {}
            b'\r' => out.extend_from_slice(b"\r\0"),
            other => out.push(other),
        }
    }
    out
}

/// Where the bytes of one transfer come from: read at an offset, so a resent
/// window rereads from the page cache instead of being held in memory.
pub enum BlockSource {
    Memory(Bytes),
    /// `len` bytes of `file` from `start`: a whole file, or a file inside an ISO image.
    File {
        file: File,
        start: u64,
        len: u64,
    },
}

impl BlockSource {
    /// All `size` bytes, for a netascii transfer (at most [`NETASCII_MAX`]).
    fn read_all(&self, size: u64) -> io::Result<Vec<u8>> {
        if size > NETASCII_MAX {
            return Err(io::Error::other(format!(
                "netascii is for text files up to {} MiB: ask for this file in octet mode",
                NETASCII_MAX / 1024 / 1024
            )));
        }
        let mut all = vec![0u8; usize::try_from(size).unwrap_or(0)];
        let read = self.read_at(0, &mut all)?;
        all.truncate(read);
        Ok(all)
    }

    /// Fills `buf` from `offset`; fewer bytes only at the end of the data.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BlockSource::Memory(bytes) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
                let count = buf.len().min(bytes.len() - start);
                buf[..count].copy_from_slice(&bytes[start..start + count]);
                Ok(count)
            }
            BlockSource::File { file, start, len } => {
                let left = usize::try_from(len.saturating_sub(offset)).unwrap_or(usize::MAX);
                let buf_len = buf.len().min(left);
                let buf = &mut buf[..buf_len];
                let mut filled = 0;
                while filled < buf.len() {
                    match read_file_at(file, &mut buf[filled..], start + offset + filled as u64) {
                        Ok(0) => break,
                        Ok(count) => filled += count,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => return Err(err),
                    }
                }
                Ok(filled)
            }
        }
    }
}

#[cfg(unix)]
fn read_file_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_file_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Reports one transfer from `Started` on. Ending it without
/// [`finished`](Self::finished) or [`failed`](Self::failed) (a panic, say) still
/// reports `Failed`.
pub struct TransferReport {
    events: EventSink,
    client: SocketAddr,
    file: String,
    size: u64,
    progress_interval: Duration,
    last_progress: Instant,
    ended: bool,
}

impl TransferReport {
    /// The size announced in `Started` (and answered to `tsize`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The client has acknowledged `bytes`; reported when the interval is due.
    pub fn progress(&mut self, bytes: u64, now: Instant) {
        if now.duration_since(self.last_progress) >= self.progress_interval {
            self.last_progress = now;
            self.emit(TransferPhase::Progress { bytes, size: Some(self.size) });
        }
    }

    /// The client acknowledged the last block.
    pub fn finished(mut self) {
        self.ended = true;
        self.emit(TransferPhase::Finished { bytes: self.size });
    }

    /// The transfer ended early after the client acknowledged `bytes`.
    pub fn failed(mut self, bytes: u64, why: &str) {
        self.ended = true;
        let reason = format!("transfer stopped after {bytes} of {} bytes: {why}", self.size);
        self.emit(TransferPhase::Failed { bytes, reason });
    }

    fn emit(&self, phase: TransferPhase) {
        emit(&self.events, self.client, &self.file, phase);
    }
}

impl Drop for TransferReport {
    fn drop(&mut self) {
        if !self.ended {
            let reason = format!("transfer of {} bytes ended unexpectedly", self.size);
            self.emit(TransferPhase::Failed { bytes: 0, reason });
        }
    }
}

fn emit(events: &EventSink, client: SocketAddr, file: &str, phase: TransferPhase) {
    events.emit(EngineEvent::Transfer(TransferEvent {
        protocol: Protocol::Tftp,
        client,
        file: file.to_owned(),
        phase,
    }));
}

#[cfg(test)]
mod netascii_tests {
    use super::to_netascii;

    #[test]
    fn line_ends_become_cr_lf_and_a_lone_cr_cr_nul() {
        assert_eq!(to_netascii(b"a\nb"), b"a\r\nb");
        assert_eq!(to_netascii(b"a\r\nb"), b"a\r\nb", "CR LF stays CR LF");
        assert_eq!(to_netascii(b"a\rb\r"), b"a\r\0b\r\0");
        assert_eq!(to_netascii(b""), b"");
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::broadcast;

    use super::*;

    fn client() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    fn phases(rx: &mut broadcast::Receiver<EngineEvent>) -> Vec<TransferPhase> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            if let EngineEvent::Transfer(t) = event {
                assert_eq!(t.protocol, Protocol::Tftp);
                assert_eq!(t.client, client());
                out.push(t.phase);
            }
        }
        out
    }

    fn setup() -> (tempfile::TempDir, EventSink, broadcast::Receiver<EngineEvent>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("boot")).unwrap();
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(dir.path().join("boot/x64.efi"), content).unwrap();
        std::fs::write(dir.path().join("boot.ipxe"), b"#!ipxe\necho real file\n").unwrap();
        let events = EventSink::new();
        let rx = events.subscribe();
        (dir, events, rx)
    }

    fn read_all(source: &BlockSource, block: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; block];
        loop {
            let count = source.read_at(out.len() as u64, &mut buf).unwrap();
            out.extend_from_slice(&buf[..count]);
            if count < block {
                return out;
            }
        }
    }

    #[test]
    fn a_file_reads_at_any_offset_and_reports_start_and_finish() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), Served::default(), events);
        let opened = handler.open(client(), "\\boot\\x64.efi").unwrap();
        assert_eq!(opened.report.size(), 10_000);
        let expected = std::fs::read(dir.path().join("boot/x64.efi")).unwrap();
        for block in [8, 512, 1468, 65464] {
            assert!(read_all(&opened.source, block) == expected, "block size {block}");
        }
        opened.report.finished();
        assert_eq!(
            phases(&mut rx),
            vec![TransferPhase::Started { size: Some(10_000) }, TransferPhase::Finished { bytes: 10_000 }]
        );
    }

    #[test]
    fn generated_file_shadows_a_real_one_and_needs_no_root() {
        let (_dir, events, _rx) = setup();
        let script = Bytes::from_static(b"#!ipxe\nchain http://x/boot\n");
        let generated = Served::new([("boot.ipxe".to_owned(), script.clone())]);
        let handler = TftpHandler::new(PathBuf::from("/nonexistent/portapxe"), generated, events);
        let opened = handler.open(client(), "/boot.ipxe").unwrap();
        assert_eq!(read_all(&opened.source, 7), script);
        let mut past_the_end = [0u8; 4];
        assert_eq!(opened.source.read_at(1 << 40, &mut past_the_end).unwrap(), 0);
    }

    #[test]
    fn progress_is_reported_when_due_and_not_otherwise() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), Served::default(), events.clone())
            .with_progress_interval(Duration::ZERO);
        let mut opened = handler.open(client(), "boot/x64.efi").unwrap();
        opened.report.progress(4000, Instant::now());
        assert_eq!(
            phases(&mut rx),
            vec![
                TransferPhase::Started { size: Some(10_000) },
                TransferPhase::Progress { bytes: 4000, size: Some(10_000) },
            ]
        );
        let slow = handler.with_progress_interval(Duration::from_secs(3600));
        let mut opened = slow.open(client(), "boot/x64.efi").unwrap();
        opened.report.progress(4000, Instant::now());
        opened.report.failed(4000, "the client went quiet");
        match phases(&mut rx).as_slice() {
            [TransferPhase::Started { .. }, TransferPhase::Failed { bytes: 4000, reason }] => {
                assert!(reason.contains("4000 of 10000") && reason.contains("went quiet"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_report_dropped_unended_is_a_failure() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), Served::default(), events);
        drop(handler.open(client(), "boot/x64.efi").unwrap());
        assert!(matches!(phases(&mut rx).last(), Some(TransferPhase::Failed { .. })));
    }

    #[test]
    fn refusals_report_and_map_to_tftp_errors() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), Served::default(), events);
        let code = |name: &str| handler.open(client(), name).err().map(|refusal| refusal.code);
        assert_eq!(code("../../etc/passwd"), Some(ErrorCode::AccessViolation));
        assert_eq!(code("missing.efi"), Some(ErrorCode::FileNotFound));
        assert_eq!(code("boot"), Some(ErrorCode::FileNotFound));
        let refusal = handler.open(client(), "missing.efi").err().unwrap();
        assert!(!refusal.message.contains(&dir.path().display().to_string()), "no server paths on the wire");

        let phases = phases(&mut rx);
        assert_eq!(phases.len(), 4, "{phases:?}");
        assert!(matches!(&phases[0], TransferPhase::Refused { reason, .. } if reason.contains("..")));
        assert!(
            matches!(&phases[1], TransferPhase::Refused { reason, not_found: true } if reason.contains("does not exist"))
        );
        assert!(matches!(&phases[2], TransferPhase::Refused { reason, .. } if reason.contains("directory")));
    }

    #[test]
    fn writes_are_refused() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), Served::default(), events);
        let refusal = handler.refuse_write(client(), "upload.bin");
        assert_eq!((refusal.code, refusal.message.as_str()), (ErrorCode::Undefined, READ_ONLY_MESSAGE));
        assert!(
            matches!(phases(&mut rx).as_slice(), [TransferPhase::Refused { reason, .. }] if reason.contains("read-only"))
        );
        assert!(!dir.path().join("upload.bin").exists());
    }
}
