//! Clonezilla clients joining a restore: the image's Clonezilla files made ready for
//! HTTP (`ocs-client-run.conf` and the pseudo image `img-wo-fs.tar.xz`, served at the
//! root while the session runs), and the feed itself: one multicast session per
//! partition, one after the other, each on its own port base, as Clonezilla's
//! `ocs-sr … multicast_restoredisk` expects them. The words and files are decided in
//! `portapxe_proto::imaging::clonezilla`.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use bytes::Bytes;

pub use portapxe_proto::imaging::clonezilla::{
    AfterRestore, CLIENT_RUN_CONF, DEFAULT_DISK, DEFAULT_PORT, Feed, FeedSession, JOB_REPORT_PORT, JobReport,
    PSEUDO_IMAGE, PartitionResult, Unfit, boot_parameters, client_run_conf, feed, is_clonezilla_live, parse_job_report,
};

use super::image::Image;
use super::multicast::{Ending, Link, SenderSettings, SessionError, SessionEvent, StartWhen, run_session};

#[derive(Debug, thiserror::Error)]
pub enum ClonezillaError {
    #[error("image {image:?} cannot be restored by Clonezilla clients: {why}")]
    Unfit { image: String, why: Unfit },
    #[error("cannot read {file} of image {image:?}: {source}")]
    Read { image: String, file: String, source: io::Error },
    #[error("cannot pack Clonezilla's pseudo image: {0}")]
    Pack(io::Error),
}

/// The files Clonezilla clients fetch over HTTP, and the sessions they then join.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub feed: Feed,
    pub client_run_conf: Bytes,
    pub pseudo_image: Bytes,
}

impl Prepared {
    /// The file served at `path` (the root of the HTTP server), if it is one of ours.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        match path {
            CLIENT_RUN_CONF => Some(self.client_run_conf.clone()),
            PSEUDO_IMAGE => Some(self.pseudo_image.clone()),
            _ => None,
        }
    }
}

/// Makes an image ready for Clonezilla clients whose disk Linux names `disk`.
pub fn prepare(image: &Image, disk: &str, port: u16, after: AfterRestore) -> Result<Prepared, ClonezillaError> {
    let name = &image.manifest.name;
    let read = |file: &str| {
        std::fs::read(image.dir.join(file)).map_err(|source| ClonezillaError::Read {
            image: name.clone(),
            file: file.into(),
            source,
        })
    };
    let table = read(&image.manifest.table.file)?;
    let boot_area = image.manifest.boot_area.as_ref().map(|part| read(&part.file)).transpose()?;
    let feed = feed(&image.manifest, &String::from_utf8_lossy(&table), boot_area.as_deref(), disk, port)
        .map_err(|why| ClonezillaError::Unfit { image: name.clone(), why })?;
    let pseudo_image = pack(&feed.files).map_err(ClonezillaError::Pack)?;
    Ok(Prepared { client_run_conf: client_run_conf(&feed, after).into(), pseudo_image: pseudo_image.into(), feed })
}

/// The pseudo image: a tar of the files at its top level, compressed with xz (the
/// client runs `tar -xJf`). lzma-rs writes a valid .xz without a compressor worth the
/// name, which is all a few kilobytes of text and the boot area need.
fn pack(files: &[(String, Vec<u8>)]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, bytes.as_slice())?;
    }
    let tar = builder.into_inner()?;
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut io::BufReader::new(tar.as_slice()), &mut xz)?;
    Ok(xz)
}

/// How long the sessions after the first wait for the seats that finished the one
/// before: Clonezilla's client starts its next receiver 3 to 18 s after its last
/// partition is written (`sleep 3` and a random wait of up to 15 s).
pub const NEXT_PARTITION_WAIT: Duration = Duration::from_secs(60);

/// What happened in one partition's session, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// Which session (an index into `Feed::sessions`).
    pub session: usize,
    pub event: SessionEvent,
}

