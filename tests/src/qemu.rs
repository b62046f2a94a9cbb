//! QEMU guests that network-boot from the lab bridge (TCG: KVM is not available).
//!
//! Owns: the QEMU command line per firmware, the per-run OVMF variable store, the
//! serial log, and the bounded wait for the guest's marker.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::netns::Lab;
use crate::process::{Guarded, POLL};
use crate::server::tail_lines;

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// OVMF built with Secure Boot, and a variable store with Microsoft's keys enrolled
/// (the keys every PC ships with): Secure Boot is on from the first start.
pub const OVMF_CODE_SECURE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
pub const OVMF_VARS_MICROSOFT: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
/// Debian's AAVMF (package `qemu-efi-aarch64`): the ARM64 firmware, and variables with
/// Microsoft's keys enrolled and Secure Boot on.
pub const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.ms.fd";
pub const AAVMF_VARS_MICROSOFT: &str = "/usr/share/AAVMF/AAVMF_VARS.ms.fd";
/// Default bound for one boot, firmware to marker.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS + the iPXE ROM QEMU ships for e1000 (`-machine pc -boot n`).
    BiosIpxeRom,
    /// OVMF with its own PXE client: virtio-net without option ROM (`romfile=`).
    UefiNativePxe,
    /// The same with Secure Boot on (Microsoft's keys): it runs only signed loaders.
    /// Needs SMM (`q35,smm=on`) and a secure flash.
    UefiSecureBoot,
    /// The same, with OVMF's PXE turned off (fw_cfg `IPv4PXESupport`/`IPv6PXESupport`):
    /// its first boot option is UEFI HTTP boot over IPv4.
    UefiSecureBootHttp,
    /// An ARM64 machine (`qemu-system-aarch64 -machine virt`, Cortex-A57) with Debian's
    /// AAVMF, Secure Boot on with Microsoft's keys (`AAVMF_VARS.ms.fd`), its own PXE
    /// client on virtio-net without option ROM.
    Arm64SecureBoot,
}

/// How a boot ended.
#[derive(Debug)]
pub struct Boot {
    pub elapsed: Duration,
    pub serial: String,
}

/// Run a guest on `tap` until it prints `marker`; panics (with the serial log)
/// when it does not within `timeout` or QEMU exits first.
pub fn boot(lab: &Lab, tap: &str, firmware: Firmware, mac: &str, marker: &str, timeout: Duration) -> Boot {
    match try_boot(lab, tap, firmware, mac, marker, timeout) {
        Ok(boot) => boot,
        Err(error) => panic!("{firmware:?} guest {mac} did not boot: {error:#}"),
    }
}

/// A QEMU guest started on a tap, stopped (SIGTERM, then SIGKILL, by PID) when dropped.
pub struct RunningGuest {
    pub qemu: Guarded,
    pub mac: String,
    serial: PathBuf,
    qemu_log: PathBuf,
    pub started: Instant,
}

/// What a guest has beyond its firmware and NIC.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras<'a> {
    /// A raw disk image on virtio-blk, booted after the network (BIOS only).
    pub disk: Option<&'a Path>,
    /// A guest reboot restarts it (QEMU exits on one otherwise).
    pub reboots: bool,
}

impl RunningGuest {
    /// Start `firmware` with NIC `mac` on `tap`; the serial console goes to a file.
    pub fn start(lab: &Lab, tap: &str, firmware: Firmware, mac: &str) -> Result<Self> {
        Self::start_with(lab, tap, firmware, mac, Extras::default())
    }

