//! The async-tftp [`Handler`]: decides what a read request gets, and reports
//! every transfer as [`TransferEvent`]s.
//!
//! async-tftp calls [`Handler::read_req_open`] with its one handler mutex held,
//! so every open waits for the one before it. The open is therefore kept
//! short: a generated file is a map lookup, a real file is resolved and opened
//! with `blocking::unblock` (never on the executor thread), and reading happens
//! later, outside the lock, through a [`TransferReader`].
//!
//! File reads go to the blocking pool a chunk at a time ([`ChunkedFile`]), not a
//! block at a time: a thread hop per TFTP block was most of the server's CPU.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tftp::packet;
use async_tftp::server::Handler;
use bytes::Bytes;
use futures_lite::io::{AsyncRead, Cursor, Sink};

use super::paths::{self, PathError, RelativePath};
use crate::events::{EngineEvent, EventSink, Protocol, TransferEvent, TransferPhase};
use crate::generated::GeneratedFiles;

/// What a client that tries to write is told (as a TFTP ERROR message).
pub const READ_ONLY_MESSAGE: &str = "PortaPXE's TFTP is read-only";

/// Progress events for one transfer are at least this far apart.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Bytes read from the file per trip to the blocking pool (at least one block).
/// 22 blocks of 1468 bytes per trip; 40 transfers hold 1.3 MiB between them.
const READ_CHUNK: usize = 32 * 1024;

/// Serves read requests out of one root (generated files first), refuses writes.
pub struct TftpHandler {
    root: PathBuf,
    generated: GeneratedFiles,
    events: EventSink,
    progress_interval: Duration,
}

impl TftpHandler {
    pub fn new(root: PathBuf, generated: GeneratedFiles, events: EventSink) -> Self {
        Self { root, generated, events, progress_interval: PROGRESS_INTERVAL }
    }

    /// Change how often a transfer reports progress (tests use zero).
    pub fn with_progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// Find what `requested` names and open it for reading. On success the
    /// transfer has started (a `Started` event is out); on failure a `Refused`
    /// event is out and the error is what the client should be told.
    pub async fn open(&self, client: SocketAddr, requested: &str) -> Result<TransferReader, packet::Error> {
        let relative = match paths::normalise(requested) {
            Ok(relative) => relative,
            Err(e) => return Err(self.refuse(client, requested, &e)),
        };

        if let Some(content) = self.generated.get(relative.as_str()) {
            let size = content.len() as u64;
            return Ok(self.start(client, requested, Source::Memory(Cursor::new(content)), size));
        }

        let root = self.root.clone();
        match blocking::unblock(move || open_file(&root, relative)).await {
            Ok((file, size)) => {
                let source = Source::File(ChunkedFile::new(file));
                Ok(self.start(client, requested, source, size))
            }
            Err(e) => Err(self.refuse(client, requested, &e)),
        }
    }

    fn start(&self, client: SocketAddr, requested: &str, source: Source, size: u64) -> TransferReader {
        let report = Report {
            events: self.events.clone(),
            client,
            file: requested.to_owned(),
            size,
            bytes: 0,
            eof: false,
            read_error: None,
            progress_interval: self.progress_interval,
            last_progress: Instant::now(),
        };
        report.emit(TransferPhase::Started { size: Some(size) });
        TransferReader { source, report }
    }

    fn refuse(&self, client: SocketAddr, requested: &str, error: &PathError) -> packet::Error {
        tracing::debug!(%client, file = ?requested, "TFTP request refused: {error}");
        emit(&self.events, client, requested, TransferPhase::Refused { reason: error.to_string() });
        tftp_error(error)
    }
}

impl Handler for TftpHandler {
    type Reader = TransferReader;
    type Writer = Sink;

    async fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        // async-tftp hands over the wire name (already valid UTF-8) as a Path.
        let requested = path.to_string_lossy();
        let reader = self.open(*client, &requested).await?;
        let size = reader.size();
        // Returning the size is what makes async-tftp answer `tsize`.
        Ok((reader, Some(size)))
    }

    async fn write_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        let requested = path.to_string_lossy();
        tracing::debug!(%client, file = ?requested, "TFTP write request refused");
        emit(
            &self.events,
            *client,
            &requested,
            TransferPhase::Refused { reason: format!("write request refused: {READ_ONLY_MESSAGE}") },
        );
        Err(packet::Error::Msg(READ_ONLY_MESSAGE.to_owned()))
    }
}

