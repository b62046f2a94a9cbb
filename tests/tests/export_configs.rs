//! `portapxe export --for isc-dhcpd|kea|dnsmasq`, proven against the real servers.
//!
//! For each server: the exported text goes, as its header says, into a complete
//! configuration for that server, which runs in the foreground in a second namespace
//! joined to the lab bridge by a veth (10.77.N.2, pool 10.77.N.100–150). PortaPXE runs
//! with `--mode off` (TFTP + HTTP only, no DHCP) on the bridge. A BIOS guest (QEMU's
//! iPXE ROM) must then boot to its marker: its address from that server (the server's
//! lease file lists the guest's MAC), the iPXE script, kernel and initrd over our HTTP
//! with the exact sizes, and no DHCP answer and no TFTP loader from PortaPXE.
//! Afterwards busybox udhcpc asks the same server as BIOS, UEFI x64 (7 and 9) and ARM64
//! firmware without iPXE: each must get its loader and PortaPXE as next-server.
//!
//! The exported text is used verbatim: when a server rejects it or it boots the wrong
//! thing, the exporter (proto/src/export/) is wrong, not this test.
//!
//! Prerequisites besides the lab's: `apt-get install dnsmasq-base isc-dhcp-server
//! kea-dhcp4-server`. No packaged service is started: each daemon runs in the
//! foreground inside the lab, with its config, leases, pid and lock files in the lab
//! directory, and is stopped by PID.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::daemon::Daemon;
use portapxe_lab::events::{Event, EventsExt, Phase};
use portapxe_lab::expect::{self, dhcp_story, finished_once, has_finished, transfer_story, transfers_of};
use portapxe_lab::guest::{self, CMDLINE, Guest, INITRD_NAME, KERNEL_NAME};
use portapxe_lab::netns::ClientNs;
use portapxe_lab::process::{run_bounded, wait_until};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, ServerSpec, binary};

/// The other DHCP server's host number on the lab subnet (10.77.N.2).
const DHCP_HOST: u8 = 2;
/// The pool it hands out: 10.77.N.100–150.
const RANGE: (u8, u8) = (100, 150);
/// One boot, firmware to marker: generous, other QEMU runs may share the two cores.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// The DHCP servers `portapxe export` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Dnsmasq,
    IscDhcpd,
    Kea,
}

impl Kind {
    /// `portapxe export --for …`
    fn flag(self) -> &'static str {
        match self {
            Self::Dnsmasq => "dnsmasq",
            Self::IscDhcpd => "isc-dhcpd",
            Self::Kea => "kea",
        }
    }
}

/// One test's choices: the HTTP port (80 or not, so the exported URL must carry it)
/// and MACs distinct per test for readable logs.
struct Case {
    kind: Kind,
    http_port: u16,
    dhcp_ns_mac: &'static str,
    guest_mac: &'static str,
    firmware_client_mac: &'static str,
}

#[test]
fn dnsmasq_config_from_export_boots_a_bios_ipxe_guest() {
    export_and_boot(&Case {
        kind: Kind::Dnsmasq,
        http_port: 80,
        dhcp_ns_mac: "52:54:00:e0:01:02",
        guest_mac: "52:54:00:e0:01:10",
        firmware_client_mac: "52:54:00:e0:01:20",
    });
}

#[test]
fn isc_dhcpd_config_from_export_boots_a_bios_ipxe_guest() {
    export_and_boot(&Case {
        kind: Kind::IscDhcpd,
        http_port: 8080,
        dhcp_ns_mac: "52:54:00:e0:02:02",
        guest_mac: "52:54:00:e0:02:10",
        firmware_client_mac: "52:54:00:e0:02:20",
    });
}

#[test]
fn kea_config_from_export_boots_a_bios_ipxe_guest() {
    export_and_boot(&Case {
        kind: Kind::Kea,
        http_port: 8080,
        dhcp_ns_mac: "52:54:00:e0:03:02",
        guest_mac: "52:54:00:e0:03:10",
        firmware_client_mac: "52:54:00:e0:03:20",
    });
}

