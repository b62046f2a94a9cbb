//! GRUB configuration for the signed chain (shim → GRUB → Linux), generated from the
//! boot entries like the iPXE script, for machines with Secure Boot on.
//!
//! Owns: turning [`BootEntry`]s and the client rules that pin an entry into GRUB
//! script text, and the paths signed network GRUBs read it from. Pure: no files.
//!
//! Debian's signed network GRUB (`grubnetx64.efi.signed`, served as `grubx64.efi`)
//! has no `http` module (seen in the lab): kernels and initrds come over TFTP, named
//! by their path on the TFTP server (GRUB's root is the server it booted from).

use std::fmt::Write;

use crate::config::BootEntry;
use crate::iso::{IsoBoot, IsoPlans};
use crate::names::NEXT_BOOT_DIR;
use crate::rules::ClientRule;

/// Where signed network GRUBs look for their configuration, relative to the TFTP root.
/// - `grub/grub.cfg`: Debian's and Ubuntu's `grubnetx64` (prefix `/grub`; its built-in
///   config sources `$prefix/x86_64-efi/grub.cfg` if it exists, else `$prefix/grub.cfg`:
///   read from the binary's embedded memdisk, and seen in the lab).
/// - `debian-installer/amd64/grub/grub.cfg`: the debian-installer netboot image's
///   GRUB (`debian-installer-12-netboot-amd64`, prefix `/debian-installer/amd64/grub`).
/// - `grub.cfg`: Fedora's and RHEL's `grubx64.efi` read `grub.cfg` beside the loader
///   (Fedora's "Preparing for a Network Installation", PXE with UEFI). Read, not run here.
pub const CONFIG_PATHS: [&str; 3] = ["grub/grub.cfg", "debian-installer/amd64/grub/grub.cfg", "grub.cfg"];

/// Where a seat sent to imaging reads its configuration over TFTP
/// (`<its MAC with dashes>.cfg`, made by the imaging hub when asked).
pub const IMAGING_DIR: &str = "imaging/grub";

/// Where the configuration for client rule `index` (one that pins an entry) is served.
pub fn rule_config_path(index: usize) -> String {
    format!("grub/rules/{index}.cfg")
}

/// The loader the signed chain starts with (firmware → shim) and the one shim then
/// fetches from the same folder.
pub const SHIM_X64: &str = "shimx64.efi";
pub const GRUB_X64: &str = "grubx64.efi";
/// The same for ARM64 (Debian's arm64 `shim-signed` and `grub-efi-arm64-signed`: shim
/// fetches `grubaa64.efi`, which reads the same configuration, seen in the lab).
pub const SHIM_ARM64: &str = "shimaa64.efi";
pub const GRUB_ARM64: &str = "grubaa64.efi";

/// The main configuration: per-client pins first (each sends its machine to its own
/// config), then the menu of every entry. `ipxe_loader` is what entries that need
/// iPXE (an ISO, a chain URL) chain-load: it runs when Secure Boot is off.
pub fn generate_config(
    entries: &[BootEntry],
    isos: &IsoPlans,
    rules: &[ClientRule],
    menu_timeout_secs: u32,
    ipxe_loader: IpxeLoaders<'_>,
) -> String {
    let mut config = header();
    // First ask what this machine boots this time (a one-off boot, imaging): the answer
    // boots, or is empty and the pins and the menu follow.
    let _ = writeln!(config, "if {MAC_PARTS}; then\n    source \"/{NEXT_BOOT_DIR}/{DASHED_MAC}.cfg\"\nfi\n");
    for (index, rule) in rules.iter().enumerate() {
        let Some((conditions, _, _)) = pin(rule, entries) else { continue };
        // Nested: GRUB's `if` takes one command as its condition.
        for condition in &conditions {
            let _ = writeln!(config, "if {condition}; then");
        }
        let _ = writeln!(config, "    configfile {}", quote(&format!("/{}", rule_config_path(index))));
        config.push_str(&"fi\n".repeat(conditions.len()));
    }
    let items: Vec<(usize, &BootEntry)> = entries.iter().enumerate().collect();
    config.push_str(&menu(&items, isos, menu_timeout_secs, ipxe_loader, OwnLoaderStep::Restart));
    config
}

