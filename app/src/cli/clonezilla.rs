//! `portapxe image restore --clonezilla`: Clonezilla live clients join the restore.
//! PortaPXE serves what a Clonezilla "lite server" would (`ocs-client-run.conf` and the
//! pseudo image at the HTTP root), puts `ocs_live_run="ocs-live-get-img SERVER"` on the
//! command line of every Clonezilla live ISO entry, and sends each partition in a
//! multicast session of its own, as Clonezilla's `ocs-sr` receives them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use portapxe_engine::config::{BootEntry, Config};
use portapxe_engine::events::{EngineEvent, ImagingWhat};
use portapxe_engine::imaging::clonezilla::{
    AfterRestore, DEFAULT_DISK, DEFAULT_PORT, FeedEvent, JobReport, Prepared, boot_parameters, is_clonezilla_live,
    job_reports, run_feed,
};
use portapxe_engine::imaging::hub::ImagingHub;
use portapxe_engine::imaging::image::Image;
use portapxe_engine::imaging::multicast::{Ending, Link, SenderSettings, SessionEvent};

#[derive(Debug, clap::Args)]
pub struct ClonezillaArgs {
    /// Also let Clonezilla live clients join: PortaPXE serves ocs-client-run.conf and the
    /// pseudo image as Clonezilla's lite server does, and boots every Clonezilla live ISO
    /// entry into `ocs-live-get-img` against this server.
    #[arg(long)]
    pub clonezilla: bool,
    /// The seats' disk as Linux names it: Clonezilla restores to the disk the image names.
    #[arg(long, default_value = DEFAULT_DISK, value_name = "NAME")]
    pub clonezilla_disk: String,
    /// Clonezilla's first multicast port (each partition takes the next port base but one).
    #[arg(long, default_value_t = DEFAULT_PORT, value_name = "P")]
    pub clonezilla_port: u16,
    /// What a Clonezilla seat does when it is done.
    #[arg(long, value_enum, default_value_t = Then::Poweroff)]
    pub clonezilla_then: Then,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Then {
    Poweroff,
    Reboot,
}

impl From<Then> for AfterRestore {
    fn from(then: Then) -> Self {
        match then {
            Then::Poweroff => Self::Poweroff,
            Then::Reboot => Self::Reboot,
        }
    }
}

/// Adds the Clonezilla client's command line to every Clonezilla live ISO entry; says
/// how many there are, so a user with none is told what to put on their own entry.
pub fn add_boot_parameters(config: &mut Config, server: Ipv4Addr) -> usize {
    let parameters = boot_parameters(server);
    let mut found = 0;
    let images: Vec<std::path::PathBuf> = config
        .boot
        .entries
        .iter()
        .map(|entry| match entry {
            BootEntry::Iso { image, .. } => portapxe_engine::iso_entries::image_file(config, image),
            _ => std::path::PathBuf::new(),
        })
        .collect();
    for (entry, path) in config.boot.entries.iter_mut().zip(images) {
        let BootEntry::Iso { append, .. } = entry else { continue };
        let index = match portapxe_engine::iso::read_index(&path) {
            Ok((index, _)) => index,
            Err(err) => {
                println!("Cannot tell whether {} is a Clonezilla live: {err}", path.display());
                continue;
            }
        };
        if is_clonezilla_live(&index) {
            if !append.is_empty() {
                append.push(' ');
            }
            append.push_str(&parameters);
            found += 1;
        }
    }
    if found == 0 {
        println!(
            "No Clonezilla live ISO among the boot entries (--iso clonezilla-live.iso adds one); boot Clonezilla live with: {parameters}"
        );
    }
    found
}

/// Where one seat got to, for the closing table.
#[derive(Debug, Default)]
struct SeatRow {
    /// Partitions it received whole.
    finished: Vec<String>,
    /// Sessions it joined.
    joined: usize,
    /// Its receiver said goodbye before the end: it will not report.
    left: bool,
    /// Why it stopped, if it did.
    stopped: Option<String>,
    /// What the seat's Clonezilla said when it was done.
    report: Option<JobReport>,
    /// It came back and was sent to its disk.
    to_disk: bool,
}

/// How long, after the last partition was sent, the seats have to write their boot code
/// and report (Clonezilla waits up to 20 s before it reports, so the server is not
/// flooded).
const REPORT_WAIT: Duration = Duration::from_secs(120);
/// And then, when they restart, to come back and be sent to their disks.
const REBOOT_WAIT: Duration = Duration::from_secs(120);

/// What the feed needs besides the image: the hub (restored seats boot their disk next)
/// and its events (to see them do so).
pub struct FeedContext<'a> {
    pub hub: &'a ImagingHub,
    pub events: tokio::sync::broadcast::Receiver<EngineEvent>,
    pub then: AfterRestore,
}

