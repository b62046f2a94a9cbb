use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use super::{BootEntry, Config, Mode, PoolRange, ServedFiles};

/// The largest pool a default range spans: a bench or a classroom, not a campus.
const DEFAULT_POOL_MAX: u32 = 200;

/// What validation needs to know about the chosen interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceFacts {
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The loopback interface: no machine can reach it, so no DHCP client either.
    pub loopback: bool,
}

impl InterfaceFacts {
    pub fn subnet(&self) -> Ipv4Net {
        Ipv4Net::new(self.address, self.prefix).map(|net| net.trunc()).unwrap_or_default()
    }

    /// The upper half of the subnet's hosts (at most 200), never the server's own address.
    pub fn default_pool(&self) -> Option<PoolRange> {
        let subnet = self.subnet();
        let first = u32::from(subnet.network()).checked_add(1)?;
        let last = u32::from(subnet.broadcast()).checked_sub(1)?;
        if last <= first {
            return None;
        }
        let hosts = last - first + 1;
        let size = (hosts / 2).clamp(1, DEFAULT_POOL_MAX);
        let mut start = first + (hosts - size);
        let mut end = last;
        let server = u32::from(self.address);
        // Keep the server out of its own pool by trimming the end it sits on.
        if server == end {
            end -= 1;
        } else if server >= start && server <= end {
            start = server + 1;
        }
        (start <= end).then(|| PoolRange { start: start.into(), end: end.into() })
    }
}

/// One thing wrong with a config: which setting, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    /// The setting in the words a person finds it under ("Network card", "Boot
    /// folder", "Boot image 2"), not the config key.
    pub fn setting(&self) -> String {
        let numbered = |prefix: &str, words: &str| {
            let index = self.field.strip_prefix(prefix)?.strip_suffix(']')?.parse::<usize>().ok()?;
            Some(format!("{words} {}", index + 1))
        };
        let named = match self.field.as_str() {
            "interface" => "Network card",
            "root" => "Boot folder",
            "loader_dir" => "Loader folder",
            "dhcp.pool" => "Address pool",
            "dhcp.router" => "Router",
            "dhcp.lease_time_secs" => "Lease time",
            "dhcp.port" => "DHCP port",
            "tftp.enabled" => "TFTP",
            "tftp.block_size_limit" => "TFTP block size limit",
            "tftp.window_size_limit" => "TFTP window size limit",
            "boot.bios_file" => "BIOS loader",
            "boot.uefi_ia32_file" => "UEFI 32-bit loader",
            "boot.uefi_x64_file" => "UEFI x64 loader",
            "boot.uefi_arm64_file" => "UEFI ARM64 loader",
            "boot.ipxe_script" => "iPXE script",
            _ => {
                return numbered("boot.entries[", "Boot image")
                    .or_else(|| numbered("rules.client[", "Client rule"))
                    .unwrap_or_else(|| self.field.clone());
            }
        };
        named.to_owned()
    }
}

fn error(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

/// Every rule a config must pass before the engine serves it. `interface` is
/// `None` when the interface could not be looked up (that is reported elsewhere).
pub fn validate(config: &Config, interface: Option<&InterfaceFacts>) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if config.interface.trim().is_empty() {
        errors
            .push(error("interface", "no network card chosen: pick one in the Network card list, or pass --interface"));
    } else if config.interface.chars().any(char::is_control) {
        errors.push(error(
            "interface",
            format!("{:?} contains control characters: pick the card in the Network card list", config.interface),
        ));
    }
    // Clients listen one port above the server's (67 → 68): 65535 would answer to port 0.
    if config.mode != Mode::Off && !(1..=65534).contains(&config.dhcp.port) {
        errors.push(error(
            "dhcp.port",
            format!("DHCP port {} cannot be used: 1 to 65534 (normally 67)", config.dhcp.port),
        ));
    }
    check_folders(config, &mut errors);
    if config.mode == Mode::Dhcp {
        check_dhcp(config, interface, &mut errors);
    }
    let tftp = &config.tftp;
    if !(8..=65464).contains(&tftp.block_size_limit) {
        errors.push(error("tftp.block_size_limit", "must be between 8 and 65464 bytes (RFC 2348)"));
    }
    if tftp.window_size_limit == 0 {
        errors.push(error("tftp.window_size_limit", "must be at least 1 (RFC 7440)"));
    }
    if !tftp.enabled && !config.http.enabled {
        errors.push(error("tftp.enabled", "TFTP and HTTP are both off: nothing would serve boot files"));
    }
    check_boot(config, &mut errors);
    check_rules(config, &mut errors);
    errors
}

