//! How seats reach imaging while PortaPXE serves network boot: the agent's kernel and
//! initramfs must be served, and one boot entry sends the chosen seats (pinned by MAC,
//! or every machine) to the hub's per-MAC script, which answers the agent while a seat
//! has a task and its own disk otherwise. Shared by the command line and the window.

use std::net::Ipv4Addr;

use super::hub::{AgentBoot, ImagingHub};
use crate::config::{BootEntry, Config, ServedFiles};
use crate::mac::MacAddr;
use crate::rules::{ClientRule, MacPattern};

/// The name of the boot entry that sends seats to imaging.
pub const IMAGING_ENTRY: &str = "PortaPXE imaging";

/// The agent's boot files, as served (root-relative), and its extra kernel arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFiles {
    pub kernel: String,
    pub initrd: String,
    /// e.g. "console=ttyS0,115200"; `portapxe.server=` is added.
    pub cmdline: String,
}

impl Default for AgentFiles {
    /// Where every installer puts the agent, in its boot folder.
    fn default() -> Self {
        Self { kernel: "agent/vmlinuz".into(), initrd: "agent/initrd.img".into(), cmdline: String::new() }
    }
}

/// Why seats could not be imaged from this configuration: they would stop at iPXE's or
/// GRUB's "not found" with nothing on the technician's screen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentNotServed {
    #[error("HTTP is off: the imaging agent talks to PortaPXE over HTTP; turn HTTP on")]
    HttpOff,
    #[error(
        "the imaging agent's {part} {file:?} is not in {folders}: the installers put the agent in their boot \
         folder's agent/; from a source tree, build it with installers/agent/build.sh into the boot root's agent/ \
         folder (or name other files)"
    )]
    Missing {
        /// "kernel" or "initramfs".
        part: &'static str,
        file: String,
        /// Where it was looked for, in words.
        folders: String,
    },
}

/// Whether both of the agent's files are served (in the root, or the loader folder behind it).
pub fn check_agent_served(config: &Config, agent: &AgentFiles) -> Result<(), AgentNotServed> {
    if !config.http.enabled {
        return Err(AgentNotServed::HttpOff);
    }
    for (part, file) in [("kernel", &agent.kernel), ("initramfs", &agent.initrd)] {
        let relative = file.trim_start_matches('/');
        if !config.serves_file(relative) {
            let folders = match (config.root.as_os_str().is_empty(), config.fallback_loader_dir()) {
                (true, _) => format!("the loader folder {}", config.serving_root().display()),
                (false, Some(loaders)) => format!("{} nor in {}", config.root.display(), loaders.display()),
                (false, None) => config.root.display().to_string(),
            };
            return Err(AgentNotServed::Missing { part, file: relative.into(), folders });
        }
    }
    Ok(())
}

/// Tells the hub how seats start the agent from a server at `address` serving `config`.
/// Enough on its own while PortaPXE's generated menu is served: the menu asks per MAC
/// what to boot first (`next_boot`), and the hub answers the agent while a seat has a task.
pub fn set_agent_boot(config: &Config, hub: &ImagingHub, address: Ipv4Addr, agent: &AgentFiles) {
    let server = format!("{address}:{}", config.http.port);
    let base = if config.http.port == 80 { format!("http://{address}") } else { format!("http://{server}") };
    hub.set_agent(AgentBoot {
        base_url: base,
        kernel: agent.kernel.clone(),
        initrd: agent.initrd.clone(),
        server,
        cmdline: agent.cmdline.clone(),
    });
}

/// Makes the seats in `pins` (or every machine, when empty) network-boot into imaging:
/// an iPXE entry that asks the hub, per MAC, for the agent or the local disk. Tells the
/// hub how seats start the agent from a server at `address`.
pub fn add_imaging_entry(
    config: &mut Config,
    hub: &ImagingHub,
    address: Ipv4Addr,
    agent: &AgentFiles,
    pins: &[MacAddr],
) {
    set_agent_boot(config, hub, address, agent);
    // The generated script is what can pin a seat to an entry.
    config.boot.ipxe_script = None;
    let entry = BootEntry::Imaging { name: IMAGING_ENTRY.into() };
    if pins.is_empty() {
        config.boot.entries.insert(0, entry);
        return;
    }
    config.boot.entries.push(entry);
    let rules = pins.iter().map(|mac| ClientRule {
        mac: Some(MacPattern::from(*mac)),
        entry: Some(IMAGING_ENTRY.into()),
        ..ClientRule::default()
    });
    let existing = std::mem::take(&mut config.rules.clients);
    config.rules.clients = rules.chain(existing).collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventSink;

    #[test]
    fn the_agent_must_be_served_from_the_root_or_the_loader_folder() {
        let root = tempfile::tempdir().unwrap();
        let loaders = tempfile::tempdir().unwrap();
        let config = Config { root: root.path().into(), loader_dir: Some(loaders.path().into()), ..Config::default() };
        let agent = AgentFiles::default();
        let missing = check_agent_served(&config, &agent).unwrap_err();
        assert!(matches!(&missing, AgentNotServed::Missing { part: "kernel", file, .. } if file == "agent/vmlinuz"));
        assert!(missing.to_string().contains("installers/agent/build.sh"), "{missing}");

        std::fs::create_dir(loaders.path().join("agent")).unwrap();
        std::fs::write(loaders.path().join("agent/vmlinuz"), b"kernel").unwrap();
        let missing = check_agent_served(&config, &agent).unwrap_err();
        assert!(matches!(missing, AgentNotServed::Missing { part: "initramfs", .. }), "{missing}");
        std::fs::create_dir(root.path().join("agent")).unwrap();
        std::fs::write(root.path().join("agent/initrd.img"), b"initrd").unwrap();
        assert_eq!(check_agent_served(&config, &agent), Ok(()), "one file from each folder");
        let mut off = config;
        off.http.enabled = false;
        assert_eq!(check_agent_served(&off, &agent), Err(AgentNotServed::HttpOff));
    }

    #[test]
    fn pinned_seats_get_a_rule_and_any_seat_gets_the_first_entry() {
        let hub = ImagingHub::new(std::env::temp_dir(), EventSink::new());
        let address = Ipv4Addr::new(10, 0, 0, 1);
        let mac: MacAddr = "52:54:00:00:00:01".parse().unwrap();
        let mut config = Config::default();
        config.boot.entries.push(BootEntry::Chain { name: "other".into(), url: "http://x/y".into() });
        config.boot.ipxe_script = Some("mine.ipxe".into());
        let mut pinned = config.clone();
        add_imaging_entry(&mut pinned, &hub, address, &AgentFiles::default(), &[mac]);
        assert_eq!(pinned.boot.ipxe_script, None, "the generated script pins seats");
        assert_eq!(pinned.boot.entries[0].name(), "other", "others keep their default");
        assert_eq!(pinned.boot.entries[1].name(), IMAGING_ENTRY);
        assert_eq!(pinned.rules.clients[0].entry.as_deref(), Some(IMAGING_ENTRY));
        assert_eq!(pinned.rules.clients[0].mac.as_ref().map(ToString::to_string), Some(mac.to_string()));

        let mut any = config;
        add_imaging_entry(&mut any, &hub, address, &AgentFiles::default(), &[]);
        assert_eq!(any.boot.entries[0].name(), IMAGING_ENTRY, "every machine's default");
        assert!(any.rules.clients.is_empty());
    }
}
