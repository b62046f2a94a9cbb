//! `portapxe image list`, `capture` and `restore`: the images in the image folder; a
//! capture of one machine's disk by the imaging agent it boots; a multicast restore
//! session that sends one image to every seat at once (udpcast-compatible: the agent
//! runs udpcast's `udp-receiver`, as FOG's and Clonezilla's seats do).
//!
//! `capture` and `restore --boot` serve network boot like `serve` (the same flags) so
//! the seats boot the agent, and end when the job is done.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use portapxe_engine::config::Config;
use portapxe_engine::events::{EngineEvent, ImagingWhat, SeatPhase};
use portapxe_engine::imaging::clonezilla;
use portapxe_engine::imaging::entry::{AgentFiles, add_imaging_entry, check_agent_served};
use portapxe_engine::imaging::hub::{ImagingHub, RestoreOffer, Seats};
use portapxe_engine::imaging::image::{self, Image, Listed};
use portapxe_engine::imaging::multicast::wire::{DEFAULT_PORT_BASE, default_group};
use portapxe_engine::imaging::multicast::{Ending, Link, SenderSettings, SessionEvent, StartWhen, run_session};
use portapxe_engine::mac::MacAddr;
use portapxe_engine::net::find_up_interface;
use portapxe_engine::{EngineStatus, EventSink};

use super::clonezilla::{ClonezillaArgs, add_boot_parameters};
use super::serve::{ServeArgs, ServePlan, run_plan};

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ImageCommand {
    /// List the images in the image folder.
    List(ListArgs),
    /// Capture one machine's disk: serve network boot so it boots the imaging agent, which
    /// sends its partition table and partitions into a new image. Ends when the image is saved.
    Capture(Box<CaptureArgs>),
    /// Send an image to every seat at once over multicast (udpcast-compatible).
    Restore(Box<RestoreArgs>),
}

/// The imaging agent's boot files, served like any boot file (from `--root`, or the
/// folder of loaders an installed PortaPXE serves).
#[derive(Debug, clap::Args)]
struct AgentArgs {
    /// The agent's kernel (a path the server serves).
    #[arg(long, default_value = "agent/vmlinuz")]
    agent_kernel: String,
    /// The agent's initramfs.
    #[arg(long, default_value = "agent/initrd.img")]
    agent_initrd: String,
    /// Extra kernel arguments for the agent, e.g. "console=ttyS0,115200".
    #[arg(long, default_value = "")]
    agent_cmdline: String,
}