fn export_and_boot(case: &Case) {
    // The first test in this binary builds portapxe: not part of the timings.
    binary::portapxe();
    let started = Instant::now();
    let kind = case.kind;
    let mut lab = Lab::new(&format!("export-{}", kind.flag())).unwrap();
    // Boot files only: the network's own IPv6 router (standing in) ends iPXE's IPv6 wait.
    lab.add_ipv6_router().unwrap();
    let root = lab.dir().join("root");
    std::fs::create_dir_all(&root).unwrap();
    guest::install_ipxe_binaries(&root).unwrap();
    let guest = Guest::install(&root).unwrap();

    // The same serve flags go to `export` and to `serve`: what the other server is told
    // must be what PortaPXE serves.
    let mut serve_flags: Vec<String> =
        ["--kernel", KERNEL_NAME, "--initrd", INITRD_NAME, "--cmdline", CMDLINE].map(String::from).to_vec();
    if case.http_port != 80 {
        serve_flags.extend(["--http-port".into(), case.http_port.to_string()]);
    }
    let script_url = match case.http_port {
        80 => format!("http://{}/boot.ipxe", lab.server_ip()),
        port => format!("http://{}:{port}/boot.ipxe", lab.server_ip()),
    };
    let exported = export(kind, lab.server_ip(), &serve_flags);
    eprintln!("[export] `portapxe export --for {}` printed:\n{exported}", kind.flag());
    assert!(
        exported.contains(&script_url),
        "the {} export does not name the script URL {script_url}:\n{exported}",
        kind.flag()
    );

    let server = off_server(&lab, case.http_port, &serve_flags);
    let mut dhcp = OtherDhcp::start(kind, &mut lab, case.dhcp_ns_mac, &exported);
    let ready = started.elapsed();

    let tap = lab.add_tap().unwrap();
    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, case.guest_mac, &guest.marker, BOOT_TIMEOUT);
    eprintln!(
        "BOOT TIME export_{}: {:.1} s (lab + servers ready after {:.1} s)",
        kind.flag(),
        boot.elapsed.as_secs_f64(),
        ready.as_secs_f64()
    );

    // The guest's address came from the other server.
    let leased = wait_until(Duration::from_secs(10), || Some(dhcp.leased_to(case.guest_mac)).filter(|l| !l.is_empty()))
        .unwrap_or_else(|| {
            panic!(
                "{}'s lease file {} lists no lease for the guest {}:\n{}",
                kind.flag(),
                dhcp.lease_file.display(),
                case.guest_mac,
                std::fs::read_to_string(&dhcp.lease_file).unwrap_or_default()
            )
        });
    let pool = lab.ip(RANGE.0)..=lab.ip(RANGE.1);
    for ip in &leased {
        assert!(pool.contains(ip), "{} leased {ip} to {}, outside its pool {pool:?}", kind.flag(), case.guest_mac);
    }
    eprintln!("[export] {} leased {}: {leased:?}", kind.flag(), case.guest_mac);

    // Everything it booted came from PortaPXE over HTTP, to that address.
    let events =
        server.wait_for_events("HTTP transfers of kernel and initrd to finish", Duration::from_secs(10), |e| {
            has_finished(e, KERNEL_NAME) && has_finished(e, INITRD_NAME)
        });
    assert!(
        events.dhcp().is_empty(),
        "portapxe --mode off answered DHCP; its DHCP events for the guest:\n{}",
        dhcp_story(&events, case.guest_mac)
    );
    let address = leased
        .iter()
        .copied()
        .find(|ip| !transfers_of(&events, "http", KERNEL_NAME, *ip).is_empty())
        .unwrap_or_else(|| {
            panic!(
                "no HTTP transfer of {KERNEL_NAME} to an address {} leased to the guest ({leased:?}); transfers:\n{}",
                kind.flag(),
                transfer_story(&events)
            )
        });
    let script = http_get(&lab, case.http_port, "/boot.ipxe");
    let script_text = String::from_utf8_lossy(&script);
    assert!(
        script_text.starts_with("#!ipxe") && script_text.contains(KERNEL_NAME) && script_text.contains(INITRD_NAME),
        "GET /boot.ipxe did not return the generated script:\n{script_text}"
    );
    finished_once(&events, "http", "boot.ipxe", address, script.len() as u64);
    finished_once(&events, "http", KERNEL_NAME, address, guest.kernel_size());
    finished_once(&events, "http", INITRD_NAME, address, guest.initrd_size());
    for file in ["boot.ipxe", KERNEL_NAME, INITRD_NAME] {
        announced_size_matches(&events, file, address);
    }
    // QEMU's ROM is iPXE: it must get the script URL at once, never a loader over TFTP.
    let tftp: Vec<String> = events
        .transfers()
        .iter()
        .filter(|t| t.protocol == "tftp" && t.client.ip() == address)
        .map(|t| format!("{} {:?}", t.file, t.phase))
        .collect();
    assert!(
        tftp.is_empty(),
        "the iPXE ROM fetched over TFTP (the iPXE rule of the {} export did not win): {tftp:?}",
        kind.flag()
    );
    let filename_line = boot.serial.lines().find(|l| l.contains("Filename:")).unwrap_or("(no `Filename:` line)");
    eprintln!("[export] iPXE on the guest's console: {}", filename_line.trim());

    // Firmware without iPXE gets its loader, with PortaPXE as next-server.
    let firmware = lab.add_client(case.firmware_client_mac).unwrap();
    let problems = check_loaders(kind, &lab, &firmware, lab.server_ip(), case.http_port);
    assert!(
        problems.is_empty(),
        "{} with the exported config gave firmware clients the wrong boot data:\n{}",
        kind.flag(),
        problems.join("\n")
    );

    dhcp.assert_alive();
    eprintln!("TOTAL export_{}: {:.1} s", kind.flag(), started.elapsed().as_secs_f64());
}

