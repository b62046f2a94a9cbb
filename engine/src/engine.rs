//! The engine handle: start every service from one [`Config`], report what runs
//! where, stop them all. The CLI and the GUI drive the engine only through this.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::capture::live::{CaptureSinks, LiveCapture};
use crate::capture::pcapng::PcapNgRecorder;
use crate::clients::{ClientRecord, ClientRegistry, ServedKernel};
use crate::config::UefiLoader;
use crate::config::{BootEntry, Config, ConfigError, Mode, PoolRange, ServedFiles, validate};
use crate::detect::probe::{ProbeError, ProbeSettings, probe};
use crate::detect::watch::Conflicts;
use crate::detect::{ServerRole, ServerSighting};
use crate::dhcp::service::DhcpServiceSettings;
use crate::dhcp::{DhcpService, DhcpSettings, DhcpStartError};
use crate::events::{EngineEvent, EventSink, Service, ServiceEvent};
use crate::export::HttpBootArch;
use crate::grub::{GRUB_ARM64, GRUB_X64, SHIM_ARM64, SHIM_X64};
use crate::http::{HttpService, HttpSettings, HttpStartError};
use crate::ipxe::{SCRIPT_PATH, generate_script};
use crate::iso::{IsoBoot, IsoPlans};
use crate::iso_entries::IsoEntries;
use crate::net::{InterfaceLookupError, find_interface};
use crate::proxy::{ProxyService, ProxyServiceSettings, ProxySettings};
use crate::pxe::{BootSettings, rule_script_path};
use crate::served::Served;
use crate::signature::{KernelRefusal, SecureBootProblem};
use crate::tftp::{TftpService, TftpSettings, TftpStartError};

const LEASE_FILE: &str = "leases.json";