/// The configuration for a machine pinned by a client rule to `entry` (entry number
/// `index`): that entry, no menu.
pub fn generate_pinned_config(
    index: usize,
    entry: &BootEntry,
    isos: &IsoPlans,
    ipxe_loader: IpxeLoaders<'_>,
) -> String {
    header() + &menu(&[(index, entry)], isos, 0, ipxe_loader, OwnLoaderStep::Restart)
}

/// What an entry that boots through its image's own signed chain does in a menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnLoaderStep {
    /// Plan the entry as this machine's next boot and restart it (the DHCP answer then
    /// hands it the image's shim): a menu read under PortaPXE's chain.
    Restart,
    /// Boot its kernel: what a machine that was sent to the entry alone reads, which is
    /// how the image's own GRUB reaches it after the restart.
    Boot,
}

/// Where the configuration that boots entry `index` alone is served: what a machine
/// told to boot that entry once is sent to.
pub fn entry_config_path(index: usize) -> String {
    format!("grub/entries/{index}.cfg")
}

/// Each entry alone, at its [`entry_config_path`].
pub fn generate_entry_configs(
    entries: &[BootEntry],
    isos: &IsoPlans,
    ipxe_loader: IpxeLoaders<'_>,
) -> Vec<(String, String)> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let alone = header() + &menu(&[(index, entry)], isos, 0, ipxe_loader, OwnLoaderStep::Boot);
            (entry_config_path(index), alone)
        })
        .collect()
}

/// The answer at `NEXT_BOOT_DIR` that sends a machine to entry `index` alone.
pub fn once_config(index: usize) -> String {
    format!("configfile {}\n", quote(&format!("/{}", entry_config_path(index))))
}

/// The configuration of each rule the main configuration sends machines to, at its
/// [`rule_config_path`]: the same rules [`generate_config`] pins, no other.
pub fn generate_pinned_configs(
    entries: &[BootEntry],
    isos: &IsoPlans,
    rules: &[ClientRule],
    ipxe_loader: IpxeLoaders<'_>,
) -> Vec<(String, String)> {
    rules
        .iter()
        .enumerate()
        .filter_map(|(index, rule)| {
            let (_, entry_index, entry) = pin(rule, entries)?;
            Some((rule_config_path(index), generate_pinned_config(entry_index, entry, isos, ipxe_loader)))
        })
        .collect()
}

fn header() -> String {
    String::from("# Generated by PortaPXE: edit the boot entries in PortaPXE, not this file.\n\n")
}

/// The iPXE loaders GRUB hands entries that need iPXE to (an ISO `sanboot`, a chain URL),
/// per CPU: GRUB runs on x64 and ARM64 machines alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpxeLoaders<'a> {
    pub x64: &'a str,
    pub arm64: Option<&'a str>,
}

impl<'a> From<&'a str> for IpxeLoaders<'a> {
    /// An x64 loader only.
    fn from(x64: &'a str) -> Self {
        Self { x64, arm64: None }
    }
}

/// Chain-loads the iPXE loader for this machine's CPU (`$grub_cpu`), then boots it.
fn chain_ipxe(out: &mut String, loaders: IpxeLoaders<'_>) {
    let x64 = quote(&tftp_path(loaders.x64));
    match loaders.arm64 {
        Some(arm64) => {
            let arm64 = quote(&tftp_path(arm64));
            let _ = writeln!(
                out,
                "    if [ \"$grub_cpu\" = arm64 ]; then\n        chainloader {arm64}\n    else\n        chainloader {x64}\n    fi\n    boot"
            );
        }
        None => {
            let _ = writeln!(out, "    chainloader {x64}\n    boot");
        }
    }
}

