//! dnsmasq as a stand-in PXE server, used only by the harness self-test
//! (`tests/harness_selftest.rs`, ignored by default) to prove the lab's wiring,
//! QEMU runner and client drivers independently of `portapxe`.
//!
//! It runs inside the lab's server namespace, bound to the bridge, never elsewhere.
//! iPXE clients get `boot.ipxe` over TFTP (dnsmasq has no HTTP).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::netns::{BRIDGE, Lab};
use crate::process::Guarded;

pub struct Dnsmasq {
    process: Guarded,
    log: std::path::PathBuf,
}

impl Dnsmasq {
    /// Serve `root` by TFTP and PXE boot files like portapxe's contract does.
    pub fn start(lab: &Lab, root: &Path) -> Result<Self> {
        let script = format!(
            "#!ipxe\nkernel tftp://${{next-server}}/vmlinuz initrd=initrd.img {}\ninitrd tftp://${{next-server}}/initrd.img\nboot\n",
            crate::guest::CMDLINE
        );
        std::fs::write(root.join("boot.ipxe"), script)?;
        let log = lab.dir().join("dnsmasq.log");
        let mut command = lab.server_command("dnsmasq");
        command.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            "--no-ping",
            "--log-dhcp",
            "--enable-tftp",
        ]);
        command.arg(format!("--interface={BRIDGE}"));
        command.arg(format!("--dhcp-range={},{},255.255.255.0,1h", lab.ip(100), lab.ip(150)));
        command.arg(format!("--tftp-root={}", root.display()));
        command.arg(format!("--dhcp-leasefile={}", lab.dir().join("dnsmasq.leases").display()));
        command.arg(format!("--pid-file={}", lab.dir().join("dnsmasq.pid").display()));
        command.args([
            "--dhcp-userclass=set:ipxe,iPXE",
            "--dhcp-match=set:ipxe,175",
            "--dhcp-match=set:efi,option:client-arch,7",
            "--dhcp-boot=tag:ipxe,boot.ipxe",
            "--dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi",
            "--dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe",
        ]);
        let log_file = std::fs::File::create(&log)?;
        command.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
        let mut process = Guarded::spawn("dnsmasq", &mut command).context("apt-get install dnsmasq-base")?;
        std::thread::sleep(Duration::from_millis(500));
        if let Some(status) = process.try_status() {
            bail!("dnsmasq exited at once ({status}):\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        Ok(Self { process, log })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("===== dnsmasq log =====\n{}", self.log());
        }
        self.process.terminate(Duration::from_secs(3));
    }
}
