//! Secure Boot machines boot through the signed chain PortaPXE serves by default:
//! OVMF with Secure Boot on and Microsoft's keys → shimx64.efi (signed by Microsoft's
//! UEFI CA) → grubx64.efi (Debian's network GRUB) → the generated GRUB config → Debian's
//! signed kernel, all over our TFTP. Nothing in the command line mentions Secure Boot.

use std::time::Duration;

use portapxe_lab::events::EventsExt;
use portapxe_lab::expect::{self, has_finished};
use portapxe_lab::process::wait_until;
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::server::status_client;
use portapxe_lab::{Lab, Server, guest, signed_boot_setup};

#[test]
fn a_secure_boot_machine_boots_the_signed_chain_with_the_defaults() {
    const MAC: &str = "52:54:00:5b:00:01";
    let mut lab = Lab::new("secure-boot").unwrap();
    let (spec, guest) = signed_boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiSecureBoot, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME uefi_secure_boot_signed_chain: {:.1} s", boot.elapsed.as_secs_f64());
    expect::secure_boot_was_on(&boot);
    let events = server.wait_for_kernel_and_initrd();
    expect::booted_signed_chain(&events, MAC, &guest);
}

/// An ARM64 machine with Secure Boot on (AAVMF with Microsoft's keys) boots through
/// Debian's arm64 shim and network GRUB, which reads the same generated configuration,
/// to Debian's signed arm64 kernel: what PortaPXE gives ARM64 UEFI PXE clients by
/// default once `shimaa64.efi` and `grubaa64.efi` are served (every installer has them).
#[test]
fn an_arm64_secure_boot_machine_boots_the_signed_chain() {
    const MAC: &str = "52:54:00:5b:00:64";
    let mut lab = Lab::new("secure-boot-arm64").unwrap();
    let (mut spec, _x64) = signed_boot_setup(&lab);
    let guest = portapxe_lab::guest::Guest::install_arm64(&spec.root).unwrap();
    spec.extra = guest.arm64_server_args();
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    // AAVMF's start and the kernel under TCG emulation of ARM64 take longer than x64.
    let boot = qemu::boot(&lab, &tap, Firmware::Arm64SecureBoot, MAC, &guest.marker, Duration::from_secs(300));
    eprintln!("BOOT TIME arm64_secure_boot_signed_chain: {:.1} s", boot.elapsed.as_secs_f64());
    expect::secure_boot_was_on(&boot);
    let events = server.wait_for_events("the arm64 kernel and initrd", Duration::from_secs(5), |e| {
        has_finished(e, guest::ARM64_KERNEL_NAME) && has_finished(e, guest::ARM64_INITRD_NAME)
    });
    let ack = expect::acks(&events, MAC).into_iter().find(|ack| !ack.is_ipxe);
    let ack = ack.unwrap_or_else(|| panic!("no ACK to {MAC}:\n{}", expect::dhcp_story(&events, MAC)));
    assert_eq!(ack.arch.as_deref(), Some("UEFI ARM64"), "{}", expect::dhcp_story(&events, MAC));
    assert_eq!(ack.boot.as_deref(), Some("shimaa64.efi"), "{}", expect::dhcp_story(&events, MAC));
    let address = ack.address.expect("an address");
    for file in ["shimaa64.efi", "grubaa64.efi", "grub/grub.cfg"] {
        expect::finished_nonempty(&events, "tftp", file, address);
    }
    expect::finished_once(&events, "tftp", guest::ARM64_KERNEL_NAME, address, guest.kernel_size());
    expect::finished_once(&events, "tftp", guest::ARM64_INITRD_NAME, address, guest.initrd_size());
}