/// How long full DHCP listens for another DHCP server before it answers anyone. Servers
/// that check an address before offering it answer late: busybox udhcpd at 2.0 s, dnsmasq
/// (so every Pi-hole) after its ping of up to 3 s. 2 s let PortaPXE start beside both.
pub const SAFETY_PROBE_LISTEN: Duration = Duration::from_millis(4500);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Interface(#[from] InterfaceLookupError),
    #[error("the configuration cannot be served:\n{}", list(.0))]
    Invalid(Vec<ConfigError>),
    #[error("this account has no home folder to keep leases in: choose a folder with --state-dir or in Settings")]
    NoStateDir,
    /// The reason is in the message too (the window shows the message alone); the
    /// CLI's error chain says it once (`cli::error_text`).
    #[error(
        "cannot keep leases in the folder {}: {reason}. Choose another folder with --state-dir or in Settings",
        .path.display()
    )]
    StateDir {
        path: PathBuf,
        #[source]
        reason: std::io::Error,
    },
    #[error(transparent)]
    Dhcp(#[from] DhcpStartError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(
        "another DHCP server already answers on {interface}: {}. Starting a second one would break this network. \
         Use proxy mode (--mode proxy) to boot machines beside it, or force full DHCP (--force-dhcp) only if you \
         are sure that server may be overruled.",
        .servers.iter().map(ServerSighting::describe).collect::<Vec<_>>().join("; ")
    )]
    ForeignDhcpServer { interface: String, servers: Vec<ServerSighting> },
    #[error(transparent)]
    Tftp(#[from] TftpStartError),
    #[error(transparent)]
    Http(#[from] HttpStartError),
    #[error("boot image: {0}")]
    Iso(#[from] crate::iso::IsoError),
    #[error("the start was cancelled; nothing is served")]
    Cancelled,
}

/// Applies every engine event to the registry, stamped with the time it arrived.
async fn feed_registry(mut events: broadcast::Receiver<EngineEvent>, registry: Arc<RwLock<ClientRegistry>>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let now = now_ms();
        match registry.write() {
            Ok(mut registry) => registry.apply(&event, now),
            Err(poisoned) => poisoned.into_inner().apply(&event, now),
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Whether x64 UEFI machines get the signed chain (shim → GRUB), and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignedChain {
    /// `shimx64.efi` and `grubx64.efi` are served: UEFI x64 PXE machines get shim.
    Used,
    /// The config asks for iPXE (`uefi_loader = "ipxe"`, `--uefi-loader ipxe`, `--uefi-file`).
    NotChosen,
    /// Asked for, but these loaders are neither in the boot folder nor in the app's.
    Missing { files: Vec<String> },
}

impl std::fmt::Display for SignedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Used => {
                write!(f, "x64 UEFI machines get {SHIM_X64} → {GRUB_X64} (signed: boots with Secure Boot on and off)")
            }
            Self::NotChosen => write!(f, "x64 UEFI machines get the iPXE loader: Secure Boot machines refuse it"),
            Self::Missing { files } => write!(
                f,
                "the signed loaders ({}) are not in the boot folder, so x64 UEFI machines get iPXE, which Secure Boot \
                 machines refuse: install PortaPXE from a package, or copy them into the boot folder (README: Secure Boot)",
                files.join(", ")
            ),
        }
    }
}

/// What a Secure Boot machine meets in proxy mode, when the signed chain is served.
/// Debian's signed GRUB reads its menu from the server named in the DHCP server's ACK
/// (`siaddr`), not from the proxy's offer (RHEL/Fedora GRUB carries a patch for that;
/// Debian 12's does not, seen in the lab): unless the network's DHCP server names
/// PortaPXE as next server, such a machine stops at GRUB.
fn proxy_signed_chain_caveat(mode: Mode, chain: &SignedChain, server_ip: Ipv4Addr) -> Option<String> {
    (mode == Mode::Proxy && *chain == SignedChain::Used).then(|| {
        format!(
            "proxy mode: Secure Boot machines that PXE-boot get {SHIM_X64} and {GRUB_X64} from PortaPXE, but that \
             GRUB reads its menu from the next server the network's DHCP server names, not from PortaPXE. Set that \
             server's next-server to {server_ip} (`portapxe export` prints how), or use full DHCP; else they stop \
             at GRUB (UEFI HTTP boot is not affected: its image names PortaPXE itself)"
        )
    })
}

/// Looks in the boot folder and the app's loader folder for the signed chain's loaders.
pub fn signed_chain(config: &Config) -> SignedChain {
    if config.boot.uefi_loader == UefiLoader::Ipxe {
        return SignedChain::NotChosen;
    }
    let files: Vec<String> =
        [SHIM_X64, GRUB_X64].into_iter().filter(|name| !config.serves_file(name)).map(String::from).collect();
    if files.is_empty() { SignedChain::Used } else { SignedChain::Missing { files } }
}

/// Whether ARM64 UEFI PXE machines get the signed chain: asked for (the same setting as
/// x64) and Debian's arm64 shim and GRUB served. Without them they keep their iPXE loader.
pub fn signed_chain_arm64(config: &Config) -> bool {
    config.boot.uefi_loader != UefiLoader::Ipxe && [SHIM_ARM64, GRUB_ARM64].iter().all(|name| config.serves_file(name))
}

/// What the PXE decision needs from a config, for a server at `server_ip`. Looks for
/// the signed loaders ([`signed_chain`]).
pub fn boot_settings(config: &Config, server_ip: Ipv4Addr) -> BootSettings {
    boot_settings_with(config, server_ip, &signed_chain(config))
}

/// [`boot_settings`] once the signed chain has been looked for.
fn boot_settings_with(config: &Config, server_ip: Ipv4Addr, chain: &SignedChain) -> BootSettings {
    BootSettings {
        server_ip,
        bios_file: config.boot.bios_file.clone(),
        uefi_ia32_file: config.boot.uefi_ia32_file.clone(),
        uefi_x64_file: config.boot.uefi_x64_file.clone(),
        uefi_arm64_file: config.boot.uefi_arm64_file.clone(),
        uefi_x64_signed_file: (*chain == SignedChain::Used).then(|| SHIM_X64.to_owned()),
        uefi_arm64_signed_file: signed_chain_arm64(config).then(|| SHIM_ARM64.to_owned()),
        // Set once the image is made (see `signed_http_boot`).
        uefi_x64_signed_http_file: None,
        http_port: config.http.enabled.then_some(config.http.port),
        ipxe_script: config.boot.ipxe_script.clone().unwrap_or_else(|| SCRIPT_PATH.to_owned()),
    }
}

/// What another DHCP server must send so its clients boot from a PortaPXE at `server_ip`.
pub fn export_target(config: &Config, server_ip: Ipv4Addr) -> crate::export::BootTarget {
    let chain = signed_chain(config);
    let boot = boot_settings_with(config, server_ip, &chain);
    // UEFI HTTP boot clients get what serving gives them: the signed chain's image (made
    // at every start while the chain is used), else the UEFI loader, as an http:// URL.
    let x64_http =
        if chain == SignedChain::Used { Some(crate::grub::HTTP_BOOT_IMAGE) } else { boot.uefi_x64_file.as_deref() };
    let http_boot = [(HttpBootArch::X64, x64_http), (HttpBootArch::Arm64, boot.uefi_arm64_file.as_deref())]
        .into_iter()
        .filter_map(|(arch, file)| Some(crate::export::HttpBootFile { arch, url: boot.http_url(file?)? }))
        .collect();
    crate::export::BootTarget {
        server_ip,
        ipxe_script: boot.location(&boot.ipxe_script),
        bios_file: boot.bios_file,
        uefi_x64_file: boot.uefi_x64_signed_file.or(boot.uefi_x64_file),
        uefi_arm64_file: boot.uefi_arm64_signed_file.or(boot.uefi_arm64_file),
        http_boot,
        rules: config.rules.clone(),
    }
}

/// The kernels the boot entries serve, and whether each can boot with Secure Boot on
/// (read from its signature), so the registry can explain a boot that stops after one.
async fn served_kernels(config: &Config, isos: &IsoPlans, served: &Served) -> Vec<(String, ServedKernel)> {
    let root = config.serving_root().to_path_buf();
    let entries = config.boot.entries.clone();
    let (isos, served) = (isos.clone(), served.clone());
    let read = tokio::task::spawn_blocking(move || {
        entries
            .iter()
            .filter_map(|entry| match entry {
                BootEntry::Linux { name, kernel, initrd, .. } => {
                    let secure_boot_problem = crate::signature::kernel_refusal(&root.join(kernel));
                    Some((
                        kernel.clone(),
                        ServedKernel { entry: name.clone(), initrds: initrd.clone(), secure_boot_problem },
                    ))
                }
                BootEntry::Iso { name, image, .. } => {
                    let planned = isos.get(image)?;
                    let IsoBoot::Linux { kernel, initrds, .. } = &planned.boot else { return None };
                    // Through the image's own chain its own shim judges the kernel, not Debian's.
                    let secure_boot_problem = match planned.own_loader {
                        Some(_) => None,
                        None => crate::iso_entries::kernel_refusal(&served, planned),
                    };
                    Some((
                        kernel.clone(),
                        ServedKernel { entry: name.clone(), initrds: initrds.clone(), secure_boot_problem },
                    ))
                }
                _ => None,
            })
            .collect()
    });
    read.await.unwrap_or_default()
}

/// Why boot entry `entry` of `config` cannot boot on a machine with Secure Boot on, in
/// words for the Boot images list, or `None` when it can. Reads the kernel's signature.
pub fn entry_secure_boot_problem(config: &Config, entry: &BootEntry) -> Option<SecureBootProblem> {
    if let BootEntry::Iso { image, append, loader, .. } = entry {
        let mounted = iso_entry_mount(config, image).ok()?;
        return iso_secure_boot_problem(&iso_entry_plan(&mounted, append, *loader), &mounted);
    }
    secure_boot_problem_of(entry, |kernel| crate::signature::kernel_refusal(&config.serving_root().join(kernel)))
}

/// Why the ISO `mounted` (an entry with `append`) cannot boot with Secure Boot on, or
/// `None`: the kernel it boots is read inside the image.
pub fn iso_secure_boot_problem(
    planned: &crate::iso::IsoPlan,
    mounted: &crate::served::MountedImage,
) -> Option<SecureBootProblem> {
    let served = Served::default().with_images([mounted.clone()]);
    let refusal = crate::iso_entries::kernel_refusal(&served, planned);
    crate::iso_entries::secure_boot_problem(Some(planned), refusal)
}

/// What boots the ISO `mounted` (an entry with `append` and `loader`), for the Boot images
/// list: its plan with the image's own signed chain only where it is used. The URL in the
/// kernel arguments is a placeholder (it does not change what boots). Reads the image.
pub fn iso_entry_plan(
    mounted: &crate::served::MountedImage,
    append: &str,
    loader: crate::config::IsoLoader,
) -> crate::iso::IsoPlan {
    let mut planned = mounted.plan("http://server", append);
    if !crate::iso_entries::uses_own_loader(mounted, &planned, loader) {
        planned.own_loader = None;
    }
    planned
}

/// The image of an ISO entry, read and mounted where serving would mount it (alone), or
/// why it cannot be read: for the Boot images list (what boots, the iPXE preview). Reads
/// the image.
pub fn iso_entry_mount(config: &Config, image: &str) -> Result<crate::served::MountedImage, String> {
    let mount = crate::iso_entries::mount_path(image, &[]);
    crate::iso_entries::read_one(config, image, "", "http://server", mount)
        .map(|(mounted, _)| mounted)
        .map_err(|error| error.to_string())
}

/// [`entry_secure_boot_problem`], with `kernel_reason` saying why shim refuses a kernel
/// (`None`: it accepts it, or it cannot be read: validation reports a missing file).
fn secure_boot_problem_of(
    entry: &BootEntry,
    kernel_reason: impl FnOnce(&str) -> Option<KernelRefusal>,
) -> Option<SecureBootProblem> {
    match entry {
        BootEntry::Linux { kernel, .. } => kernel_reason(kernel).map(|refusal| SecureBootProblem::Kernel { refusal }),
        BootEntry::Iso { .. } => crate::iso_entries::secure_boot_problem(None, None),
        BootEntry::Chain { .. } => Some(SecureBootProblem::ChainUrl),
        // The agent is Debian's signed kernel, booted by GRUB through the signed chain.
        BootEntry::LocalDisk { .. } | BootEntry::Imaging { .. } => None,
    }
}

/// The GRUB configuration of the signed chain at every path signed GRUBs read, and
/// one per client rule that pins an entry.
fn grub_configs(config: &Config, isos: &IsoPlans) -> Vec<(String, Bytes)> {
    let ipxe_loader = crate::grub::IpxeLoaders {
        x64: config.boot.uefi_x64_file.as_deref().unwrap_or("ipxe.efi"),
        arm64: config.boot.uefi_arm64_file.as_deref(),
    };
    let main = Bytes::from(crate::grub::generate_config(
        &config.boot.entries,
        isos,
        &config.rules.clients,
        config.boot.menu_timeout_secs,
        ipxe_loader,
    ));
    let pinned = crate::grub::generate_pinned_configs(&config.boot.entries, isos, &config.rules.clients, ipxe_loader);
    // Each entry alone too: where a machine told to boot one entry once is sent.
    let alone = crate::grub::generate_entry_configs(&config.boot.entries, isos, ipxe_loader);
    let main_files = crate::grub::CONFIG_PATHS.iter().map(|path| ((*path).to_owned(), main.clone()));
    // An image's own GRUB that reads `grub.cfg` beside itself (Fedora's, as in
    // `grub::CONFIG_PATHS`) would read the image's own menu, made for the medium: it is
    // sent to PortaPXE's instead (a generated name shadows the image's file).
    let beside_own_grubs = config.boot.entries.iter().filter_map(|entry| {
        let BootEntry::Iso { image, .. } = entry else { return None };
        let own = isos.get(image)?.own_loader.as_ref()?;
        let folder = own.grub.rsplit_once('/').map_or("", |(folder, _)| folder);
        Some((format!("{folder}/grub.cfg"), Bytes::from(crate::grub::redirect_config())))
    });
    main_files
        .chain(pinned.into_iter().chain(alone).map(|(path, text)| (path, Bytes::from(text))))
        .chain(beside_own_grubs)
        .collect()
}

/// The UEFI HTTP boot image of the signed chain (`grub::http_boot`), made from the
/// served shim and GRUB for a server at `server_ip`.
async fn signed_http_boot(config: &Config, server_ip: Ipv4Addr) -> Result<Bytes, String> {
    let paths = [SHIM_X64, GRUB_X64].map(|name| config.served_file_path(name).ok_or(name));
    let made = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let [shim, grub] = paths.map(|path| {
            let path = path.map_err(|name| format!("{name} is not served"))?;
            std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))
        });
        crate::grub::http_boot_image(&shim?, &grub?, server_ip).map_err(|err| err.to_string())
    })
    .await;
    made.unwrap_or_else(|join| Err(join.to_string())).map(Bytes::from)
}

