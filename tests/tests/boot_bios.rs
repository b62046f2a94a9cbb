//! A BIOS machine whose NIC ROM is iPXE (QEMU's e1000 ROM) boots Linux from portapxe:
//! DHCP gives it an address and, because it is iPXE, the generated script URL; the
//! script fetches kernel and initrd over our HTTP; the guest prints its marker.

use portapxe_lab::expect::{self, finished_nonempty, finished_once};
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, boot_setup, pool};

const MAC: &str = "52:54:00:b1:05:01";

#[test]
fn bios_ipxe_rom_boots_the_generated_script_over_http() {
    let mut lab = Lab::new("bios").unwrap();
    let (spec, guest) = boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME bios_ipxe_rom: {:.1} s", boot.elapsed.as_secs_f64());

    // Events are written as they happen; give the last "finished" a moment to land.
    let events = server.wait_for_kernel_and_initrd();
    let address = expect::acked_script(&events, MAC, server.ip, server.http_port, &pool(&lab));
    finished_nonempty(&events, "http", "boot.ipxe", address);
    finished_once(&events, "http", "vmlinuz", address, guest.kernel_size());
    finished_once(&events, "http", "initrd.img", address, guest.initrd_size());
}
