//! A DHCP datagram from anyone on the segment: decoded, then decided by the full DHCP
//! server (lease table, rules, PXE choice) and the reply encoded, as the service does.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use portapxe_engine::config::PoolRange;
use portapxe_engine::dhcp::{DhcpSettings, LeaseTable, handle, server::encode_reply};
use portapxe_engine::pxe::{BootSettings, PxeRequest};
use portapxe_engine::rules::ClientRules;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

fuzz_target!(|data: &[u8]| {
    let Ok((message, request)) = PxeRequest::decode(data) else { return };
    let settings = DhcpSettings {
        server_ip: SERVER,
        subnet: "10.77.0.0/24".parse().unwrap(),
        lease_time_secs: 3600,
        router: None,
        dns: Vec::new(),
        boot: BootSettings {
            server_ip: SERVER,
            bios_file: Some("undionly.kpxe".into()),
            uefi_ia32_file: None,
            uefi_x64_file: Some("ipxe.efi".into()),
            uefi_arm64_file: None,
            uefi_x64_signed_file: Some("shimx64.efi".into()),
            uefi_arm64_signed_file: Some("shimaa64.efi".into()),
            uefi_x64_signed_http_file: Some("signed-http-boot.iso".into()),
            http_port: Some(80),
            ipxe_script: "boot.ipxe".into(),
        },
        rules: ClientRules::default(),
    };
    let pool = PoolRange { start: Ipv4Addr::new(10, 77, 0, 100), end: Ipv4Addr::new(10, 77, 0, 102) };
    let mut leases = LeaseTable::new(pool, SERVER);
    // Twice: the second sees the lease the first may have made.
    for now in [1_000, 2_000] {
        let outcome = handle(&message, &request, &settings, &mut leases, now, None);
        if let Some(reply) = outcome.reply {
            let _ = encode_reply(&reply.message);
        }
        let _ = outcome.event.note();
    }
});