/// Makes the folder for the leases when it is missing (a fresh account has no data
/// folder yet) and checks that a file can be written in it, so the start fails here,
/// naming the folder, rather than at the first lease.
async fn prepare_state_dir(dir: &std::path::Path) -> Result<(), EngineError> {
    let path = dir.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        crate::config::create_private_dir(&path)?;
        tempfile::Builder::new().prefix(".write-check").tempfile_in(&path).map(drop)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
    checked.map_err(|reason| EngineError::StateDir { path: dir.to_path_buf(), reason })
}

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n")
}

/// How to start, beyond the config.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Serve full DHCP even when another DHCP server answers on the interface.
    pub force_dhcp: bool,
    /// How long the safety probe listens for other DHCP servers before full DHCP starts.
    pub probe_time: Duration,
    /// Record captured DHCP traffic to this pcapng file.
    pub capture_file: Option<PathBuf>,
    /// Cancelling it ends a start still in progress (e.g. during the safety probe):
    /// the services already started are stopped and the start fails with `Cancelled`.
    pub cancel: Option<CancelStart>,
    /// Capture and restore sessions: the agent's routes are served over HTTP.
    pub imaging: Option<Arc<crate::imaging::hub::ImagingHub>>,
    /// One-off boots planned per machine, read when each machine asks (`next_boot`).
    pub next_boot: Arc<crate::next_boot::NextBootTable>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            force_dhcp: false,
            probe_time: SAFETY_PROBE_LISTEN,
            capture_file: None,
            cancel: None,
            imaging: None,
            next_boot: Arc::default(),
        }
    }
}

