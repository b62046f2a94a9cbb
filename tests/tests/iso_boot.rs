//! ISO images boot from where they lie: PortaPXE reads the image, recognises its
//! family and boots its kernel and initrd from inside it over HTTP, with the family's
//! arguments; nothing is extracted or written beside the image or into the boot root.
//!
//! Images: `target/lab/debian-mini.iso`, built by `tests/lab/prepare-iso.sh target/lab`
//! from Debian's netboot installer, `target/lab/debian-live.iso` (Debian's kernel, an
//! initrd with live-boot, a busybox squashfs), built by `tests/lab/prepare-live-iso.sh
//! target/lab` (both run by `.ci/install-deps.sh`), and Debian's own `memtest86+x64.iso`
//! (package memtest86+).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use portapxe_lab::binary::workspace_root;
use portapxe_lab::events::EventsExt;
use portapxe_lab::expect::{self, has_finished};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, ServerSpec, guest, pool};

const MINI_ISO: &str = "target/lab/debian-mini.iso";
const LIVE_ISO: &str = "target/lab/debian-live.iso";
const MEMTEST_ISO: &str = "/usr/lib/memtest86+/memtest86+x64.iso";

fn image(path: &str) -> PathBuf {
    let path = workspace_root().join(path);
    assert!(
        path.is_file(),
        "{} is missing: run tests/lab/prepare-iso.sh target/lab (and apt-get install memtest86+)",
        path.display()
    );
    path
}

/// Every file under `folder` with its size and modification time.
fn listing(folder: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut found = BTreeMap::new();
    let mut todo = vec![folder.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let metadata = entry.metadata().unwrap();
            if metadata.is_dir() {
                todo.push(entry.path());
            } else {
                found.insert(entry.path(), (metadata.len(), metadata.modified().unwrap()));
            }
        }
    }
    found
}

/// The size of `inside` in the ISO `iso`, as xorriso reads it.
fn size_inside(iso: &Path, inside: &str) -> u64 {
    let output = std::process::Command::new("xorriso")
        .args(["-indev", &iso.display().to_string(), "-find", inside, "-exec", "lsdl"])
        .output()
        .expect("xorriso (apt-get install xorriso)");
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().find(|line| line.contains(inside)).unwrap_or_else(|| panic!("{inside} not in {text}"));
    line.split_whitespace().nth(4).and_then(|size| size.parse().ok()).unwrap_or_else(|| panic!("no size in {line}"))
}

/// A server whose only boot entry is `iso`, with the serial console on the kernel line,
/// and the iPXE loaders and the signed chain (the defaults of an installed PortaPXE).
fn iso_server(lab: &Lab, iso: &Path) -> (ServerSpec, Server) {
    let mut spec = ServerSpec::new(lab).expect("server root");
    guest::install_ipxe_binaries(&spec.root).expect("iPXE loaders");
    guest::install_signed_loaders(&spec.root).expect("signed loaders");
    spec = spec.arg("--iso", iso.display().to_string()).arg("--append", "console=ttyS0,115200");
    let server = Server::start(lab, &spec).unwrap();
    (spec, server)
}

#[test]
fn a_debian_mini_iso_boots_the_installer_from_inside_the_image() {
    const MAC: &str = "52:54:00:15:00:01";
    let iso = image(MINI_ISO);
    let mut lab = Lab::new("iso-mini").unwrap();
    let (spec, server) = iso_server(&lab, &iso);
    let root_before = listing(&spec.root);
    let images_before = listing(iso.parent().unwrap());
    let tap = lab.add_tap().unwrap();

    // The installer's first screen, drawn on the serial console (`console=ttyS0` came from --append).
    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, "Select a language", Duration::from_secs(240));
    eprintln!("BOOT TIME iso_debian_mini_bios: {:.1} s", boot.elapsed.as_secs_f64());

    let kernel = "iso/debian-mini.iso/linux";
    let initrd = "iso/debian-mini.iso/initrd.gz";
    let events = server.wait_for_events("HTTP transfers from inside the ISO", Duration::from_secs(10), |e| {
        has_finished(e, kernel) && has_finished(e, initrd)
    });
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    expect::finished_once(&events, "http", kernel, address, size_inside(&iso, "/linux"));
    expect::finished_once(&events, "http", initrd, address, size_inside(&iso, "/initrd.gz"));
    assert!(!has_finished(&events, "iso/debian-mini.iso"), "the image was not booted whole (sanboot)");
    assert_eq!(listing(&spec.root), root_before, "nothing was written into the boot root");
    assert_eq!(listing(iso.parent().unwrap()), images_before, "nothing was written beside the image");
}