fn check_folders(config: &Config, errors: &mut Vec<ConfigError>) {
    if let Some(loader_dir) = &config.loader_dir
        && !loader_dir.is_dir()
    {
        errors.push(error(
            "loader_dir",
            format!("the loader folder `{}` does not exist or is not a folder", loader_dir.display()),
        ));
    }
    if config.root.as_os_str().is_empty() {
        if config.loader_dir.is_none() {
            errors.push(error("root", "no boot folder chosen: pick the folder with the boot files"));
        }
    } else if !config.root.is_dir() {
        errors
            .push(error("root", format!("boot folder `{}` does not exist or is not a folder", config.root.display())));
    }
}

fn check_rules(config: &Config, errors: &mut Vec<ConfigError>) {
    for (index, rule) in config.rules.clients.iter().enumerate() {
        let field = format!("rules.client[{index}]");
        if !rule.ignore && rule.boot_file.is_none() && rule.entry.is_none() {
            errors.push(error(&field, "says nothing to do: set `ignore = true`, `boot_file` or `entry`"));
        }
        if rule.ignore && (rule.boot_file.is_some() || rule.entry.is_some()) {
            errors.push(error(&field, "`ignore` cannot be combined with `boot_file` or `entry`"));
        }
        if let Some(file) = &rule.boot_file {
            check_relative(&field, file, errors);
        }
        if let Some(entry) = &rule.entry
            && !config.boot.entries.iter().any(|e| e.name() == entry)
        {
            let names: Vec<&str> = config.boot.entries.iter().map(BootEntry::name).collect();
            errors.push(error(&field, format!("no boot entry is named `{entry}` (entries: {})", names.join(", "))));
        }
    }
}

fn check_dhcp(config: &Config, interface: Option<&InterfaceFacts>, errors: &mut Vec<ConfigError>) {
    let dhcp = &config.dhcp;
    if dhcp.lease_time_secs < 60 {
        errors.push(error("dhcp.lease_time_secs", "a lease must last at least 60 seconds"));
    }
    let Some(facts) = interface else { return };
    if facts.loopback {
        errors.push(error(
            "interface",
            format!(
                "{} is the loopback interface: no machine can get an address on it. Pick the network card the \
                 clients are plugged into, or serve boot files only",
                config.interface.escape_debug()
            ),
        ));
        return;
    }
    let subnet = facts.subnet();
    match dhcp.pool {
        Some(pool) if pool.is_empty() => {
            errors.push(error("dhcp.pool", format!("pool {pool} ends before it starts")));
        }
        Some(pool) => {
            let hosts = |ip: Ipv4Addr| subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast();
            if !hosts(pool.start) || !hosts(pool.end) {
                errors.push(error(
                    "dhcp.pool",
                    format!("pool {pool} must lie inside {subnet}, the subnet of {}", config.interface),
                ));
            } else if pool.len() == 1 && pool.start == facts.address {
                errors.push(error("dhcp.pool", "the pool holds only the server's own address"));
            }
        }
        None if facts.default_pool().is_none() => {
            errors.push(error("dhcp.pool", format!("subnet {subnet} is too small for a pool: set one by hand")));
        }
        None => {}
    }
    if let Some(router) = dhcp.router.filter(|router| !subnet.contains(router)) {
        errors.push(error("dhcp.router", format!("router {router} is not in {subnet}")));
    }
    if let (Some(router), Some(pool)) = (dhcp.router, dhcp.pool)
        && pool.contains(router)
    {
        errors.push(error(
            "dhcp.pool",
            format!("pool {pool} holds the router {router}: a client could be given the router's address"),
        ));
    }
}

