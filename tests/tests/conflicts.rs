//! The conflict detector against real foreign servers: dnsmasq in its own namespaces
//! on the lab bridge, once as a rogue full DHCP server with a PXE boot file, once as a
//! proxyDHCP (PXE menu only, no addresses).
//!
//! 1. `portapxe scan` on a quiet segment: exit 0, `[]`; an unknown interface: exit 2;
//!    an interface that is up but has no address yet can still be scanned.
//! 2. `portapxe scan --json` beside the rogue and the proxy reports both, with roles,
//!    server ids, the rogue's offer and boot file; exit 1.
//! 3. `serve --mode dhcp` refuses to start while the rogue answers (exit 1, the rogue's
//!    address and `--mode proxy` in the message, no DHCP answer: a udhcpc client gets
//!    its lease from the rogue); `--force-dhcp` starts anyway and answers clients.
//! 4. A rogue that appears while PortaPXE serves: a client's DHCP (broadcast flag, so the
//!    rogue's OFFER is a broadcast) raises a conflict event naming it, within 5 s;
//!    a client's REQUEST naming another server raises one too, and gets no answer.
//! 5. A BIOS guest boots from PortaPXE in dhcp mode: DISCOVER→OFFER, REQUEST→ACK, then
//!    boot.ipxe, vmlinuz, initrd.img over HTTP, in that order, and our own replies never
//!    raise a conflict event. (`boot_bios.rs` checks the files and sizes, not the order
//!    nor the absence of conflict events.)
//!
//! `portapxe scan` sends DHCP broadcasts: it runs only inside a lab namespace.
//! The tests in this file run one at a time (a file-local lock): the detection delay
//! in 4 should not measure a QEMU boot running beside it on two cores.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::daemon::Daemon;
use portapxe_lab::events::{Event, EventsExt, Phase};
use portapxe_lab::expect::{self, dhcp_story, transfer_story};
use portapxe_lab::netns::{BRIDGE, in_netns};
use portapxe_lab::process::{Finished, Guarded, run_bounded, wait_until};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::standin::{Ping, dnsmasq_command};
use portapxe_lab::{ClientNs, Lab, Server, ServerSpec, binary, boot_setup, mac_bytes, pool, wire};
use serde::Deserialize;

/// The rogue full DHCP server: 10.77.N.2, hands out .50–.90 and `pxelinux.0` from itself.
const ROGUE_MAC: &str = "52:54:00:cf:00:02";
const ROGUE_HOST: u8 = 2;
const ROGUE_RANGE: (u8, u8) = (50, 90);
const ROGUE_BOOT_FILE: &str = "pxelinux.0";
/// The proxyDHCP: 10.77.N.3, one x86PC menu item `pxelinux` (dnsmasq adds the `.0` layer).
const PROXY_MAC: &str = "52:54:00:cf:00:03";
const PROXY_HOST: u8 = 3;
/// The host that runs `portapxe scan`: 10.77.N.9.
const SCANNER_MAC: &str = "52:54:00:cf:00:09";
const SCANNER_HOST: u8 = 9;

/// How long `scan` listens (its `--timeout`).
const SCAN_LISTEN_SECS: &str = "2";
/// Bound for one `scan` run: listening, the 4011 round and start-up, with room to spare.
const SCAN_BOUND: Duration = Duration::from_secs(30);
/// Bound for a `serve` that should refuse: the probe (4.5 s), then exit.
const REFUSAL_BOUND: Duration = Duration::from_secs(30);
/// A conflict must be reported this soon after the rogue's first answer.
const DETECTION_LIMIT: Duration = Duration::from_secs(5);

/// Tests here run one at a time (see the module comment).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// The JSON contract of `scan --json` and of `{"kind":"conflict"}` events, mirrored
// here on purpose (the test checks what the binary writes).

#[derive(Debug, Clone, Deserialize)]
struct Sighting {
    server_id: Ipv4Addr,
    source: Ipv4Addr,
    mac: Option<String>,
    role: String,
    message: String,
    offered_address: Option<Ipv4Addr>,
    next_server: Option<Ipv4Addr>,
    boot_file: Option<String>,
    pxe: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct ConflictEvent {
    server: Sighting,
    summary: String,
    expected: bool,
}

/// Every `conflict` event in an events file so far (complete lines only); a conflict
/// line that does not match the contract fails the test.
fn conflicts_in(path: &Path) -> Vec<ConflictEvent> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok().map(|value| (line, value)))
        .filter(|(_, value)| value["kind"] == "conflict")
        .map(|(line, value)| {
            serde_json::from_value(value)
                .unwrap_or_else(|error| panic!("conflict event does not match the contract ({error}): {line}"))
        })
        .collect()
}