/// UEFI HTTP boot under Secure Boot: the firmware gets the ISO holding shim and GRUB
/// over HTTP and boots it as a RAM disk; GRUB brings up the card and reads the menu,
/// kernel and initrd from our TFTP.
#[test]
fn a_secure_boot_machine_boots_the_signed_chain_over_uefi_http_boot() {
    const MAC: &str = "52:54:00:5b:00:04";
    const IMAGE: &str = "signed-http-boot.iso";
    let mut lab = Lab::new("secure-boot-http").unwrap();
    let (spec, guest) = signed_boot_setup(&lab);
    let server = Server::start(&lab, &spec).unwrap();
    let tap = lab.add_tap().unwrap();

    let boot = qemu::boot(&lab, &tap, Firmware::UefiSecureBootHttp, MAC, &guest.marker, qemu::BOOT_TIMEOUT);
    eprintln!("BOOT TIME uefi_secure_boot_http_boot_signed_chain: {:.1} s", boot.elapsed.as_secs_f64());
    expect::secure_boot_was_on(&boot);
    let events = server.wait_for_kernel_and_initrd();
    let url = format!("http://{}/{IMAGE}", server.ip);
    let told = expect::acks(&events, MAC).into_iter().find(|ack| ack.boot.as_deref() == Some(url.as_str()));
    let address = told
        .and_then(|ack| ack.address)
        .unwrap_or_else(|| panic!("no ACK told {MAC} {url}:\n{}", expect::dhcp_story(&events, MAC)));
    expect::finished_nonempty(&events, "http", IMAGE, address);
    expect::finished_nonempty(&events, "tftp", "grub/grub.cfg", address);
    expect::finished_once(&events, "tftp", "vmlinuz", address, guest.kernel_size());
    expect::finished_once(&events, "tftp", "initrd.img", address, guest.initrd_size());
}

/// The client's diagnosis in the `--status` file, if it has one.
fn diagnosis(status: &std::path::Path, mac: &str) -> Option<String> {
    status_client(status, mac)?["diagnosis"]["text"].as_str().map(str::to_owned)
}

/// Starts a Secure Boot guest that is expected not to boot, and waits (bounded) until
/// the status file's diagnosis for it contains `words`; returns that diagnosis.
fn refused(lab: &mut Lab, server: &Server, status: &std::path::Path, mac: &str, words: &str) -> String {
    let tap = lab.add_tap().unwrap();
    let guest = qemu::RunningGuest::start(lab, &tap, Firmware::UefiSecureBoot, mac).unwrap();
    let found = wait_until(Duration::from_secs(150), || diagnosis(status, mac).filter(|d| d.contains(words)));
    let report = guest.report();
    let serial = guest.kill();
    match found {
        Some(diagnosis) => {
            eprintln!("[secure-boot] {mac}: {diagnosis}");
            diagnosis
        }
        None => panic!(
            "no diagnosis naming {words:?} for {mac} within 150 s; status: {:?}\n{}\n{report}\nserial:\n{}",
            diagnosis(status, mac),
            expect::dhcp_story(&server.events(), mac),
            serial
        ),
    }
}

#[test]
fn ipxe_under_secure_boot_is_refused_and_the_diagnosis_says_so() {
    const MAC: &str = "52:54:00:5b:00:02";
    let mut lab = Lab::new("secure-boot-ipxe").unwrap();
    let (spec, _guest) = signed_boot_setup(&lab);
    let status = lab.dir().join("status.json");
    let spec = spec.arg("--uefi-loader", "ipxe").arg("--status", status.display().to_string());
    let server = Server::start(&lab, &spec).unwrap();
    let diagnosis = refused(&mut lab, &server, &status, MAC, "Secure Boot");
    assert!(diagnosis.contains("refused ipxe.efi"), "{diagnosis}");
    assert!(diagnosis.contains("signed chain"), "says what to do: {diagnosis}");
}

#[test]
fn an_unsigned_kernel_is_marked_in_advance_and_named_when_refused() {
    const MAC: &str = "52:54:00:5b:00:03";
    let mut lab = Lab::new("secure-boot-unsigned").unwrap();
    let (spec, guest) = signed_boot_setup(&lab);
    // The lab's Debian kernel with its signature taken off.
    let stripped = std::process::Command::new("sbattach").arg("--remove").arg(&guest.kernel).output();
    let stripped = stripped.expect("sbattach (apt-get install sbsigntool)");
    assert!(stripped.status.success(), "sbattach --remove: {}", String::from_utf8_lossy(&stripped.stderr));
    let status = lab.dir().join("status.json");
    let spec = spec.arg("--status", status.display().to_string());
    let server = Server::start(&lab, &spec).unwrap();
    // In advance: the server read the kernel's signature at start, before anything booted.
    let warned =
        server.events().services().iter().any(|s| {
            s.service == "boot" && s.message.contains("Linux") && s.message.contains("the kernel is not signed")
        });
    assert!(warned, "no warning about the unsigned kernel at start\n{}", server.report());
    let diagnosis = refused(&mut lab, &server, &status, MAC, "vmlinuz");
    assert!(diagnosis.contains("not signed"), "names why: {diagnosis}");
    let events = server.events();
    assert!(
        !has_finished(&events, "initrd.img"),
        "the initrd was fetched, so the kernel was accepted:\n{}",
        expect::transfer_story(&events)
    );
}