/// UEFI HTTP boot with Secure Boot on through dnsmasq configured by `portapxe export`
/// alone: dnsmasq gives the firmware option 60 `HTTPClient` and the URL of the signed
/// chain's image; the image's GRUB then reads the menu, kernel and initrd from
/// PortaPXE's TFTP (it names PortaPXE itself: dnsmasq sends no next server for it).
#[test]
fn dnsmasq_config_from_export_boots_a_secure_boot_machine_over_uefi_http_boot() {
    const MAC: &str = "52:54:00:e0:04:10";
    const IMAGE: &str = "signed-http-boot.iso";
    binary::portapxe();
    let started = Instant::now();
    let mut lab = Lab::new("export-dnsmasq-http").unwrap();
    let root = lab.dir().join("root");
    std::fs::create_dir_all(&root).unwrap();
    guest::install_ipxe_binaries(&root).unwrap();
    guest::install_signed_loaders(&root).unwrap();
    let guest = Guest::install(&root).unwrap();
    let serve_flags: Vec<String> =
        ["--kernel", KERNEL_NAME, "--initrd", INITRD_NAME, "--cmdline", CMDLINE].map(String::from).to_vec();
    // The root tells `export` that the signed chain is served (as it tells `serve`).
    let mut export_flags = serve_flags.clone();
    export_flags.extend(["--root".to_string(), root.to_str().unwrap().to_string()]);
    let exported = export(Kind::Dnsmasq, lab.server_ip(), &export_flags);
    let url = format!("http://{}/{IMAGE}", lab.server_ip());
    assert!(
        exported.lines().any(|line| line == format!("dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-http-x64,{url}")),
        "the dnsmasq export gives HTTP boot firmware no {url}:\n{exported}"
    );

    let server = off_server(&lab, 80, &serve_flags);
    let mut dhcp = OtherDhcp::start(Kind::Dnsmasq, &mut lab, "52:54:00:e0:04:02", &exported);
    let tap = lab.add_tap().unwrap();
    let boot = qemu::boot(&lab, &tap, Firmware::UefiSecureBootHttp, MAC, &guest.marker, BOOT_TIMEOUT);
    eprintln!("BOOT TIME export_dnsmasq_uefi_secure_boot_http_boot: {:.1} s", boot.elapsed.as_secs_f64());
    expect::secure_boot_was_on(&boot);

    let events =
        server.wait_for_events("TFTP transfers of kernel and initrd to finish", Duration::from_secs(10), |e| {
            has_finished(e, KERNEL_NAME) && has_finished(e, INITRD_NAME)
        });
    assert!(events.dhcp().is_empty(), "portapxe --mode off answered DHCP:\n{}", dhcp_story(&events, MAC));
    let leased = wait_until(Duration::from_secs(10), || Some(dhcp.leased_to(MAC)).filter(|l| !l.is_empty()))
        .unwrap_or_else(|| panic!("dnsmasq's lease file lists no lease for {MAC}"));
    let address =
        leased.iter().copied().find(|ip| !transfers_of(&events, "http", IMAGE, *ip).is_empty()).unwrap_or_else(|| {
            panic!("no HTTP transfer of {IMAGE} to {leased:?}; transfers:\n{}", transfer_story(&events))
        });
    expect::finished_nonempty(&events, "http", IMAGE, address);
    expect::finished_nonempty(&events, "tftp", "grub/grub.cfg", address);
    finished_once(&events, "tftp", KERNEL_NAME, address, guest.kernel_size());
    finished_once(&events, "tftp", INITRD_NAME, address, guest.initrd_size());
    dhcp.assert_alive();
    eprintln!("TOTAL export_dnsmasq_http_boot: {:.1} s", started.elapsed().as_secs_f64());
}