/// What the client is told for a refused read. async-tftp can only attach a
/// custom message to error code 0, and firmware acts on the code (iPXE maps 1
/// to "not found", 2 to "permission denied", 0 to "operation not supported"),
/// so refusals use the standard codes and the full reason goes to the event.
/// The message never contains server paths.
pub fn tftp_error(error: &PathError) -> packet::Error {
    match error {
        PathError::NotFound { .. } | PathError::NotAFile { .. } | PathError::RootUnavailable { .. } => {
            packet::Error::FileNotFound
        }
        PathError::Io { .. } => packet::Error::Msg("the server cannot read this file".to_owned()),
        _ => packet::Error::PermissionDenied,
    }
}

/// Resolve, open, and check what was opened (blocking).
fn open_file(root: &Path, relative: RelativePath) -> Result<(File, u64), PathError> {
    let resolved = paths::resolve_normalised(root, relative)?;
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

/// Where the bytes of one transfer come from.
enum Source {
    Memory(Cursor<Bytes>),
    File(ChunkedFile),
}

impl AsyncRead for Source {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Source::Memory(cursor) => Pin::new(cursor).poll_read(cx, buf),
            Source::File(file) => file.poll_read_chunked(cx, buf),
        }
    }
}

/// What a read on the blocking pool gives back: the file, the refilled buffer, and how it went.
type ChunkRead = (File, Vec<u8>, io::Result<()>);

/// A file read in chunks of at least [`READ_CHUNK`] bytes on the blocking pool,
/// handed out from memory in between. The chunk's buffer travels to the blocking
/// thread and back, so one allocation serves the whole transfer.
pub struct ChunkedFile {
    /// `None` while a read is in flight (the file is on the blocking thread).
    file: Option<File>,
    reading: Option<blocking::Task<ChunkRead>>,
    chunk: Vec<u8>,
    taken: usize,
}

impl ChunkedFile {
    pub fn new(file: File) -> Self {
        Self { file: Some(file), reading: None, chunk: Vec::new(), taken: 0 }
    }

    fn poll_read_chunked(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            let available = &self.chunk[self.taken..];
            if !available.is_empty() {
                let count = available.len().min(buf.len());
                buf[..count].copy_from_slice(&available[..count]);
                self.taken += count;
                return Poll::Ready(Ok(count));
            }
            if let Some(reading) = &mut self.reading {
                let (file, chunk, result) = std::task::ready!(Pin::new(reading).poll(cx));
                self.reading = None;
                self.file = Some(file);
                self.chunk = chunk;
                self.taken = 0;
                result?;
                if self.chunk.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                continue;
            }
            let Some(mut file) = self.file.take() else { return Poll::Ready(Ok(0)) };
            let wanted = READ_CHUNK.max(buf.len());
            let mut chunk = std::mem::take(&mut self.chunk);
            self.taken = 0;
            self.reading = Some(blocking::unblock(move || {
                let result = fill(&mut file, &mut chunk, wanted);
                (file, chunk, result)
            }));
        }
    }
}

/// Reads up to `wanted` bytes into `chunk` (replacing what it held); shorter only at the end of the file.
fn fill(file: &mut File, chunk: &mut Vec<u8>, wanted: usize) -> io::Result<()> {
    chunk.clear();
    chunk.resize(wanted, 0);
    let mut filled = 0;
    while filled < wanted {
        match file.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                chunk.clear();
                return Err(err);
            }
        }
    }
    chunk.truncate(filled);
    Ok(())
}

/// The reader async-tftp sends from. It counts what it hands out and reports:
/// `Progress` at most every [`PROGRESS_INTERVAL`], and when async-tftp drops it
/// (transfer over, one way or the other) `Finished` if the end of the file was
/// reached or `Failed` if not (client stopped acknowledging or sent an error,
/// a read failed, or the server was stopped).
///
/// `bytes` counts bytes handed to the sender, which runs ahead of what the
/// client has acknowledged by up to one window. async-tftp does not tell the
/// reader whether the very last window was acknowledged, so a client that
/// vanishes during the last window is still reported as `Finished`.
pub struct TransferReader {
    source: Source,
    report: Report,
}