/// A switch that cancels a start in progress; clones share it.
#[derive(Debug, Clone, Default)]
pub struct CancelStart(Arc<tokio::sync::watch::Sender<bool>>);

impl CancelStart {
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    async fn cancelled(&self) {
        let mut receiver = self.0.subscribe();
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

/// What is running where: cheap to clone for a UI or a status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    pub interface: String,
    pub server_ip: Ipv4Addr,
    pub mode: Mode,
    pub pool: Option<PoolRange>,
    /// The DHCP port (full mode) or proxyDHCP port 67 (proxy mode).
    pub dhcp: Option<SocketAddr>,
    /// proxyDHCP's PXE boot server port (4011).
    pub boot_server: Option<SocketAddr>,
    pub tftp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    /// Where iPXE clients are sent.
    pub ipxe_script: String,
    pub lease_file: Option<PathBuf>,
    pub capture: CaptureStatus,
    /// What x64 UEFI machines get first: the signed chain, or iPXE and why.
    pub signed_chain: SignedChain,
}

/// Whether packet capture runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "why", rename_all = "snake_case")]
pub enum CaptureStatus {
    Off,
    Running,
    /// Why it cannot run, and what to do.
    Unavailable(String),
}

impl std::fmt::Display for CaptureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Running => f.write_str("running"),
            Self::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

pub struct Engine {
    dhcp: Option<DhcpService>,
    proxy: Option<ProxyService>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    conflicts: Option<Conflicts>,
    registry: Arc<RwLock<ClientRegistry>>,
    registry_feed: Option<tokio::task::JoinHandle<()>>,
    capture: Option<LiveCapture>,
    #[cfg(unix)]
    router_advertiser: Option<crate::router_advert::service::RouterAdvertiser>,
    tftp: Option<TftpService>,
    http: Option<HttpService>,
    events: EventSink,
    status: EngineStatus,
}

impl Engine {
    /// Validates `config` against the real interface and starts every service it asks
    /// for. On any failure the services already started are stopped again.
    pub async fn start(config: Config, events: EventSink) -> Result<Self, EngineError> {
        Self::start_with(config, events, StartOptions::default()).await
    }