/// `portapxe export --for KIND --server-ip IP FLAGS…` (pure: runs outside any namespace,
/// opens no socket).
fn export(kind: Kind, server_ip: Ipv4Addr, serve_flags: &[String]) -> String {
    let mut command = Command::new(binary::portapxe());
    command.args(["export", "--for", kind.flag(), "--server-ip", &server_ip.to_string()]).args(serve_flags);
    let finished = run_bounded("portapxe export", &mut command, Duration::from_secs(30)).unwrap();
    assert!(finished.success(), "portapxe export failed: {finished}");
    finished.stdout
}

/// The `started` event of the guest's transfer of `file` announced the size it then sent.
fn announced_size_matches(events: &[Event], file: &str, client: Ipv4Addr) {
    let transfers = transfers_of(events, "http", file, client);
    let announced: Vec<Option<u64>> = transfers
        .iter()
        .filter_map(|t| match t.phase {
            Phase::Started { size } => Some(size),
            _ => None,
        })
        .collect();
    let finished: Vec<u64> = transfers.iter().filter_map(|t| t.finished_bytes()).collect();
    assert!(
        announced.iter().all(|size| size.is_none() || finished.contains(&size.unwrap_or(0))),
        "HTTP {file} to {client}: announced sizes {announced:?}, finished {finished:?}; transfers:\n{}",
        transfer_story(events)
    );
}

/// GET `path` from PortaPXE's HTTP server (from inside the server namespace); the body.
fn http_get(lab: &Lab, port: u16, path: &str) -> Vec<u8> {
    let to = SocketAddr::from((lab.server_ip(), port));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n", lab.server_ip());
    let response = lab
        .in_server_ns(|| -> std::io::Result<Vec<u8>> {
            let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            stream.write_all(request.as_bytes())?;
            let mut bytes = Vec::new();
            stream.read_to_end(&mut bytes)?;
            Ok(bytes)
        })
        .unwrap()
        .unwrap_or_else(|error| panic!("GET http://{to}{path}: {error}"));
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP response without a header end");
    let head = String::from_utf8_lossy(&response[..split]);
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200"), "GET http://{to}{path}: {head}");
    response[split + 4..].to_vec()
}

