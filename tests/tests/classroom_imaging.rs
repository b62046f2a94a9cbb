//! Classroom imaging with real machines: a reference PC (BIOS, iPXE ROM, a disk with an
//! MBR, extlinux and an ext4 partition) is captured through the imaging agent it
//! network-boots; three blank PCs then restore that image at once over multicast, each
//! checks its partitions against the image, restarts, boots its own restored disk (the
//! next network boot goes to the local disk) and prints the reference's marker. A PC
//! with Secure Boot on is captured through the signed chain (shim → GRUB, which reads
//! its per-MAC configuration from the imaging hub → Debian's signed kernel).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portapxe_lab::imaging::{check_restored_disk, install_agent, reference_disk};
use portapxe_lab::process::Guarded;
use portapxe_lab::qemu::{Extras, Firmware, RunningGuest};
use portapxe_lab::{Lab, binary, guest};

const SOURCE_MAC: &str = "52:54:00:c0:00:01";
const DISK_MB: u64 = 128;

/// `portapxe image …` in the server namespace, its output in files.
fn portapxe(lab: &Lab, name: &str, args: &[&str]) -> (Guarded, std::path::PathBuf) {
    let log = lab.dir().join(format!("{name}.log"));
    let mut command: Command = lab.server_command(binary::portapxe().to_str().unwrap());
    command.args(args).stdin(Stdio::null());
    // One handle in append mode for both: a second handle at its own offset would
    // overwrite the other's lines, splitting characters (then the log is not UTF-8).
    let file = fs::File::options().create(true).append(true).open(&log).unwrap();
    command.stdout(file.try_clone().unwrap());
    command.stderr(file);
    (Guarded::spawn(name, &mut command).unwrap(), log)
}

fn wait_exit(process: &mut Guarded, log: &Path, timeout: Duration) -> String {
    let status = process.wait_timeout(timeout);
    let text = String::from_utf8_lossy(&fs::read(log).unwrap_or_default()).into_owned();
    assert!(status.is_some(), "{} did not end within {timeout:?}\n{text}", process.name());
    assert!(status.is_some_and(|s| s.success()), "{} failed: {status:?}\n{text}", process.name());
    text
}

fn serve_args<'a>(root: &'a str, images: &'a str, state: &'a str) -> Vec<&'a str> {
    vec![
        "--interface",
        "br0",
        "--root",
        root,
        "--images",
        images,
        "--state-dir",
        state,
        "--agent-cmdline",
        "console=ttyS0",
    ]
}

#[test]
fn capture_one_pc_then_restore_it_to_three_that_boot_their_own_disk() {
    let mut lab = Lab::new("classroom").unwrap();
    let root = lab.dir().join("root");
    fs::create_dir_all(&root).unwrap();
    guest::install_ipxe_binaries(&root).unwrap();
    install_agent(&root).unwrap();
    let (root_arg, images, state) = (
        root.to_string_lossy().into_owned(),
        lab.dir().join("images").to_string_lossy().into_owned(),
        lab.dir().join("state").to_string_lossy().into_owned(),
    );
    let marker = format!("PORTAPXE-RESTORED-DISK-{}", std::process::id());
    let reference = reference_disk(lab.dir(), &marker, DISK_MB).unwrap();

    // 1. Capture the reference PC.
    let mut args = vec!["image", "capture", "--mac", SOURCE_MAC, "--name", "lab-ref"];
    args.extend(serve_args(&root_arg, &images, &state));
    let (mut capture, capture_log) = portapxe(&lab, "portapxe image capture", &args);
    let tap = lab.add_tap().unwrap();
    let extras = Extras { disk: Some(&reference.path), reboots: false };
    let started = Instant::now();
    let source = RunningGuest::start_with(&lab, &tap, Firmware::BiosIpxeRom, SOURCE_MAC, extras).unwrap();
    let status = capture.wait_timeout(Duration::from_secs(400));
    let capture_time = started.elapsed();
    let text = fs::read_to_string(&capture_log).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "capture: {status:?}\n{text}\n{}", source.report());
    drop(source);
    let manifest = fs::read_to_string(Path::new(&images).join("lab-ref/image.toml")).unwrap();
    assert!(manifest.contains("filesystem = \"ext4\"") && manifest.contains("method = \"partclone\""), "{manifest}");
    assert!(manifest.contains(&format!("source_mac = \"{SOURCE_MAC}\"")), "{manifest}");
    let image_bytes: u64 =
        fs::read_dir(Path::new(&images).join("lab-ref")).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    eprintln!(
        "[imaging] capture: {:.1} s from power-on to saved image; image {:.1} MB for {:.1} MB used on a {DISK_MB} MB disk",
        capture_time.as_secs_f64(),
        image_bytes as f64 / 1e6,
        reference.used_bytes as f64 / 1e6
    );

    // 2. Restore it to three blank PCs at once; each boots its own disk afterwards.
    let mut args = vec!["image", "restore", "lab-ref", "--boot", "--seats", "3", "--wait", "300"];
    args.extend(serve_args(&root_arg, &images, &state));
    let (mut restore, restore_log) = portapxe(&lab, "portapxe image restore", &args);
    let mut seats = Vec::new();
    for i in 0..3u8 {
        let disk = lab.dir().join(format!("seat{i}.img"));
        fs::File::create(&disk).unwrap().set_len(DISK_MB << 20).unwrap();
        let tap = lab.add_tap().unwrap();
        let mac = format!("52:54:00:c0:01:{i:02x}");
        let extras = Extras { disk: Some(&disk), reboots: true };
        let guest = RunningGuest::start_with(&lab, &tap, Firmware::BiosIpxeRom, &mac, extras).unwrap();
        seats.push((guest, disk));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    for (guest, _) in &mut seats {
        while !guest.serial().contains(&marker) {
            let serial = guest.serial();
            assert!(
                Instant::now() < deadline,
                "seat {} did not boot its restored disk\n{}\n{}",
                guest.mac,
                guest.report(),
                fs::read_to_string(&restore_log).unwrap_or_default()
            );
            assert!(!serial.contains("portapxe-agent: finished (1)"), "{}", guest.report());
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "[imaging] {} booted its restored disk {:.1} s after the seats started",
            guest.mac,
            started.elapsed().as_secs_f64()
        );
    }
    let text = wait_exit(&mut restore, &restore_log, Duration::from_secs(240));
    eprintln!("{text}");
    assert_eq!(text.matches("has the whole image").count(), 3, "{text}");
    assert_eq!(text.matches("agent done: restored image").count(), 3, "{text}");
    assert_eq!(text.matches("booted its own disk").count(), 3, "next network boot: the local disk\n{text}");
    for (guest, disk) in seats {
        drop(guest);
        check_restored_disk(&disk, &reference.files, lab.dir())
            .unwrap_or_else(|err| panic!("{}: {err:#}", disk.display()));
    }
}

