//! Secure Boot machines boot through the signed chain PortaPXE serves by default:
//! OVMF with Secure Boot on and Microsoft's keys → shimx64.efi (signed by Microsoft's
//! UEFI CA) → grubx64.efi (Debian's network GRUB) → the generated GRUB config → Debian's
//! signed kernel, all over our TFTP. Nothing in the command line mentions Secure Boot.

use std::time::Duration;

use portapxe_lab::events::EventsExt;
use portapxe_lab::expect::{self, has_finished};
use portapxe_lab::guest::{self, GRUB_FILE, SHIM_FILE};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, boot_setup};

#[test]
fn a_secure_boot_machine_boots_the_signed_chain_with_the_defaults() {
    const MAC: &str = "52:54:00:5b:00:01";
    let mut lab = Lab::new("secure-boot").unwrap();
    let (spec, guest) = boot_setup(&lab);
    guest::install_signed_loaders(&spec.root).unwrap();
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiSecureBoot, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME uefi_secure_boot_signed_chain: {:.1} s", boot.elapsed.as_secs_f64());
    assert!(
        boot.serial.contains("Secure boot enabled"),
        "the kernel did not report Secure Boot on; serial:\n{}",
        boot.serial
    );
    let events = server.wait_for_events("TFTP transfers of kernel and initrd", Duration::from_secs(5), |e| {
        has_finished(e, "vmlinuz") && has_finished(e, "initrd.img")
    });
    let firmware_ack = expect::acks(&events, MAC).into_iter().find(|d| !d.is_ipxe).unwrap_or_else(|| {
        panic!("no ACK to the firmware PXE client {MAC}; DHCP events:\n{}", expect::dhcp_story(&events, MAC))
    });
    assert_eq!(firmware_ack.boot.as_deref(), Some(SHIM_FILE), "{}", expect::dhcp_story(&events, MAC));
    for file in [SHIM_FILE, GRUB_FILE, "grub/grub.cfg", "vmlinuz", "initrd.img"] {
        assert!(
            events.transfers().iter().any(|t| t.protocol == "tftp" && t.name() == file && t.finished_bytes().is_some()),
            "no finished TFTP transfer of {file}; transfers:\n{}",
            expect::transfer_story(&events)
        );
    }
}