fn show(conflicts: &[ConflictEvent]) -> String {
    if conflicts.is_empty() {
        return "  (no conflict events)".into();
    }
    conflicts
        .iter()
        .map(|c| format!("  expected={} {:?}: {}", c.expected, c.server, c.summary))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------
// Foreign servers: dnsmasq in a namespace of its own on the lab bridge.

/// A foreign DHCP server (dnsmasq, or busybox udhcpd) in its own namespace, stopped by PID on drop.
struct Foreign {
    /// Runs while this lives; its log is shown when a test fails.
    _daemon: Daemon,
    ip: Ipv4Addr,
}

impl Foreign {
    /// Full DHCP with a PXE boot file: `--dhcp-range` + `--dhcp-boot=pxelinux.0,,IP`.
    fn rogue(lab: &mut Lab) -> Self {
        Self::rogue_with(lab, Ping::Off)
    }

    /// The same rogue with dnsmasq's default ping: its first offer comes about 3 s late.
    fn pinging_rogue(lab: &mut Lab) -> Self {
        Self::rogue_with(lab, Ping::AsShipped)
    }

    fn rogue_with(lab: &mut Lab, ping: Ping) -> Self {
        let ip = lab.ip(ROGUE_HOST);
        let range = format!("--dhcp-range={},{},255.255.255.0,1h", lab.ip(ROGUE_RANGE.0), lab.ip(ROGUE_RANGE.1));
        let boot = format!("--dhcp-boot={ROGUE_BOOT_FILE},,{ip}");
        Self::start(lab, "rogue", ROGUE_MAC, ROGUE_HOST, &[range, boot], ping)
    }

    /// proxyDHCP: no addresses, a PXE menu with one x86PC item (boot file `pxelinux.0`).
    fn proxy(lab: &mut Lab) -> Self {
        let range = format!("--dhcp-range={},proxy", lab.ip(0));
        let service = "--pxe-service=x86PC,Boot from the proxy,pxelinux".to_owned();
        Self::start(lab, "proxy", PROXY_MAC, PROXY_HOST, &[range, service], Ping::Off)
    }

    fn start(lab: &mut Lab, what: &'static str, mac: &str, host: u8, role_args: &[String], ping: Ping) -> Self {
        let ns = lab.add_client(mac).unwrap();
        let ip = lab.ip(host);
        ns.add_address(ip).unwrap();
        let log = lab.dir().join(format!("{what}-dnsmasq.log"));
        let lease_file = lab.dir().join(format!("{what}-dnsmasq.leases"));
        let pid_file = lab.dir().join(format!("{what}-dnsmasq.pid"));
        let command = dnsmasq_command(&ns, role_args, ping, &lease_file, &pid_file);
        Self::spawn(what, ip, command, &pid_file, lease_file, log)
    }

    /// Runs `command` (the server, in its namespace at `ip`) with its output in `log`;
    /// ready once it has written its pid file (after binding).
    fn spawn(what: &str, ip: Ipv4Addr, command: Command, pid_file: &Path, lease_file: PathBuf, log: PathBuf) -> Self {
        let install = "apt-get install dnsmasq-base busybox-static";
        let mut daemon = Daemon::start(&format!("the {what} DHCP server at {ip}"), command, &log, install)
            .unwrap()
            .show_on_failure(&lease_file);
        daemon.wait_for_pid_file(pid_file).unwrap();
        Self { _daemon: daemon, ip }
    }

    /// busybox udhcpd as shipped: it checks each address with an ARP ping (2 s) before
    /// it offers, so its first offer comes about 2 s late.
    fn udhcpd(lab: &mut Lab) -> Self {
        let ns = lab.add_client(ROGUE_MAC).unwrap();
        let ip = lab.ip(ROGUE_HOST);
        ns.add_address(ip).unwrap();
        let log = lab.dir().join("udhcpd.log");
        let lease_file = lab.dir().join("udhcpd.leases");
        let pid_file = lab.dir().join("udhcpd.pid");
        let config = lab.dir().join("udhcpd.conf");
        std::fs::write(
            &config,
            format!(
                "start {}\nend {}\ninterface {}\nlease_file {}\npidfile {}\noption subnet 255.255.255.0\n",
                lab.ip(ROGUE_RANGE.0),
                lab.ip(ROGUE_RANGE.1),
                ns.interface(),
                lease_file.display(),
                pid_file.display()
            ),
        )
        .unwrap();
        let mut command = ns.command("busybox");
        command.arg("udhcpd").arg("-f").arg(&config);
        Self::spawn("udhcpd", ip, command, &pid_file, lease_file, log)
    }
}

fn rogue_range(lab: &Lab) -> RangeInclusive<Ipv4Addr> {
    lab.ip(ROGUE_RANGE.0)..=lab.ip(ROGUE_RANGE.1)
}

// ---------------------------------------------------------------------------
// Running the binary by hand: `scan`, and a `serve` that is expected to refuse.

/// A finished command and how long it took.
struct Timed {
    finished: Finished,
    elapsed: Duration,
}

impl Timed {
    fn code(&self) -> Option<i32> {
        self.finished.status.code()
    }
}

/// `portapxe scan --interface eth0 --timeout 2 [extra…]` inside `host`'s namespace.
fn scan(host: &ClientNs, extra: &[&str]) -> Timed {
    let mut command = host.command(&binary::portapxe().display().to_string());
    command.args(["scan", "--interface", host.interface(), "--timeout", SCAN_LISTEN_SECS]).args(extra);
    command.env("NO_COLOR", "1");
    eprintln!("[conflicts] {command:?}");
    let started = Instant::now();
    let finished = run_bounded("portapxe scan", &mut command, SCAN_BOUND).unwrap();
    Timed { finished, elapsed: started.elapsed() }
}

/// `scan --json`, parsed; fails with the output when it is not the documented array.
fn scan_json(host: &ClientNs) -> (Timed, Vec<Sighting>) {
    let run = scan(host, &["--json"]);
    let sightings: Vec<Sighting> = serde_json::from_str(&run.finished.stdout)
        .unwrap_or_else(|error| panic!("scan --json printed no valid array ({error}):\n{}", run.finished));
    eprintln!(
        "[conflicts] scan --json: exit {:?} after {:.1} s, {} server(s):\n{}",
        run.code(),
        run.elapsed.as_secs_f64(),
        sightings.len(),
        run.finished.stdout.trim_end()
    );
    (run, sightings)
}

/// A scanning host at 10.77.N.9.
fn scanner(lab: &mut Lab) -> ClientNs {
    let host = lab.add_client(SCANNER_MAC).unwrap();
    host.add_address(lab.ip(SCANNER_HOST)).unwrap();
    host
}

/// `portapxe serve` with `spec` (full DHCP), run to completion in the server namespace;
/// the events go to `events`.
/// `serve --mode dhcp` beside the rogue at `rogue` (`what` says which): it must refuse
/// (exit 1) and name the rogue.
fn refused_beside(lab: &Lab, spec: &ServerSpec, events: &Path, rogue: Ipv4Addr, what: &str) -> Timed {
    let refused = serve_to_completion(lab, spec, events);
    eprintln!(
        "[conflicts] serve --mode dhcp beside {what}: exit {:?} after {:.1} s",
        refused.code(),
        refused.elapsed.as_secs_f64()
    );
    assert_eq!(refused.code(), Some(1), "serve must refuse (exit 1) beside {what}:\n{}", refused.finished);
    let named = format!("another DHCP server already answers on {BRIDGE}: DHCP server {rogue}");
    assert!(refused.finished.stderr.contains(&named), "stderr must contain {named:?}:\n{}", refused.finished);
    refused
}

fn serve_to_completion(lab: &Lab, spec: &ServerSpec, events: &Path) -> Timed {
    let mut command = lab.server_command(&binary::portapxe().display().to_string());
    command.args(["serve", "--interface", BRIDGE, "--mode", "dhcp", "--pool", &spec.pool]);
    command
        .arg("--root")
        .arg(&spec.root)
        .arg("--state-dir")
        .arg(spec.state_dir.as_ref().expect("a state folder"))
        .arg("--events")
        .arg(events);
    command.args(&spec.extra).env("NO_COLOR", "1");
    eprintln!("[conflicts] expecting a refusal: {command:?}");
    let started = Instant::now();
    let finished = run_bounded("portapxe serve (expected to refuse)", &mut command, REFUSAL_BOUND)
        .unwrap_or_else(|error| panic!("portapxe serve did not refuse within {REFUSAL_BOUND:?}: {error:#}"));
    Timed { finished, elapsed: started.elapsed() }
}

/// busybox udhcpc with `-B` (ask for broadcast replies), in the background; its hook
/// writes `ip=` and `serverid=` to `out` once bound.
fn udhcpc_broadcast(client: &ClientNs, work: &Path) -> (Guarded, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(work).unwrap();
    let out = work.join(format!("udhcpc-B-{}.env", client.ns));
    let hook = work.join(format!("udhcpc-B-{}.hook", client.ns));
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n\
             {{ echo \"ip=$ip\"; echo \"serverid=$serverid\"; }} > {0}.tmp && mv {0}.tmp {0}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = client.command("udhcpc");
    command.args(["-i", client.interface(), "-f", "-q", "-n", "-B", "-t", "4", "-T", "2", "-s"]).arg(&hook);
    let bios = PxeIdentity::bios();
    command.args(["-V", &bios.vendor_class, "-x", "0x5d:0000"]);
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    (Guarded::spawn("udhcpc -B", &mut command).unwrap(), out)
}

// ---------------------------------------------------------------------------

#[test]
fn scan_on_a_quiet_segment_finds_nothing() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("scan-quiet").unwrap();
    let host = scanner(&mut lab);

    let (run, sightings) = scan_json(&host);
    assert!(sightings.is_empty(), "nothing answers DHCP on this segment, but scan reported:\n{}", run.finished);
    assert_eq!(run.finished.stdout.trim(), "[]", "an empty scan prints `[]`:\n{}", run.finished);
    assert_eq!(run.code(), Some(0), "scan with no server answering must exit 0:\n{}", run.finished);

    let table = scan(&host, &[]);
    assert_eq!(table.code(), Some(0), "scan (table) with no server answering must exit 0:\n{}", table.finished);

    let mut command = host.command(&binary::portapxe().display().to_string());
    command.args(["scan", "--interface", "no-such-if0", "--json"]);
    let bad = run_bounded("portapxe scan (unknown interface)", &mut command, SCAN_BOUND).unwrap();
    assert_eq!(bad.status.code(), Some(2), "scan on an unknown interface must exit 2:\n{bad}");
    assert!(bad.stderr.contains("no-such-if0"), "the error must name the interface:\n{bad}");
}

/// A technician's laptop that just got plugged in has no address yet: scanning must
/// still work (the 4011 round is what needs an address).
#[test]
fn scan_works_on_an_interface_without_an_address() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("scan-noaddr").unwrap();
    let rogue = Foreign::rogue(&mut lab);
    let host = lab.add_client(SCANNER_MAC).unwrap();

    let run = scan(&host, &["--json"]);
    assert_eq!(
        run.code(),
        Some(1),
        "scan on {} (up, no IPv4 address) must still probe and find the rogue {} (exit 1):\n{}",
        host.interface(),
        rogue.ip,
        run.finished
    );
    let sightings: Vec<Sighting> = serde_json::from_str(&run.finished.stdout)
        .unwrap_or_else(|error| panic!("scan --json printed no valid array ({error}):\n{}", run.finished));
    let found = sightings.iter().find(|s| s.server_id == rogue.ip);
    assert!(
        found.is_some_and(|s| s.role == "address_server" && s.offered_address.is_some()),
        "the rogue {} was not reported as an address server:\n{}",
        rogue.ip,
        run.finished
    );
}

#[test]
fn scan_reports_a_rogue_dhcp_server_and_a_proxy() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("scan-foreign").unwrap();
    let rogue = Foreign::rogue(&mut lab);
    let proxy = Foreign::proxy(&mut lab);
    let host = scanner(&mut lab);

    let (run, sightings) = scan_json(&host);
    let output = &run.finished;
    assert_eq!(run.code(), Some(1), "scan must exit 1 when servers answered:\n{output}");
    let ids: Vec<Ipv4Addr> = sightings.iter().map(|s| s.server_id).collect();
    assert_eq!(
        sightings.len(),
        2,
        "expected exactly the rogue {} and the proxy {}, got {ids:?}:\n{output}",
        rogue.ip,
        proxy.ip
    );

    let found = |ip: Ipv4Addr| {
        sightings.iter().find(|s| s.server_id == ip).unwrap_or_else(|| panic!("{ip} not reported:\n{output}"))
    };
    let r = found(rogue.ip);
    assert_eq!(r.role, "address_server", "rogue role:\n{output}");
    assert_eq!(r.source, rogue.ip, "rogue source:\n{output}");
    assert_eq!(r.message, "OFFER", "rogue message:\n{output}");
    let offered = r.offered_address.unwrap_or_else(|| panic!("the rogue's offer has no address:\n{output}"));
    assert!(rogue_range(&lab).contains(&offered), "rogue offered {offered}, outside its range {:?}", rogue_range(&lab));
    assert_eq!(r.boot_file.as_deref(), Some(ROGUE_BOOT_FILE), "rogue boot file:\n{output}");
    assert_eq!(r.next_server, Some(rogue.ip), "rogue next-server:\n{output}");
    // Capture runs beside the probe (root here), so each sender's Ethernet address is known.
    for (sighting, mac) in [(r, ROGUE_MAC), (found(proxy.ip), PROXY_MAC)] {
        assert!(
            sighting.mac.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(mac)),
            "{} MAC:\n{output}",
            sighting.server_id
        );
    }

    let p = found(proxy.ip);
    assert_eq!(p.role, "proxy_dhcp", "proxy role:\n{output}");
    assert_eq!(p.source, proxy.ip, "proxy source:\n{output}");
    assert!(p.pxe, "the proxy speaks PXE (option 60 PXEClient, option 43):\n{output}");
    assert_eq!(p.offered_address, None, "a proxy offers no address:\n{output}");
    // dnsmasq's menu proxy names the file only when asked for its boot item on 4011, as scan does.
    {
        let file = p.boot_file.as_deref().unwrap_or_else(|| panic!("no boot file from the proxy's 4011:\n{output}"));
        assert_eq!(file, "pxelinux.0", "proxy boot file:\n{output}");
    }
    eprintln!(
        "[conflicts] proxy {}: boot file {:?}, next-server {:?} (dnsmasq's menu proxy gives the file only for a boot-item request)",
        proxy.ip, p.boot_file, p.next_server
    );

    let table = scan(&host, &[]);
    let text = &table.finished.stdout;
    assert_eq!(table.code(), Some(1), "scan (table) must exit 1 when servers answered:\n{}", table.finished);
    for (ip, role) in [(rogue.ip, "dhcp"), (proxy.ip, "proxydhcp")] {
        assert!(
            text.lines().any(|line| line.starts_with(&ip.to_string()) && line.split_whitespace().nth(1) == Some(role)),
            "the table has no `{ip} {role}` row:\n{text}"
        );
    }
    eprintln!("[conflicts] scan (table), {:.1} s:\n{}", table.elapsed.as_secs_f64(), text.trim_end());
}

