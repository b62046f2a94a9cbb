//! "Boot this entry once": `portapxe serve --once MAC=ENTRY` sends that machine to one
//! entry of the menu the next time it network-boots, and to the menu's default after
//! that. The menu asks per MAC when the machine boots (`portapxe/next/<MAC>.ipxe` from
//! iPXE, `.cfg` from the signed chain's GRUB), so nothing is restarted in between.
//!
//! Two entries boot the lab kernel with different marker initrds; the default is the
//! first. The same guest (same MAC) boots twice: the planned entry's marker, then the
//! default's.

use std::time::Duration;

use portapxe_lab::process::wait_until;
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, boot_setup, guest, signed_boot_setup};

/// The planned entry's initrd, beside the default's `initrd.img`.
const ONCE_INITRD: &str = "initrd-once.img";

/// A config with the default entry ("Default", the guest's marker) and "Once" (its
/// own marker), a short menu; returns the "Once" marker.
fn two_entries(lab: &Lab, root: &std::path::Path) -> (std::path::PathBuf, String) {
    let marker = format!("PORTAPXE-LAB-ONCE-{}", std::process::id());
    std::fs::write(root.join(ONCE_INITRD), guest::initramfs(&marker).unwrap()).unwrap();
    let entry = |name: &str, initrd: &str| {
        format!(
            "[[boot.entries]]\ntype = \"linux\"\nname = \"{name}\"\nkernel = \"{}\"\ninitrd = [\"{initrd}\"]\ncmdline = \"{}\"\n\n",
            guest::KERNEL_NAME,
            guest::CMDLINE
        )
    };
    let text = format!(
        "[boot]\nmenu_timeout_secs = 2\n\n{}{}",
        entry("Default", guest::INITRD_NAME),
        entry("Once", ONCE_INITRD)
    );
    let path = lab.dir().join("portapxe.toml");
    std::fs::write(&path, text).unwrap();
    (path, marker)
}

/// The `next_boot` lines of the server's events file.
fn next_boot_lines(server: &Server) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(&server.events_path).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["kind"] == "next_boot")
        .collect()
}

fn boots_once_then_the_default(name: &str, mac: &str, firmware: Firmware, signed: bool) {
    let mut lab = Lab::new(name).unwrap();
    let (mut spec, default) = if signed { signed_boot_setup(&lab) } else { boot_setup(&lab) };
    // The entries come from the config file, not --kernel.
    spec.extra.clear();
    let (config, once_marker) = two_entries(&lab, &spec.root);
    spec.extra.extend(["--config".into(), config.display().to_string(), "--once".into(), format!("{mac}=Once")]);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let first = qemu::boot(&lab, &tap, firmware, mac, &once_marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME {name}_planned_entry: {:.1} s", first.elapsed.as_secs_f64());
    let told = wait_until(Duration::from_secs(5), || Some(next_boot_lines(&server)).filter(|lines| !lines.is_empty()));
    let lines = told.unwrap_or_else(|| panic!("no next_boot event for {mac}:\n{}", server.report()));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["mac"], mac);
    assert_eq!(lines[0]["boot"], "entry");
    assert_eq!(lines[0]["entry"], "Once");
    assert_eq!(lines[0]["given"], true);

    let second = qemu::boot(&lab, &tap, firmware, mac, &default.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME {name}_menu_default_after: {:.1} s", second.elapsed.as_secs_f64());
    assert!(!second.serial.contains(&once_marker), "the planned entry was given twice:\n{}", second.serial);
    assert_eq!(next_boot_lines(&server).len(), 1, "used up by the first boot");
}

#[test]
fn a_bios_machine_boots_the_planned_entry_once_then_its_menu() {
    boots_once_then_the_default("once-bios", "52:54:00:0e:00:01", Firmware::BiosIpxeRom, false);
}

#[test]
fn a_secure_boot_machine_boots_the_planned_entry_once_through_grub_then_its_menu() {
    boots_once_then_the_default("once-sb", "52:54:00:0e:00:02", Firmware::UefiSecureBoot, true);
}