fn check_boot(config: &Config, errors: &mut Vec<ConfigError>) {
    let boot = &config.boot;
    let loaders = [
        ("boot.bios_file", &boot.bios_file),
        ("boot.uefi_ia32_file", &boot.uefi_ia32_file),
        ("boot.uefi_x64_file", &boot.uefi_x64_file),
        ("boot.uefi_arm64_file", &boot.uefi_arm64_file),
    ];
    for (field, file) in loaders {
        if let Some(file) = file {
            check_relative(field, file, errors);
        }
    }
    if let Some(script) = &boot.ipxe_script {
        check_root_file(config, "boot.ipxe_script", script, errors);
        if !boot.entries.is_empty() {
            errors.push(error(
                "boot.ipxe_script",
                "an iPXE script and boot entries are both set: the script would hide the entries; keep one",
            ));
        }
    }
    for (index, entry) in boot.entries.iter().enumerate() {
        let field = format!("boot.entries[{index}]");
        check_script_text(&field, entry.name(), errors);
        match entry {
            BootEntry::Linux { kernel, initrd, cmdline, .. } => {
                check_root_file(config, &field, kernel, errors);
                for file in initrd {
                    check_root_file(config, &field, file, errors);
                }
                check_script_text(&field, cmdline, errors);
            }
            BootEntry::Iso { image, append, .. } => {
                check_script_text(&field, append, errors);
                if Path::new(image).is_absolute() {
                    // An ISO picked from anywhere is served from where it lies.
                    if !Path::new(image).is_file() {
                        errors.push(error(&field, format!("`{image}` is not a file: choose the ISO image again")));
                    }
                } else {
                    check_root_file(config, &field, image, errors);
                }
            }
            BootEntry::Chain { url, .. } => {
                check_script_text(&field, url, errors);
                if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("tftp://")) {
                    errors.push(error(&field, format!("`{url}` must be an http://, https:// or tftp:// URL")));
                }
            }
            // The agent's files are checked when imaging adds the entry (`imaging::entry`).
            BootEntry::LocalDisk { .. } | BootEntry::Imaging { .. } => {}
        }
    }
}

/// Text that goes into the generated iPXE script must stay on one line.
fn check_script_text(field: &str, text: &str, errors: &mut Vec<ConfigError>) {
    if text.chars().any(char::is_control) {
        errors.push(error(field, format!("`{}` contains a line break or control character", text.escape_debug())));
    }
}

fn check_relative(field: &str, file: &str, errors: &mut Vec<ConfigError>) {
    let path = Path::new(file);
    if file.is_empty() || path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir))
    {
        errors.push(error(field, format!("`{file}` must be a path inside the boot folder (no `..`, not absolute)")));
    }
    check_script_text(field, file, errors);
}

fn check_root_file(config: &Config, field: &str, file: &str, errors: &mut Vec<ConfigError>) {
    let before = errors.len();
    check_relative(field, file, errors);
    if errors.len() == before && !config.serves_file(file) {
        errors.push(error(field, format!("`{file}` is not a file in {}", config.serving_root().display())));
    }
}

#[cfg(test)]
mod setting_words {
    use super::*;

    #[test]
    fn settings_are_named_in_words() {
        for (field, words) in [
            ("interface", "Network card"),
            ("root", "Boot folder"),
            ("dhcp.pool", "Address pool"),
            ("boot.entries[0]", "Boot image 1"),
            ("rules.client[2]", "Client rule 3"),
            ("boot.entries[x]", "boot.entries[x]"),
        ] {
            assert_eq!(error(field, "m").setting(), words);
        }
    }

