//! The lab network: one server namespace with a bridge, taps for QEMU guests and
//! client namespaces joined by veth pairs. Everything is deleted on drop.
//!
//! Owns: `ip netns`/`ip link` set-up and tear-down, running code inside a namespace
//! ([`in_netns`]), and on request an IPv6 router-advertisement sender standing for
//! the network's own IPv6 router (never in full DHCP mode: there PortaPXE itself ends
//! iPXE's wait for IPv6, and the tests measure what a user gets). Must not touch: the root namespace's interfaces, or any
//! namespace whose name it did not make.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};

use crate::process::run_ok;
use crate::ra::RaSender;

/// The bridge in the server namespace; the server binds to it.
pub const BRIDGE: &str = "br0";
/// The interface name inside every client namespace.
pub const CLIENT_IF: &str = "eth0";

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run `f` on a thread that has entered network namespace `ns`; sockets it opens live there.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = netns_path(ns);
    let handle = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    thread::scope(|scope| {
        scope
            .spawn(move || -> Result<T> {
                setns(&handle, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {}", path.display()))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn netns_path(ns: &str) -> PathBuf {
    Path::new("/run/netns").join(ns)
}

/// Fail loudly, with what to do, when the lab cannot work here.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "the PortaPXE end-to-end lab needs root (network namespaces, taps, port 67); \
             run `sudo -E cargo test -p portapxe-lab -- --test-threads=1`"
        );
    }
}

/// A client namespace: one host on the lab segment, with `eth0` and a fixed MAC.
pub struct ClientNs {
    pub ns: String,
    pub mac: String,
}

impl ClientNs {
    pub fn interface(&self) -> &'static str {
        CLIENT_IF
    }

    /// Give the client a static address (for raw sockets and TFTP after a lease).
    pub fn add_address(&self, address: Ipv4Addr) -> Result<()> {
        run_ok("ip", &["-n", &self.ns, "addr", "add", &format!("{address}/24"), "dev", CLIENT_IF])?;
        Ok(())
    }

    pub fn flush_addresses(&self) -> Result<()> {
        run_ok("ip", &["-n", &self.ns, "addr", "flush", "dev", CLIENT_IF])?;
        Ok(())
    }

    /// `ip netns exec NS program args…`
    pub fn command(&self, program: &str) -> Command {
        netns_command(&self.ns, program)
    }
}

/// `ip netns exec NS program`; `ip` execs the program, so the child's PID is the program's.
pub fn netns_command(ns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, program]);
    command
}

/// One isolated lab: server namespace, bridge, taps, client namespaces, scratch dir.
pub struct Lab {
    pub name: String,
    /// Third octet of this lab's subnet 10.77.N.0/24 (distinct per lab, for readable logs).
    pub net: u8,
    server_ns: String,
    clients: Vec<String>,
    taps: u32,
    ra: Option<RaSender>,
    dir: tempfile::TempDir,
}

impl Lab {
    /// Build the server namespace with its bridge. No IPv6 router is on the segment,
    /// as on a technician's bench switch.
    pub fn new(purpose: &str) -> Result<Self> {
        require_root();
        let counter = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ppxe{}-{counter}", std::process::id());
        let net = u8::try_from(counter % 200 + 1).unwrap_or(1);
        let dir = tempfile::Builder::new().prefix(&format!("portapxe-lab-{purpose}-")).tempdir()?;
        let server_ns = format!("{name}-srv");
        let lab = Self { name, net, server_ns: server_ns.clone(), clients: Vec::new(), taps: 0, ra: None, dir };
        run_ok("ip", &["netns", "add", &server_ns])?;
        lab.set_up_server_ns().with_context(|| format!("setting up namespace {server_ns}"))?;
        eprintln!("[lab] {} ready: namespace {server_ns}, server {}/24 on {BRIDGE}", lab.name, lab.server_ip());
        Ok(lab)
    }

