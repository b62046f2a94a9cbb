use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use portapxe_engine::config::{BootEntry, Config, Mode, PoolRange, UefiLoader, load_file, write_atomically};
use portapxe_engine::events::{MacAddr, NextBoot};
use portapxe_engine::{Engine, EngineEvent, EventSink, StartOptions};
use tokio::sync::broadcast::error::RecvError;

use crate::event_text::Level;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Interface to serve on (see `portapxe interfaces`).
    #[arg(long)]
    interface: Option<String>,
    /// Folder served over TFTP and HTTP; every file named below is relative to it. The iPXE
    /// loaders installed with PortaPXE are served for names it lacks (and alone without it).
    #[arg(long)]
    root: Option<PathBuf>,
    /// `dhcp`: full DHCP server with a pool; `proxy`: proxyDHCP beside the network's DHCP server
    /// (boot info only, ports 67 + 4011); `off`: TFTP/HTTP only (another DHCP server points here).
    #[arg(long)]
    mode: Option<Mode>,
    /// Addresses to hand out, e.g. 192.168.50.100-192.168.50.199 (default: upper half of the subnet).
    #[arg(long)]
    pool: Option<PoolRange>,
    /// Boot program for BIOS PXE clients (default undionly.kpxe).
    #[arg(long)]
    bios_file: Option<String>,
    /// Boot program for x64 UEFI clients instead of the signed chain (implies --uefi-loader ipxe;
    /// default ipxe.efi).
    #[arg(long)]
    uefi_file: Option<String>,
    /// What x64 UEFI machines get: `signed` (default: shimx64.efi → grubx64.efi, boots with
    /// Secure Boot on and off) or `ipxe` (for your own iPXE script, chain URLs, ISO sanboot).
    #[arg(long)]
    uefi_loader: Option<UefiLoader>,
    /// Boot program for ARM64 UEFI clients (default ipxe-arm64.efi).
    #[arg(long)]
    arm64_file: Option<String>,
    /// An iPXE script of yours, given to iPXE clients instead of the generated one.
    #[arg(long, conflicts_with = "kernel")]
    ipxe_script: Option<String>,
    /// Linux kernel that the generated iPXE script boots over HTTP.
    #[arg(long, requires = "initrd")]
    kernel: Option<String>,
    /// Initrd for --kernel (repeat for several).
    #[arg(long, requires = "kernel")]
    initrd: Vec<String>,
    /// Kernel command line for --kernel.
    #[arg(long, requires = "kernel", default_value = "")]
    cmdline: String,
    /// An ISO image to boot (repeat for a menu): relative to --root, or an absolute path (served
    /// from where it lies). Its family is recognised and its kernel boots from inside it.
    #[arg(long, conflicts_with_all = ["kernel", "ipxe_script"])]
    iso: Vec<String>,
    /// Extra kernel arguments for the --iso entries, e.g. "console=ttyS0,115200" or "nomodeset".
    #[arg(long, requires = "iso", default_value = "")]
    append: String,
    #[arg(long)]
    http_port: Option<u16>,
    #[arg(long)]
    tftp_port: Option<u16>,
    #[arg(long)]
    dhcp_port: Option<u16>,
    /// Folder for the lease file (default: the platform's data folder).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// A PortaPXE config file (TOML); flags given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Append every engine event as one JSON line to this file.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Full DHCP: do not answer IPv6 router solicitations. By default PortaPXE answers them with
    /// "no router here" (lifetime 0, no prefix), so iPXE does not wait about 13 s for IPv6.
    #[arg(long)]
    no_router_advertisement: bool,
    /// Serve full DHCP even if another DHCP server answers on the interface (it is refused otherwise).
    #[arg(long)]
    force_dhcp: bool,
    /// Rewrite this file every second with a JSON snapshot: services, clients, other servers seen.
    #[arg(long)]
    status: Option<PathBuf>,
    /// Record the DHCP traffic on the interface (UDP 67/68/4011) to this pcapng file (opens in Wireshark).
    #[arg(long)]
    capture: Option<PathBuf>,
    /// The machine with this MAC boots one entry the next time it network-boots, once, and its
    /// menu after that: MAC=ENTRY (a boot entry's name) or MAC=disk (its own disk). Repeatable.
    #[arg(long, value_name = "MAC=ENTRY")]
    once: Vec<String>,
}

impl ServeArgs {
    pub fn into_config(self) -> anyhow::Result<Config> {
        self.into_plan().map(|plan| plan.config)
    }

