//! A UEFI machine booting from portapxe shows up in the client registry (the
//! `--status` file) with its architecture, the phases of its boot in order and
//! byte counts equal to the files' sizes; the DHCP traffic of the session is
//! recorded as a pcapng file that tcpdump (libpcap, as Wireshark) reads.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use portapxe_lab::guest::{IPXE_DIR, UEFI_FILE};
use portapxe_lab::process::wait_until;
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::server::status_client;
use portapxe_lab::{Lab, Server, boot_setup, pool};
use serde_json::Value;

const MAC: &str = "52:54:00:e1:07:01";

/// The client's record once it has fetched everything, from the status file.
fn handed_off_record(status: &Path) -> Option<Value> {
    let record = status_client(status, MAC)?;
    (record["phase"] == "handed_off" && record["completed"].as_array()?.len() >= 4).then_some(record)
}

fn completed_bytes(record: &Value, file: &str) -> Vec<u64> {
    record["completed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry[0].as_str().is_some_and(|name| name.trim_start_matches('/') == file))
        .map(|entry| entry[1].as_u64().unwrap())
        .collect()
}

#[test]
fn a_uefi_boot_is_in_the_registry_and_the_capture() {
    let mut lab = Lab::new("registry").unwrap();
    let (mut spec, guest) = boot_setup(&lab);
    let status = lab.dir().join("status.json");
    let capture = lab.dir().join("dhcp.pcapng");
    spec = spec.arg("--status", status.display().to_string()).arg("--capture", capture.display().to_string());
    let ipxe_efi = std::fs::metadata(Path::new(IPXE_DIR).join(UEFI_FILE)).unwrap().len();
    let mut server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiNativePxe, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME registry uefi_native_pxe: {:.1} s", boot.elapsed.as_secs_f64());

    let record = wait_until(Duration::from_secs(10), || handed_off_record(&status)).unwrap_or_else(|| {
        panic!(
            "{MAC} never reached handed_off in {}:\n{}\n{}",
            status.display(),
            std::fs::read_to_string(&status).unwrap_or_default(),
            server.report()
        )
    });
    assert_eq!(record["arch"], "UEFI x64", "{record:#}");
    assert_eq!(record["is_ipxe"], true, "iPXE took over from the firmware: {record:#}");
    assert_eq!(record["address_from"]["from"], "us", "{record:#}");
    let address: std::net::Ipv4Addr = record["address"].as_str().unwrap().parse().unwrap();
    assert!(pool(&lab).contains(&address), "{address} outside the pool");
    assert_eq!(completed_bytes(&record, UEFI_FILE), vec![ipxe_efi], "{record:#}");
    assert_eq!(completed_bytes(&record, "vmlinuz"), vec![guest.kernel_size()], "{record:#}");
    assert_eq!(completed_bytes(&record, "initrd.img"), vec![guest.initrd_size()], "{record:#}");
    assert!(record["diagnosis"].is_null(), "a good boot has no diagnosis: {record:#}");

    // The timeline tells the boot in order.
    let timeline: Vec<String> =
        record["timeline"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap().to_owned()).collect();
    let position = |needle: &str| {
        timeline
            .iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {timeline:#?}"))
    };
    let steps = [
        position("DISCOVER → OFFER"),
        position("REQUEST → ACK"),
        position(&format!("TFTP {UEFI_FILE} finished")),
        position("boot.ipxe finished"),
        position("vmlinuz finished"),
        position("initrd.img finished"),
    ];
    assert!(steps.windows(2).all(|pair| pair[0] < pair[1]), "phases out of order: {steps:?} in {timeline:#?}");

    server.stop();
    let read = Command::new("tcpdump")
        .args(["-nn", "-e", "-tttt", "-r"])
        .arg(&capture)
        .output()
        .expect("tcpdump (Debian package tcpdump)");
    let text = String::from_utf8_lossy(&read.stdout);
    assert!(
        read.status.success(),
        "tcpdump cannot read {}: {}",
        capture.display(),
        String::from_utf8_lossy(&read.stderr)
    );
    // Packet times are read as taken: today's date (they once read as the year 58900).
    let today = String::from_utf8(Command::new("date").arg("+%Y-%m-%d").output().unwrap().stdout).unwrap();
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with(today.trim()), "the capture's first packet is not from today ({today}): {first}");
    let dhcp_lines = text.lines().filter(|line| line.contains(".67") || line.contains(".68")).count();
    assert!(dhcp_lines >= 8, "expected the DORA of firmware and iPXE in the capture, got:\n{text}");
    assert!(text.contains(MAC), "the guest's frames are not in the capture:\n{text}");
}