    #[test]
    fn every_field_validation_reports_has_words() {
        // A config that breaks a rule of every field validation checks.
        let mut config =
            Config { root: "/no/such/folder".into(), loader_dir: Some("/no/such/loaders".into()), ..Config::default() };
        config.interface = "eth\u{7}".into();
        config.mode = Mode::Dhcp;
        config.dhcp.port = 0;
        config.dhcp.lease_time_secs = 5;
        config.dhcp.pool = Some(PoolRange { start: [10, 9, 9, 9].into(), end: [10, 9, 9, 10].into() });
        config.dhcp.router = Some([10, 9, 9, 1].into());
        config.tftp.block_size_limit = 1;
        config.tftp.window_size_limit = 0;
        config.tftp.enabled = false;
        config.http.enabled = false;
        let absolute = Some("/abs.efi".to_owned());
        config.boot.bios_file = absolute.clone();
        config.boot.uefi_ia32_file = absolute.clone();
        config.boot.uefi_x64_file = absolute.clone();
        config.boot.uefi_arm64_file = absolute;
        config.boot.ipxe_script = Some("../boot.ipxe".into());
        config.boot.entries = vec![BootEntry::Chain { name: "Chain".into(), url: "ftp://x".into() }];
        config.rules.clients = vec![crate::rules::ClientRule::default()];
        let facts = InterfaceFacts { address: [10, 77, 0, 1].into(), prefix: 24, loopback: false };
        let errors = validate(&config, Some(&facts));
        let fields: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in [
            "interface",
            "root",
            "loader_dir",
            "dhcp.port",
            "dhcp.pool",
            "dhcp.router",
            "dhcp.lease_time_secs",
            "tftp.enabled",
            "tftp.block_size_limit",
            "tftp.window_size_limit",
            "boot.bios_file",
            "boot.uefi_ia32_file",
            "boot.uefi_x64_file",
            "boot.uefi_arm64_file",
            "boot.ipxe_script",
            "boot.entries[0]",
            "rules.client[0]",
        ] {
            assert!(fields.contains(field), "no error for {field}: {errors:#?}");
        }
        for error in errors {
            assert!(!error.setting().contains('_') && !error.setting().contains('.'), "{error:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(address: [u8; 4], prefix: u8) -> InterfaceFacts {
        InterfaceFacts { address: address.into(), prefix, loopback: false }
    }

    fn config_in(root: &Path) -> Config {
        Config { interface: "br0".into(), root: root.to_path_buf(), ..Config::default() }
    }

    #[test]
    fn default_pool_is_upper_half_and_skips_server() {
        let pool = facts([10, 77, 0, 1], 24).default_pool().unwrap();
        assert_eq!(pool, PoolRange { start: [10, 77, 0, 128].into(), end: [10, 77, 0, 254].into() });
        let at_end = facts([192, 168, 1, 254], 24).default_pool().unwrap();
        assert_eq!(at_end.end, Ipv4Addr::new(192, 168, 1, 253));
        let inside = facts([192, 168, 1, 200], 24).default_pool().unwrap();
        assert_eq!(inside.start, Ipv4Addr::new(192, 168, 1, 201));
        let big = facts([10, 0, 0, 1], 16).default_pool().unwrap();
        assert_eq!(big.len(), 200);
        assert!(facts([10, 0, 0, 1], 31).default_pool().is_none());
    }

    #[test]
    fn ports_routers_and_names_that_cannot_work_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let facts = facts([10, 77, 0, 1], 24);
        let fields = |config: &Config| -> Vec<String> {
            validate(config, Some(&facts)).into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect()
        };
        let mut config = config_in(root.path());
        config.dhcp.port = 65535;
        assert!(fields(&config).iter().any(|e| e.starts_with("dhcp.port: DHCP port 65535")), "{:?}", fields(&config));
        config.mode = Mode::Off;
        assert_eq!(fields(&config), Vec::<String>::new(), "boot files only: no DHCP port is used");

        let mut config = config_in(root.path());
        config.dhcp.pool = Some("10.77.0.1-10.77.0.50".parse().unwrap());
        config.dhcp.router = Some([10, 77, 0, 20].into());
        assert!(fields(&config).iter().any(|e| e.contains("holds the router 10.77.0.20")), "{:?}", fields(&config));

        let config = Config { interface: "eth\u{0}0\u{1b}[31m".into(), ..config_in(root.path()) };
        let errors = fields(&config);
        assert!(errors.iter().any(|e| e.contains("control characters")), "{errors:?}");
        assert!(errors.iter().all(|e| !e.contains('\u{1b}') && !e.contains('\u{0}')), "printed raw: {errors:?}");
    }

    #[test]
    fn good_config_passes() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(validate(&config_in(root.path()), Some(&facts([10, 77, 0, 1], 24))), vec![]);
    }

    #[test]
    fn each_mistake_names_its_field() {
        let root = tempfile::tempdir().unwrap();
        let mut config = config_in(root.path());
        config.interface.clear();
        config.dhcp.pool = Some("10.77.1.10-10.77.1.20".parse().unwrap());
        config.dhcp.lease_time_secs = 5;
        config.dhcp.router = Some([192, 168, 0, 1].into());
        config.tftp.block_size_limit = 70000u32 as u16;
        config.boot.bios_file = Some("../undionly.kpxe".into());
        config.boot.entries = vec![BootEntry::Linux {
            name: "Debian\nchain evil".into(),
            kernel: "vmlinuz".into(),
            initrd: vec![],
            cmdline: String::new(),
        }];
        let fields: Vec<String> =
            validate(&config, Some(&facts([10, 77, 0, 1], 24))).into_iter().map(|e| e.field).collect();
        for expected in ["interface", "dhcp.pool", "dhcp.lease_time_secs", "dhcp.router", "boot.bios_file"] {
            assert!(fields.contains(&expected.to_string()), "{expected} missing from {fields:?}");
        }
        assert_eq!(fields.iter().filter(|f| f.starts_with("boot.entries[0]")).count(), 2, "{fields:?}");
    }