impl TransferReader {
    /// The size announced in `Started` (and answered to `tsize`).
    pub fn size(&self) -> u64 {
        self.report.size
    }
}

struct Report {
    events: EventSink,
    client: SocketAddr,
    file: String,
    size: u64,
    bytes: u64,
    eof: bool,
    read_error: Option<String>,
    progress_interval: Duration,
    last_progress: Instant,
}

impl Report {
    fn emit(&self, phase: TransferPhase) {
        emit(&self.events, self.client, &self.file, phase);
    }

    fn read(&mut self, count: usize, asked: usize) {
        if count == 0 && asked > 0 {
            self.eof = true;
            return;
        }
        self.bytes += count as u64;
        let now = Instant::now();
        if now.duration_since(self.last_progress) >= self.progress_interval {
            self.last_progress = now;
            self.emit(TransferPhase::Progress { bytes: self.bytes, size: Some(self.size) });
        }
    }
}

impl AsyncRead for TransferReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.source).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(count)) => this.report.read(*count, buf.len()),
            Poll::Ready(Err(e)) => this.report.read_error = Some(e.to_string()),
            Poll::Pending => {}
        }
        poll
    }
}

impl Drop for TransferReader {
    fn drop(&mut self) {
        let report = &self.report;
        let phase = if report.eof {
            TransferPhase::Finished { bytes: report.bytes }
        } else {
            let reason = match &report.read_error {
                Some(e) => format!("reading the file failed after {} of {} bytes: {e}", report.bytes, report.size),
                None => format!(
                    "transfer stopped after {} of {} bytes: the client stopped acknowledging or gave up, \
                     or the TFTP service was stopped",
                    report.bytes, report.size
                ),
            };
            TransferPhase::Failed { bytes: report.bytes, reason }
        };
        report.emit(phase);
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
mod tests {
    use futures_lite::future::block_on;
    use futures_lite::io::AsyncReadExt;
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
        std::fs::write(dir.path().join("boot/x64.efi"), vec![7u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("boot.ipxe"), b"#!ipxe\necho real file\n").unwrap();
        let events = EventSink::new();
        let rx = events.subscribe();
        (dir, events, rx)
    }

    #[test]
    fn reads_a_file_and_reports_start_and_finish() {
        let (dir, events, mut rx) = setup();
        let mut handler = TftpHandler::new(dir.path().to_path_buf(), GeneratedFiles::default(), events);
        let (mut reader, size) = block_on(handler.read_req_open(&client(), Path::new("\\boot\\x64.efi"))).unwrap();
        assert_eq!(size, Some(10_000));
        let mut data = Vec::new();
        block_on(reader.read_to_end(&mut data)).unwrap();
        drop(reader);
        assert_eq!(data, vec![7u8; 10_000]);
        let phases = phases(&mut rx);
        assert_eq!(phases.first(), Some(&TransferPhase::Started { size: Some(10_000) }));
        assert_eq!(phases.last(), Some(&TransferPhase::Finished { bytes: 10_000 }));
    }

    #[test]
    fn chunked_reads_give_the_file_in_order_whatever_the_block_size() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, &content).unwrap();
        for block in [512, 1468, READ_CHUNK, 65464] {
            let mut file = ChunkedFile::new(File::open(&path).unwrap());
            let mut out = Vec::new();
            let mut buf = vec![0u8; block];
            loop {
                let count = block_on(futures_lite::future::poll_fn(|cx| file.poll_read_chunked(cx, &mut buf))).unwrap();
                if count == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..count]);
            }
            assert_eq!(out.len(), content.len(), "block size {block}");
            assert!(out == content, "block size {block}: bytes differ");
        }
    }

    #[test]
    fn generated_file_shadows_a_real_one() {
        let (dir, events, mut rx) = setup();
        let script = Bytes::from_static(b"#!ipxe\nchain http://x/boot\n");
        let generated = GeneratedFiles::new([("boot.ipxe".to_owned(), script.clone())]);
        let mut handler = TftpHandler::new(dir.path().to_path_buf(), generated, events);
        let (mut reader, size) = block_on(handler.read_req_open(&client(), Path::new("/boot.ipxe"))).unwrap();
        assert_eq!(size, Some(script.len() as u64));
        let mut data = Vec::new();
        block_on(reader.read_to_end(&mut data)).unwrap();
        drop(reader);
        assert_eq!(data, script);
        assert_eq!(phases(&mut rx).last(), Some(&TransferPhase::Finished { bytes: script.len() as u64 }));
    }

    #[test]
    fn generated_files_need_no_root() {
        let events = EventSink::new();
        let generated = GeneratedFiles::new([("boot.ipxe".to_owned(), Bytes::from_static(b"#!ipxe\n"))]);
        let mut handler = TftpHandler::new(PathBuf::from("/nonexistent/portapxe"), generated, events);
        assert!(block_on(handler.read_req_open(&client(), Path::new("boot.ipxe"))).is_ok());
    }

    #[test]
    fn progress_is_reported_when_due_and_not_otherwise() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), GeneratedFiles::default(), events.clone())
            .with_progress_interval(Duration::ZERO);
        let mut reader = block_on(handler.open(client(), "boot/x64.efi")).unwrap();
        let mut block = [0u8; 4000];
        assert_eq!(block_on(reader.read(&mut block)).unwrap(), 4000);
        assert_eq!(
            phases(&mut rx),
            vec![
                TransferPhase::Started { size: Some(10_000) },
                TransferPhase::Progress { bytes: 4000, size: Some(10_000) },
            ]
        );

        let slow = TftpHandler::new(dir.path().to_path_buf(), GeneratedFiles::default(), events)
            .with_progress_interval(Duration::from_secs(3600));
        let mut reader = block_on(slow.open(client(), "boot/x64.efi")).unwrap();
        let mut data = Vec::new();
        block_on(reader.read_to_end(&mut data)).unwrap();
        drop(reader);
        assert_eq!(
            phases(&mut rx),
            vec![TransferPhase::Started { size: Some(10_000) }, TransferPhase::Finished { bytes: 10_000 }]
        );
    }

    #[test]
    fn dropping_before_the_end_is_a_failure() {
        let (dir, events, mut rx) = setup();
        let handler = TftpHandler::new(dir.path().to_path_buf(), GeneratedFiles::default(), events);
        let mut reader = block_on(handler.open(client(), "boot/x64.efi")).unwrap();
        let mut block = [0u8; 512];
        block_on(reader.read_exact(&mut block)).unwrap();
        drop(reader);
        match phases(&mut rx).last() {
            Some(TransferPhase::Failed { bytes: 512, reason }) => {
                assert!(reason.contains("512 of 10000"), "{reason}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn refusals_report_and_map_to_tftp_errors() {
        let (dir, events, mut rx) = setup();
        let mut handler = TftpHandler::new(dir.path().to_path_buf(), GeneratedFiles::default(), events);

        let result = block_on(handler.read_req_open(&client(), Path::new("../../etc/passwd")));
        assert!(matches!(result, Err(packet::Error::PermissionDenied)));
        let result = block_on(handler.read_req_open(&client(), Path::new("missing.efi")));
        assert!(matches!(result, Err(packet::Error::FileNotFound)));
        let result = block_on(handler.read_req_open(&client(), Path::new("boot")));
        assert!(matches!(result, Err(packet::Error::FileNotFound)));

        let phases = phases(&mut rx);
        assert_eq!(phases.len(), 3, "{phases:?}");
        assert!(matches!(&phases[0], TransferPhase::Refused { reason } if reason.contains("..")));
        assert!(matches!(&phases[1], TransferPhase::Refused { reason } if reason.contains("does not exist")));
        assert!(matches!(&phases[2], TransferPhase::Refused { reason } if reason.contains("directory")));
    }

    #[test]
    fn writes_are_refused() {
        let (dir, events, mut rx) = setup();
        let mut handler = TftpHandler::new(dir.path().to_path_buf(), GeneratedFiles::default(), events);
        let result = block_on(handler.write_req_open(&client(), Path::new("upload.bin"), Some(10)));
        assert!(matches!(result, Err(packet::Error::Msg(ref m)) if m == READ_ONLY_MESSAGE));
        assert!(matches!(
            phases(&mut rx).as_slice(),
            [TransferPhase::Refused { reason }] if reason.contains("read-only")
        ));
        assert!(!dir.path().join("upload.bin").exists());
    }
}
