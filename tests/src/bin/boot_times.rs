//! Benchmark, not a test: how long a machine takes from power-on to its Linux marker
//! on a segment with no IPv6 router (a technician's bench switch), booted by PortaPXE
//! in full DHCP mode and by dnsmasq as Debian ships it, in the same run.
//!
//! `cargo run -p portapxe-lab --bin boot_times -- [--runs N]` as root. Every boot runs
//! in a fresh lab (namespaces made and deleted here), with no router advertisement
//! from the lab: what PortaPXE sends is what a user gets. Prints one Markdown table.
//! `PORTAPXE_BIN=target/release/portapxe` measures a release build.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portapxe_lab::guest::{self, Guest};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::standin::Dnsmasq;
use portapxe_lab::{Lab, Server, boot_setup, signed_boot_setup};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// A source build's root: the iPXE loaders only.
    PortaPxe,
    /// A packaged install: the signed loaders too, so UEFI gets shim → GRUB.
    PortaPxeSigned,
    Dnsmasq,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::PortaPxe => "PortaPXE (full DHCP, defaults; UEFI gets ipxe.efi)",
            Self::PortaPxeSigned => "PortaPXE with the signed loaders (shim → GRUB → kernel over TFTP)",
            Self::Dnsmasq => "dnsmasq as Debian ships it",
        }
    }
}

fn firmware_name(firmware: Firmware) -> &'static str {
    match firmware {
        Firmware::BiosIpxeRom => "BIOS (QEMU's iPXE ROM)",
        Firmware::UefiNativePxe => "UEFI (OVMF's own PXE client)",
        Firmware::UefiSecureBoot => "UEFI with Secure Boot on (OVMF, Microsoft's keys)",
        Firmware::UefiSecureBootHttp => "UEFI HTTP boot with Secure Boot on (OVMF, PXE off)",
        Firmware::Arm64SecureBoot => "ARM64 UEFI with Secure Boot on (AAVMF, Microsoft's keys)",
    }
}

/// One boot in a fresh lab: seconds from QEMU's start to the marker on the serial console.
fn boot_once(peer: Peer, firmware: Firmware, n: usize) -> Result<f64> {
    let mut lab = Lab::new("boot-times")?;
    let mac = format!("52:54:00:be:{:02x}:{:02x}", n % 256, firmware as u8);
    let (_server, _dnsmasq, marker) = match peer {
        Peer::PortaPxe | Peer::PortaPxeSigned => {
            let (spec, guest) = if peer == Peer::PortaPxeSigned { signed_boot_setup(&lab) } else { boot_setup(&lab) };
            (Some(Server::start(&lab, &spec)?), None, guest.marker)
        }
        Peer::Dnsmasq => {
            let root = lab.dir().join("root");
            std::fs::create_dir_all(&root)?;
            guest::install_ipxe_binaries(&root)?;
            let guest = Guest::install(&root)?;
            (None, Some(Dnsmasq::start_as_shipped(&lab, &root)?), guest.marker)
        }
    };
    let tap = lab.add_tap()?;
    let boot = qemu::boot(&lab, &tap, firmware, &mac, &marker, qemu::BOOT_TIMEOUT);
    Ok(boot.elapsed.as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut runs = 3usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse().context("--runs N")?,
            other => bail!("unknown argument {other}; use --runs N"),
        }
    }
    let started = Instant::now();
    let version = std::process::Command::new("dnsmasq").arg("--version").output().context("dnsmasq --version")?;
    let version = String::from_utf8_lossy(&version.stdout).lines().next().unwrap_or_default().to_owned();
    println!("{version}; PortaPXE {}", portapxe_lab::binary::portapxe().display());
    println!();
    let cases = [
        (Peer::PortaPxe, Firmware::BiosIpxeRom),
        (Peer::Dnsmasq, Firmware::BiosIpxeRom),
        (Peer::PortaPxe, Firmware::UefiNativePxe),
        (Peer::Dnsmasq, Firmware::UefiNativePxe),
        (Peer::PortaPxeSigned, Firmware::UefiNativePxe),
        (Peer::PortaPxeSigned, Firmware::UefiSecureBoot),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    // Rounds interleave the cases, so a slow spell of the machine hits all of them alike.
    for round in 0..runs {
        for (case, &(peer, firmware)) in cases.iter().enumerate() {
            let seconds = boot_once(peer, firmware, round * cases.len() + case)?;
            eprintln!("[boot-times] round {} {} {}: {seconds:.1} s", round + 1, peer.name(), firmware_name(firmware));
            times[case].push(seconds);
        }
    }
    println!("| firmware | server | median s | min–max s | runs |");
    println!("|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (case, &(peer, firmware)) in cases.iter().enumerate() {
        let values = &mut times[case];
        let (min, max) = (values.iter().copied().fold(f64::MAX, f64::min), values.iter().copied().fold(0.0, f64::max));
        let median = median(values);
        medians.push(median);
        println!("| {} | {} | {median:.1} | {min:.1}–{max:.1} | {runs} |", firmware_name(firmware), peer.name());
    }
    println!();
    println!("PortaPXE / dnsmasq, BIOS: {:.2}×; UEFI: {:.2}×", medians[0] / medians[1], medians[2] / medians[3]);
    println!(
        "Signed chain / iPXE, UEFI without Secure Boot: {:.2}×; signed chain with Secure Boot / iPXE without: {:.2}×",
        medians[4] / medians[2],
        medians[5] / medians[2]
    );
    eprintln!("[boot-times] {} boots in {:.0?}", runs * cases.len(), Duration::from_secs(started.elapsed().as_secs()));
    Ok(())
}