/// UEFI machines get the signed chain by default: shim → GRUB, whose generated menu
/// boots the installer's kernel and initrd over TFTP from inside the image. With Secure
/// Boot on, the firmware runs shim only because it is signed, shim runs GRUB, and GRUB
/// (through shim) the kernel only because Debian signed it.
#[test]
fn a_debian_mini_iso_boots_under_uefi_with_and_without_secure_boot() {
    let iso = image(MINI_ISO);
    let mut lab = Lab::new("iso-mini-uefi").unwrap();
    let (spec, server) = iso_server(&lab, &iso);
    let root_before = listing(&spec.root);
    let files = [
        ("iso/debian-mini.iso/linux", size_inside(&iso, "/linux")),
        ("iso/debian-mini.iso/initrd.gz", size_inside(&iso, "/initrd.gz")),
    ];
    for (firmware, mac, label) in [
        (Firmware::UefiNativePxe, "52:54:00:15:00:03", "uefi"),
        (Firmware::UefiSecureBoot, "52:54:00:15:00:04", "uefi_secure_boot"),
    ] {
        let tap = lab.add_tap().unwrap();
        let boot = qemu::boot(&lab, &tap, firmware, mac, "Select a language", Duration::from_secs(300));
        eprintln!("BOOT TIME iso_debian_mini_{label}: {:.1} s", boot.elapsed.as_secs_f64());
        let events = server.wait_for_events("TFTP transfers from inside the ISO", Duration::from_secs(10), |e| {
            files.iter().all(|(file, _)| has_finished(e, file))
        });
        expect::booted_signed_chain_with(&events, mac, &files);
    }
    assert_eq!(listing(&spec.root), root_before, "nothing was written into the boot root");
}

/// What `sanboot` loses: once the live kernel starts, the emulated drive is gone. Booted
/// from inside the image instead, live-boot gets the `fetch=` PortaPXE adds, takes an
/// address from PortaPXE's DHCP, downloads `live/filesystem.squashfs` from inside the
/// image over our HTTP, and runs the squashfs's own init, which prints the marker.
#[test]
fn a_live_boot_iso_fetches_its_root_from_inside_the_image() {
    const MAC: &str = "52:54:00:15:00:05";
    const MARKER: &str = "PORTAPXE-LIVE-ROOT-OK";
    let iso = image(LIVE_ISO);
    let mut lab = Lab::new("iso-live").unwrap();
    let (_spec, server) = iso_server(&lab, &iso);
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, MARKER, Duration::from_secs(240));
    eprintln!("BOOT TIME iso_live_boot_bios: {:.1} s", boot.elapsed.as_secs_f64());
    let squashfs = "iso/debian-live.iso/live/filesystem.squashfs";
    assert!(
        boot.serial.contains(&format!("fetch=http://{}/{squashfs}", server.ip)),
        "the kernel line carries the fetch= PortaPXE made; serial:\n{}",
        boot.serial
    );
    let events =
        server.wait_for_events("the squashfs over HTTP", Duration::from_secs(10), |e| has_finished(e, squashfs));
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    expect::finished_once(
        &events,
        "http",
        "iso/debian-live.iso/live/vmlinuz",
        address,
        size_inside(&iso, "/live/vmlinuz"),
    );
    // live-boot's own DHCP may get another address from the pool: any client will do.
    let fetched: Vec<u64> = events
        .transfers()
        .iter()
        .filter(|t| t.protocol == "http" && t.name() == squashfs)
        .filter_map(|t| t.finished_bytes())
        .collect();
    assert_eq!(fetched, [size_inside(&iso, "/live/filesystem.squashfs")], "{}", expect::transfer_story(&events));
}

#[test]
fn memtest86_iso_gives_a_bios_machine_its_program_not_the_floppy() {
    const MAC: &str = "52:54:00:15:00:02";
    let iso = image(MEMTEST_ISO);
    let mut lab = Lab::new("iso-memtest").unwrap();
    let (_spec, server) = iso_server(&lab, &iso);
    let tap = lab.add_tap().unwrap();

    // Debian's image boots a floppy image (El Torito floppy emulation), which iPXE's
    // sanboot cannot start; the program inside it is a Linux boot-protocol image.
    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, "Memtest86+ v", Duration::from_secs(150));
    eprintln!("BOOT TIME iso_memtest_bios: {:.1} s", boot.elapsed.as_secs_f64());

    let program = "iso/memtest86+x64.iso/boot/floppy.img.bin";
    let events =
        server.wait_for_events("the memtest program over HTTP", Duration::from_secs(10), |e| has_finished(e, program));
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    let bytes = expect::finished_nonempty(&events, "http", program, address);
    let installed = std::fs::metadata("/boot/memtest86+x64.bin").map(|m| m.len()).unwrap_or(0);
    assert!(
        bytes >= installed && bytes < installed + 16,
        "the program, not the 1.44 MB floppy: {bytes} bytes (memtest86+x64.bin is {installed})"
    );
    assert!(!has_finished(&events, "iso/memtest86+x64.iso"), "the image was not sanbooted");
}

