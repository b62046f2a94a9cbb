//! proxyDHCP (`portapxe serve --mode proxy`) beside the network's own DHCP server.
//!
//! The network's DHCP server is dnsmasq, addresses only (no PXE, no boot options, no
//! TFTP), in a second namespace on the lab bridge. PortaPXE answers PXE clients with
//! a proxy offer (no address) on port 67 and an ACK on port 4011; the guest must take
//! its address from dnsmasq and everything it boots from us:
//! - BIOS: QEMU's iPXE ROM gets the script URL from our proxy offer;
//! - UEFI: OVMF's own PXE client gets `ipxe.efi` over our TFTP, iPXE asks again and
//!   gets the script;
//! - UEFI with Secure Boot on (the signed loaders in place): OVMF gets shim from our
//!   proxy answer, shim GRUB, and GRUB its config, kernel and initrd, all from our TFTP,
//!   while its address is dnsmasq's.

use std::net::Ipv4Addr;
use std::time::Duration;

use portapxe_lab::events::{DhcpRole, Event, EventsExt, is_script_url};
use portapxe_lab::expect::{self, dhcp_story, transfer_story};
use portapxe_lab::guest::{GRUB_FILE, Guest, IPXE_DIR, SHIM_FILE, UEFI_FILE};
use portapxe_lab::process::wait_until;
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::standin::NetworkDhcp;
use portapxe_lab::{Lab, Server, ServerSpec, boot_setup, signed_boot_setup};

/// The MAC of the namespace the network's DHCP server runs in.
const NETWORK_DHCP_MAC: &str = "52:54:00:d4:c9:02";
/// dnsmasq's address: 10.77.N.2; it hands out 10.77.N.50–90.
const NETWORK_DHCP_HOST: u8 = 2;
const RANGE: (u8, u8) = (50, 90);

/// The two answers a proxyDHCP server may give; neither may carry an address.
const PROXY_ANSWERS: [(DhcpRole, &str); 2] = [(DhcpRole::Proxy, "OFFER"), (DhcpRole::BootServer, "ACK")];

/// Lab + the network's DHCP server (dnsmasq) + portapxe in proxy mode + guest files.
/// Dropped in reverse order: guest, server, dnsmasq, then the lab's namespaces.
fn proxy_lab(purpose: &str) -> (Lab, NetworkDhcp, Server, Guest) {
    proxy_lab_with(purpose, boot_setup, |_| Vec::new())
}

/// `network_args`: more for the network's dnsmasq, given PortaPXE's address.
fn proxy_lab_with(
    purpose: &str,
    setup: fn(&Lab) -> (ServerSpec, Guest),
    network_args: fn(Ipv4Addr) -> Vec<String>,
) -> (Lab, NetworkDhcp, Server, Guest) {
    let mut lab = Lab::new(purpose).unwrap();
    // Proxy mode never advertises: the network's own IPv6 router (if any) does.
    lab.add_ipv6_router().unwrap();
    let range = lab.ip(RANGE.0)..=lab.ip(RANGE.1);
    let extra = network_args(lab.server_ip());
    let network = NetworkDhcp::start_with(&mut lab, NETWORK_DHCP_MAC, NETWORK_DHCP_HOST, range, &extra).unwrap();
    let (spec, guest) = setup(&lab);
    let server = Server::start(&lab, &spec.proxy()).unwrap();
    (lab, network, server, guest)
}