/// GRUB test for the machines `rule` pins to an entry, with the entry, or `None` when
/// the rule pins nothing GRUB can tell apart. GRUB's network boot sets
/// `net_default_mac`; every machine reaching GRUB is UEFI, so a rule on vendor class
/// or BIOS never applies.
fn pin<'a>(rule: &ClientRule, entries: &'a [BootEntry]) -> Option<(Vec<String>, usize, &'a BootEntry)> {
    let name = rule.entry.as_deref()?;
    let (index, entry) = entries.iter().enumerate().find(|(_, entry)| entry.name() == name)?;
    if rule.ignore || rule.vendor_class.is_some() {
        return None;
    }
    // GRUB runs on x64 and ARM64 machines: a rule for one of them tests GRUB's CPU.
    let cpu = match rule.arch {
        None => None,
        Some(crate::rules::ArchMatch::UefiX64) => Some("x86_64"),
        Some(crate::rules::ArchMatch::UefiArm64) => Some("arm64"),
        Some(_) => return None,
    };
    let mut conditions = Vec::new();
    if let Some(cpu) = cpu {
        conditions.push(format!("[ \"$grub_cpu\" = {cpu} ]"));
    }
    // A MAC pattern is hex pairs and colons only: nothing to escape in a regexp.
    if let Some(mac) = &rule.mac {
        conditions.push(format!("regexp {} \"$net_default_mac\"", quote(&format!("^{mac}"))));
    }
    if conditions.is_empty() {
        conditions.push("true".into());
    }
    Some((conditions, index, entry))
}

fn menu(
    entries: &[(usize, &BootEntry)],
    isos: &IsoPlans,
    menu_timeout_secs: u32,
    ipxe_loader: IpxeLoaders<'_>,
    own_loader: OwnLoaderStep,
) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str("echo 'PortaPXE: no boot entries are configured on this server.'\n");
        out.push_str("echo 'Add one in PortaPXE, then restart this machine. Continuing with the next boot device.'\n");
        out.push_str("sleep 10\nexit\n");
        return out;
    }
    let timeout = if entries.len() == 1 { 0 } else { menu_timeout_secs };
    let _ = writeln!(out, "set default=0\nset timeout={timeout}\n");
    for &(index, entry) in entries {
        let _ = writeln!(out, "menuentry {} {{", quote(entry.name()));
        let _ = writeln!(out, "    echo {}", quote(&format!("PortaPXE: booting {}", entry.name())));
        let planned = match entry {
            BootEntry::Iso { image, .. } => isos.get(image),
            _ => None,
        };
        if own_loader == OwnLoaderStep::Restart && planned.is_some_and(|planned| planned.own_loader.is_some()) {
            restart_into_own_loader(&mut out, index, entry.name());
        }
        let iso = planned.map(|plan| &plan.boot);
        match (entry, iso) {
            (BootEntry::Linux { kernel, initrd, cmdline, .. }, _) => linux(&mut out, kernel, initrd, cmdline),
            (_, Some(IsoBoot::Linux { kernel, initrds, args })) => linux(&mut out, kernel, initrds, args),
            (_, Some(IsoBoot::Programs { efi: Some(efi), .. })) => {
                // Memtest86+'s EFI program is not signed: it runs with Secure Boot off.
                let _ = writeln!(out, "    chainloader {}\n    boot", quote(&tftp_path(efi)));
                secure_boot_note(&mut out, entry.name(), "is not signed");
            }
            (_, Some(IsoBoot::Refused(why))) => {
                let _ = writeln!(
                    out,
                    "    echo {}\n    sleep 10",
                    quote(&format!("PortaPXE: {} is not booted: {why}", entry.name()))
                );
            }
            (_, Some(IsoBoot::Memdisk { .. })) => {
                let _ = writeln!(
                    out,
                    "    echo {}\n    sleep 10",
                    quote(&format!("PortaPXE: {} boots a floppy image, which only BIOS machines can", entry.name()))
                );
            }
            (BootEntry::Iso { .. } | BootEntry::Chain { .. }, _) => {
                // GRUB cannot sanboot an ISO or fetch a URL: hand over to iPXE, which
                // runs when Secure Boot is off and is refused when it is on.
                chain_ipxe(&mut out, ipxe_loader);
                secure_boot_note(&mut out, entry.name(), "needs iPXE, which this machine refused");
            }
            (BootEntry::LocalDisk { .. }, _) => out.push_str("    exit\n"),
            (BootEntry::Imaging { .. }, _) => imaging(&mut out),
        }
        out.push_str("}\n\n");
    }
    out
}