/// A server that pings before it offers (dnsmasq as shipped, so every Pi-hole) answers
/// about 3 s late: the gate still hears it (it once listened only 2 s).
#[test]
fn full_dhcp_refuses_to_start_beside_a_server_that_pings_before_offering() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("gate-ping").unwrap();
    let rogue = Foreign::pinging_rogue(&mut lab);
    let spec = ServerSpec::new(&lab).unwrap();
    let events = lab.dir().join("events-refused.jsonl");
    refused_beside(&lab, &spec, &events, rogue.ip, "a pinging dnsmasq");
}

/// busybox udhcpd checks an address for 2 s before it offers; it once offered at 2.02 s,
/// just after the gate had stopped listening, and PortaPXE started beside it.
#[test]
fn full_dhcp_refuses_to_start_beside_busybox_udhcpd() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("gate-udhcpd").unwrap();
    let rogue = Foreign::udhcpd(&mut lab);
    let spec = ServerSpec::new(&lab).unwrap();
    let events = lab.dir().join("events-refused.jsonl");
    refused_beside(&lab, &spec, &events, rogue.ip, "busybox udhcpd");
}

#[test]
fn full_dhcp_refuses_to_start_beside_a_rogue_unless_forced() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("gate").unwrap();
    let rogue = Foreign::rogue(&mut lab);
    let spec = ServerSpec::new(&lab).unwrap();
    let work = lab.dir().join("clients");

    // Refused: exit 1, the rogue named, proxy mode suggested, nothing answered.
    let events = lab.dir().join("events-refused.jsonl");
    let refused = refused_beside(&lab, &spec, &events, rogue.ip, "the rogue");
    let stderr = &refused.finished.stderr;
    assert!(stderr.contains("--mode proxy"), "stderr must suggest --mode proxy:\n{}", refused.finished);
    let refused_events = portapxe_lab::events::read(&events).unwrap();
    assert!(
        refused_events.dhcp().is_empty(),
        "a refused server answered DHCP:\n{}",
        std::fs::read_to_string(&events).unwrap_or_default()
    );
    let seen = conflicts_in(&events);
    assert!(
        seen.iter().any(|c| c.server.server_id == rogue.ip && !c.expected),
        "the refused start should have reported the rogue as an unexpected conflict:\n{}",
        show(&seen)
    );

    // A client on the segment is served by the rogue alone.
    let client = lab.add_client("52:54:00:cf:01:01").unwrap();
    let lease = clients::udhcpc(&client, &PxeIdentity::bios(), &work).unwrap();
    assert_eq!(lease.raw.get("serverid").map(String::as_str), Some(rogue.ip.to_string().as_str()), "lease {lease:?}");
    assert!(rogue_range(&lab).contains(&lease.address), "lease {lease:?} not from the rogue's range");
    assert!(portapxe_lab::events::read(&events).unwrap().dhcp().is_empty(), "a refused server answered DHCP");
    eprintln!("[conflicts] udhcpc {} got {} from {}", client.mac, lease.address, rogue.ip);

    // --force-dhcp: it starts, reports the rogue, and answers clients.
    let mut forced = spec.clone();
    forced.extra.push("--force-dhcp".into());
    let started = Instant::now();
    let mut server = Server::start(&lab, &forced).unwrap();
    eprintln!("[conflicts] serve --force-dhcp ready after {:.1} s", started.elapsed().as_secs_f64());
    let seen = conflicts_in(&server.events_path);
    assert!(
        seen.iter().any(|c| c.server.server_id == rogue.ip && c.server.role == "address_server" && !c.expected),
        "--force-dhcp must still report the rogue:\n{}",
        show(&seen)
    );
    let other = lab.add_client("52:54:00:cf:01:02").unwrap();
    let lease = clients::udhcpc(&other, &PxeIdentity::bios(), &work).unwrap();
    let events = server.wait_for_events("an OFFER of ours to the second client", Duration::from_secs(10), |e| {
        e.dhcp_for(&other.mac).iter().any(|d| d.answered.as_deref() == Some("OFFER"))
    });
    eprintln!(
        "[conflicts] forced: udhcpc {} took {} from {:?}; our answers:\n{}",
        other.mac,
        lease.address,
        lease.raw.get("serverid"),
        dhcp_story(&events, &other.mac)
    );
    server.assert_alive();
}