/// The guest's address came from dnsmasq, not from us: dnsmasq leased `mac` an address
/// in its range, and every DHCP event of ours for `mac` is either silence or a proxy
/// answer without an address. Returns the addresses dnsmasq leased to `mac`.
fn address_came_from_the_network(events: &[Event], network: &NetworkDhcp, mac: &str) -> Vec<Ipv4Addr> {
    let leased = wait_until(Duration::from_secs(5), || Some(network.leased_to(mac)).filter(|l| !l.is_empty()))
        .unwrap_or_else(|| {
            panic!(
                "dnsmasq's lease file {} lists no lease for {mac}:\n{}\nour DHCP events for {mac}:\n{}",
                network.lease_file.display(),
                std::fs::read_to_string(&network.lease_file).unwrap_or_default(),
                dhcp_story(events, mac)
            )
        });
    for ip in &leased {
        assert!(network.range.contains(ip), "dnsmasq leased {ip} to {mac}, outside its range {:?}", network.range);
    }
    let ours = events.dhcp_for(mac);
    for event in &ours {
        assert!(
            event.address.is_none(),
            "proxyDHCP gave {mac} an address ({:?} with {:?}); our DHCP events:\n{}",
            event.answered,
            event.address,
            dhcp_story(events, mac)
        );
        if let Some(answered) = event.answered.as_deref() {
            assert!(
                PROXY_ANSWERS.contains(&(event.role, answered)),
                "proxyDHCP answered {mac} with {answered:?}, expected only {PROXY_ANSWERS:?}; our DHCP events:\n{}",
                dhcp_story(events, mac)
            );
        }
    }
    assert!(
        ours.iter().any(|e| e.answered.is_some()),
        "proxyDHCP never answered {mac}; our DHCP events:\n{}",
        dhcp_story(events, mac)
    );
    eprintln!("[proxy] dnsmasq leased {mac}: {leased:?}; our answers:\n{}", dhcp_story(events, mac));
    leased
}

/// Some proxy answer to `mac` (as iPXE or not, per `ipxe`) named `boot`.
fn answered_boot(events: &[Event], mac: &str, ipxe: bool, what: &str, boot: impl Fn(&str) -> bool) {
    let found = events
        .dhcp_for(mac)
        .iter()
        .any(|d| d.answered.is_some() && d.is_ipxe == ipxe && d.boot.as_deref().is_some_and(&boot));
    assert!(found, "no proxy answer gave {mac} (iPXE: {ipxe}) {what}; our DHCP events:\n{}", dhcp_story(events, mac));
}