/// A 1.44 MB floppy whose boot sector writes `marker` to the first serial port (COM1,
/// 0x3F8) and halts: 16-bit code written out byte by byte (nothing binary is committed),
/// the stand-in for a BIOS update or DOS tool floppy.
fn marker_floppy(marker: &str) -> Vec<u8> {
    let mut floppy = vec![0u8; 1_474_560];
    let code: [u8; 22] = [
        0xFA, // cli
        0x31, 0xC0, // xor ax, ax
        0x8E, 0xD8, // mov ds, ax
        0xBE, 0x16, 0x7C, // mov si, 0x7C16 (the message, right after this code)
        0xBA, 0xF8, 0x03, // mov dx, 0x3F8
        0xAC, // next: lodsb
        0x84, 0xC0, // test al, al
        0x74, 0x03, // jz done
        0xEE, // out dx, al
        0xEB, 0xF8, // jmp next
        0xF4, // done: hlt
        0xEB, 0xFD, // jmp done
    ];
    floppy[..code.len()].copy_from_slice(&code);
    let message = format!("\r\n{marker}\r\n\0");
    floppy[code.len()..code.len() + message.len()].copy_from_slice(message.as_bytes());
    floppy[510] = 0x55;
    floppy[511] = 0xAA;
    floppy
}