impl AgentArgs {
    fn files(&self) -> AgentFiles {
        AgentFiles {
            kernel: self.agent_kernel.clone(),
            initrd: self.agent_initrd.clone(),
            cmdline: self.agent_cmdline.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
struct CaptureArgs {
    /// The machine to capture.
    #[arg(long, value_parser = parse_mac)]
    mac: MacAddr,
    /// The new image's name.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    folder: Folder,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

fn parse_mac(text: &str) -> Result<MacAddr, String> {
    text.parse()
}

#[derive(Debug, clap::Args)]
struct Folder {
    /// The image folder (default: `images` in PortaPXE's data folder).
    #[arg(long)]
    images: Option<PathBuf>,
}

impl Folder {
    fn path(&self) -> anyhow::Result<PathBuf> {
        match &self.images {
            Some(dir) => Ok(dir.clone()),
            None => portapxe_engine::config::project_dirs()
                .map(|dirs| dirs.data_dir().join("images"))
                .context("this system names no data folder for PortaPXE: give --images DIR"),
        }
    }
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    folder: Folder,
}

#[derive(Debug, clap::Args)]
struct RestoreArgs {
    /// The image's name (see `portapxe image list`).
    name: String,
    #[command(flatten)]
    folder: Folder,
    /// Start as soon as this many seats joined (and take no more).
    #[arg(long)]
    seats: Option<usize>,
    /// Only these machines (repeat); with --boot they boot the agent, others their disk.
    #[arg(long, value_parser = parse_mac)]
    mac: Vec<MacAddr>,
    /// Also serve network boot so the seats boot the imaging agent, which joins the session,
    /// checks every partition and restarts the seat into its restored disk.
    #[arg(long)]
    boot: bool,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    serve: ServeArgs,
    /// Seconds to wait for seats; then start with those that joined.
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Seconds a seat may stay silent before the session goes on without it.
    #[arg(long, default_value_t = 15)]
    drop_after: u64,
    /// Most megabytes per second to send (default: as fast as the slowest seat keeps up).
    #[arg(long)]
    max_rate: Option<f64>,
    /// udpcast port base: seats listen on it, PortaPXE on the next port.
    #[arg(long, default_value_t = DEFAULT_PORT_BASE)]
    port_base: u16,
    #[command(flatten)]
    clonezilla: ClonezillaArgs,
}

pub fn run(args: ImageArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ImageCommand::List(args) => list(args),
        ImageCommand::Capture(args) => capture(*args),
        ImageCommand::Restore(args) => restore(*args),
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let dir = args.folder.path()?;
    let listed = image::list(&dir)?;
    if listed.is_empty() {
        println!("No images in {}.", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<24} {:>10} {:>10} {:<5} {:<17} PARTITIONS", "NAME", "SIZE", "DISK", "FILES", "SOURCE");
    for entry in listed {
        match entry {
            Listed::Image(image) => {
                let manifest = &image.manifest;
                let source = manifest.source_mac.map_or("-".to_string(), |mac| mac.to_string());
                println!(
                    "{:<24} {:>10} {:>10} {:<5} {:<17} {}",
                    manifest.name,
                    megabytes(manifest.bytes()),
                    megabytes(manifest.disk_bytes),
                    manifest.parts().count(),
                    source,
                    manifest.partitions_text()
                );
            }
            Listed::Unusable { name, error } => println!("{name:<24} unusable: {error}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The serving address, for the agent's boot and the multicast session.
fn serving_facts(
    config: &Config,
) -> anyhow::Result<(portapxe_engine::net::InterfaceInfo, portapxe_engine::config::InterfaceFacts)> {
    if config.interface.is_empty() {
        anyhow::bail!("--interface is required (see `portapxe interfaces`)");
    }
    let interface = find_up_interface(&config.interface)?;
    let facts = interface
        .facts()
        .with_context(|| format!("interface {:?} has no IPv4 address to serve from", interface.name))?;
    Ok((interface, facts))
}

fn capture(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    let images = args.folder.path()?;
    let sink = EventSink::new();
    let hub = ImagingHub::new(images.clone(), sink.clone());
    hub.arm_capture(args.mac, &args.name)?;
    let mut plan: ServePlan = args.serve.into_plan()?;
    let (_, facts) = serving_facts(&plan.config)?;
    let agent = args.agent.files();
    check_agent_served(&plan.config, &agent)?;
    add_imaging_entry(&mut plan.config, &hub, facts.address, &agent, &[args.mac]);
    plan.options.imaging = Some(Arc::clone(&hub));
    println!("Capture {} into image {:?} in {}: network-boot that machine now.", args.mac, args.name, images.display());
    let mut events = sink.subscribe();
    let name = args.name.clone();
    run_plan(plan, sink, move |_: &EngineStatus, _| async move {
        loop {
            match events.recv().await {
                Ok(EngineEvent::Imaging(event)) => match event.what {
                    ImagingWhat::CaptureDone { name: done, bytes } if done == name => {
                        println!("Image {name:?} saved: {}.", megabytes(bytes));
                        return Ok(ExitCode::SUCCESS);
                    }
                    ImagingWhat::CaptureFailed { name: failed, why } if failed == name => {
                        println!("Capture of {name:?} failed: {why}");
                        return Ok(ExitCode::from(1));
                    }
                    _ => {}
                },
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(ExitCode::from(1)),
            }
        }
    })
}

/// What became of one seat, for the closing table.
#[derive(Debug)]
struct SeatRow {
    seat: std::net::SocketAddrV4,
    number: u16,
    result: SeatResult,
    /// With --boot: the agent's last word (its MAC, phase and detail).
    agent: Option<(MacAddr, SeatPhase, String)>,
    /// With --boot: it came back and was sent to its restored disk.
    to_disk: bool,
}

/// Where a seat got to in the multicast session; the words are in `Display`.
#[derive(Debug, Clone, PartialEq)]
enum SeatResult {
    Joined,
    Receiving,
    Finished,
    Dropped(portapxe_engine::imaging::multicast::DropReason),
    Left,
}

impl std::fmt::Display for SeatResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Joined => f.write_str("joined"),
            Self::Receiving => f.write_str("receiving"),
            Self::Finished => f.write_str("finished"),
            Self::Dropped(why) => write!(f, "dropped: {why}"),
            Self::Left => f.write_str("left before the end: its receiver stopped or could not write"),
        }
    }
}

/// Everything a restore session needs, whether it also serves network boot or not.
struct Session {
    link: Link,
    settings: SenderSettings,
    stream: image::ImageStream,
    total: u64,
}

fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let images = args.folder.path()?;
    let image = Image::open(&images, &args.name)?;
    if args.seats == Some(0) {
        anyhow::bail!("--seats must be at least 1");
    }
    if !args.mac.is_empty() && !args.boot {
        anyhow::bail!("--mac needs --boot: the seats' MACs are known from the imaging agent they boot");
    }
    let clonezilla = match &args.clonezilla {
        ClonezillaArgs { clonezilla: false, .. } => None,
        ClonezillaArgs { clonezilla_disk, clonezilla_port, clonezilla_then, .. } => {
            Some(Arc::new(clonezilla::prepare(&image, clonezilla_disk, *clonezilla_port, (*clonezilla_then).into())?))
        }
    };
    // Beside the agent's session, Clonezilla's ports must be others.
    if let Some(prepared) = clonezilla.as_ref().filter(|_| args.boot) {
        let first = u32::from(prepared.feed.port);
        let last = first + 2 * prepared.feed.sessions.len() as u32 - 1;
        let agent = [u32::from(args.port_base), u32::from(args.port_base) + 1];
        if agent.iter().any(|port| (first..=last).contains(port)) {
            anyhow::bail!(
                "--port-base {} and its next port fall in Clonezilla's ports {first}-{last}: pick another --port-base or --clonezilla-port",
                args.port_base
            );
        }
    }
    let mut plan: ServePlan = args.serve.into_plan()?;
    let (interface, facts) = serving_facts(&plan.config)?;
    let agent = args.agent.files();
    if args.boot {
        check_agent_served(&plan.config, &agent)?;
    }
    let stream = image.stream()?;
    let total = stream.len();
    let group = default_group(facts.address);
    let link = Link {
        interface: (&interface).into(),
        address: facts.address,
        broadcast: *portapxe_engine::wake::destination(&facts).ip(),
        port_base: args.port_base,
    };
    let mut settings =
        SenderSettings::new(group, StartWhen { seats: args.seats, wait: Duration::from_secs(args.wait) });
    settings.drop_after = Duration::from_secs(args.drop_after.max(1));
    if let Some(rate) = args.max_rate {
        anyhow::ensure!(rate > 0.0, "--max-rate must be a positive number of megabytes per second");
        settings.max_rate = rate * 1e6;
        settings.initial_rate = settings.initial_rate.min(settings.max_rate);
    }
    println!(
        "Restore {:?}: {} in {} files ({} as a stream), id {}",
        image.manifest.name,
        megabytes(image.manifest.bytes()),
        image.manifest.parts().count(),
        megabytes(total),
        image.manifest.id
    );
    let seats_text = args.seats.map_or("seats".to_string(), |n| format!("{n} seats"));
    // With --clonezilla alone, only Clonezilla's sessions run (they say their ports).
    if args.boot || clonezilla.is_none() {
        println!(
            "Waiting up to {} s for {seats_text} on {} ({}): group {group}, ports {}/{}",
            args.wait,
            interface.name,
            facts.address,
            args.port_base,
            args.port_base.wrapping_add(1)
        );
    }
    let clonezilla_session = clonezilla.map(|prepared| {
        // Its own group: an agent seat's receiver and a Clonezilla seat's never share one.
        let mut settings = settings.clone();
        settings.group = next_group(group);
        ClonezillaSession { link: link.clone(), settings, image: image.clone(), prepared }
    });
    let session = Session { link, settings, stream, total };
    if !args.boot && clonezilla_session.is_none() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let rows = runtime.block_on(async {
            tokio::select! {
                sent = send(session) => sent.map(Some),
                _ = tokio::signal::ctrl_c() => Ok(None),
            }
        })?;
        let Some((ending, rows)) = rows else {
            println!("Interrupted: the seats stop when they notice the sender is gone.");
            return Ok(ExitCode::from(1));
        };
        return Ok(closing_table(ending, &rows));
    }
    let sink = EventSink::new();
    let hub = ImagingHub::new(images, sink.clone());
    if args.boot {
        add_imaging_entry(&mut plan.config, &hub, facts.address, &agent, &args.mac);
        let seats = if args.mac.is_empty() { Seats::Any } else { Seats::Only(args.mac.clone()) };
        hub.offer_restore(RestoreOffer {
            name: image.manifest.name.clone(),
            id: image.manifest.id.clone(),
            port_base: args.port_base,
            seats,
        });
    }
    if let Some(clonezilla) = &clonezilla_session {
        add_boot_parameters(&mut plan.config, facts.address);
        hub.offer_clonezilla(Arc::clone(&clonezilla.prepared));
    }
    plan.options.imaging = Some(Arc::clone(&hub));
    let events = sink.subscribe();
    let clonezilla_events = sink.subscribe();
    let then = args.clonezilla.clonezilla_then.into();
    let boot = args.boot;
    run_plan(plan, sink, move |_: &EngineStatus, _| async move {
        let agents = async {
            match boot {
                true => agent_restore(session, &hub, events).await.map(Some),
                false => Ok(None),
            }
        };
        let clonezilla = async {
            let Some(clonezilla) = clonezilla_session else { return Ok(None) };
            let ClonezillaSession { link, settings, image, prepared } = clonezilla;
            let context = super::clonezilla::FeedContext { hub: &hub, events: clonezilla_events, then };
            let good = super::clonezilla::feed(link, settings, &image, &prepared, context).await;
            hub.end_clonezilla();
            good.map(Some)
        };
        let (agents, clonezilla) = tokio::join!(agents, clonezilla);
        // Each kind of seat that came must have succeeded, and some seat must have come.
        let (agents, clonezilla) = (agents?, clonezilla?.flatten());
        let came = agents.is_some_and(|(_, any)| any) || clonezilla.is_some();
        let good =
            came && agents.is_none_or(|(code, any)| !any || code == ExitCode::SUCCESS) && clonezilla.unwrap_or(true);
        Ok(if good { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// A multicast group next to `group` (the last octet plus one, within 239.x).
fn next_group(group: std::net::Ipv4Addr) -> std::net::Ipv4Addr {
    let [a, b, c, d] = group.octets();
    std::net::Ipv4Addr::new(a, b, c, d.wrapping_add(1).max(1))
}

/// The Clonezilla side of a restore: the same link, a group of its own.
struct ClonezillaSession {
    link: Link,
    settings: SenderSettings,
    image: Image,
    prepared: Arc<clonezilla::Prepared>,
}

/// The agent seats' session, serving network boot: the stream, then each agent's word
/// on its disk, then each restored seat sent to its own disk. Returns the exit code of
/// its grid, and whether any seat joined.
async fn agent_restore(
    session: Session,
    hub: &ImagingHub,
    mut events: tokio::sync::broadcast::Receiver<EngineEvent>,
) -> anyhow::Result<(ExitCode, bool)> {
    {
        let (ending, mut rows) = send(session).await?;
        hub.end_restore();
        // The seats still write and check their last partition: wait for each agent's word.
        let waiting = hub.restoring();
        let mut heard: Vec<(MacAddr, std::net::Ipv4Addr, SeatPhase, String)> = Vec::new();
        let deadline = tokio::time::Instant::now() + SEAT_REPORT_WAIT;
        while heard.len() < waiting.len() {
            let event = match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) | Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Ok(event)) => event,
            };
            let EngineEvent::Imaging(event) = event else { continue };
            let (Some(mac), Some(ip), ImagingWhat::Seat { phase, detail }) = (event.mac, event.seat, event.what) else {
                continue;
            };
            if matches!(phase, SeatPhase::Done | SeatPhase::Failed) && waiting.contains(&mac) {
                heard.retain(|(known, ..)| *known != mac);
                heard.push((mac, ip, phase, detail));
            }
        }
        // A restored seat restarts; its next network boot is sent to its disk.
        let mut to_disk: Vec<MacAddr> = Vec::new();
        let done: Vec<MacAddr> =
            heard.iter().filter(|(_, _, phase, _)| *phase == SeatPhase::Done).map(|(mac, ..)| *mac).collect();
        let deadline = tokio::time::Instant::now() + SEAT_REBOOT_WAIT;
        while done.iter().any(|mac| !to_disk.contains(mac)) {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) | Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
                Ok(Ok(EngineEvent::Imaging(event))) if event.what == ImagingWhat::SentToDisk => {
                    to_disk.extend(event.mac);
                }
                Ok(_) => {}
            }
        }
        for row in &mut rows {
            row.agent = heard
                .iter()
                .find(|(_, ip, ..)| ip == row.seat.ip())
                .map(|(mac, _, phase, detail)| (*mac, *phase, detail.clone()));
            if let Some((mac, ..)) = &row.agent {
                row.to_disk = to_disk.contains(mac);
            }
        }
        Ok((closing_table(ending, &rows), !rows.is_empty()))
    }
}

/// How long a restore serving network boot waits, after the stream ended, for every
/// seat's agent to report that it wrote and checked its disk.
const SEAT_REPORT_WAIT: Duration = Duration::from_secs(180);
/// And then for each restored seat to come back and be sent to its disk.
const SEAT_REBOOT_WAIT: Duration = Duration::from_secs(120);

/// Runs the multicast session, printing what happens, and returns each seat's row.
async fn send(session: Session) -> anyhow::Result<(Ending, Vec<SeatRow>)> {
    let Session { link, settings, mut stream, total } = session;
    let mut rows: Vec<SeatRow> = Vec::new();
    let mut started_at = None;
    let mut last_progress = Instant::now();
    let report = |event: &SessionEvent| {
        let row = |rows: &mut Vec<SeatRow>, seat: &std::net::SocketAddrV4, result: SeatResult| {
            if let Some(row) = rows.iter_mut().find(|row| row.seat.ip() == seat.ip()) {
                row.result = result;
            }
        };
        match event {
            SessionEvent::Joined { seat, number } => {
                println!("seat {} joined as #{number}", seat.ip());
                rows.push(SeatRow {
                    seat: *seat,
                    number: *number,
                    result: SeatResult::Joined,
                    agent: None,
                    to_disk: false,
                });
            }
            SessionEvent::Refused { seat, why } => println!("seat {} refused: {why}", seat.ip()),
            SessionEvent::Started { seats } => {
                started_at = Some(Instant::now());
                println!("started with {seats} seats");
                for row in &mut rows {
                    row.result = SeatResult::Receiving;
                }
            }
            SessionEvent::Progress { bytes, rate } => {
                if last_progress.elapsed() >= Duration::from_secs(1) {
                    last_progress = Instant::now();
                    let left = total.saturating_sub(*bytes) as f64 / rate.max(1.0);
                    println!(
                        "  {} of {} ({:.0}%), {:.1} MB/s, about {:.0} s left",
                        megabytes(*bytes),
                        megabytes(total),
                        *bytes as f64 * 100.0 / total.max(1) as f64,
                        rate / 1e6,
                        left
                    );
                }
            }
            SessionEvent::Dropped { seat, why } => {
                println!("seat {} dropped: {why}", seat.ip());
                row(&mut rows, seat, SeatResult::Dropped(*why));
            }
            SessionEvent::Left { seat } => {
                println!("seat {} left before the end (its receiver stopped)", seat.ip());
                row(&mut rows, seat, SeatResult::Left);
            }
            SessionEvent::Finished { seat } => {
                println!("seat {} has the whole image", seat.ip());
                row(&mut rows, seat, SeatResult::Finished);
            }
            SessionEvent::Ended(ending) => println!("session ended: {ending}"),
        }
    };
    let ending = run_session(&link, settings, &mut stream, report).await?;
    if let Some(started) = started_at {
        let seconds = started.elapsed().as_secs_f64();
        println!("Sent {} in {seconds:.1} s ({:.1} MB/s).", megabytes(total), total as f64 / 1e6 / seconds.max(0.001));
    }
    Ok((ending, rows))
}

/// The grid every restore ends with; exit 0 only when every seat that joined has the
/// image (and, when its agent reported, wrote and checked it).
fn closing_table(ending: Ending, rows: &[SeatRow]) -> ExitCode {
    println!("{:<16} {:<4} {:<17} RESULT", "SEAT", "#", "MAC");
    let mut all_good = !rows.is_empty() && ending == Ending::Completed;
    for row in rows {
        let (mac, result) = match &row.agent {
            Some((mac, phase, detail)) => {
                all_good &= *phase == SeatPhase::Done;
                let disk = if row.to_disk { "; booted its own disk" } else { "" };
                (mac.to_string(), format!("{}; agent {phase}: {detail}{disk}", row.result))
            }
            None => ("-".to_string(), row.result.to_string()),
        };
        all_good &= row.result == SeatResult::Finished;
        println!("{:<16} {:<4} {:<17} {result}", row.seat.ip(), row.number, mac);
    }
    if all_good { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