/// The imaging entry: the machine reads the configuration the imaging hub makes for
/// its MAC (the agent, or `exit` to its own disk). A TFTP name has no colons, so the
/// MAC is written with dashes, taken apart by `regexp`.
fn imaging(out: &mut String) {
    let _ = writeln!(out, "    {MAC_PARTS}");
    let _ = writeln!(out, "    configfile \"/{IMAGING_DIR}/{DASHED_MAC}.cfg\"");
}

/// Asks PortaPXE to plan entry `index` as this machine's next boot through its image's
/// own signed chain, which answers with a restart. Where that cannot be asked (an ARM64
/// machine, no MAC), or the answer is empty, the entry's kernel is tried under this chain.
fn restart_into_own_loader(out: &mut String, index: usize, name: &str) {
    // A machine that came by UEFI HTTP boot (`grub::http_boot` sets the variable) would not
    // be handed the image's shim, which goes over TFTP only: no restart for it.
    let _ = writeln!(
        out,
        "    if [ \"$grub_cpu\" = x86_64 -a -z \"$portapxe_http_boot\" ]; then\n    if {MAC_PARTS}; then"
    );
    let _ = writeln!(
        out,
        "        echo {}",
        quote(&format!("PortaPXE: {name} boots through its own signed loader: this machine restarts once into it"))
    );
    let _ = writeln!(out, "        source \"/{}\"", own_loader_request(index, DASHED_MAC));
    out.push_str("    fi\n    fi\n");
}

/// The name at which a machine asks for entry `index` through its image's own loader
/// (`<NEXT_BOOT_DIR>/own-loader/<index>/<MAC, dashed>.cfg`).
pub fn own_loader_request(index: usize, dashed_mac: &str) -> String {
    format!("{NEXT_BOOT_DIR}/{OWN_LOADER_FOLDER}/{index}/{dashed_mac}.cfg")
}

/// The folder below [`NEXT_BOOT_DIR`] of [`own_loader_request`].
pub const OWN_LOADER_FOLDER: &str = "own-loader";

/// Takes `$net_default_mac` apart into `$m1`…`$m6` (fails when it is not a MAC).
const MAC_PARTS: &str = "regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 \
     '^([0-9a-f][0-9a-f]):([0-9a-f][0-9a-f]):([0-9a-f][0-9a-f]):([0-9a-f][0-9a-f]):([0-9a-f][0-9a-f]):([0-9a-f][0-9a-f])$' \
     \"$net_default_mac\"";
/// The MAC put back together with dashes, after [`MAC_PARTS`].
const DASHED_MAC: &str = "$m1-$m2-$m3-$m4-$m5-$m6";

/// A whole configuration that boots `kernel` with `initrd` at once (the imaging agent).
pub fn agent_config(kernel: &str, initrd: &str, cmdline: &str) -> String {
    let mut out = header();
    let _ = writeln!(out, "echo {}", quote("PortaPXE: starting the imaging agent"));
    linux(&mut out, kernel, &[initrd.to_owned()], cmdline);
    out.push_str("boot\n");
    out
}

/// A whole configuration that says `why` and leaves network boot for the next boot device.
pub fn leave_config(why: &str) -> String {
    format!("{}echo {}\nexit\n", header(), quote(&format!("PortaPXE: {why}")))
}

/// A configuration that reads the main one (for a GRUB that looks elsewhere first).
pub fn redirect_config() -> String {
    format!("{}configfile {}\n", header(), quote(&format!("/{}", CONFIG_PATHS[0])))
}

/// A whole configuration that says `why` and restarts the machine.
pub fn restart_config(why: &str) -> String {
    format!("{}echo {}\nsleep 3\nreboot\n", header(), quote(&format!("PortaPXE: {why}")))
}