    pub async fn start_with(config: Config, events: EventSink, options: StartOptions) -> Result<Self, EngineError> {
        let interface = find_interface(&config.interface)?;
        let facts = interface.facts().ok_or_else(|| InterfaceLookupError::NoIpv4(config.interface.clone()))?;
        let errors = validate(&config, Some(&facts));
        if !errors.is_empty() {
            return Err(EngineError::Invalid(errors));
        }
        let server_ip = facts.address;
        let mut engine = Self {
            dhcp: None,
            proxy: None,
            watcher: None,
            conflicts: None,
            registry: Arc::default(),
            registry_feed: None,
            capture: None,
            #[cfg(unix)]
            router_advertiser: None,
            tftp: None,
            http: None,
            events: events.clone(),
            status: EngineStatus {
                interface: interface.name.clone(),
                server_ip,
                mode: config.mode,
                pool: None,
                dhcp: None,
                boot_server: None,
                tftp: None,
                http: None,
                ipxe_script: String::new(),
                lease_file: None,
                capture: CaptureStatus::Off,
                signed_chain: SignedChain::NotChosen,
            },
        };

        let http_port = config.http.enabled.then_some(config.http.port);
        let script_path = config.boot.ipxe_script.clone().unwrap_or_else(|| SCRIPT_PATH.to_owned());
        let base = match http_port {
            Some(80) => format!("http://{server_ip}"),
            Some(port) => format!("http://{server_ip}:{port}"),
            None => format!("tftp://{server_ip}"),
        };
        let isos = {
            let (config, base) = (config.clone(), base.clone());
            let read = tokio::task::spawn_blocking(move || crate::iso_entries::read_all(&config, &base)).await;
            read.unwrap_or_else(|_| Ok(IsoEntries::default()))?
        };
        let generated = if config.boot.ipxe_script.is_some() {
            Served::default()
        } else {
            let timeout = config.boot.menu_timeout_secs;
            let script = generate_script(&config.boot.entries, &isos.plans, &base, timeout);
            let mut files = vec![(SCRIPT_PATH.to_owned(), Bytes::from(script))];
            // A rule that pins a client to one entry gets a script with just that entry.
            for (index, rule) in config.rules.clients.iter().enumerate() {
                let entry = rule.entry.as_ref().and_then(|name| config.boot.entries.iter().find(|e| e.name() == name));
                if let Some(entry) = entry {
                    let script = generate_script(std::slice::from_ref(entry), &isos.plans, &base, timeout);
                    files.push((rule_script_path(index), Bytes::from(script)));
                }
            }
            Served::new(files)
        };
        let generated = generated.with_images(isos.mounts);
        let iso_plans = isos.plans;
        let chain = signed_chain(&config);
        let mut boot = boot_settings_with(&config, server_ip, &chain);
        let files = crate::limits::raise_open_file_limit();
        engine.events.emit(EngineEvent::Service(ServiceEvent {
            service: Service::Files,
            ok: !matches!(files, crate::limits::OpenFileLimit::Unchanged(_)),
            message: files.to_string(),
        }));
        // Each kernel's signature is read once: for the registry and for the warnings below.
        let kernels = served_kernels(&config, &iso_plans, &generated).await;
        let refused = |kernel: &str| {
            kernels.iter().find(|(path, _)| path == kernel).and_then(|(_, served)| served.secure_boot_problem.clone())
        };
        // Only the signed chain meets Secure Boot; with iPXE the loader itself says it.
        let entries = if chain == SignedChain::Used { config.boot.entries.as_slice() } else { &[] };
        let problems: Vec<String> = entries
            .iter()
            .filter_map(|entry| {
                let problem = match entry {
                    BootEntry::Iso { image, .. } => {
                        let planned = iso_plans.get(image);
                        let kernel = match planned.map(|planned| &planned.boot) {
                            Some(IsoBoot::Linux { kernel, .. }) => refused(kernel),
                            _ => None,
                        };
                        crate::iso_entries::secure_boot_problem(planned, kernel)
                    }
                    _ => secure_boot_problem_of(entry, refused),
                };
                Some(format!("boot entry \"{}\" {}", entry.name(), problem?))
            })
            .collect();
        match engine.registry.write() {
            Ok(mut registry) => registry.set_served_kernels(kernels),
            Err(poisoned) => poisoned.into_inner().set_served_kernels(kernels),
        }
        let arm64_chain = signed_chain_arm64(&config);
        let mut generated = if chain == SignedChain::Used || arm64_chain {
            generated.with(grub_configs(&config, &iso_plans))
        } else {
            generated
        };
        if chain == SignedChain::Used && config.http.enabled {
            match signed_http_boot(&config, server_ip).await {
                Ok(image) => {
                    generated = generated.with([(crate::grub::HTTP_BOOT_IMAGE.to_owned(), image)]);
                    boot.uefi_x64_signed_http_file = Some(crate::grub::HTTP_BOOT_IMAGE.to_owned());
                }
                Err(why) => engine.events.emit(EngineEvent::Service(ServiceEvent {
                    service: Service::Boot,
                    message: format!(
                        "the UEFI HTTP boot image of the signed chain could not be made ({why}): UEFI HTTP boot \
                         clients get the iPXE loader, which Secure Boot refuses"
                    ),
                    ok: false,
                })),
            }
        }
        for entry in &config.boot.entries {
            if let BootEntry::Iso { image, .. } = entry
                && let Some(planned) = iso_plans.get(image)
            {
                let no_memdisk =
                    matches!(planned.boot, IsoBoot::Memdisk { .. }) && !config.serves_file(crate::ipxe::MEMDISK);
                let refused = matches!(planned.boot, IsoBoot::Refused(_)) || no_memdisk;
                let mut message = format!("boot entry \"{}\": {planned}", entry.name());
                if no_memdisk {
                    message.push_str(
                        ", but memdisk is not in the boot folder: the packages bring it; from a source build copy \
                         /usr/lib/syslinux/memdisk (Debian's syslinux-common) into the boot root",
                    );
                }
                engine.events.emit(EngineEvent::Service(ServiceEvent {
                    service: Service::Boot,
                    message,
                    ok: !refused,
                }));
            }
        }
        engine.status.signed_chain = chain.clone();
        engine.events.emit(EngineEvent::Service(ServiceEvent {
            service: Service::Boot,
            message: chain.to_string(),
            ok: !matches!(chain, SignedChain::Missing { .. }),
        }));
        if arm64_chain {
            engine.events.emit(EngineEvent::Service(ServiceEvent {
                service: Service::Boot,
                message: format!(
                    "ARM64 UEFI machines get {SHIM_ARM64} → {GRUB_ARM64} (signed: boots with Secure Boot on and off)"
                ),
                ok: true,
            }));
        }
        for message in problems.into_iter().chain(proxy_signed_chain_caveat(config.mode, &chain, server_ip)) {
            engine.events.emit(EngineEvent::Service(ServiceEvent { service: Service::Boot, message, ok: false }));
        }
        engine.status.ipxe_script = script_path;
        // Seats in imaging read their GRUB configuration from the hub, per MAC.
        let generated = match &options.imaging {
            Some(hub) => generated.with_made(hub.clone()),
            None => generated,
        };
        // What each machine boots this time, asked first by every generated menu.
        let next_boot = Arc::new(crate::next_boot::NextBootAnswers::new(
            options.next_boot.clone(),
            options.imaging.clone(),
            &config.boot.entries,
            &iso_plans,
            &base,
            engine.events.clone(),
        ));
        let generated = generated.with_made(next_boot.clone());
        // An image's own loader reads PortaPXE's GRUB configuration, served with the signed chain only.
        let next_boot = (engine.status.signed_chain == SignedChain::Used).then_some(next_boot);
        let started = engine.start_services(&config, &interface, boot, (generated, next_boot), facts, &options);
        let result = match &options.cancel {
            Some(cancel) => tokio::select! {
                result = started => result,
                () = cancel.cancelled() => Err(EngineError::Cancelled),
            },
            None => started.await,
        };
        if let Err(err) = result {
            engine.stop_services().await;
            return Err(err);
        }
        Ok(engine)
    }