    pub(super) fn into_plan(self) -> anyhow::Result<ServePlan> {
        let options =
            StartOptions { force_dhcp: self.force_dhcp, capture_file: self.capture.clone(), ..StartOptions::default() };
        let once = self.once.clone();
        let (events, status) = (self.events.clone(), self.status.clone());
        let mut config = match &self.config {
            Some(path) => load_file(path)?,
            None => Config::default(),
        };
        if let Some(interface) = self.interface {
            config.interface = interface;
        }
        if let Some(root) = self.root {
            config.root = root;
        }
        if let Some(mode) = self.mode {
            config.mode = mode;
        }
        if let Some(pool) = self.pool {
            config.dhcp.pool = Some(pool);
        }
        let boot = &mut config.boot;
        if self.uefi_file.is_some() {
            boot.uefi_loader = UefiLoader::Ipxe;
        }
        if let Some(loader) = self.uefi_loader {
            boot.uefi_loader = loader;
        }
        for (flag, slot) in [
            (self.bios_file, &mut boot.bios_file),
            (self.uefi_file, &mut boot.uefi_x64_file),
            (self.arm64_file, &mut boot.uefi_arm64_file),
        ] {
            if flag.is_some() {
                *slot = flag;
            }
        }
        if let Some(script) = self.ipxe_script {
            boot.ipxe_script = Some(script);
            boot.entries.clear();
        }
        if let Some(kernel) = self.kernel {
            boot.ipxe_script = None;
            boot.entries =
                vec![BootEntry::Linux { name: "Linux".into(), kernel, initrd: self.initrd, cmdline: self.cmdline }];
        }
        if !self.iso.is_empty() {
            boot.ipxe_script = None;
            boot.entries = self
                .iso
                .into_iter()
                .map(|image| {
                    let name = iso_entry_name(&image);
                    BootEntry::Iso { name, image, append: self.append.clone(), loader: Default::default() }
                })
                .collect();
        }
        if let Some(port) = self.http_port {
            config.http.port = port;
        }
        if let Some(port) = self.tftp_port {
            config.tftp.port = port;
        }
        if let Some(port) = self.dhcp_port {
            config.dhcp.port = port;
        }
        if let Some(dir) = self.state_dir {
            config.state_dir = Some(dir);
        }
        if self.no_router_advertisement {
            config.dhcp.answer_router_solicitations = false;
        }
        for plan in &once {
            let (mac, boot) = one_off_boot(plan, &config)?;
            options.next_boot.plan(mac, boot);
        }
        crate::boot_files::apply(&mut config);
        Ok(ServePlan { config, options, events, status })
    }
}

/// `MAC=ENTRY` or `MAC=disk` of `--once`, checked against the entries served.
fn one_off_boot(plan: &str, config: &Config) -> anyhow::Result<(MacAddr, NextBoot)> {
    let Some((mac, entry)) = plan.split_once('=') else {
        anyhow::bail!("--once {plan:?}: write MAC=ENTRY (a boot entry's name) or MAC=disk");
    };
    let mac: MacAddr = mac.trim().parse().map_err(|err| anyhow::anyhow!("--once {plan:?}: {err}"))?;
    if config.boot.ipxe_script.is_some() {
        anyhow::bail!("--once needs PortaPXE's generated boot menu; with your own iPXE script, plan it there");
    }
    let names: Vec<&str> = config.boot.entries.iter().map(BootEntry::name).collect();
    if names.contains(&entry) {
        Ok((mac, NextBoot::Entry(entry.to_owned())))
    } else if entry.eq_ignore_ascii_case("disk") {
        Ok((mac, NextBoot::LocalDisk))
    } else {
        anyhow::bail!("--once {plan:?}: no boot entry is named {entry:?}; the entries are {names:?} (or disk)")
    }
}

/// A menu name for an ISO: its file name without `.iso`.
fn iso_entry_name(image: &str) -> String {
    let name = image.rsplit(['/', '\\']).next().unwrap_or(image);
    let stem = name.strip_suffix(".iso").or_else(|| name.strip_suffix(".ISO")).unwrap_or(name);
    if stem.is_empty() { "ISO".to_owned() } else { stem.to_owned() }
}

/// Everything `serve` was asked to do.
pub(super) struct ServePlan {
    pub config: Config,
    pub options: StartOptions,
    events: Option<PathBuf>,
    status: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    run_plan(args.into_plan()?, EventSink::new(), |_, _| std::future::pending())
}

/// Serves `plan` until interrupted or until `job` (started once the engine serves, with
/// its status and the event sink) ends; `job`'s answer is the exit status.
pub(super) fn run_plan<Job, Done>(plan: ServePlan, sink: EventSink, job: Job) -> anyhow::Result<ExitCode>
where
    Job: FnOnce(&portapxe_engine::EngineStatus, EventSink) -> Done,
    Done: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let ServePlan { config, options, events: events_file, status } = plan;
    if config.interface.is_empty() {
        anyhow::bail!("--interface is required (see `portapxe interfaces`)");
    }
    match (config.root.as_os_str().is_empty(), &config.loader_dir) {
        (true, None) => anyhow::bail!("--root is required: the folder with the boot files"),
        (true, Some(loaders)) => {
            tracing::info!("no --root given: serving only the iPXE loaders in {}", loaders.display())
        }
        (false, _) => {
            if let Some(loaders) = config.fallback_loader_dir() {
                tracing::info!("loaders missing from {} are served from {}", config.root.display(), loaders.display())
            }
        }
    }
    let events_out = match events_file {
        Some(path) => Some(BufWriter::new(open_events_file(&path).with_context(|| {
            format!("cannot write the events file {}; choose another with --events", path.display())
        })?)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, options, events_out, status, sink, job))
}