/// Runs the feed, printing what happens: `None` when no seat joined, else whether every
/// seat that joined got every partition and none reported a failure.
pub async fn feed(
    link: Link,
    settings: SenderSettings,
    image: &Image,
    prepared: &Prepared,
    context: FeedContext<'_>,
) -> anyhow::Result<Option<bool>> {
    let FeedContext { hub, mut events, then } = context;
    let feed = &prepared.feed;
    // Each seat's Clonezilla reports its job here when it is done.
    let (report_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let address = link.address;
    let listener = tokio::spawn(job_reports(address, report_tx));
    let sessions = feed.sessions.len();
    println!(
        "Clonezilla: {} partitions of {:?} for disk {} on ports {}…{} ({})",
        sessions,
        feed.image,
        feed.disk,
        feed.port,
        feed.port as usize + 2 * sessions.saturating_sub(1),
        feed.sessions.iter().map(|s| s.device.as_str()).collect::<Vec<_>>().join(", ")
    );
    let mut rows: BTreeMap<Ipv4Addr, SeatRow> = BTreeMap::new();
    let mut started = None;
    let mut last_progress = Instant::now();
    let report = |event: &FeedEvent| {
        let session = &feed.sessions[event.session];
        let device = &session.device;
        match &event.event {
            SessionEvent::Joined { seat, number } => {
                println!("clonezilla {device}: seat {} joined as #{number}", seat.ip());
                rows.entry(*seat.ip()).or_default().joined += 1;
            }
            SessionEvent::Refused { seat, why } => println!("clonezilla {device}: seat {} refused: {why}", seat.ip()),
            SessionEvent::Started { seats } => {
                started.get_or_insert_with(Instant::now);
                println!("clonezilla {device}: started with {seats} seats");
            }
            SessionEvent::Progress { bytes, rate } => {
                if last_progress.elapsed() >= Duration::from_secs(1) {
                    last_progress = Instant::now();
                    println!(
                        "  clonezilla {device}: {:.1} of {:.1} MB, {:.1} MB/s",
                        *bytes as f64 / 1e6,
                        session.bytes as f64 / 1e6,
                        rate / 1e6
                    );
                }
            }
            SessionEvent::Dropped { seat, why } => {
                println!("clonezilla {device}: seat {} dropped: {why}", seat.ip());
                rows.entry(*seat.ip()).or_default().stopped = Some(format!("dropped in {device}: {why}"));
            }
            SessionEvent::Left { seat } => {
                println!("clonezilla {device}: seat {} left before the end", seat.ip());
                let row = rows.entry(*seat.ip()).or_default();
                row.left = true;
                row.stopped = Some(format!("left in {device}: its receiver stopped or could not write"));
            }
            SessionEvent::Finished { seat } => {
                println!("clonezilla {device}: seat {} has the whole partition", seat.ip());
                rows.entry(*seat.ip()).or_default().finished.push(device.clone());
            }
            SessionEvent::Ended(ending) => println!("clonezilla {device}: session ended: {ending}"),
        }
    };
    let endings = run_feed(&link, settings, image, feed, report).await;
    // No more Clonezilla clients: one that starts now (a seat restarted before it was sent
    // to its disk) finds no pseudo image and stops before it touches the disk.
    hub.end_clonezilla();
    let endings = match endings {
        Ok(endings) => endings,
        Err(err) => {
            listener.abort();
            return Err(err.into());
        }
    };
    if let Some(started) = started {
        let bytes: u64 = feed.sessions.iter().map(|s| s.bytes).sum();
        let seconds = started.elapsed().as_secs_f64();
        println!("Clonezilla: sent {:.1} MB in {seconds:.1} s.", bytes as f64 / 1e6);
    }
    let devices: Vec<&str> = feed.sessions.iter().map(|s| s.device.as_str()).collect();
    // The seats that were in every session write their boot code, then report.
    let waiting: Vec<Ipv4Addr> =
        rows.iter().filter(|(_, row)| row.joined >= sessions && !row.left).map(|(seat, _)| *seat).collect();
    let deadline = tokio::time::Instant::now() + REPORT_WAIT;
    while waiting.iter().any(|seat| rows.get(seat).is_some_and(|row| row.report.is_none())) {
        if listener.is_finished() {
            break;
        }
        let Ok(Some((peer, report))) = tokio::time::timeout_at(deadline, reports.recv()).await else { break };
        // One report a seat of this restore. A seat dropped from a session for its silence
        // may still have heard every block while the others kept the session going: what
        // its Clonezilla says it wrote is what counts.
        let Some(row) = rows.get_mut(&peer).filter(|row| row.report.is_none()) else {
            tracing::debug!(%peer, "a Clonezilla job report from no seat of this restore, or a second one");
            continue;
        };
        println!("clonezilla: seat {peer} ({}): {report}", report.mac);
        if report.restored_all(&devices) {
            hub.restored_by_other(report.mac);
        }
        row.report = Some(report);
    }
    listener.abort();
    if let Ok(Ok(Err(err))) = tokio::time::timeout(Duration::from_secs(1), listener).await {
        println!("Clonezilla's job reports could not be taken on {address}:6461: {err}");
    }
    // Restarted seats come back; their next network boot is their disk.
    if then == AfterRestore::Reboot {
        let restored: Vec<_> = rows
            .values()
            .filter_map(|row| row.report.as_ref())
            .filter(|r| r.restored_all(&devices))
            .map(|r| r.mac)
            .collect();
        let mut sent = Vec::new();
        let deadline = tokio::time::Instant::now() + REBOOT_WAIT;
        while restored.iter().any(|mac| !sent.contains(mac)) {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) | Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                Ok(Ok(EngineEvent::Imaging(event))) if event.what == ImagingWhat::SentToDisk => sent.extend(event.mac),
                Ok(_) => {}
            }
        }
        for row in rows.values_mut() {
            row.to_disk = row.report.as_ref().is_some_and(|report| sent.contains(&report.mac));
        }
    }
    println!("{:<16} {:<24} RESULT", "CLONEZILLA SEAT", "PARTITIONS");
    let mut all_good = !rows.is_empty() && endings.len() == sessions && endings.iter().all(|e| *e == Ending::Completed);
    for (seat, row) in &rows {
        let whole = row.finished.len() == sessions;
        let written = row.report.as_ref().is_some_and(|r| r.restored_all(&devices));
        all_good &= written || (whole && row.stopped.is_none() && row.report.is_none());
        let result = match (&row.stopped, whole, &row.report) {
            (Some(why), _, Some(report)) => {
                let disk = if row.to_disk { "; booted its own disk" } else { "" };
                format!("{why}; then {report}{disk}")
            }
            (Some(why), ..) => why.clone(),
            (None, true, Some(report)) => {
                let disk = if row.to_disk { "; booted its own disk" } else { "" };
                format!("received every partition; {report}{disk}")
            }
            (None, true, None) => "received every partition; no job report from its Clonezilla (see its screen)".into(),
            (None, false, _) => "did not join every partition's session".into(),
        };
        println!("{seat:<16} {:<24} {result}", row.finished.join(","));
    }
    if rows.is_empty() {
        println!("No Clonezilla seat joined.");
        return Ok(None);
    }
    Ok(Some(all_good))
}
