use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::rules::ClientRules;

/// How PortaPXE takes part in DHCP on the chosen interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Full DHCP server: hands out addresses from the pool and boot information.
    #[default]
    Dhcp,
    /// proxyDHCP beside the network's own DHCP server: boot information for PXE
    /// clients only (ports 67 and 4011), never an address.
    Proxy,
    /// No DHCP at all: only TFTP and HTTP serve boot files (another server points at us).
    Off,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dhcp" => Ok(Self::Dhcp),
            "proxy" => Ok(Self::Proxy),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown mode `{other}`: use `dhcp` (full DHCP server), `proxy` (beside an existing DHCP server) \
                 or `off` (TFTP/HTTP only)"
            )),
        }
    }
}

pub use crate::dhcp::PoolRange;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhcpConfig {
    /// `None`: a range inside the interface's subnet is chosen at start.
    pub pool: Option<PoolRange>,
    pub lease_time_secs: u32,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub port: u16,
    /// PXE boot server port answered in proxy mode.
    pub boot_server_port: u16,
    /// Full DHCP only: answer IPv6 router solicitations with "no router here", so iPXE
    /// does not wait about 13 s for IPv6 on a segment without an IPv6 router.
    pub answer_router_solicitations: bool,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        Self {
            pool: None,
            lease_time_secs: 3600,
            router: None,
            dns: Vec::new(),
            port: 67,
            boot_server_port: 4011,
            answer_router_solicitations: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TftpConfig {
    pub enabled: bool,
    pub port: u16,
    /// Largest blksize (RFC 2348) granted to a client.
    pub block_size_limit: u16,
    /// Largest windowsize (RFC 7440) granted to a client.
    pub window_size_limit: u16,
}

impl Default for TftpConfig {
    fn default() -> Self {
        Self { enabled: true, port: 69, block_size_limit: 65464, window_size_limit: 64 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub enabled: bool,
    pub port: u16,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { enabled: true, port: 80 }
    }
}

/// One choice in the generated iPXE menu. Paths are relative to the boot root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BootEntry {
    Linux {
        name: String,
        kernel: String,
        #[serde(default)]
        initrd: Vec<String>,
        #[serde(default)]
        cmdline: String,
    },
    /// An ISO image, served in place (relative to the boot root, or an absolute path):
    /// its family's kernel and initrd boot from inside it, with the arguments that let
    /// the kernel find the image over HTTP (`iso::plan`); `sanboot` only for an image
    /// with no kernel PortaPXE knows.
    Iso {
        name: String,
        image: String,
        /// Extra kernel arguments, e.g. `console=ttyS0,115200` or `nomodeset`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        append: String,
        /// Which signed chain x64 UEFI machines boot its kernel through.
        #[serde(default, skip_serializing_if = "IsoLoader::is_auto")]
        loader: IsoLoader,
    },
    /// Hand over to another URL (an iPXE script, an EFI program).
    Chain { name: String, url: String },
    /// Leave network boot and continue with the next boot device.
    LocalDisk { name: String },
    /// Classroom imaging: each machine asks PortaPXE's imaging hub, by its MAC, whether
    /// to start the imaging agent (it has a capture or restore task) or boot its own
    /// disk. iPXE asks over HTTP, GRUB (the signed chain) reads a per-MAC config over
    /// TFTP. Added while a capture or restore serves (`imaging::entry`).
    Imaging { name: String },
}

impl BootEntry {
    pub fn name(&self) -> &str {
        match self {
            Self::Linux { name, .. }
            | Self::Iso { name, .. }
            | Self::Chain { name, .. }
            | Self::LocalDisk { name }
            | Self::Imaging { name } => name,
        }
    }
}

/// Which signed chain boots an ISO entry's kernel on x64 UEFI machines (`loader = …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IsoLoader {
    /// PortaPXE's chain (Debian's shim and GRUB); the image's own shim and GRUB only
    /// when Debian's shim would refuse the image's kernel and the image's shim is
    /// expected to accept it (read from the signatures before serving).
    #[default]
    Auto,
    /// The image's own shim and GRUB whenever it has them: the machine restarts once
    /// into them when the entry is chosen.
    Own,
    /// Never the image's own: PortaPXE's chain boots it (with Secure Boot off where shim
    /// refuses its kernel), for an image whose own GRUB does not read PortaPXE's menu.
    Portapxe,
}

impl IsoLoader {
    pub fn is_auto(&self) -> bool {
        *self == Self::Auto
    }
}

/// What x64 UEFI machines that PXE-boot are given first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UefiLoader {
    /// The signed chain: shim (signed by Microsoft's UEFI CA) → GRUB (signed by Debian) →
    /// the kernel. Boots with Secure Boot on and off; used when `shimx64.efi` and
    /// `grubx64.efi` are in the boot folder or came with the app, else iPXE.
    #[default]
    Signed,
    /// `uefi_x64_file` (iPXE by default): for iPXE features (an own iPXE script, chaining
    /// to a URL, ISO `sanboot`). Machines with Secure Boot on refuse it.
    Ipxe,
}

