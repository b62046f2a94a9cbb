//! `portapxe image list` and `portapxe image restore`: the images in the image folder,
//! and a multicast restore session that sends one to every seat at once (the seats run
//! udpcast's `udp-receiver`, as FOG's and Clonezilla's do).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use portapxe_engine::imaging::image::{self, Image, Listed};
use portapxe_engine::imaging::multicast::wire::{DEFAULT_PORT_BASE, default_group};
use portapxe_engine::imaging::multicast::{Ending, Link, SenderSettings, SessionEvent, StartWhen, run_session};
use portapxe_engine::net::find_up_interface;

#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ImageCommand {
    /// List the images in the image folder.
    List(ListArgs),
    /// Send an image to every seat at once over multicast (udpcast-compatible).
    Restore(RestoreArgs),
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
    /// Interface the seats are on.
    #[arg(long)]
    interface: String,
    #[command(flatten)]
    folder: Folder,
    /// Start as soon as this many seats joined (and take no more).
    #[arg(long)]
    seats: Option<usize>,
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
}

pub fn run(args: ImageArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ImageCommand::List(args) => list(args),
        ImageCommand::Restore(args) => restore(args),
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
                let partitions: Vec<String> = manifest
                    .partitions
                    .iter()
                    .map(|p| format!("{}:{} ({})", p.number, p.filesystem, megabytes(p.partition_bytes)))
                    .collect();
                let source = manifest.source_mac.map_or("-".to_string(), |mac| mac.to_string());
                println!(
                    "{:<24} {:>10} {:>10} {:<5} {:<17} {}",
                    manifest.name,
                    megabytes(manifest.bytes()),
                    megabytes(manifest.disk_bytes),
                    manifest.parts().count(),
                    source,
                    partitions.join(", ")
                );
            }
            Listed::Unusable { name, error } => println!("{name:<24} unusable: {error}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What became of one seat, for the closing table.
#[derive(Debug)]
struct SeatRow {
    seat: std::net::SocketAddrV4,
    number: u16,
    result: String,
}

fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let image = Image::open(&args.folder.path()?, &args.name)?;
    let interface = find_up_interface(&args.interface)?;
    let facts =
        interface.facts().with_context(|| format!("interface {:?} has no IPv4 address to send from", interface.name))?;
    if args.seats == Some(0) {
        anyhow::bail!("--seats must be at least 1");
    }
    let mut stream = image.stream()?;
    let total = stream.len();
    let group = default_group(facts.address);
    let link = Link {
        interface: (&interface).into(),
        address: facts.address,
        broadcast: portapxe_engine::wake::destination(&facts).ip().to_owned(),
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
    println!(
        "Waiting up to {} s for {seats_text} on {} ({}): group {group}, ports {}/{}",
        args.wait,
        interface.name,
        facts.address,
        args.port_base,
        args.port_base.wrapping_add(1)
    );

    let mut rows: Vec<SeatRow> = Vec::new();
    let mut started_at = None;
    let mut last_progress = Instant::now();
    let report = |event: &SessionEvent| {
        let row = |rows: &mut Vec<SeatRow>, seat: &std::net::SocketAddrV4, result: String| {
            if let Some(row) = rows.iter_mut().find(|row| row.seat.ip() == seat.ip()) {
                row.result = result;
            }
        };
        match event {
            SessionEvent::Joined { seat, number } => {
                println!("seat {} joined as #{number}", seat.ip());
                rows.push(SeatRow { seat: *seat, number: *number, result: "joined".into() });
            }
            SessionEvent::Refused { seat, why } => println!("seat {} refused: {why}", seat.ip()),
            SessionEvent::Started { seats } => {
                started_at = Some(Instant::now());
                println!("started with {seats} seats");
                for row in &mut rows {
                    row.result = "receiving".into();
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
                row(&mut rows, seat, format!("dropped: {why}"));
            }
            SessionEvent::Left { seat } => {
                println!("seat {} left before the end (its receiver stopped)", seat.ip());
                row(&mut rows, seat, "left before the end: its receiver stopped or could not write".into());
            }
            SessionEvent::Finished { seat } => {
                println!("seat {} has the whole image", seat.ip());
                row(&mut rows, seat, "finished".into());
            }
            SessionEvent::Ended(ending) => println!("session ended: {ending}"),
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ending = runtime.block_on(async {
        tokio::select! {
            ending = run_session(&link, settings, &mut stream, report) => ending.map(Some),
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })?;
    let Some(ending) = ending else {
        println!("Interrupted: the seats stop when they notice the sender is gone.");
        return Ok(ExitCode::from(1));
    };
    if let Some(started) = started_at {
        let seconds = started.elapsed().as_secs_f64();
        println!("Sent {} in {seconds:.1} s ({:.1} MB/s).", megabytes(total), total as f64 / 1e6 / seconds.max(0.001));
    }
    println!("{:<16} {:<4} RESULT", "SEAT", "#");
    for row in &rows {
        println!("{:<16} {:<4} {}", row.seat.ip(), row.number, row.result);
    }
    let all_finished = !rows.is_empty() && rows.iter().all(|row| row.result == "finished");
    Ok(if ending == Ending::Completed && all_finished { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
