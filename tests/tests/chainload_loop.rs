//! The iPXE chainload loop is broken: a firmware PXE client gets the iPXE loader once,
//! and the same machine, once it runs iPXE, gets the script URL — never the loader again.

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::events::{EventsExt, is_script_url};
use portapxe_lab::expect::{self, finished_once};
use portapxe_lab::guest::{BIOS_FILE, IPXE_DIR, UEFI_FILE};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, boot_setup, pool};

const VM_MAC: &str = "52:54:00:c1:05:01";
const CLIENT_MAC: &str = "52:54:00:c1:05:02";

/// (a) From a real OVMF boot: `ipxe.efi` exactly once, then the script URL, then the marker.
#[test]
fn uefi_machine_gets_the_loader_once_then_the_script() {
    let mut lab = Lab::new("chain-uefi").unwrap();
    let (spec, guest) = boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiNativePxe, VM_MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME chainload_uefi: {:.1} s", boot.elapsed.as_secs_f64());

    let events = server.wait_for_kernel_and_initrd();
    let story = expect::dhcp_story(&events, VM_MAC);
    eprintln!("DHCP events of {VM_MAC}:\n{story}");
    let acks = expect::acks(&events, VM_MAC);
    let loader_acks: Vec<usize> =
        acks.iter().enumerate().filter(|(_, d)| d.boot.as_deref() == Some(UEFI_FILE)).map(|(i, _)| i).collect();
    assert_eq!(loader_acks.len(), 1, "{VM_MAC} should be ACKed with {UEFI_FILE} exactly once:\n{story}");
    assert!(!acks[loader_acks[0]].is_ipxe, "the loader went to a client that already runs iPXE:\n{story}");
    let ipxe_acks = &acks[loader_acks[0] + 1..];
    assert!(!ipxe_acks.is_empty(), "no ACK after the loader: iPXE never asked again?\n{story}");
    for ack in ipxe_acks {
        assert!(
            ack.is_ipxe && ack.boot.as_deref().is_some_and(|b| is_script_url(b, server.ip, server.http_port)),
            "after the loader, {VM_MAC} must be recognised as iPXE and get the script URL:\n{story}"
        );
    }
    // No offer of the loader to the iPXE client either (a loop shows up as OFFERs too).
    assert!(
        !events.dhcp_for(VM_MAC).iter().any(|d| d.is_ipxe && d.boot.as_deref() == Some(UEFI_FILE)),
        "iPXE was offered the loader again:\n{story}"
    );
    let firmware_ip = acks[loader_acks[0]].address.unwrap();
    let loader_size = std::fs::metadata(std::path::Path::new(IPXE_DIR).join(UEFI_FILE)).unwrap().len();
    finished_once(&events, "tftp", UEFI_FILE, firmware_ip, loader_size);
}

/// (b) With udhcpc on one MAC: arch 0 without user class gets `undionly.kpxe` (and
/// TFTP serves exactly Debian's file); with user class `iPXE`, raw or RFC 3004, the
/// same MAC gets the script URL.
#[test]
fn user_class_ipxe_gets_the_script_in_both_encodings() {
    let mut lab = Lab::new("chain-udhcpc").unwrap();
    let (spec, _guest) = boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let client = lab.add_client(CLIENT_MAC).unwrap();
    let work = lab.dir().join("clients");

    let pxe = clients::udhcpc(&client, &PxeIdentity::bios(), &work).unwrap();
    eprintln!("firmware PXE (arch 0): {pxe:?}");
    assert_eq!(pxe.boot_file(), BIOS_FILE, "arch 0 without user class: {pxe:?}");
    assert_eq!(pxe.next_server, Some(server.ip), "next-server (siaddr): {pxe:?}");
    assert!(pool(&lab).contains(&pxe.address), "{} outside the pool", pxe.address);

    client.add_address(pxe.address).unwrap();
    let fetched = clients::tftp_get(&client, server.ip, BIOS_FILE, &work).unwrap();
    let original = std::fs::read(std::path::Path::new(IPXE_DIR).join(BIOS_FILE)).unwrap();
    assert!(
        fetched == original,
        "TFTP {BIOS_FILE}: {} bytes, differs from Debian's {} bytes",
        fetched.len(),
        original.len()
    );
    client.flush_addresses().unwrap();

    for (encoding, who) in
        [("raw `iPXE`", PxeIdentity::bios().ipxe_raw()), ("RFC 3004 `\\x04iPXE`", PxeIdentity::bios().ipxe_rfc3004())]
    {
        let lease = clients::udhcpc(&client, &who, &work).unwrap();
        eprintln!("user class {encoding}: {lease:?}");
        assert!(
            is_script_url(lease.boot_file(), server.ip, server.http_port),
            "user class {encoding}: expected the script URL http://{}/boot.ipxe, got {:?}; DHCP events:\n{}",
            server.ip,
            lease.boot_file(),
            expect::dhcp_story(&server.events(), CLIENT_MAC)
        );
        assert_eq!(lease.address, pxe.address, "same MAC, same address");
    }
}