    async fn start_services(
        &mut self,
        config: &Config,
        interface: &crate::net::InterfaceInfo,
        boot: BootSettings,
        (generated, next_boot): (Served, Option<Arc<crate::next_boot::NextBootAnswers>>),
        facts: crate::config::InterfaceFacts,
        options: &StartOptions,
    ) -> Result<(), EngineError> {
        let server_ip = boot.server_ip;
        let subnet = facts.subnet();
        self.registry_feed = Some(tokio::spawn(feed_registry(self.events.subscribe(), Arc::clone(&self.registry))));
        let conflicts = Conflicts::new(vec![server_ip], config.mode != Mode::Dhcp, self.events.clone());
        let conflicts = if config.mode == Mode::Dhcp {
            // Our DHCP port sees every client request here, so replies can be checked.
            let conflicts = conflicts.checking_replies(subnet);
            if options.force_dhcp { conflicts } else { conflicts.halting_full_dhcp() }
        } else {
            conflicts
        };
        let bind_ip = IpAddr::V4(server_ip);
        // TFTP and HTTP answer only on the serving interface, not on whatever routes to its address.
        let serving_interface = crate::socket::Interface::from(interface);
        let root = config.serving_root().to_path_buf();
        let generated = match config.fallback_loader_dir().map(|dir| (dir, dir.canonicalize())) {
            Some((_, Ok(loader_dir))) => generated.with_loader_dir(&loader_dir),
            // Validation saw both folders; one vanished since. The root still serves.
            Some((dir, Err(err))) => {
                tracing::warn!(%err, "the loader folder {} is not served", dir.display());
                generated
            }
            None => generated,
        };
        if config.tftp.enabled {
            let mut settings = TftpSettings::new(SocketAddr::new(bind_ip, config.tftp.port), &root);
            settings.interface = Some(serving_interface.clone());
            settings.block_size_limit = Some(config.tftp.block_size_limit);
            settings.window_size_limit = Some(config.tftp.window_size_limit);
            let tftp = crate::tftp::start(settings, generated.clone(), self.events.clone()).await?;
            self.status.tftp = Some(tftp.local_addr());
            self.tftp = Some(tftp);
        }
        if config.http.enabled {
            let settings = HttpSettings {
                bind: SocketAddr::new(bind_ip, config.http.port),
                root: root.clone(),
                interface: Some(serving_interface.clone()),
                routes: options.imaging.clone().map(crate::imaging::routes::routes),
            };
            let http = crate::http::start(settings, generated.clone(), self.events.clone()).await?;
            self.status.http = Some(http.local_addr());
            self.events.emit(EngineEvent::Service(ServiceEvent {
                service: Service::Http,
                message: format!("HTTP serving {} on {}", root.display(), http.local_addr()),
                ok: true,
            }));
            self.http = Some(http);
        }
        if config.mode == Mode::Proxy {
            let proxy = crate::proxy::start(
                ProxyServiceSettings {
                    interface: interface.name.clone(),
                    interface_index: interface.index,
                    dhcp_port: config.dhcp.port,
                    boot_server_port: config.dhcp.boot_server_port,
                    decision: ProxySettings { server_ip, boot: boot.clone(), rules: config.rules.clone() },
                    next_boot: next_boot.clone(),
                },
                self.events.clone(),
            )
            .await?;
            self.status.dhcp = Some(proxy.dhcp_addr());
            self.status.boot_server = Some(proxy.boot_server_addr());
            self.proxy = Some(proxy);
        }
        if config.mode == Mode::Dhcp {
            let pool = config.dhcp.pool.or_else(|| facts.default_pool()).ok_or_else(|| {
                EngineError::Invalid(vec![ConfigError {
                    field: "dhcp.pool".into(),
                    message: format!("subnet {subnet} is too small for a pool"),
                }])
            })?;
            let state_dir = match &config.state_dir {
                Some(dir) => dir.clone(),
                None => crate::config::project_dirs().ok_or(EngineError::NoStateDir)?.data_dir().to_path_buf(),
            };
            prepare_state_dir(&state_dir).await?;
            let lease_file = state_dir.join(LEASE_FILE);
            let settings = DhcpServiceSettings {
                interface: interface.name.clone(),
                interface_index: interface.index,
                port: config.dhcp.port,
                pool,
                lease_file: lease_file.clone(),
                decision: DhcpSettings {
                    server_ip,
                    subnet,
                    lease_time_secs: config.dhcp.lease_time_secs,
                    router: config.dhcp.router,
                    dns: config.dhcp.dns.clone(),
                    boot,
                    rules: config.rules.clone(),
                },
                next_boot,
            };
            // Take the port first (so a second server fails fast), then look before answering.
            let bound = crate::dhcp::bind(settings, self.events.clone()).await?;
            self.safety_probe(config, interface, &conflicts, options).await?;
            let dhcp = bound.serve(conflicts.clone());
            self.status.dhcp = Some(dhcp.local_addr());
            self.status.pool = Some(pool);
            self.status.lease_file = Some(lease_file);
            self.dhcp = Some(dhcp);
            if config.dhcp.answer_router_solicitations {
                self.start_router_advertiser(interface);
            }
        }
        match crate::detect::watch::start(&interface.into(), config.dhcp.port.wrapping_add(1), conflicts.clone()) {
            Ok(task) => self.watcher = Some(task),
            Err(err) => self.events.emit(EngineEvent::Service(ServiceEvent {
                service: Service::Detect,
                message: format!("cannot watch for other DHCP servers on {}: {err}", interface.name),
                ok: false,
            })),
        }
        self.start_capture(&interface.name, server_ip, &conflicts, options);
        self.conflicts = Some(conflicts);
        self.events.emit(EngineEvent::Service(ServiceEvent {
            service: Service::Engine,
            message: format!("ready on {} ({server_ip})", interface.name),
            ok: true,
        }));
        Ok(())
    }

