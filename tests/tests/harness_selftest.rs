//! Self-test of the lab harness against dnsmasq as a stand-in server (ignored by
//! default; the real tests target `portapxe`). Run it when a lab test fails and you
//! need to know whether the harness or the server is at fault:
//! `cargo test -p portapxe-lab --test harness_selftest -- --ignored --test-threads=1 --nocapture`

use std::net::SocketAddr;
use std::time::Duration;

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::guest::{self, Guest};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::standin::Dnsmasq;
use portapxe_lab::{Lab, netns, wire};

fn lab_with_dnsmasq(purpose: &str) -> (Lab, std::path::PathBuf, Guest, Dnsmasq) {
    let mut lab = Lab::new(purpose).unwrap();
    // dnsmasq as configured here sends no router advertisements: the network's router does.
    lab.add_ipv6_router().unwrap();
    let root = lab.dir().join("root");
    std::fs::create_dir_all(&root).unwrap();
    guest::install_ipxe_binaries(&root).unwrap();
    let guest = Guest::install(&root).unwrap();
    let dnsmasq = Dnsmasq::start(&lab, &root).unwrap();
    (lab, root, guest, dnsmasq)
}

#[test]
#[ignore = "harness self-test against dnsmasq"]
fn namespaces_are_wired_and_removed() {
    let names;
    {
        let mut lab = Lab::new("wiring").unwrap();
        let client = lab.add_client("52:54:00:aa:00:01").unwrap();
        client.add_address(lab.ip(250)).unwrap();
        let ping = portapxe_lab::process::run_bounded(
            "ping",
            client.command("busybox").args(["ping", "-c", "1", "-W", "2", &lab.server_ip().to_string()]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(ping.success(), "client cannot reach the server address: {ping}");
        names = vec![lab.server_ns().to_owned(), client.ns.clone()];
    }
    let listed = portapxe_lab::process::run_ok("ip", &["netns", "list"]).unwrap().stdout;
    for name in names {
        assert!(!listed.contains(&name), "namespace {name} left behind:\n{listed}");
    }
}

#[test]
#[ignore = "harness self-test against dnsmasq"]
fn dhcp_and_tftp_clients() {
    let (mut lab, root, _guest, _dnsmasq) = lab_with_dnsmasq("selftest-clients");
    let work = lab.dir().join("clients");
    let bios = lab.add_client("52:54:00:aa:00:02").unwrap();
    let lease = clients::udhcpc(&bios, &PxeIdentity::bios(), &work).unwrap();
    eprintln!("udhcpc BIOS: {lease:?}");
    assert_eq!(lease.boot_file(), "undionly.kpxe");
    assert_eq!(lease.next_server, Some(lab.server_ip()));
    let ipxe = clients::udhcpc(&bios, &PxeIdentity::bios().ipxe_raw(), &work).unwrap();
    assert_eq!(ipxe.boot_file(), "boot.ipxe", "{ipxe:?}");

    let uefi = lab.add_client("52:54:00:aa:00:03").unwrap();
    let lease = clients::dhclient(&uefi, &PxeIdentity::uefi(), &work).unwrap();
    eprintln!("dhclient UEFI: {:?} {:?} {:?}", lease.address, lease.next_server, lease.boot_file());
    assert_eq!(lease.boot_file(), "ipxe.efi", "{:?}", lease.raw);
    assert_eq!(lease.next_server, Some(lab.server_ip()), "{:?}", lease.raw);

    bios.add_address(lab.ip(251)).unwrap();
    let fetched = clients::tftp_get(&bios, lab.server_ip(), "undionly.kpxe", &work).unwrap();
    assert_eq!(fetched, std::fs::read(root.join("undionly.kpxe")).unwrap());

    let server = SocketAddr::from((lab.server_ip(), 69));
    let raw = netns::in_netns(&bios.ns, || wire::tftp_read(server, "undionly.kpxe", Duration::from_secs(20)))
        .unwrap()
        .unwrap();
    assert_eq!(raw, fetched);
    let missing = netns::in_netns(&bios.ns, || {
        wire::tftp_replies(server, &wire::tftp_request(1, b"does-not-exist"), Duration::from_secs(2))
    })
    .unwrap()
    .unwrap();
    assert!(matches!(missing.first(), Some(wire::TftpReply::Error { .. })), "{missing:?}");

    let probe = netns::in_netns(&bios.ns, || {
        let socket = wire::dhcp_client_socket("eth0")?;
        wire::probe_offer(
            &socket,
            SocketAddr::from(([255, 255, 255, 255], 67)),
            [2, 0, 0, 0, 0, 9],
            0x1234,
            Duration::from_secs(5),
        )
    })
    .unwrap()
    .unwrap();
    eprintln!("raw probe got OFFER of {}", probe.yiaddr());
}

#[test]
#[ignore = "harness self-test against dnsmasq"]
fn bios_boot() {
    let (mut lab, _root, guest, _dnsmasq) = lab_with_dnsmasq("selftest-bios");
    let tap = lab.add_tap().unwrap();
    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, "52:54:00:aa:01:01", &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BIOS stand-in boot: {:.1} s", boot.elapsed.as_secs_f64());
}

#[test]
#[ignore = "harness self-test against dnsmasq"]
fn uefi_native_boot() {
    let (mut lab, _root, guest, _dnsmasq) = lab_with_dnsmasq("selftest-uefi");
    let tap = lab.add_tap().unwrap();
    let boot = qemu::boot(&lab, &tap, Firmware::UefiNativePxe, "52:54:00:aa:01:02", &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("UEFI stand-in boot: {:.1} s", boot.elapsed.as_secs_f64());
}
