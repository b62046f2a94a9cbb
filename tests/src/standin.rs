//! dnsmasq in two roles, never in the root namespace:
//!
//! - [`Dnsmasq`]: a stand-in PXE server, used only by the harness self-test
//!   (`tests/harness_selftest.rs`, ignored by default) to prove the lab's wiring,
//!   QEMU runner and client drivers independently of `portapxe`. It runs inside the
//!   lab's server namespace, bound to the bridge. iPXE clients get `boot.ipxe` over
//!   TFTP (dnsmasq has no HTTP).
//! - [`NetworkDhcp`]: "the network's existing DHCP server" for the proxyDHCP tests:
//!   addresses only (no PXE, no boot options, no TFTP, no DNS), in a second
//!   namespace joined to the lab bridge by a veth.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::daemon::Daemon;
use crate::netns::{BRIDGE, ClientNs, Lab};

pub struct Dnsmasq {
    daemon: Daemon,
}

impl Dnsmasq {
    /// Serve `root` by TFTP and PXE boot files like portapxe's contract does; no ping
    /// before an offer (it would cost 3 s per new client).
    pub fn start(lab: &Lab, root: &Path) -> Result<Self> {
        Self::start_with(lab, root, Ping::Off)
    }

    /// The same, with dnsmasq's defaults as Debian ships them: it pings an address
    /// before offering it (up to 3 s per new client) and sends no router advertisements.
    pub fn start_as_shipped(lab: &Lab, root: &Path) -> Result<Self> {
        Self::start_with(lab, root, Ping::AsShipped)
    }

    fn start_with(lab: &Lab, root: &Path, ping: Ping) -> Result<Self> {
        let script = format!(
            "#!ipxe\nkernel tftp://${{next-server}}/vmlinuz initrd=initrd.img {}\ninitrd tftp://${{next-server}}/initrd.img\nboot\n",
            crate::guest::CMDLINE
        );
        std::fs::write(root.join("boot.ipxe"), script)?;
        let log = lab.dir().join("dnsmasq.log");
        let mut command = lab.server_command("dnsmasq");
        command.args([
            // Not --no-daemon: in that debug mode dnsmasq writes no pid file.
            "--keep-in-foreground",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            "--log-dhcp",
            "--enable-tftp",
        ]);
        if ping == Ping::Off {
            command.arg("--no-ping");
        }
        command.arg(format!("--interface={BRIDGE}"));
        command.arg(format!("--dhcp-range={},{},255.255.255.0,1h", lab.ip(100), lab.ip(150)));
        command.arg(format!("--tftp-root={}", root.display()));
        command.arg(format!("--dhcp-leasefile={}", lab.dir().join("dnsmasq.leases").display()));
        let pid_file = lab.dir().join("dnsmasq.pid");
        command.arg(format!("--pid-file={}", pid_file.display()));
        command.args([
            "--dhcp-userclass=set:ipxe,iPXE",
            "--dhcp-match=set:ipxe,175",
            "--dhcp-match=set:efi,option:client-arch,7",
            "--dhcp-boot=tag:ipxe,boot.ipxe",
            "--dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi",
            "--dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe",
        ]);
        let mut daemon = Daemon::start("dnsmasq", command, &log, "apt-get install dnsmasq-base")?;
        daemon.wait_for_pid_file(&pid_file)?;
        Ok(Self { daemon })
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

/// dnsmasq as the network's own DHCP server, addresses only: `--port=0` (no DNS), no
/// `--enable-tftp`, no `--dhcp-boot`/`--pxe-service`, `--no-ping` (a ping costs 3 s per
/// new client). It runs in its own namespace (a veth port on the lab bridge) with a
/// static address, in the foreground, and is stopped by PID on drop.
pub struct NetworkDhcp {
    daemon: Daemon,
    /// The namespace dnsmasq runs in (kept so it outlives nothing it should not).
    pub host: ClientNs,
    /// dnsmasq's own address on the lab segment.
    pub ip: Ipv4Addr,
    pub range: RangeInclusive<Ipv4Addr>,
    pub lease_file: PathBuf,
    pub pid_file: PathBuf,
}

/// One line of dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENT-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqLease {
    pub mac: String,
    pub ip: Ipv4Addr,
}

impl NetworkDhcp {
    /// A namespace with MAC `mac` and address 10.77.N.`host`/24 on the lab bridge, and
    /// dnsmasq in it handing out `range` (which must lie in the lab subnet).
    pub fn start(lab: &mut Lab, mac: &str, host: u8, range: RangeInclusive<Ipv4Addr>) -> Result<Self> {
        Self::start_with(lab, mac, host, range, &[])
    }

    /// [`Self::start`] with more dnsmasq arguments (e.g. `--dhcp-boot` naming a next server).
    pub fn start_with(
        lab: &mut Lab,
        mac: &str,
        host: u8,
        range: RangeInclusive<Ipv4Addr>,
        extra: &[String],
    ) -> Result<Self> {
        let ns = lab.add_client(mac)?;
        let ip = lab.ip(host);
        ns.add_address(ip)?;
        let log = lab.dir().join("network-dhcp.log");
        let lease_file = lab.dir().join("network-dhcp.leases");
        let pid_file = lab.dir().join("network-dhcp.pid");
        let range_arg = format!("--dhcp-range={},{},255.255.255.0,1h", range.start(), range.end());
        let role_args: Vec<String> = std::iter::once(range_arg).chain(extra.iter().cloned()).collect();
        let command = dnsmasq_command(&ns, &role_args, Ping::Off, &lease_file, &pid_file);
        let mut daemon =
            Daemon::start("dnsmasq (the network's DHCP server)", command, &log, "apt-get install dnsmasq-base")?
                .show_on_failure(&lease_file);
        daemon.wait_for_pid_file(&pid_file)?;
        Ok(Self { daemon, host: ns, ip, range, lease_file, pid_file })
    }

    /// The leases dnsmasq has written so far (an absent file is none).
    pub fn leases(&self) -> Vec<DnsmasqLease> {
        let text = std::fs::read_to_string(&self.lease_file).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace().skip(1);
                let mac = fields.next()?.to_ascii_lowercase();
                let ip = fields.next()?.parse().ok()?;
                Some(DnsmasqLease { mac, ip })
            })
            .collect()
    }

    /// Addresses leased to `mac`.
    pub fn leased_to(&self, mac: &str) -> Vec<Ipv4Addr> {
        self.leases().into_iter().filter(|l| l.mac.eq_ignore_ascii_case(mac)).map(|l| l.ip).collect()
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }
}

/// Whether a stand-in dnsmasq pings an address before it offers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ping {
    /// `--no-ping`: offers at once (a ping costs 3 s per new client).
    Off,
    /// dnsmasq's default, as Debian ships it: the first offer to a new client comes late.
    AsShipped,
}

/// dnsmasq in the foreground on a client namespace's interface, logging DHCP to
/// stdout, no DNS: the base every stand-in server here starts from.
pub fn dnsmasq_command(ns: &ClientNs, role_args: &[String], ping: Ping, lease_file: &Path, pid_file: &Path) -> Command {
    let mut command = ns.command("dnsmasq");
    command.args([
        "--keep-in-foreground",
        "--log-facility=-",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--port=0",
        "--bind-interfaces",
        "--log-dhcp",
    ]);
    if ping == Ping::Off {
        command.arg("--no-ping");
    }
    command.arg(format!("--interface={}", ns.interface()));
    command.args(role_args);
    command.arg(format!("--dhcp-leasefile={}", lease_file.display()));
    command.arg(format!("--pid-file={}", pid_file.display()));
    command
}
