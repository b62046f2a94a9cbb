//! Clonezilla clients joining a PortaPXE restore. Two blank PCs (BIOS, iPXE ROM)
//! network-boot a Clonezilla live ISO entry, which `portapxe image restore --clonezilla`
//! boots into `ocs-live-get-img SERVER`; Clonezilla's own client fetches
//! `ocs-client-run.conf` and the pseudo image from PortaPXE, writes the partition table
//! and boot code, receives the partition over multicast with `udp-receiver` into
//! `zstd -dc | partclone.ext4 -r`, then (the next session, 2 ports up) the swap
//! partition's raw bytes into `partclone.dd`, reports its job to PortaPXE (TCP 6461)
//! and restarts; PortaPXE sends its next network boot to its disk, which it boots. Each disk then holds every file of the
//! reference with its checksum, a clean file system and the reference's boot code.
//!
//! The Clonezilla live is a stand-in, said plainly: `target/lab/clonezilla-standin.iso`
//! (tests/lab/prepare-live-iso.sh OUTDIR clonezilla) is Debian's live-boot with Debian's
//! clonezilla and drbl packages and the programs they call; its init runs the kernel
//! line's `ocs_live_run` as Clonezilla live's start does (no systemd, no live-config).
//! The image is written on this machine with the agent's own commands
//! (`imaging::capture_on_host`); capture through the agent is classroom_imaging's.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portapxe_lab::binary::workspace_root;
use portapxe_lab::imaging::{capture_on_host, check_restored_disk, reference_disk_with_swap};
use portapxe_lab::process::Guarded;
use portapxe_lab::qemu::{Extras, Firmware, RunningGuest};
use portapxe_lab::{Lab, binary, guest};

const STANDIN_ISO: &str = "target/lab/clonezilla-standin.iso";
const DISK_MB: u64 = 128;
const DONE: &str = "PORTAPXE-CLONEZILLA-DONE rc=0";

#[test]
fn clonezilla_clients_restore_a_portapxe_image_over_multicast() {
    let iso = workspace_root().join(STANDIN_ISO);
    assert!(iso.is_file(), "{} is missing: run tests/lab/prepare-live-iso.sh target/lab clonezilla", iso.display());
    let mut lab = Lab::new("clonezilla").unwrap();
    let root = lab.dir().join("root");
    fs::create_dir_all(&root).unwrap();
    guest::install_ipxe_binaries(&root).unwrap();
    let images = lab.dir().join("images");
    let marker = format!("PORTAPXE-CLONEZILLA-DISK-{}", std::process::id());
    // Two partitions, so two sessions one after the other: ext4 (partclone) and swap
    // (raw bytes, which Clonezilla restores with partclone.dd).
    let reference = reference_disk_with_swap(lab.dir(), &marker, DISK_MB, 16).unwrap();
    capture_on_host(&reference, &images, "lab-ref").unwrap();

    let log = lab.dir().join("restore.log");
    let mut command: Command = lab.server_command(binary::portapxe().to_str().unwrap());
    command
        .args([
            "image",
            "restore",
            "lab-ref",
            "--clonezilla",
            "--clonezilla-disk",
            "vda",
            "--clonezilla-then",
            "reboot",
        ])
        // Two emulated PCs on a loaded 2-core machine can be silent for seconds: the
        // default 15 s before a silent seat is dropped is for real PCs.
        .args(["--seats", "2", "--drop-after", "60"])
        .args(["--wait", "300", "--interface", "br0", "--append", "console=ttyS0,115200"])
        .arg("--iso")
        .arg(&iso)
        .arg("--root")
        .arg(&root)
        .arg("--images")
        .arg(&images)
        .arg("--state-dir")
        .arg(lab.dir().join("state"))
        .stdin(Stdio::null());
    let file = fs::File::options().create(true).append(true).open(&log).unwrap();
    command.stdout(file.try_clone().unwrap()).stderr(file);
    let mut restore = Guarded::spawn("portapxe image restore --clonezilla", &mut command).unwrap();

    let mut seats = Vec::new();
    for i in 0..2u8 {
        let disk = lab.dir().join(format!("seat{i}.img"));
        fs::File::create(&disk).unwrap().set_len(DISK_MB << 20).unwrap();
        let tap = lab.add_tap().unwrap();
        let mac = format!("52:54:00:c2:01:{i:02x}");
        let extras = Extras { disk: Some(&disk), reboots: true };
        seats.push((RunningGuest::start_with(&lab, &tap, Firmware::BiosIpxeRom, &mac, extras).unwrap(), disk));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    // Each seat's console says when it got somewhere: Clonezilla's end (a failure
    // ends the wait at once), then, restarted and sent to its disk, the disk's marker.
    let steps = [(DONE, "finished Clonezilla's restore"), (marker.as_str(), "booted its restored disk")];
    for (text, what) in steps {
        for (guest, _) in &seats {
            loop {
                let serial = guest.serial();
                if serial.contains(text) {
                    break;
                }
                let failed = serial.contains("PORTAPXE-CLONEZILLA-DONE rc=1");
                if failed || Instant::now() >= deadline {
                    let log = fs::read_to_string(&log).unwrap_or_default();
                    panic!("seat {} has not {what}\n{}\n{log}", guest.mac, guest.report());
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            eprintln!("[clonezilla] {} {what} at {:.1} s", guest.mac, started.elapsed().as_secs_f64());
        }
    }
    let status = restore.wait_timeout(Duration::from_secs(120));
    let text = fs::read_to_string(&log).unwrap_or_default();
    eprintln!("{text}");
    assert!(status.is_some_and(|s| s.success()), "portapxe image restore: {status:?}\n{text}");
    let serial = seats[0].0.serial();
    assert!(
        serial.contains("ocs_live_run=\"ocs-live-get-img ") || serial.contains("ocs_live_run=ocs-live-get-img"),
        "PortaPXE put the client on the Clonezilla entry's command line:\n{serial}"
    );
    assert!(serial.contains("multicast_restoredisk lab-ref vda"), "Clonezilla's own ocs-sr ran:\n{serial}");
    assert_eq!(text.matches("received every partition").count(), 2, "{text}");
    assert_eq!(text.matches("Clonezilla reports vda1 success, vda2 success").count(), 4, "its own report:\n{text}");
    assert_eq!(text.matches("booted its own disk").count(), 2, "next network boot: the local disk\n{text}");
    assert!(text.contains("clonezilla vda2: started with 2 seats"), "the second partition's session:\n{text}");

    let reference_mbr = fs::read(&reference.path).unwrap()[..440].to_vec();
    for (guest, disk) in seats {
        drop(guest);
        check_restored_disk(&disk, &reference.files, lab.dir())
            .unwrap_or_else(|err| panic!("{}: {err:#}", disk.display()));
        let restored = fs::read(&disk).unwrap();
        assert_eq!(&restored[..440], &reference_mbr[..], "{}: the reference's boot code", disk.display());
        assert_eq!(&restored[510..512], &[0x55, 0xaa], "{}: a partition table", disk.display());
        drop(restored);
        let swap = reference.swap.as_ref().unwrap();
        assert_eq!(swap.sha256_in(&disk).unwrap(), swap.sha256, "{}: the swap partition's bytes", disk.display());
    }
    assert!(Path::new(&images).join("lab-ref/image.toml").is_file(), "the image is untouched");
}