#[test]
fn a_rogue_that_appears_while_serving_is_reported_within_seconds() {
    let _serial = one_at_a_time();
    let mut lab = Lab::new("watch").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    let mut server = Server::start(&lab, &spec).unwrap();
    let quiet = conflicts_in(&server.events_path);
    assert!(quiet.is_empty(), "no other server is there yet:\n{}", show(&quiet));

    let rogue = Foreign::rogue(&mut lab);
    std::thread::sleep(Duration::from_millis(500));
    let unprompted = conflicts_in(&server.events_path);
    assert!(unprompted.is_empty(), "nobody asked the rogue anything yet:\n{}", show(&unprompted));

    let client = lab.add_client("52:54:00:cf:02:01").unwrap();
    let work = lab.dir().join("clients");
    let started = Instant::now();
    let (mut udhcpc, out) = udhcpc_broadcast(&client, &work);
    // Polled every 5 ms (not the harness's 50 ms) so the printed delay means something.
    let deadline = started + Duration::from_secs(20);
    let seen = loop {
        let found = conflicts_in(&server.events_path);
        if found.iter().any(|c| c.server.server_id == rogue.ip) {
            break Some(found);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let delay = started.elapsed();
    let status = udhcpc.wait_timeout(Duration::from_secs(30));
    drop(udhcpc);
    let lease = std::fs::read_to_string(&out).unwrap_or_default().replace('\n', " ");
    let Some(seen) = seen else {
        panic!(
            "no conflict event naming the rogue {} within 20 s of the client's start (udhcpc {status:?}, {lease}):\n{}",
            rogue.ip,
            show(&conflicts_in(&server.events_path))
        );
    };
    eprintln!(
        "DETECTION DELAY rogue_appears_while_serving: {} ms from the client's start (limit {DETECTION_LIMIT:?}); udhcpc {status:?}: {lease}",
        delay.as_millis()
    );
    let conflict = seen.iter().find(|c| c.server.server_id == rogue.ip).unwrap();
    assert!(
        delay <= DETECTION_LIMIT,
        "the rogue was reported {delay:?} after the client started (limit {DETECTION_LIMIT:?})"
    );
    assert!(!conflict.expected, "a second DHCP server in dhcp mode is not expected: {conflict:?}");
    assert_eq!(conflict.server.role, "address_server", "{conflict:?}");
    assert!(conflict.server.offered_address.is_some_and(|a| rogue_range(&lab).contains(&a)), "{conflict:?}");
    assert!(
        conflict.summary.starts_with("another DHCP server is on this network: ")
            && conflict.summary.contains(&rogue.ip.to_string()),
        "summary: {:?}",
        conflict.summary
    );
    assert!(seen.iter().all(|c| c.server.server_id != server.ip), "our own server was reported:\n{}", show(&seen));
    assert_eq!(seen.len(), 1, "one rogue, one event (a repeat sighting is not news):\n{}", show(&seen));

    // Full DHCP stops answering at once: never two servers fighting over each client.
    server.wait_for_events("full DHCP to stop answering", DETECTION_LIMIT, |events| {
        events
            .services()
            .iter()
            .any(|s| s.service == "dhcp" && !s.ok && s.message.starts_with("stopped answering DHCP"))
    });
    const LATE_MAC: &str = "52:54:00:cf:02:02";
    let late = lab.add_client(LATE_MAC).unwrap();
    let (mut udhcpc, _) = udhcpc_broadcast(&late, &work);
    udhcpc.wait_timeout(Duration::from_secs(30));
    drop(udhcpc);
    let answered: Vec<String> = server.events().dhcp_for(LATE_MAC).iter().filter_map(|d| d.answered.clone()).collect();
    assert!(answered.is_empty(), "we still answered a client beside the rogue: {answered:?}");
    server.assert_alive();
}

/// A client that took another server's offer says so in its (broadcast) REQUEST; the
/// server hears it on port 67 even when that server's OFFER was unicast and never
/// reached us. Hand-built, because which offer a real client takes is a race.
#[test]
fn a_client_request_naming_another_server_is_reported() {
    const MAC: &str = "52:54:00:cf:04:01";
    let _serial = one_at_a_time();
    let mut lab = Lab::new("request").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    let mut server = Server::start(&lab, &spec).unwrap();
    let client = lab.add_client(MAC).unwrap();
    let other = lab.ip(ROGUE_HOST);
    let wanted = lab.ip(ROGUE_RANGE.0);

    let mut request = wire::bootp_header(mac_bytes(MAC), 0x00c0_ff11, true);
    request.extend_from_slice(&[53, 1, 3]);
    request.extend_from_slice(&[54, 4]);
    request.extend_from_slice(&other.octets());
    request.extend_from_slice(&[50, 4]);
    request.extend_from_slice(&wanted.octets());
    request.push(255);
    request.resize(300, 0);
    let started = Instant::now();
    in_netns(&client.ns, || -> anyhow::Result<()> {
        let socket = wire::dhcp_client_socket(client.interface())?;
        socket.send_to(&request, (Ipv4Addr::BROADCAST, 67))?;
        Ok(())
    })
    .unwrap()
    .unwrap();

    let seen = wait_until(Duration::from_secs(10), || {
        let found = conflicts_in(&server.events_path);
        found.iter().any(|c| c.server.server_id == other).then_some(found)
    })
    .unwrap_or_else(|| {
        panic!(
            "no conflict event naming {other} within 10 s of a REQUEST that names it:\n{}\nour DHCP events:\n{}",
            show(&conflicts_in(&server.events_path)),
            dhcp_story(&server.events(), MAC)
        )
    });
    eprintln!("[conflicts] REQUEST naming {other} reported after {} ms", started.elapsed().as_millis());
    let conflict = seen.iter().find(|c| c.server.server_id == other).unwrap();
    assert!(!conflict.expected && conflict.server.role == "address_server", "{conflict:?}");
    assert!(conflict.summary.contains(&other.to_string()), "summary: {:?}", conflict.summary);
    // And we stay silent: the client chose someone else.
    let events = server
        .wait_for_events("our DHCP event for the REQUEST", Duration::from_secs(5), |e| !e.dhcp_for(MAC).is_empty());
    assert!(
        events.dhcp_for(MAC).iter().all(|d| d.answered.is_none()),
        "we answered a REQUEST meant for {other}:\n{}",
        dhcp_story(&events, MAC)
    );
    server.assert_alive();
}

/// Anyone on the segment can send an OFFER: one that answers no client request seen
/// here (a forged one, naming a made-up server) is reported as such and stops nothing,
/// and full DHCP goes on answering clients. The same holds for a reply relayed for
/// another network (giaddr outside the lab's subnet).
#[test]
fn a_forged_or_foreign_relayed_offer_stops_nothing() {
    const FORGER_MAC: &str = "52:54:00:cf:05:01";
    const CLIENT_MAC: &str = "52:54:00:cf:05:02";
    let _serial = one_at_a_time();
    let mut lab = Lab::new("forged").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    let mut server = Server::start(&lab, &spec).unwrap();
    let forger = lab.add_client(FORGER_MAC).unwrap();
    let forged_server = lab.ip(ROGUE_HOST);
    let relayed_server = Ipv4Addr::new(192, 0, 2, 1);

    let offer = |server_id: Ipv4Addr, relay: Option<Ipv4Addr>, xid: u32| {
        let mut reply = wire::bootp_header(mac_bytes(CLIENT_MAC), xid, true);
        reply[0] = 2; // BOOTREPLY
        reply[16..20].copy_from_slice(&lab.ip(ROGUE_RANGE.0).octets()); // yiaddr
        if let Some(relay) = relay {
            reply[24..28].copy_from_slice(&relay.octets()); // giaddr
        }
        reply.extend_from_slice(&[53, 1, 2, 54, 4]);
        reply.extend_from_slice(&server_id.octets());
        reply.push(255);
        reply.resize(300, 0);
        reply
    };
    in_netns(&forger.ns, || -> anyhow::Result<()> {
        let socket = wire::dhcp_client_socket(forger.interface())?;
        socket.send_to(&offer(forged_server, None, 0x0f0f_0001), (Ipv4Addr::BROADCAST, 68))?;
        socket
            .send_to(&offer(relayed_server, Some([198, 51, 100, 1].into()), 0x0f0f_0002), (Ipv4Addr::BROADCAST, 68))?;
        Ok(())
    })
    .unwrap()
    .unwrap();

    let seen = wait_until(Duration::from_secs(10), || {
        let found = conflicts_in(&server.events_path);
        (found.len() >= 2).then_some(found)
    })
    .unwrap_or_else(|| panic!("two reports expected within 10 s:\n{}", show(&conflicts_in(&server.events_path))));
    let forged = seen.iter().find(|c| c.server.server_id == forged_server).expect("the forged offer is reported");
    assert!(
        forged.summary.contains("it answers no client request seen here: forged")
            && forged.summary.ends_with("Nothing changes here"),
        "summary: {:?}",
        forged.summary
    );
    let relayed = seen.iter().find(|c| c.server.server_id == relayed_server).expect("the relayed offer is reported");
    assert!(
        relayed.summary.contains("was relayed for another network (relay agent 198.51.100.1)"),
        "{:?}",
        relayed.summary
    );

    // Full DHCP still answers: a real client gets our lease.
    let client = lab.add_client(CLIENT_MAC).unwrap();
    let work = lab.dir().join("clients");
    let (mut udhcpc, out) = udhcpc_broadcast(&client, &work);
    udhcpc.wait_timeout(Duration::from_secs(30));
    drop(udhcpc);
    let answered: Vec<String> =
        server.events().dhcp_for(CLIENT_MAC).iter().filter_map(|d| d.answered.clone()).collect();
    assert!(!answered.is_empty(), "full DHCP stopped for a forged offer: {}", dhcp_story(&server.events(), CLIENT_MAC));
    let lease = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(lease.contains(&format!("serverid={}", server.ip)), "the client took our offer: {lease}");
    assert!(
        server.events().services().iter().all(|s| !s.message.starts_with("stopped answering DHCP")),
        "full DHCP stopped"
    );
    server.assert_alive();
}

#[test]
fn a_bios_guest_boots_in_dhcp_mode_without_a_conflict() {
    const MAC: &str = "52:54:00:cf:03:01";
    let _serial = one_at_a_time();
    let mut lab = Lab::new("conflicts-bios").unwrap();
    let (spec, guest) = boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME conflicts bios_ipxe_rom: {:.1} s", boot.elapsed.as_secs_f64());
    let events = server.wait_for_kernel_and_initrd();
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    let story = || format!("DHCP:\n{}\ntransfers:\n{}", dhcp_story(&events, MAC), transfer_story(&events));

    // Positions in the event stream.
    let position = |what: &str, hit: &dyn Fn(&Event) -> bool| {
        events.iter().position(hit).unwrap_or_else(|| panic!("no event for {what}; {}", story()))
    };
    let dhcp = |received: &'static str, answered: &'static str| move |e: &Event| matches!(e, Event::Dhcp(d) if d.mac.eq_ignore_ascii_case(MAC) && d.received == received && d.answered.as_deref() == Some(answered));
    let finished = |file: &'static str, size: Option<u64>| {
        move |e: &Event| {
            matches!(e, Event::Transfer(t) if t.protocol == "http" && t.name() == file && t.client.ip() == address
                && matches!(t.phase, Phase::Finished { bytes } if size.is_none_or(|s| s == bytes)))
        }
    };
    let steps = [
        ("DISCOVER → OFFER", position("DISCOVER → OFFER", &dhcp("DISCOVER", "OFFER"))),
        ("REQUEST → ACK", position("REQUEST → ACK", &dhcp("REQUEST", "ACK"))),
        ("boot.ipxe finished", position("boot.ipxe finished", &finished("boot.ipxe", None))),
        (
            "vmlinuz finished",
            position("vmlinuz finished (bytes = file size)", &finished("vmlinuz", Some(guest.kernel_size()))),
        ),
        (
            "initrd.img finished",
            position("initrd.img finished (bytes = file size)", &finished("initrd.img", Some(guest.initrd_size()))),
        ),
    ];
    for pair in steps.windows(2) {
        assert!(
            pair[0].1 < pair[1].1,
            "{} (event #{}) must come before {} (event #{}); {}",
            pair[0].0,
            pair[0].1,
            pair[1].0,
            pair[1].1,
            story()
        );
    }
    let seen = conflicts_in(&server.events_path);
    assert!(seen.is_empty(), "our own replies raised conflict events:\n{}", show(&seen));
    eprintln!("[conflicts] order: {:?}", steps.map(|(what, at)| format!("#{at} {what}")));
}