/// busybox udhcpc as firmware without iPXE: BIOS (93 = 0), UEFI x64 (7, 9) and ARM64
/// (11) must each get their loader (PortaPXE's defaults) and PortaPXE as next-server.
/// Returns what went wrong, one line each.
fn check_loaders(kind: Kind, lab: &Lab, client: &ClientNs, server_ip: Ipv4Addr, http_port: u16) -> Vec<String> {
    let work = lab.dir().join("udhcpc");
    let who = |arch: u16| PxeIdentity {
        arch,
        vendor_class: format!("PXEClient:Arch:{arch:05}:UNDI:003016"),
        user_class: None,
    };
    let mut problems = Vec::new();
    for (arch, loader) in [(0u16, "undionly.kpxe"), (7, "ipxe.efi"), (9, "ipxe.efi"), (11, "ipxe-arm64.efi")] {
        match clients::udhcpc(client, &who(arch), &work) {
            Ok(lease) => {
                eprintln!(
                    "[export] {} → udhcpc arch {arch}: {} boot file {:?} next-server {:?}",
                    kind.flag(),
                    lease.address,
                    lease.boot_file(),
                    lease.next_server
                );
                if lease.boot_file() != loader || lease.next_server != Some(server_ip) {
                    problems.push(format!(
                        "  arch {arch}: got boot file {:?} (file field {:?}, option 67 {:?}) and next-server {:?}; \
                         expected {loader:?} from {server_ip}",
                        lease.boot_file(),
                        lease.file_field,
                        lease.bootfile_option,
                        lease.next_server
                    ));
                }
            }
            Err(error) => problems.push(format!("  arch {arch}: {error:#}")),
        }
    }
    // UEFI HTTP boot firmware: the loader's URL on PortaPXE's HTTP, and option 60
    // `HTTPClient` (EDK2 ignores an offer without it).
    let http = match http_port {
        80 => format!("http://{server_ip}"),
        port => format!("http://{server_ip}:{port}"),
    };
    for (arch, loader) in [(16u16, "ipxe.efi"), (19, "ipxe-arm64.efi")] {
        let expected = format!("{http}/{loader}");
        match clients::udhcpc(client, &PxeIdentity::http_boot(arch), &work) {
            Ok(lease) => {
                eprintln!(
                    "[export] {} → udhcpc HTTP boot arch {arch}: {} boot file {:?} option 60 {:?}",
                    kind.flag(),
                    lease.address,
                    lease.boot_file(),
                    lease.vendor_class
                );
                if lease.boot_file() != expected || lease.vendor_class != "HTTPClient" {
                    problems.push(format!(
                        "  HTTP boot arch {arch}: got boot file {:?} (file field {:?}, option 67 {:?}) and option 60 \
                         {:?}; expected {expected:?} with \"HTTPClient\"",
                        lease.boot_file(),
                        lease.file_field,
                        lease.bootfile_option,
                        lease.vendor_class,
                    ));
                }
            }
            Err(error) => problems.push(format!("  HTTP boot arch {arch}: {error:#}")),
        }
    }
    problems
}

/// `portapxe serve --mode off` with `serve_flags` (the flags `export` was given): TFTP
/// and HTTP on the bridge, no DHCP at all.
fn off_server(lab: &Lab, http_port: u16, serve_flags: &[String]) -> Server {
    let mut spec = ServerSpec::new(lab).unwrap().off();
    spec.http_port = http_port;
    // The spec passes the HTTP port itself.
    let mut flags = serve_flags.iter();
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--http-port" => drop(flags.next()),
            _ => spec.extra.push(flag.clone()),
        }
    }
    Server::start(lab, &spec).unwrap_or_else(|error| panic!("{error:#}"))
}

/// The network's DHCP server, configured with the exported text, in its own namespace
/// (10.77.N.2 on a veth port of the lab bridge), in the foreground, stopped by PID.
struct OtherDhcp {
    kind: Kind,
    daemon: Daemon,
    /// Kept so the namespace is known to live as long as the server.
    _host: ClientNs,
    lease_file: PathBuf,
}