impl FromStr for UefiLoader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "signed" => Ok(Self::Signed),
            "ipxe" => Ok(Self::Ipxe),
            other => Err(format!(
                "unknown UEFI loader `{other}`: use `signed` (shim and GRUB, boots with Secure Boot on) or `ipxe`"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootConfig {
    /// Loader for BIOS PXE ROMs (arch 0).
    pub bios_file: Option<String>,
    /// Loader for 32-bit x86 UEFI (arch 6).
    pub uefi_ia32_file: Option<String>,
    /// Loader for x64 UEFI (arch 7, 9; and 16 over HTTP).
    pub uefi_x64_file: Option<String>,
    /// Loader for ARM64 UEFI (arch 11; and 19 over HTTP).
    pub uefi_arm64_file: Option<String>,
    /// Whether x64 UEFI PXE machines get the signed chain or `uefi_x64_file`.
    pub uefi_loader: UefiLoader,
    /// A script of the user's (relative to the root) given to iPXE instead of the generated one.
    pub ipxe_script: Option<String>,
    /// Seconds the generated menu waits before booting the first entry.
    pub menu_timeout_secs: u32,
    pub entries: Vec<BootEntry>,
}

impl Default for BootConfig {
    fn default() -> Self {
        Self {
            bios_file: Some("undionly.kpxe".into()),
            uefi_ia32_file: None,
            uefi_x64_file: Some("ipxe.efi".into()),
            uefi_arm64_file: Some("ipxe-arm64.efi".into()),
            uefi_loader: UefiLoader::Signed,
            ipxe_script: None,
            menu_timeout_secs: 10,
            entries: Vec::new(),
        }
    }
}

/// Everything needed to serve: the file format users edit and the GUI saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Network interface to serve on, by name (`portapxe interfaces` lists them).
    pub interface: String,
    pub mode: Mode,
    /// Folder whose files are served over TFTP and HTTP. Empty: only the loader folder.
    pub root: PathBuf,
    /// The boot loaders that came with the app (iPXE's `undionly.kpxe`, `ipxe.efi`,
    /// `snponly.efi`), served for any name the root lacks (`Served::loader_dir`). The app sets
    /// it from where it is installed; it is never saved, so a moved install finds its own.
    #[serde(skip)]
    pub loader_dir: Option<PathBuf>,
    /// Where leases are kept; `None`: the platform's data folder.
    pub state_dir: Option<PathBuf>,
    pub dhcp: DhcpConfig,
    pub tftp: TftpConfig,
    pub http: HttpConfig,
    pub boot: BootConfig,
    /// Which machines are answered and what each boots.
    pub rules: ClientRules,
}

impl Config {
    /// The folder TFTP and HTTP serve: the root, or with none chosen the loader folder.
    /// (Empty when neither is set; validation refuses that.)
    pub fn serving_root(&self) -> &Path {
        match &self.loader_dir {
            Some(loader_dir) if self.root.as_os_str().is_empty() => loader_dir,
            _ => &self.root,
        }
    }

    /// The loader folder served behind [`Config::serving_root`], if it is not that folder itself.
    pub fn fallback_loader_dir(&self) -> Option<&Path> {
        self.loader_dir.as_deref().filter(|dir| !self.root.as_os_str().is_empty() && *dir != self.root)
    }
}