    fn set_up_server_ns(&self) -> Result<()> {
        let ns = self.server_ns.as_str();
        // Link-local addresses without duplicate detection: router advertisements need one at once.
        run_ok("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"])?;
        run_ok("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])?;
        run_ok("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        run_ok(
            "ip",
            &[
                "-n",
                ns,
                "link",
                "add",
                BRIDGE,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        run_ok("ip", &["-n", ns, "addr", "add", &format!("{}/24", self.server_ip()), "dev", BRIDGE])?;
        run_ok("ip", &["-n", ns, "link", "set", BRIDGE, "up"])?;
        Ok(())
    }

    /// Stands in for the network's own IPv6 router, which answers iPXE's router
    /// discovery where PortaPXE does not (proxy mode, boot files only, other DHCP
    /// servers): advertisements with router lifetime 0 every 500 ms.
    pub fn add_ipv6_router(&mut self) -> Result<()> {
        if self.ra.is_none() {
            self.ra = Some(RaSender::start(&self.server_ns, BRIDGE)?);
        }
        Ok(())
    }

    pub fn server_ns(&self) -> &str {
        &self.server_ns
    }

    pub fn server_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.net, 1)
    }

    /// An address in this lab's subnet.
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.net, host)
    }

    /// Scratch directory for this lab (server root, logs, leases); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A tap enslaved to the bridge, for one QEMU guest.
    pub fn add_tap(&mut self) -> Result<String> {
        let tap = format!("tap{}", self.taps);
        self.taps += 1;
        let ns = self.server_ns.as_str();
        run_ok("ip", &["-n", ns, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
        run_ok("ip", &["-n", ns, "link", "set", &tap, "master", BRIDGE])?;
        run_ok("ip", &["-n", ns, "link", "set", &tap, "up"])?;
        Ok(tap)
    }

    /// A client namespace joined to the bridge by a veth; its `eth0` has `mac`.
    pub fn add_client(&mut self, mac: &str) -> Result<ClientNs> {
        let index = self.clients.len();
        let ns = format!("{}-c{index}", self.name);
        let port = format!("vc{index}");
        run_ok("ip", &["netns", "add", &ns])?;
        self.clients.push(ns.clone());
        let srv = self.server_ns.as_str();
        run_ok("ip", &["-n", srv, "link", "add", &port, "type", "veth", "peer", "name", CLIENT_IF, "netns", &ns])?;
        run_ok("ip", &["-n", srv, "link", "set", &port, "master", BRIDGE])?;
        run_ok("ip", &["-n", srv, "link", "set", &port, "up"])?;
        run_ok("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        run_ok("ip", &["-n", &ns, "link", "set", CLIENT_IF, "address", mac])?;
        run_ok("ip", &["-n", &ns, "link", "set", CLIENT_IF, "up"])?;
        Ok(ClientNs { ns, mac: mac.to_owned() })
    }

    /// `ip netns exec SERVER_NS program`
    pub fn server_command(&self, program: &str) -> Command {
        netns_command(&self.server_ns, program)
    }

    /// Run `f` inside the server namespace.
    pub fn in_server_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        in_netns(&self.server_ns, f)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.ra.take());
        if std::env::var_os("PORTAPXE_LAB_KEEP").is_some() {
            let dir = std::mem::replace(
                &mut self.dir,
                match tempfile::tempdir() {
                    Ok(dir) => dir,
                    Err(_) => return,
                },
            );
            eprintln!("[lab] PORTAPXE_LAB_KEEP: kept {}", dir.keep().display());
        }
        let mut namespaces = self.clients.clone();
        namespaces.push(self.server_ns.clone());
        for ns in &namespaces {
            kill_leftovers(ns);
            if let Err(error) = run_ok("ip", &["netns", "del", ns]) {
                eprintln!("[lab] could not delete namespace {ns}: {error:#}");
            }
        }
    }
}

/// Processes still inside one of our namespaces (a daemonized dhclient, a server a
/// panicking test did not stop) were started by this lab: stop them by PID.
fn kill_leftovers(ns: &str) {
    let Ok(listed) = run_ok("ip", &["netns", "pids", ns]) else { return };
    let pids: Vec<u32> = listed.stdout.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    if pids.is_empty() {
        return;
    }
    eprintln!("[lab] stopping leftover processes in {ns}: {pids:?}");
    for &pid in &pids {
        crate::process::signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
    }
    thread::sleep(std::time::Duration::from_millis(500));
    let Ok(listed) = run_ok("ip", &["netns", "pids", ns]) else { return };
    for pid in listed.stdout.split_whitespace().filter_map(|p| p.parse().ok()) {
        crate::process::signal_pid(pid, nix::sys::signal::Signal::SIGKILL);
    }
}