    #[test]
    fn full_dhcp_is_refused_on_loopback_and_proxy_is_not() {
        let root = tempfile::tempdir().unwrap();
        let mut config = Config { interface: "lo".into(), ..config_in(root.path()) };
        let loopback = InterfaceFacts { address: [127, 0, 0, 1].into(), prefix: 8, loopback: true };
        let errors = validate(&config, Some(&loopback));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "interface");
        assert!(errors[0].message.starts_with("lo is the loopback interface"), "{}", errors[0]);
        assert_eq!(errors[0].setting(), "Network card");
        config.mode = Mode::Proxy;
        assert_eq!(validate(&config, Some(&loopback)), []);
    }

    #[test]
    fn missing_root_and_pool_backwards() {
        let mut config = config_in(Path::new("/nonexistent/portapxe-root"));
        config.dhcp.pool = Some(PoolRange { start: [10, 77, 0, 50].into(), end: [10, 77, 0, 40].into() });
        let errors = validate(&config, Some(&facts([10, 77, 0, 1], 24)));
        assert!(errors.iter().any(|e| e.field == "root"));
        assert!(errors.iter().any(|e| e.message.contains("ends before it starts")));
    }

    #[test]
    fn client_rules_must_do_something_and_name_real_entries() {
        use crate::rules::ClientRule;
        let root = tempfile::tempdir().unwrap();
        let mut config = config_in(root.path());
        config.rules.clients = vec![
            ClientRule::default(),
            ClientRule { entry: Some("Nope".into()), ..ClientRule::default() },
            ClientRule { ignore: true, boot_file: Some("x.efi".into()), ..ClientRule::default() },
            ClientRule { boot_file: Some("snponly.efi".into()), ..ClientRule::default() },
        ];
        let errors = validate(&config, Some(&facts([10, 77, 0, 1], 24)));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rules.client[0]", "rules.client[1]", "rules.client[2]"], "{errors:?}");
        assert!(errors[1].message.contains("no boot entry is named `Nope`"));
    }

    #[test]
    fn the_loader_folder_stands_in_for_a_missing_root() {
        let loaders = tempfile::tempdir().unwrap();
        std::fs::write(loaders.path().join("ipxe.efi"), b"efi").unwrap();
        let mut config = Config { interface: "br0".into(), mode: Mode::Off, ..Config::default() };
        let fields = |config: &Config| validate(config, None).into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(&config), ["root"], "nothing at all to serve");
        config.loader_dir = Some(loaders.path().to_path_buf());
        assert_eq!(fields(&config), Vec::<String>::new());
        assert_eq!(config.serving_root(), loaders.path());
        assert_eq!(config.fallback_loader_dir(), None);
        // Files the entries name may be in either folder.
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("vmlinuz"), b"kernel").unwrap();
        config.root = root.path().to_path_buf();
        config.boot.ipxe_script = Some("ipxe.efi".into());
        assert_eq!(fields(&config), Vec::<String>::new());
        assert_eq!(config.serving_root(), root.path());
        assert_eq!(config.fallback_loader_dir(), Some(loaders.path()));
        let same = Config { root: loaders.path().to_path_buf(), ..config.clone() };
        assert_eq!(same.fallback_loader_dir(), None, "the loader folder is the root");
        config.boot.ipxe_script = Some("nope.ipxe".into());
        assert_eq!(fields(&config), ["boot.ipxe_script"]);
        config.loader_dir = Some(root.path().join("gone"));
        config.boot.ipxe_script = None;
        assert_eq!(fields(&config), ["loader_dir"]);
    }

    #[test]
    fn off_mode_ignores_dhcp_settings() {
        let root = tempfile::tempdir().unwrap();
        let mut config = config_in(root.path());
        config.mode = Mode::Off;
        config.dhcp.lease_time_secs = 1;
        assert_eq!(validate(&config, None), vec![]);
    }
}