/// The events file, appended to; its folder is made when missing.
fn open_events_file(path: &Path) -> std::io::Result<File> {
    if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    File::options().create(true).append(true).open(path)
}

async fn serve<Job, Done>(
    config: Config,
    options: StartOptions,
    events_out: Option<BufWriter<File>>,
    status_file: Option<PathBuf>,
    sink: EventSink,
    job: Job,
) -> anyhow::Result<ExitCode>
where
    Job: FnOnce(&portapxe_engine::EngineStatus, EventSink) -> Done,
    Done: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let logger = tokio::spawn(log_events(sink.subscribe(), events_out));
    let engine = match Engine::start_with(config, sink.clone(), options).await {
        Ok(engine) => engine,
        Err(err) => {
            drop(sink);
            let _ = tokio::time::timeout(Duration::from_secs(1), logger).await;
            return Err(err.into());
        }
    };
    let status = engine.status().clone();
    let off = || "off".to_string();
    let dhcp = match (status.mode, status.dhcp, status.pool) {
        (Mode::Dhcp, Some(addr), Some(pool)) => format!("full DHCP on {addr}, pool {pool}"),
        (Mode::Proxy, Some(addr), _) => {
            format!("proxyDHCP on {addr} and {}", status.boot_server.map_or_else(off, |a| a.to_string()))
        }
        _ => off(),
    };
    tracing::info!(
        "serving on {} ({}): {dhcp}; TFTP {}; HTTP {}; iPXE clients get {}",
        status.interface,
        status.server_ip,
        status.tftp.map_or_else(off, |a| a.to_string()),
        status.http.map_or_else(off, |a| a.to_string()),
        status.ipxe_script,
    );
    let shutdown = wait_for_shutdown();
    tokio::pin!(shutdown);
    let job = job(engine.status(), sink.clone());
    tokio::pin!(job);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut exit = Ok(ExitCode::SUCCESS);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            done = &mut job => {
                exit = done;
                break;
            }
            _ = tick.tick() => {
                if let Some(path) = &status_file {
                    write_status(path, &engine);
                }
            }
        }
    }
    tracing::info!("stopping");
    engine.stop().await;
    drop(sink);
    let _ = tokio::time::timeout(Duration::from_secs(2), logger).await;
    exit
}

/// The status file a script or test polls: services, clients, other servers seen.
fn write_status(path: &Path, engine: &Engine) {
    let snapshot = serde_json::json!({
        "status": engine.status(),
        "clients": engine.clients(),
        "conflicts": engine.conflicts(),
    });
    let written = serde_json::to_vec_pretty(&snapshot)
        .map_err(std::io::Error::from)
        .and_then(|bytes| write_atomically(path, &bytes));
    if let Err(err) = written {
        tracing::warn!(%err, "cannot write the status file {}", path.display());
    }
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn log_events(mut events: tokio::sync::broadcast::Receiver<EngineEvent>, mut out: Option<BufWriter<File>>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!("{missed} events were dropped: the log could not keep up");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        if let Some(writer) = out.as_mut() {
            let written = serde_json::to_writer(&mut *writer, &event)
                .map_err(std::io::Error::from)
                .and_then(|()| writer.write_all(b"\n"))
                .and_then(|()| writer.flush());
            if let Err(err) = written {
                tracing::warn!(%err, "cannot write the events file; no more events go there");
                out = None;
            }
        }
        log_event(&event);
    }
}

fn log_event(event: &EngineEvent) {
    let (level, text) = crate::event_text::describe(event);
    match level {
        Level::Debug => tracing::debug!("{text}"),
        Level::Info => tracing::info!("{text}"),
        Level::Warn => tracing::warn!("{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_names_an_entry_or_the_disk_and_says_what_is_wrong() {
        let mut config = Config::default();
        config.boot.entries.push(BootEntry::LocalDisk { name: "Windows".into() });
        config.boot.entries.push(BootEntry::Chain { name: "Lab menu".into(), url: "http://x/y".into() });
        let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
        assert_eq!(
            one_off_boot("52:54:00:00:00:01=Lab menu", &config).unwrap(),
            (mac, NextBoot::Entry("Lab menu".into()))
        );
        assert_eq!(one_off_boot("52-54-00-00-00-01=disk", &config).unwrap(), (mac, NextBoot::LocalDisk));
        let unknown = one_off_boot("52:54:00:00:00:01=Linux", &config).unwrap_err().to_string();
        assert!(unknown.contains("\"Windows\", \"Lab menu\""), "{unknown}");
        assert!(one_off_boot("52:54:00:00:00:01", &config).unwrap_err().to_string().contains("MAC=ENTRY"));
        assert!(one_off_boot("52:54:00:00:01=disk", &config).unwrap_err().to_string().contains("not a MAC"));
        config.boot.ipxe_script = Some("mine.ipxe".into());
        assert!(one_off_boot("52:54:00:00:00:01=disk", &config).unwrap_err().to_string().contains("own iPXE script"));
    }
}