    /// [`Self::start`] with a disk and/or reboots.
    pub fn start_with(lab: &Lab, tap: &str, firmware: Firmware, mac: &str, extras: Extras<'_>) -> Result<Self> {
        let serial = lab.dir().join(format!("serial-{tap}.log"));
        let qemu_log = lab.dir().join(format!("qemu-{tap}.log"));
        let program = if firmware == Firmware::Arm64SecureBoot { "qemu-system-aarch64" } else { "qemu-system-x86_64" };
        let mut command = lab.server_command(program);
        // GRUB loads the kernel into memory it allocates below 4 GiB from the firmware's
        // pool: with 256 MiB, the signed chain's GRUB stops at "out of memory" (seen here).
        // The Debian installer booted from an ISO unpacks a 41 MB initrd and shows a "Low
        // memory" screen instead of its first one with 512 MiB: 1 GiB (TCG only touches
        // what the guest uses).
        let memory = "1024";
        command.args(["-accel", "tcg", "-m", memory, "-smp", "1", "-nodefaults", "-nographic"]);
        if !extras.reboots {
            command.arg("-no-reboot");
        }
        if let Some(disk) = extras.disk {
            command.arg("-drive").arg(format!("file={},format=raw,if=none,id=d0", disk.display()));
            command.args(["-device", "virtio-blk-pci,drive=d0,bootindex=2"]);
        }
        command.arg("-serial").arg(format!("file:{}", serial.display()));
        command.args(["-monitor", "none"]);
        command.arg("-netdev").arg(format!("tap,id=n0,ifname={tap},script=no,downscript=no"));
        match firmware {
            Firmware::BiosIpxeRom => {
                command.args(["-machine", "pc", "-boot", "n"]);
                command.arg("-device").arg(format!("e1000,netdev=n0,mac={mac},bootindex=1"));
            }
            Firmware::UefiNativePxe | Firmware::UefiSecureBoot | Firmware::UefiSecureBootHttp => {
                let secure = firmware != Firmware::UefiNativePxe;
                let (code, vars_from) =
                    if secure { (OVMF_CODE_SECURE, OVMF_VARS_MICROSOFT) } else { (OVMF_CODE, OVMF_VARS) };
                let vars = lab.dir().join(format!("OVMF_VARS-{tap}.fd"));
                std::fs::copy(vars_from, &vars)
                    .with_context(|| format!("copying {vars_from} (apt-get install ovmf)"))?;
                if secure {
                    command.args(["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"]);
                } else {
                    command.args(["-machine", "q35"]);
                }
                command.arg("-drive").arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={code}"));
                command.arg("-drive").arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
                command.arg("-device").arg(format!("virtio-net-pci,netdev=n0,mac={mac},romfile=,bootindex=1"));
                if firmware == Firmware::UefiSecureBootHttp {
                    for knob in ["IPv4PXESupport", "IPv6PXESupport"] {
                        command.arg("-fw_cfg").arg(format!("name=opt/org.tianocore/{knob},string=n"));
                    }
                }
            }
            Firmware::Arm64SecureBoot => {
                // On ARM the variable store needs no SMM to be trusted: the `.ms` variables
                // alone turn Secure Boot on.
                let vars = lab.dir().join(format!("AAVMF_VARS-{tap}.fd"));
                std::fs::copy(AAVMF_VARS_MICROSOFT, &vars)
                    .with_context(|| format!("copying {AAVMF_VARS_MICROSOFT} (apt-get install qemu-efi-aarch64)"))?;
                command.args(["-machine", "virt", "-cpu", "cortex-a57"]);
                command.arg("-drive").arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={AAVMF_CODE}"));
                command.arg("-drive").arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
                command.arg("-device").arg(format!("virtio-net-pci,netdev=n0,mac={mac},romfile=,bootindex=1"));
            }
        }
        let log_file = std::fs::File::create(&qemu_log)?;
        command.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
        eprintln!("[lab] starting {firmware:?} guest {mac} on {tap}: {command:?}");
        let started = Instant::now();
        let qemu = Guarded::spawn(program, &mut command)?;
        Ok(Self { qemu, mac: mac.to_owned(), serial, qemu_log, started })
    }

    /// The serial console so far.
    pub fn serial(&self) -> String {
        read_lossy(&self.serial)
    }

    /// The console's last lines and QEMU's own messages, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "===== serial {} (last 60 lines) =====\n{}\n===== qemu stderr =====\n{}\n=====",
            self.serial.display(),
            tail_lines(&self.serial(), 60),
            read_lossy(&self.qemu_log)
        )
    }

    /// SIGTERM (then SIGKILL) by PID; returns the serial console.
    pub fn kill(mut self) -> String {
        let pid = self.qemu.pid();
        let (status, graceful) = self.qemu.terminate(Duration::from_secs(5));
        eprintln!("[lab] stopped QEMU guest {} (pid {pid}): {status:?}, graceful={graceful}", self.mac);
        self.serial()
    }
}

fn try_boot(lab: &Lab, tap: &str, firmware: Firmware, mac: &str, marker: &str, timeout: Duration) -> Result<Boot> {
    let mut guest = RunningGuest::start(lab, tap, firmware, mac)?;
    let failure = |guest: &RunningGuest, why: String| anyhow::anyhow!("{why}\n{}", guest.report());
    let mut timeline = Timeline::default();
    loop {
        let serial = guest.serial();
        let elapsed = guest.started.elapsed();
        timeline.observe(&serial, elapsed);
        if serial.contains(marker) {
            eprintln!("[lab] {firmware:?} guest {mac} booted to the marker in {:.1} s", elapsed.as_secs_f64());
            eprintln!("[lab]   timeline: {}", timeline.render());
            // poweroff -f follows the marker; give QEMU a moment to exit by itself.
            guest.qemu.wait_timeout(Duration::from_secs(10));
            return Ok(Boot { elapsed, serial: guest.serial() });
        }
        if let Some(status) = guest.qemu.try_status() {
            if guest.serial().contains(marker) {
                continue;
            }
            return Err(failure(&guest, format!("QEMU exited ({status}) after {elapsed:.1?} without the marker")));
        }
        if elapsed >= timeout {
            let error = failure(&guest, format!("no marker within {timeout:?}; QEMU killed"));
            drop(guest); // SIGTERM, then SIGKILL, by PID
            return Err(error);
        }
        std::thread::sleep(POLL * 4);
    }
}

/// Console lines worth a time stamp, in boot order, to see where a boot spends its time.
const MILESTONES: &[(&str, &str)] = &[
    ("Start PXE over IPv4", "OVMF PXE"),
    ("Secure Boot", "secure boot"),
    ("Station IP address", "OVMF lease"),
    ("NBP file downloaded", "NBP loaded"),
    ("iPXE initialising devices", "iPXE"),
    ("Configuring (", "iPXE DHCP"),
    ("Filename:", "iPXE lease"),
    ("[script]", "script"),
    ("GNU GRUB", "GRUB"),
    ("Linux version", "kernel"),
    ("Run /init", "init"),
];

#[derive(Default)]
struct Timeline(Vec<(&'static str, Duration)>);

impl Timeline {
    fn observe(&mut self, serial: &str, now: Duration) {
        for &(needle, label) in MILESTONES {
            if !self.0.iter().any(|(seen, _)| *seen == label) && serial.contains(needle) {
                self.0.push((label, now));
            }
        }
    }

    fn render(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(label, at)| format!("{label} {:.1}s", at.as_secs_f64())).collect();
        parts.join(", ")
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}