impl OtherDhcp {
    fn start(kind: Kind, lab: &mut Lab, mac: &str, exported: &str) -> Self {
        let host = lab.add_client(mac).unwrap();
        host.add_address(lab.ip(DHCP_HOST)).unwrap();
        let dir = lab.dir().join(kind.flag());
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("server.log");
        let (first, last) = (lab.ip(RANGE.0), lab.ip(RANGE.1));
        let subnet = Ipv4Addr::new(10, 77, lab.net, 0);
        let iface = host.interface();
        let (config, lease_file, command, ready) = match kind {
            Kind::Dnsmasq => {
                let config = dir.join("dnsmasq.conf");
                let lease_file = dir.join("dnsmasq.leases");
                std::fs::write(&config, dnsmasq_config(exported, iface)).unwrap();
                let mut command = host.command("dnsmasq");
                command.arg(format!("--conf-file={}", config.display()));
                command.args(["--no-daemon", "--port=0", "--no-ping", "--log-dhcp", "--no-resolv", "--no-hosts"]);
                command.arg(format!("--dhcp-range={first},{last},255.255.255.0,1h"));
                command.arg(format!("--dhcp-leasefile={}", lease_file.display()));
                command.arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
                (config, lease_file, command, "DHCP, IP range")
            }
            Kind::IscDhcpd => {
                let config = dir.join("dhcpd.conf");
                let lease_file = dir.join("dhcpd.leases");
                std::fs::write(&lease_file, "").unwrap();
                std::fs::write(&config, isc_config(exported, subnet, first, last)).unwrap();
                let mut command = host.command("dhcpd");
                command.args(["-4", "-f", "-d", "-cf"]).arg(&config).arg("-lf").arg(&lease_file);
                command.arg("-pf").arg(dir.join("dhcpd.pid")).arg(iface);
                (config, lease_file, command, "Server starting service.")
            }
            Kind::Kea => {
                let config = dir.join("kea-dhcp4.conf");
                let lease_file = dir.join("kea-leases4.csv");
                let text = kea_config(exported, iface, subnet, first, last, &lease_file);
                std::fs::write(&config, text).unwrap();
                let mut command = host.command("kea-dhcp4");
                command.arg("-c").arg(&config);
                command.env("KEA_LOCKFILE_DIR", &dir).env("KEA_PIDFILE_DIR", &dir);
                (config, lease_file, command, "DHCP4_STARTED")
            }
        };
        eprintln!(
            "[export] {} config {}:\n{}",
            kind.flag(),
            config.display(),
            std::fs::read_to_string(&config).unwrap_or_default()
        );
        let install = "apt-get install dnsmasq-base isc-dhcp-server kea-dhcp4-server";
        let daemon = Daemon::start(&format!("{} (the exported config)", kind.flag()), command, &log, install);
        let mut daemon =
            daemon.unwrap_or_else(|error| panic!("{error:#}")).show_on_failure(&config).show_on_failure(&lease_file);
        // Kea carries on without a socket it could not open: that is a failure here.
        let broken = |log: &str| log.lines().find(|l| l.contains("DHCPSRV_OPEN_SOCKET_FAIL")).map(str::to_owned);
        if let Err(error) = daemon.wait_ready(|log| log.contains(ready), broken) {
            panic!("{error:#}");
        }
        Self { kind, daemon, _host: host, lease_file }
    }

    fn assert_alive(&mut self) {
        self.daemon.assert_alive();
    }

    /// Addresses the server's lease file gives to `mac`.
    fn leased_to(&self, mac: &str) -> Vec<Ipv4Addr> {
        let text = std::fs::read_to_string(&self.lease_file).unwrap_or_default();
        let leases = match self.kind {
            Kind::Dnsmasq => dnsmasq_leases(&text),
            Kind::IscDhcpd => isc_leases(&text),
            Kind::Kea => kea_leases(&text),
        };
        let mut addresses: Vec<Ipv4Addr> =
            leases.into_iter().filter(|(m, _)| m.eq_ignore_ascii_case(mac)).map(|(_, ip)| ip).collect();
        // Kea's memfile appends a line per renewal; dhcpd one block per lease update.
        addresses.sort();
        addresses.dedup();
        addresses
    }
}

/// dnsmasq: the exported lines as they are, plus where to listen (the range, lease file
/// and the rest are on the command line).
fn dnsmasq_config(exported: &str, iface: &str) -> String {
    format!("# Site settings (the test's)\ninterface={iface}\nbind-interfaces\n\n{exported}")
}

/// isc-dhcpd: as the exported header says, option definitions at the top level and
/// everything else inside the subnet block, verbatim.
fn isc_config(exported: &str, subnet: Ipv4Addr, first: Ipv4Addr, last: Ipv4Addr) -> String {
    let is_definition = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.first() == Some(&"option") && words.get(2) == Some(&"code")
    };
    let top: Vec<&str> = exported.lines().filter(|l| is_definition(l)).collect();
    let inner: Vec<String> = exported.lines().filter(|l| !is_definition(l)).map(|l| format!("    {l}")).collect();
    format!(
        "# Site settings (the test's): no DNS updates, answer at once (no ping before an offer).\n\
         ddns-update-style none;\nauthoritative;\nping-check false;\ndefault-lease-time 3600;\nmax-lease-time 7200;\n\n\
         # From `portapxe export --for isc-dhcpd`: top level\n{}\n\n\
         subnet {subnet} netmask 255.255.255.0 {{\n    range {first} {last};\n\n\
         # From `portapxe export --for isc-dhcpd`: subnet block\n{}\n}}\n",
        top.join("\n"),
        inner.join("\n")
    )
}