    pub fn status(&self) -> &EngineStatus {
        &self.status
    }

    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Stops every service; their ports are free when this returns.
    pub async fn stop(mut self) {
        self.stop_services().await;
        self.events.emit(EngineEvent::Service(ServiceEvent {
            service: Service::Engine,
            message: "stopped".into(),
            ok: true,
        }));
    }

    /// Never become the rogue server: refuse full DHCP where another server answers.
    async fn safety_probe(
        &self,
        config: &Config,
        interface: &crate::net::InterfaceInfo,
        conflicts: &Conflicts,
        options: &StartOptions,
    ) -> Result<(), EngineError> {
        let server_ip = self.status.server_ip;
        let found = probe(&ProbeSettings {
            interface: interface.into(),
            address: Some(server_ip),
            listen: options.probe_time,
            server_port: config.dhcp.port,
            boot_server_port: config.dhcp.boot_server_port,
            ours: vec![server_ip],
        })
        .await?;
        let address_servers: Vec<ServerSighting> =
            found.iter().filter(|s| s.role == ServerRole::AddressServer).cloned().collect();
        for sighting in found {
            conflicts.observe(sighting);
        }
        if !address_servers.is_empty() && !options.force_dhcp {
            return Err(EngineError::ForeignDhcpServer { interface: interface.name.clone(), servers: address_servers });
        }
        Ok(())
    }