/// A kernel with its initrds, over TFTP.
fn linux(out: &mut String, kernel: &str, initrd: &[String], cmdline: &str) {
    let _ = write!(out, "    linux {}", quote(&tftp_path(kernel)));
    for word in cmdline.split_whitespace() {
        let _ = write!(out, " {}", quote(word));
    }
    out.push('\n');
    if !initrd.is_empty() {
        let paths: Vec<String> = initrd.iter().map(|path| quote(&tftp_path(path))).collect();
        let _ = writeln!(out, "    initrd {}", paths.join(" "));
    }
}

/// What a machine that refused to start `name` shows: Secure Boot is on.
fn secure_boot_note(out: &mut String, name: &str, why: &str) {
    let _ = writeln!(
        out,
        "    echo {}\n    sleep 15",
        quote(&format!(
            "PortaPXE: {name} {why}: Secure Boot is on. \
             Turn Secure Boot off in the firmware setup to boot it, or choose another entry."
        ))
    );
}

/// A root-relative path as GRUB names a file on the TFTP server it booted from.
fn tftp_path(path: &str) -> String {
    let segments: Vec<&str> = path.split(['/', '\\']).filter(|segment| !segment.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// One GRUB word in single quotes, where nothing is special; a single quote itself
/// is closed, escaped and reopened (`'\''`).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{ArchMatch, MacPattern};

    fn debian() -> BootEntry {
        BootEntry::Linux {
            name: "Debian".into(),
            kernel: "debian/vmlinuz".into(),
            initrd: vec!["debian/initrd.img".into()],
            cmdline: "console=ttyS0,115200 quiet".into(),
        }
    }

    #[test]
    fn one_entry_boots_at_once_over_tftp() {
        let config = generate_config(&[debian()], &IsoPlans::default(), &[], 10, "ipxe.efi".into());
        for expected in [
            "set default=0\nset timeout=0\n",
            "menuentry 'Debian' {\n",
            "    linux '/debian/vmlinuz' 'console=ttyS0,115200' 'quiet'\n",
            "    initrd '/debian/initrd.img'\n",
        ] {
            assert!(config.contains(expected), "missing {expected:?} in\n{config}");
        }
        assert!(!config.contains("http"), "signed GRUB has no http module:\n{config}");
        let hook = "    source \"/portapxe/next/$m1-$m2-$m3-$m4-$m5-$m6.cfg\"\n";
        assert!(config.find(hook).unwrap() < config.find("menuentry").unwrap(), "asked first:\n{config}");
        assert!(config.contains("if regexp --set=1:m1 "), "only with a MAC to ask by:\n{config}");
        let alone = generate_entry_configs(&[debian()], &IsoPlans::default(), "ipxe.efi".into());
        assert_eq!(alone[0].0, "grub/entries/0.cfg");
        assert!(alone[0].1.contains("set timeout=0\n") && !alone[0].1.contains("portapxe/next"), "{}", alone[0].1);
        assert_eq!(once_config(0), "configfile '/grub/entries/0.cfg'\n");
    }

    #[test]
    fn several_entries_make_a_menu_with_timeout() {
        let entries = vec![
            debian(),
            BootEntry::Iso {
                name: "Rescue ISO".into(),
                image: "iso/rescue.iso".into(),
                append: String::new(),
                loader: Default::default(),
            },
            BootEntry::Chain { name: "Lab menu".into(), url: "http://10.0.0.9/menu.ipxe".into() },
            BootEntry::LocalDisk { name: "Local disk".into() },
        ];
        let config = generate_config(&entries, &IsoPlans::default(), &[], 7, "ipxe.efi".into());
        assert!(config.contains("set default=0\nset timeout=7\n"), "{config}");
        assert_eq!(config.matches("menuentry ").count(), 4, "{config}");
        assert!(config.contains(
            "menuentry 'Rescue ISO' {\n    echo 'PortaPXE: booting Rescue ISO'\n    chainloader '/ipxe.efi'\n    boot\n"
        ));
        assert!(config.contains("Secure Boot is on"), "{config}");
        assert!(config.contains("menuentry 'Local disk' {\n    echo 'PortaPXE: booting Local disk'\n    exit\n}"));
    }

    #[test]
    fn names_and_paths_with_spaces_and_quotes_stay_one_word() {
        let entry = BootEntry::Linux {
            name: "Joe's \"lab\" $HOME; reboot".into(),
            kernel: "my kernels\\vmlinuz 6.1".into(),
            initrd: vec!["a b/initrd.img".into(), "fw.cpio".into()],
            cmdline: "root=/dev/sda1  rd.break".into(),
        };
        let config = generate_config(&[entry], &IsoPlans::default(), &[], 5, "ipxe.efi".into());
        assert!(config.contains("menuentry 'Joe'\\''s \"lab\" $HOME; reboot' {\n"), "{config}");
        assert!(config.contains("    linux '/my kernels/vmlinuz 6.1' 'root=/dev/sda1' 'rd.break'\n"), "{config}");
        assert!(config.contains("    initrd '/a b/initrd.img' '/fw.cpio'\n"), "{config}");
    }

    #[test]
    fn a_rule_for_one_cpu_tests_grubs_cpu_and_iso_entries_chain_the_cpus_ipxe() {
        let entries = vec![debian(), BootEntry::Chain { name: "Lab".into(), url: "http://x/y".into() }];
        let rules = vec![
            ClientRule {
                arch: Some(ArchMatch::UefiArm64),
                mac: Some("52:54:01".parse().unwrap()),
                entry: Some("Debian".into()),
                ..ClientRule::default()
            },
            ClientRule { arch: Some(ArchMatch::UefiX64), entry: Some("Lab".into()), ..ClientRule::default() },
        ];
        let loaders = IpxeLoaders { x64: "ipxe.efi", arm64: Some("ipxe-arm64.efi") };
        let config = generate_config(&entries, &IsoPlans::default(), &rules, 5, loaders);
        let arm64 = "if [ \"$grub_cpu\" = arm64 ]; then\nif regexp '^52:54:01' \"$net_default_mac\"; then\n    \
                     configfile '/grub/rules/0.cfg'\nfi\nfi\n";
        assert!(config.contains(arm64), "{config}");
        let x64 = "if [ \"$grub_cpu\" = x86_64 ]; then\n    configfile '/grub/rules/1.cfg'\nfi\n";
        assert!(config.contains(x64), "{config}");
        let chain = "    if [ \"$grub_cpu\" = arm64 ]; then\n        chainloader '/ipxe-arm64.efi'\n    else\n        \
                     chainloader '/ipxe.efi'\n    fi\n    boot\n";
        assert!(config.contains(chain), "an ARM64 machine gets the ARM64 iPXE:\n{config}");
    }

    #[test]
    fn a_pinned_client_gets_its_own_config() {
        let entries = vec![debian(), BootEntry::LocalDisk { name: "Local disk".into() }];
        let rules = vec![
            ClientRule {
                mac: Some("52:54:00".parse::<MacPattern>().unwrap()),
                boot_file: Some("x.efi".into()),
                ..ClientRule::default()
            },
            ClientRule {
                mac: Some("52:54:00:12:34:56".parse().unwrap()),
                entry: Some("Local disk".into()),
                ..ClientRule::default()
            },
            ClientRule { arch: Some(ArchMatch::Bios), entry: Some("Debian".into()), ..ClientRule::default() },
            ClientRule {
                mac: Some("52:54:01".parse().unwrap()),
                entry: Some("Debian".into()),
                ..ClientRule::default()
            },
        ];
        let config = generate_config(&entries, &IsoPlans::default(), &rules, 5, "ipxe.efi".into());
        assert!(
            config.contains(
                "if regexp '^52:54:00:12:34:56' \"$net_default_mac\"; then\n    configfile '/grub/rules/1.cfg'\nfi\n"
            ),
            "{config}"
        );
        assert!(
            config
                .contains("if regexp '^52:54:01' \"$net_default_mac\"; then\n    configfile '/grub/rules/3.cfg'\nfi\n")
        );
        assert!(
            !config.contains("rules/0.cfg") && !config.contains("rules/2.cfg"),
            "no pin, or not a UEFI machine:\n{config}"
        );
        let files: Vec<String> = generate_pinned_configs(&entries, &IsoPlans::default(), &rules, "ipxe.efi".into())
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(files, ["grub/rules/1.cfg", "grub/rules/3.cfg"], "a file only for what the main config pins");
        let pinned = generate_pinned_config(1, &entries[1], &IsoPlans::default(), "ipxe.efi".into());
        assert_eq!(pinned.matches("menuentry ").count(), 1);
        assert!(pinned.contains("set timeout=0") && pinned.contains("exit"), "{pinned}");
    }

    #[test]
    fn the_imaging_entry_reads_the_hubs_config_for_the_mac() {
        let config = generate_pinned_config(
            0,
            &BootEntry::Imaging { name: "PortaPXE imaging".into() },
            &IsoPlans::default(),
            "ipxe.efi".into(),
        );
        assert!(
            config.contains(
                "regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 '^([0-9a-f][0-9a-f]):"
            ),
            "{config}"
        );
        assert!(
            config.contains("\"$net_default_mac\"\n    configfile \"/imaging/grub/$m1-$m2-$m3-$m4-$m5-$m6.cfg\"\n"),
            "{config}"
        );
        let agent = agent_config("agent/vmlinuz", "agent/initrd.img", "portapxe.server=10.0.0.1:80 console=ttyS0");
        assert!(agent.contains("linux '/agent/vmlinuz' 'portapxe.server=10.0.0.1:80' 'console=ttyS0'\n"), "{agent}");
        assert!(agent.ends_with("initrd '/agent/initrd.img'\nboot\n"), "{agent}");
        assert!(leave_config("booting its disk").ends_with("echo 'PortaPXE: booting its disk'\nexit\n"));
    }

    #[test]
    fn no_entries_explains_and_exits() {
        let config = generate_config(&[], &IsoPlans::default(), &[], 5, "ipxe.efi".into());
        assert!(config.contains("no boot entries") && config.contains("exit\n"), "{config}");
    }

    #[test]
    fn an_iso_with_its_own_chain_restarts_into_it_from_the_menu_and_boots_when_sent_alone() {
        let (entry, isos) = crate::iso::fixtures::own_chain_iso();
        let entries = [debian(), entry];
        let config = generate_config(&entries, &isos, &[], 5, "ipxe.efi".into());
        let ubuntu = &config[config.find("menuentry 'Ubuntu'").unwrap()..];
        let restart = ubuntu.find("source \"/portapxe/next/own-loader/1/$m1-$m2-$m3-$m4-$m5-$m6.cfg\"").unwrap();
        let kernel = ubuntu.find("linux '/u.iso/casper/vmlinuz' 'boot=casper'").unwrap();
        assert!(restart < kernel, "asks for the restart first, the kernel only if that answers nothing:\n{ubuntu}");
        assert!(
            ubuntu.contains("if [ \"$grub_cpu\" = x86_64 -a -z \"$portapxe_http_boot\" ]; then"),
            "x64 PXE only: the image's shim is x64 and handed over TFTP"
        );
        let debian_item =
            &config[config.find("menuentry 'Debian'").unwrap()..config.find("menuentry 'Ubuntu'").unwrap()];
        assert!(!debian_item.contains("own-loader"), "{debian_item}");
        let alone = generate_entry_configs(&entries, &isos, "ipxe.efi".into());
        assert_eq!(alone[1].0, "grub/entries/1.cfg");
        assert!(!alone[1].1.contains("own-loader"), "sent alone (the image's GRUB after the restart): it boots");
        assert!(alone[1].1.contains("linux '/u.iso/casper/vmlinuz'"), "{}", alone[1].1);
        assert_eq!(own_loader_request(1, "52-54-00-00-00-01"), "portapxe/next/own-loader/1/52-54-00-00-00-01.cfg");
    }
}