/// Kea: the exported `Dhcp4.client-classes` merged into a complete kea-dhcp4 config.
fn kea_config(
    exported: &str,
    iface: &str,
    subnet: Ipv4Addr,
    first: Ipv4Addr,
    last: Ipv4Addr,
    lease_file: &Path,
) -> String {
    let fragment: serde_json::Value = serde_json::from_str(exported)
        .unwrap_or_else(|error| panic!("the kea export is not JSON ({error}):\n{exported}"));
    let classes = fragment["Dhcp4"]["client-classes"].clone();
    assert!(classes.is_array(), "the kea export has no Dhcp4.client-classes array:\n{exported}");
    let config = serde_json::json!({
        "Dhcp4": {
            "interfaces-config": { "interfaces": [iface], "dhcp-socket-type": "raw" },
            "lease-database": {
                "type": "memfile",
                "persist": true,
                "name": lease_file.display().to_string(),
                "lfc-interval": 0
            },
            "valid-lifetime": 3600,
            "subnet4": [{
                "id": 1,
                "subnet": format!("{subnet}/24"),
                "pools": [{ "pool": format!("{first} - {last}") }]
            }],
            "client-classes": classes,
            "loggers": [
                { "name": "kea-dhcp4", "output_options": [{ "output": "stdout" }], "severity": "INFO" },
                // Which client classes each packet got: the evidence when a class misfires.
                { "name": "kea-dhcp4.eval", "output_options": [{ "output": "stdout" }],
                  "severity": "DEBUG", "debuglevel": 55 }
            ]
        }
    });
    serde_json::to_string_pretty(&config).unwrap()
}

/// dnsmasq lease lines: `EXPIRY MAC IP HOSTNAME CLIENT-ID`.
fn dnsmasq_leases(text: &str) -> Vec<(String, Ipv4Addr)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let mac = fields.next()?.to_owned();
            Some((mac, fields.next()?.parse().ok()?))
        })
        .collect()
}

/// dhcpd.leases: `lease IP { … hardware ethernet MAC; … binding state active; … }`; active leases only.
fn isc_leases(text: &str) -> Vec<(String, Ipv4Addr)> {
    let mut leases = Vec::new();
    let (mut ip, mut mac, mut active) = (None, None, false);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("lease ") {
            ip = rest.split_whitespace().next().and_then(|a| a.parse::<Ipv4Addr>().ok());
            (mac, active) = (None, false);
        } else if let Some(rest) = line.strip_prefix("hardware ethernet ") {
            mac = Some(rest.trim_end_matches(';').to_owned());
        } else if line == "binding state active;" {
            active = true;
        } else if line == "}"
            && let (Some(ip), Some(mac), true) = (ip.take(), mac.take(), active)
        {
            leases.push((mac, ip));
        }
    }
    leases
}

/// Kea memfile CSV: a header naming the columns, then one lease per line.
fn kea_leases(text: &str) -> Vec<(String, Ipv4Addr)> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let columns: Vec<&str> = header.split(',').collect();
    let (Some(address), Some(hwaddr)) =
        (columns.iter().position(|c| *c == "address"), columns.iter().position(|c| *c == "hwaddr"))
    else {
        return Vec::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            Some((fields.get(hwaddr)?.to_string(), fields.get(address)?.parse().ok()?))
        })
        .collect()
}

#[test]
fn lease_file_parsers() {
    let isc = "lease 10.77.1.100 {\n  starts 4 2026/11/22 12:00:00;\n  binding state active;\n  \
               hardware ethernet 52:54:00:e0:02:10;\n}\nlease 10.77.1.101 {\n  binding state free;\n  \
               hardware ethernet 52:54:00:e0:02:11;\n}\n";
    assert_eq!(isc_leases(isc), [("52:54:00:e0:02:10".to_owned(), Ipv4Addr::new(10, 77, 1, 100))]);
    let kea = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n\
               10.77.1.100,52:54:00:e0:03:10,,3600,1795000000,1,0,0,,0,\n";
    assert_eq!(kea_leases(kea), [("52:54:00:e0:03:10".to_owned(), Ipv4Addr::new(10, 77, 1, 100))]);
    let dnsmasq = "1795000000 52:54:00:e0:01:10 10.77.1.100 * 01:52:54:00:e0:01:10\n";
    assert_eq!(dnsmasq_leases(dnsmasq), [("52:54:00:e0:01:10".to_owned(), Ipv4Addr::new(10, 77, 1, 100))]);
}