/// Sends every partition of the feed, each in its own session, in order. The first
/// session starts as `settings` says; each one after it takes only the seats of the one
/// before that finished it or were dropped for their silence (such a seat may still
/// have heard every block while the others kept the session going; if it did not, its
/// partclone fails and it does not come), and starts when all of them joined, or after
/// [`NEXT_PARTITION_WAIT`]. The feed stops early when no seat finished. Returns each
/// session's ending.
pub async fn run_feed(
    link: &Link,
    settings: SenderSettings,
    image: &Image,
    feed: &Feed,
    mut report: impl FnMut(&FeedEvent),
) -> Result<Vec<Ending>, FeedError> {
    let mut endings = Vec::new();
    let mut start = settings.start;
    let mut admit = settings.admit.clone();
    for (index, session) in feed.sessions.iter().enumerate() {
        let path = image.dir.join(&session.file);
        let file =
            std::fs::File::open(&path).map_err(|source| FeedError::Read { file: session.file.clone(), source })?;
        let link = Link { port_base: session.port_base, ..link.clone() };
        let mut settings = settings.clone();
        settings.start = start;
        settings.admit = admit.clone();
        let (mut finished, mut dropped) = (Vec::new(), Vec::new());
        let ending = run_session(&link, settings, file.take(session.bytes), |event| {
            match event {
                SessionEvent::Finished { seat } => finished.push(*seat.ip()),
                SessionEvent::Dropped { seat, .. } => dropped.push(*seat.ip()),
                _ => {}
            }
            report(&FeedEvent { session: index, event: event.clone() });
        })
        .await
        .map_err(FeedError::Session)?;
        endings.push(ending);
        if ending != Ending::Completed || finished.is_empty() {
            break;
        }
        for seat in dropped {
            if !finished.contains(&seat) {
                finished.push(seat);
            }
        }
        start = StartWhen { seats: Some(finished.len()), wait: NEXT_PARTITION_WAIT };
        admit = Some(finished);
    }
    Ok(endings)
}

/// The longest job report read: one line of a few hundred bytes.
const MAX_REPORT: u64 = 4096;

/// Connections reading a report at once; more wait to be accepted.
const MAX_REPORTING: usize = 64;

/// Takes Clonezilla clients' job reports (`ocs-socket`, one line over TCP) on
/// `address:6461` until dropped, sending each with the address it came from. Each
/// connection is read on its own task for at most 5 s, so a client that says nothing
/// holds up no other. Only binding the port fails it.
pub async fn job_reports(
    address: Ipv4Addr,
    reports: tokio::sync::mpsc::UnboundedSender<(Ipv4Addr, JobReport)>,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind((address, JOB_REPORT_PORT)).await?;
    let reading = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_REPORTING));
    loop {
        let Ok(permit) = std::sync::Arc::clone(&reading).acquire_owned().await else { return Ok(()) };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file handles, a connection reset before it was taken: not the end.
                tracing::debug!(%err, "Clonezilla job reports: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let IpAddr::V4(peer) = peer.ip() else { continue };
        let reports = reports.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut line = Vec::new();
            let mut stream = stream.take(MAX_REPORT);
            if tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut line)).await.is_err() {
                tracing::debug!(%peer, "Clonezilla job report: nothing within 5 s");
                return;
            }
            match parse_job_report(&String::from_utf8_lossy(&line)) {
                Some(parsed) => {
                    let _ = reports.send((peer, parsed));
                }
                None => tracing::debug!(%peer, "not a Clonezilla job report"),
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot read the image's {file}: {source}")]
    Read { file: String, source: io::Error },
    #[error(transparent)]
    Session(SessionError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pseudo_image_is_a_tar_xz_of_the_files_at_its_top_level() {
        let files = vec![
            ("disk".to_string(), b"sda\n".to_vec()),
            ("sda1.ext4-ptcl-img.zst".to_string(), Vec::new()),
            ("sda-mbr".to_string(), (0..512).map(|i| i as u8).collect()),
        ];
        let packed = pack(&files).unwrap();
        assert_eq!(&packed[..6], b"\xfd7zXZ\0", "an xz stream");
        let mut tar = Vec::new();
        lzma_rs::xz_decompress(&mut io::BufReader::new(packed.as_slice()), &mut tar).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut read: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            read.push((name, bytes));
        }
        assert_eq!(read, files);
    }
}