/// Exactly one finished `protocol` transfer of `file`, to an address dnsmasq leased to
/// the guest, with `size` bytes (or any non-zero size when `None`).
fn served_to_leased_client(events: &[Event], protocol: &str, file: &str, leased: &[Ipv4Addr], size: Option<u64>) {
    let finished: Vec<(Ipv4Addr, u64)> = events
        .transfers()
        .into_iter()
        .filter(|t| t.protocol == protocol && t.name() == file)
        .filter_map(|t| match t.client.ip() {
            std::net::IpAddr::V4(ip) => t.finished_bytes().map(|bytes| (ip, bytes)),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    let [(client, bytes)] = finished[..] else {
        panic!(
            "expected one finished {protocol} transfer of {file}, got {finished:?}; transfer events:\n{}",
            transfer_story(events)
        )
    };
    assert!(
        leased.contains(&client),
        "{protocol} {file} went to {client}, not to an address dnsmasq leased the guest ({leased:?}); \
         transfer events:\n{}",
        transfer_story(events)
    );
    match size {
        Some(size) => assert_eq!(bytes, size, "{protocol} {file} to {client}: {bytes} bytes sent, file has {size}"),
        None => assert!(bytes > 0, "{protocol} {file} to {client} finished with 0 bytes"),
    }
}

#[test]
fn bios_ipxe_rom_boots_from_proxy_dhcp_beside_dnsmasq() {
    const MAC: &str = "52:54:00:b1:0d:01";
    let (mut lab, network, server, guest) = proxy_lab("proxy-bios");
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME proxy_bios_ipxe_rom: {:.1} s", boot.elapsed.as_secs_f64());

    let events = server.wait_for_kernel_and_initrd();
    let leased = address_came_from_the_network(&events, &network, MAC);
    answered_boot(&events, MAC, true, "the script URL", |b| is_script_url(b, server.ip, server.http_port));
    served_to_leased_client(&events, "http", "boot.ipxe", &leased, None);
    served_to_leased_client(&events, "http", "vmlinuz", &leased, Some(guest.kernel_size()));
    served_to_leased_client(&events, "http", "initrd.img", &leased, Some(guest.initrd_size()));
}

#[test]
fn ovmf_native_pxe_chains_ipxe_efi_from_proxy_dhcp_beside_dnsmasq() {
    const MAC: &str = "52:54:00:e1:0d:01";
    let (mut lab, network, server, guest) = proxy_lab("proxy-uefi");
    let ipxe_efi = std::fs::metadata(std::path::Path::new(IPXE_DIR).join(UEFI_FILE)).unwrap().len();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiNativePxe, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME proxy_uefi_native_pxe: {:.1} s", boot.elapsed.as_secs_f64());

    let events = server.wait_for_kernel_and_initrd();
    let leased = address_came_from_the_network(&events, &network, MAC);
    // Firmware PXE (not iPXE) was told ipxe.efi, then fetched it from our TFTP.
    answered_boot(&events, MAC, false, UEFI_FILE, |b| b == UEFI_FILE);
    served_to_leased_client(&events, "tftp", UEFI_FILE, &leased, Some(ipxe_efi));
    // iPXE then got the script and kernel + initrd over our HTTP.
    answered_boot(&events, MAC, true, "the script URL", |b| is_script_url(b, server.ip, server.http_port));
    served_to_leased_client(&events, "http", "boot.ipxe", &leased, None);
    served_to_leased_client(&events, "http", "vmlinuz", &leased, Some(guest.kernel_size()));
    served_to_leased_client(&events, "http", "initrd.img", &leased, Some(guest.initrd_size()));
}

/// Secure Boot in proxy mode: Debian's signed GRUB reads its menu from the next server
/// of the network's DHCP ACK, not from our proxy offer (without a next server naming us
/// it stops at "Welcome to GRUB!", seen here). With the network's DHCP server naming
/// PortaPXE as next server, as the start-up warning says to, the machine boots.
#[test]
fn a_secure_boot_machine_boots_the_signed_chain_from_proxy_dhcp_beside_dnsmasq() {
    const MAC: &str = "52:54:00:e1:5b:01";
    let next_server = |ours: Ipv4Addr| vec![format!("--dhcp-boot={SHIM_FILE},portapxe,{ours}")];
    let (mut lab, network, server, guest) = proxy_lab_with("proxy-sb", signed_boot_setup, next_server);
    server.wait_for_events("the proxy-mode warning", Duration::from_secs(5), |events| {
        events.services().iter().any(|s| !s.ok && s.message.contains(&format!("next-server to {}", server.ip)))
    });
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiSecureBoot, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME proxy_uefi_secure_boot_signed_chain: {:.1} s", boot.elapsed.as_secs_f64());
    expect::secure_boot_was_on(&boot);

    let events = server.wait_for_kernel_and_initrd();
    let leased = address_came_from_the_network(&events, &network, MAC);
    // The firmware was told shim in our proxy answer; shim, GRUB and its config, then
    // the kernel and initrd all came from our TFTP to the address dnsmasq leased.
    answered_boot(&events, MAC, false, SHIM_FILE, |b| b == SHIM_FILE);
    for file in [SHIM_FILE, GRUB_FILE] {
        served_to_leased_client(&events, "tftp", file, &leased, None);
    }
    served_to_leased_client(&events, "tftp", "vmlinuz", &leased, Some(guest.kernel_size()));
    served_to_leased_client(&events, "tftp", "initrd.img", &leased, Some(guest.initrd_size()));
}

/// UEFI HTTP boot with Secure Boot in proxy mode, beside a DHCP server that names no
/// next server: the image PortaPXE serves names PortaPXE's TFTP itself, so the machine
/// boots where the PXE chain stops at GRUB (see the test above).
#[test]
fn a_secure_boot_machine_boots_over_uefi_http_boot_from_proxy_dhcp_beside_dnsmasq() {
    const MAC: &str = "52:54:00:e1:5b:02";
    let (mut lab, network, server, guest) = proxy_lab_with("proxy-sb-http", signed_boot_setup, |_| Vec::new());
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiSecureBootHttp, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME proxy_uefi_secure_boot_http_boot: {:.1} s", boot.elapsed.as_secs_f64());
    expect::secure_boot_was_on(&boot);
    let events = server.wait_for_kernel_and_initrd();
    let leased = address_came_from_the_network(&events, &network, MAC);
    served_to_leased_client(&events, "http", "signed-http-boot.iso", &leased, None);
    served_to_leased_client(&events, "tftp", "vmlinuz", &leased, Some(guest.kernel_size()));
    served_to_leased_client(&events, "tftp", "initrd.img", &leased, Some(guest.initrd_size()));
}