    /// Capture is a help, never a requirement: when it cannot run, say why and go on.
    fn start_capture(&mut self, interface: &str, server_ip: Ipv4Addr, conflicts: &Conflicts, options: &StartOptions) {
        let recorder = match &options.capture_file {
            Some(path) => match PcapNgRecorder::create(path, interface) {
                Ok(recorder) => Some(recorder),
                Err(err) => {
                    self.report(
                        Service::Capture,
                        format!("cannot write {}: {err}; not recording", path.display()),
                        false,
                    );
                    None
                }
            },
            None => None,
        };
        let sinks =
            CaptureSinks { ours: server_ip, conflicts: conflicts.clone(), events: self.events.clone(), recorder };
        match crate::capture::live::start(interface, sinks) {
            Ok(capture) => {
                self.status.capture = CaptureStatus::Running;
                self.capture = Some(capture);
                self.report(Service::Capture, format!("capturing DHCP traffic on {interface}"), true);
            }
            Err(unavailable) => {
                self.status.capture = CaptureStatus::Unavailable(unavailable.to_string());
                self.report(Service::Capture, unavailable.to_string(), false);
            }
        }
    }

    /// Full DHCP owns the segment: end iPXE's wait for an IPv6 router. A help, never a
    /// requirement: without the privilege for raw sockets, say so once and go on.
    fn start_router_advertiser(&mut self, interface: &crate::net::InterfaceInfo) {
        const WAIT: &str = "iPXE clients will wait about 13 s for IPv6 before they boot";
        #[cfg(unix)]
        match crate::router_advert::service::RouterAdvertiser::start(&interface.name, interface.index) {
            Ok(advertiser) => {
                self.router_advertiser = Some(advertiser);
                self.report(
                    Service::Ipv6,
                    format!(
                        "answering IPv6 router solicitations on {} with \"no router here\" (iPXE does not wait for IPv6)",
                        interface.name
                    ),
                    true,
                );
            }
            Err(err) => {
                let hint = if err.kind() == std::io::ErrorKind::PermissionDenied {
                    " (needs root, or on Linux: sudo setcap cap_net_bind_service,cap_net_raw+ep $(which portapxe))"
                } else {
                    ""
                };
                self.report(
                    Service::Ipv6,
                    format!("cannot answer IPv6 router solicitations on {}: {err}{hint}; {WAIT}", interface.name),
                    false,
                );
            }
        }
        #[cfg(not(unix))]
        self.report(
            Service::Ipv6,
            format!("IPv6 router solicitations are not answered on this system ({}); {WAIT}", interface.name),
            false,
        );
    }

    fn report(&self, service: crate::events::Service, message: String, ok: bool) {
        self.events.emit(EngineEvent::Service(ServiceEvent { service, message, ok }));
    }

    /// Every client seen recently, most recent first.
    pub fn clients(&self) -> Vec<ClientRecord> {
        let now = now_ms();
        match self.registry.read() {
            Ok(registry) => registry.snapshot(now),
            Err(poisoned) => poisoned.into_inner().snapshot(now),
        }
    }

    /// Other DHCP/proxyDHCP servers seen since start.
    pub fn conflicts(&self) -> Vec<ServerSighting> {
        self.conflicts.as_ref().map(Conflicts::servers).unwrap_or_default()
    }

    async fn stop_services(&mut self) {
        // Joins the capture thread (it looks at its stop flag every 50 ms when idle).
        if let Some(capture) = self.capture.take() {
            let _ = tokio::task::spawn_blocking(move || drop(capture)).await;
        }
        // Joins the advertiser's thread (it looks at its stop flag every 200 ms).
        #[cfg(unix)]
        if let Some(advertiser) = self.router_advertiser.take() {
            let _ = tokio::task::spawn_blocking(move || advertiser.stop()).await;
        }
        for task in [self.watcher.take(), self.registry_feed.take()].into_iter().flatten() {
            task.abort();
            let _ = task.await;
        }
        if let Some(dhcp) = self.dhcp.take() {
            dhcp.stop().await;
        }
        if let Some(proxy) = self.proxy.take() {
            proxy.stop().await;
        }
        if let Some(tftp) = self.tftp.take() {
            tftp.stop().await;
        }
        if let Some(http) = self.http.take() {
            http.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_mode_with_the_signed_chain_says_where_grub_looks() {
        let ip = Ipv4Addr::new(10, 77, 0, 1);
        let said = proxy_signed_chain_caveat(Mode::Proxy, &SignedChain::Used, ip).expect("a caveat");
        assert!(said.contains("next-server to 10.77.0.1") && said.contains("portapxe export"), "{said}");
        assert_eq!(proxy_signed_chain_caveat(Mode::Dhcp, &SignedChain::Used, ip), None);
        assert_eq!(proxy_signed_chain_caveat(Mode::Proxy, &SignedChain::NotChosen, ip), None);
    }
}
