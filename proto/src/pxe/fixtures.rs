//! Test fixtures shared by the PXE decision and the services built on it.

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;

use super::{BootSettings, ClientArch, ClientKind, PxeRequest};
use crate::mac::MacAddr;

pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// BIOS, UEFI x64 and ARM64 loaders, HTTP on port 80, the generated script.
pub fn boot_settings() -> BootSettings {
    BootSettings {
        server_ip: SERVER,
        bios_file: Some("undionly.kpxe".into()),
        uefi_ia32_file: None,
        uefi_x64_file: Some("ipxe.efi".into()),
        uefi_arm64_file: Some("arm64/ipxe.efi".into()),
        uefi_x64_signed_file: None,
        uefi_arm64_signed_file: None,
        uefi_x64_signed_http_file: None,
        http_port: Some(80),
        ipxe_script: "boot.ipxe".into(),
    }
}

/// A DISCOVER from `mac` with nothing but what is given.
pub fn request(mac: [u8; 6], kind: ClientKind, arch: Option<u16>, is_ipxe: bool) -> PxeRequest {
    PxeRequest {
        mac: MacAddr(mac),
        xid: 1,
        message_type: MessageType::Discover,
        client_id: None,
        kind,
        vendor_class: None,
        arch: arch.map(ClientArch::from_code),
        is_ipxe,
        guid: None,
        nic_interface: None,
        boot_item: None,
        requested_ip: None,
        server_id: None,
        hostname: None,
        ciaddr: Ipv4Addr::UNSPECIFIED,
        giaddr: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
    }
}