/// An ISO that boots a floppy image (El Torito floppy emulation, the image hidden from the
/// file tree as BIOS update ISOs have it): PortaPXE finds the floppy through the boot
/// catalogue and boots it on a BIOS machine through syslinux's memdisk, from inside the
/// image; `sanboot` could not.
#[test]
fn a_floppy_emulation_iso_boots_its_floppy_through_memdisk() {
    const MAC: &str = "52:54:00:15:00:03";
    let mut lab = Lab::new("iso-floppy").unwrap();
    let marker = format!("PORTAPXE-LAB-FLOPPY-{}", std::process::id());
    let tree = lab.dir().join("floppy-tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("floppy.img"), marker_floppy(&marker)).unwrap();
    std::fs::write(tree.join("README.TXT"), "a BIOS update stand-in\n").unwrap();
    let iso = lab.dir().join("bios-update.iso");
    let made = std::process::Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-b", "floppy.img", "-c", "boot.cat"])
        .args(["-hide", "floppy.img", "-hide", "boot.cat", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .expect("xorriso (apt-get install xorriso)");
    assert!(made.success(), "xorriso failed");

    let mut spec = ServerSpec::new(&lab).expect("server root");
    guest::install_ipxe_binaries(&spec.root).expect("iPXE loaders");
    std::fs::copy("/usr/lib/syslinux/memdisk", spec.root.join("memdisk"))
        .expect("memdisk (apt-get install syslinux-common)");
    spec = spec.arg("--iso", iso.display().to_string());
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, &marker, Duration::from_secs(150));
    eprintln!("BOOT TIME iso_floppy_memdisk_bios: {:.1} s", boot.elapsed.as_secs_f64());
    let floppy = "iso/bios-update.iso/eltorito/floppy.img";
    let events = server.wait_for_events("the floppy over HTTP", Duration::from_secs(10), |e| has_finished(e, floppy));
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    assert_eq!(expect::finished_nonempty(&events, "http", floppy, address), 1_474_560, "the whole floppy");
    expect::finished_nonempty(&events, "http", "memdisk", address);
    assert!(!has_finished(&events, "iso/bios-update.iso"), "the image was not sanbooted");
}

/// An ISO that carries its own signed chain (shim at `EFI/BOOT/BOOTX64.EFI`, its GRUB
/// beside it) boots through it with Secure Boot on: PortaPXE's menu (under Debian's shim)
/// plans the entry for this machine's next boot and restarts it; the DHCP answer to the
/// restarted machine hands it the image's shim, served from inside the image over TFTP;
/// shim fetches its GRUB from beside it, inside the image; that GRUB reads PortaPXE's
/// configuration, which sends it to the entry alone, and the image's shim checks the
/// image's kernel.
///
/// A stand-in, said plainly: the only signed shims and GRUBs here are Debian's, so the
/// image carries Debian's shim, network GRUB and kernel, and the entry asks for its own
/// chain (`loader = "own"`); by default PortaPXE's chain boots a Debian kernel directly.
/// What a vendor's image (Ubuntu's: Canonical's shim for Canonical's kernel) adds is only
/// whose certificate its shim holds, which `iso_entries`' unit test covers; whether a
/// vendor's CD GRUB reads its configuration from the network as Debian's network GRUB
/// does cannot be tried without that image.
#[test]
fn an_iso_with_its_own_signed_chain_boots_through_it_after_one_restart_with_secure_boot_on() {
    use portapxe_lab::events::Event;
    use portapxe_lab::qemu::{Extras, RunningGuest};

    const MAC: &str = "52:54:00:15:00:09";
    let mut lab = Lab::new("iso-own-chain").unwrap();
    let marker = format!("PORTAPXE-ISO-OWN-CHAIN-{}", std::process::id());
    let tree = lab.dir().join("tree");
    let loaders = workspace_root().join("target/signed-loaders");
    for (inside, from) in [
        ("linux", workspace_root().join("target/lab/vmlinuz")),
        ("EFI/BOOT/BOOTX64.EFI", loaders.join(guest::SHIM_FILE)),
        ("EFI/BOOT/grubx64.efi", loaders.join(guest::GRUB_FILE)),
    ] {
        let to = tree.join(inside);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e} (run .ci/install-deps.sh)", from.display()));
    }
    std::fs::write(tree.join("initrd.gz"), guest::initramfs(&marker).unwrap()).unwrap();
    let iso = lab.dir().join("own-chain.iso");
    let status = std::process::Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .expect("xorriso (apt-get install xorriso)");
    assert!(status.success());

    let mut spec = ServerSpec::new(&lab).expect("server root");
    guest::install_ipxe_binaries(&spec.root).expect("iPXE loaders");
    guest::install_signed_loaders(&spec.root).expect("signed loaders");
    let config = lab.dir().join("portapxe.toml");
    let entry = format!(
        "[[boot.entries]]\ntype = \"iso\"\nname = \"Vendor ISO\"\nimage = \"{}\"\nappend = \"{}\"\nloader = \"own\"\n",
        iso.display(),
        guest::CMDLINE
    );
    std::fs::write(&config, entry).unwrap();
    spec.extra.extend(["--config".into(), config.display().to_string()]);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let extras = Extras { reboots: true, ..Extras::default() };
    let guest = RunningGuest::start_with(&lab, &tap, Firmware::UefiSecureBoot, MAC, extras).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !guest.serial().contains(&marker) {
        assert!(std::time::Instant::now() < deadline, "no marker\n{}\n{}", guest.report(), server.report());
        std::thread::sleep(Duration::from_millis(500));
    }
    let elapsed = guest.started.elapsed();
    eprintln!("BOOT TIME iso_own_chain_secure_boot (both boots): {:.1} s", elapsed.as_secs_f64());
    let serial = guest.kill();
    assert!(serial.contains("Secure boot enabled"), "the kernel did not report Secure Boot on:\n{serial}");
    assert!(
        serial.contains("restarting into the signed loader of Vendor ISO"),
        "PortaPXE said why it restarts:\n{serial}"
    );

    let shim = "iso/own-chain.iso/EFI/BOOT/BOOTX64.EFI";
    let events = server.wait_for_events("the image's kernel over TFTP", Duration::from_secs(10), |e| {
        has_finished(e, "iso/own-chain.iso/linux")
    });
    let boot_files: Vec<Option<&str>> =
        expect::acks(&events, MAC).iter().filter(|ack| !ack.is_ipxe).map(|ack| ack.boot.as_deref()).collect();
    assert_eq!(
        boot_files.first(),
        Some(&Some(guest::SHIM_FILE)),
        "first PortaPXE's chain: {}",
        expect::dhcp_story(&events, MAC)
    );
    assert_eq!(boot_files.last(), Some(&Some(shim)), "then the image's shim: {}", expect::dhcp_story(&events, MAC));
    let address = expect::acks(&events, MAC).last().and_then(|ack| ack.address).expect("an address");
    for file in [shim, "iso/own-chain.iso/EFI/BOOT/grubx64.efi", "grub/grub.cfg", "grub/entries/0.cfg"] {
        let fetched = events.iter().any(|event| {
            matches!(event, Event::Transfer(t) if t.name().eq_ignore_ascii_case(file) && t.finished_bytes().is_some())
        });
        assert!(fetched, "{file} was not fetched whole:\n{}", server.report());
    }
    expect::finished_once(&events, "tftp", "iso/own-chain.iso/linux", address, size_inside(&iso, "/linux"));
    let text = std::fs::read_to_string(&server.events_path).unwrap_or_default();
    let given: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["kind"] == "next_boot")
        .collect();
    assert_eq!(given.len(), 1, "planned by the restart, given to the image's GRUB once: {given:?}");
    assert_eq!((given[0]["entry"].as_str(), given[0]["given"].as_bool()), (Some("Vendor ISO"), Some(true)));
}
