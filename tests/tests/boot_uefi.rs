//! A UEFI machine with OVMF's own PXE client (no iPXE ROM) boots Linux from portapxe.
//! With `--uefi-loader ipxe`: firmware PXE gets `ipxe.efi` over our TFTP, iPXE starts
//! and asks DHCP again, gets the generated script URL, fetches kernel and initrd over
//! HTTP. With the defaults and the signed loaders at hand (as a package brings them):
//! shim → GRUB → kernel over TFTP, Secure Boot off. The guest prints its marker.

use portapxe_lab::events::EventsExt;
use portapxe_lab::expect::{self, finished_nonempty, finished_once};
use portapxe_lab::guest::{IPXE_DIR, UEFI_FILE};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, boot_setup, pool, signed_boot_setup};

const MAC: &str = "52:54:00:e1:05:01";

#[test]
fn ovmf_native_pxe_chains_ipxe_efi_then_boots_over_http() {
    let mut lab = Lab::new("uefi").unwrap();
    let (spec, guest) = boot_setup(&lab);
    let spec = spec.arg("--uefi-loader", "ipxe");
    let ipxe_efi = std::fs::metadata(std::path::Path::new(IPXE_DIR).join(UEFI_FILE)).unwrap().len();
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiNativePxe, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME uefi_native_pxe: {:.1} s", boot.elapsed.as_secs_f64());

    let events = server.wait_for_kernel_and_initrd();
    // Firmware PXE (not iPXE) was told to load ipxe.efi, as a UEFI x64 client.
    let firmware_ack = expect::acks(&events, MAC).into_iter().find(|d| !d.is_ipxe).unwrap_or_else(|| {
        panic!("no ACK to the firmware PXE client {MAC}; DHCP events:\n{}", expect::dhcp_story(&events, MAC))
    });
    assert_eq!(
        firmware_ack.boot.as_deref(),
        Some(UEFI_FILE),
        "firmware PXE client got the wrong boot file; DHCP events:\n{}",
        expect::dhcp_story(&events, MAC)
    );
    let firmware_ip = firmware_ack.address.unwrap();
    finished_once(&events, "tftp", UEFI_FILE, firmware_ip, ipxe_efi);

    // iPXE then got the script and the kernel + initrd over HTTP.
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    finished_nonempty(&events, "http", "boot.ipxe", address);
    finished_once(&events, "http", "vmlinuz", address, guest.kernel_size());
    finished_once(&events, "http", "initrd.img", address, guest.initrd_size());
    assert!(events.dhcp_for(MAC).iter().all(|d| d.arch.is_some()), "every DHCP event of {MAC} should name its arch");
}

#[test]
fn ovmf_native_pxe_boots_the_signed_chain_by_default() {
    const SIGNED_MAC: &str = "52:54:00:e1:05:02";
    let mut lab = Lab::new("uefi-signed").unwrap();
    let (spec, guest) = signed_boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiNativePxe, SIGNED_MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME uefi_native_pxe_signed_chain: {:.1} s", boot.elapsed.as_secs_f64());
    let events = server.wait_for_kernel_and_initrd();
    expect::booted_signed_chain(&events, SIGNED_MAC, &guest);
    assert!(
        !events.transfers().iter().any(|t| t.protocol == "http"),
        "the signed GRUB reads nothing over HTTP:\n{}",
        expect::transfer_story(&events)
    );
}