/// Secure Boot on (OVMF with Microsoft's keys): the PC gets shim and GRUB, GRUB reads
/// the configuration the imaging hub makes for its MAC (the agent, since it has a
/// capture task) and boots the agent, Debian's signed kernel, which captures the disk.
#[test]
fn a_secure_boot_pc_is_captured_through_the_signed_chain() {
    const MAC: &str = "52:54:00:c0:5b:01";
    let mut lab = Lab::new("classroom-sb").unwrap();
    let root = lab.dir().join("root");
    fs::create_dir_all(&root).unwrap();
    guest::install_ipxe_binaries(&root).unwrap();
    guest::install_signed_loaders(&root).unwrap();
    install_agent(&root).unwrap();
    let (root_arg, images, state) = (
        root.to_string_lossy().into_owned(),
        lab.dir().join("images").to_string_lossy().into_owned(),
        lab.dir().join("state").to_string_lossy().into_owned(),
    );
    let marker = format!("PORTAPXE-SB-DISK-{}", std::process::id());
    let reference = reference_disk(lab.dir(), &marker, DISK_MB).unwrap();

    let mut args = vec!["image", "capture", "--mac", MAC, "--name", "lab-sb"];
    args.extend(serve_args(&root_arg, &images, &state));
    let (mut capture, capture_log) = portapxe(&lab, "portapxe image capture", &args);
    let tap = lab.add_tap().unwrap();
    let extras = Extras { disk: Some(&reference.path), reboots: false };
    let started = Instant::now();
    let source = RunningGuest::start_with(&lab, &tap, Firmware::UefiSecureBoot, MAC, extras).unwrap();
    let status = capture.wait_timeout(Duration::from_secs(400));
    let took = started.elapsed();
    let text = fs::read_to_string(&capture_log).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "capture: {status:?}\n{text}\n{}", source.report());
    let serial = source.serial();
    assert!(serial.contains("Secure boot enabled"), "the agent's kernel did not report Secure Boot on:\n{serial}");
    assert!(serial.contains("PortaPXE: starting the imaging agent"), "GRUB did not read the hub's config:\n{serial}");
    drop(source);
    let manifest = fs::read_to_string(Path::new(&images).join("lab-sb/image.toml")).unwrap();
    assert!(manifest.contains("filesystem = \"ext4\"") && manifest.contains("method = \"partclone\""), "{manifest}");
    assert!(manifest.contains(&format!("source_mac = \"{MAC}\"")), "{manifest}");
    eprintln!("[imaging] Secure Boot capture: {:.1} s from power-on to saved image", took.as_secs_f64());
}
