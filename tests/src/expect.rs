//! Assertions over server events that fail with the evidence: what the server
//! logged for the client in question, not just "assertion failed".

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use crate::events::{DhcpEvent, Event, EventsExt, Phase, TransferEvent, is_script_url};
use crate::guest::{GRUB_FILE, Guest, SHIM_FILE};

/// Render the DHCP events of `mac` one per line.
pub fn dhcp_story(events: &[Event], mac: &str) -> String {
    let lines: Vec<String> = events
        .dhcp_for(mac)
        .iter()
        .map(|d| {
            format!(
                "  {:?} {} -> {:?} address={:?} arch={:?} ipxe={} boot={:?} ({})",
                d.role, d.received, d.answered, d.address, d.arch, d.is_ipxe, d.boot, d.note
            )
        })
        .collect();
    if lines.is_empty() { format!("  (no DHCP events for {mac})") } else { lines.join("\n") }
}

/// Render transfer events (without progress) one per line.
pub fn transfer_story(events: &[Event]) -> String {
    let lines: Vec<String> = events
        .transfers()
        .iter()
        .filter(|t| !matches!(t.phase, Phase::Progress { .. }))
        .map(|t| format!("  {} {} {} {:?}", t.protocol, t.client, t.file, t.phase))
        .collect();
    if lines.is_empty() { "  (no transfer events)".into() } else { lines.join("\n") }
}

/// DHCP ACKs the server sent to `mac`, in order.
pub fn acks<'a>(events: &'a [Event], mac: &str) -> Vec<&'a DhcpEvent> {
    events.dhcp_for(mac).into_iter().filter(|d| d.is_ack()).collect()
}

/// The last ACK to `mac` as an iPXE client, which must carry the script URL; returns its address.
pub fn acked_script(
    events: &[Event],
    mac: &str,
    server: Ipv4Addr,
    http_port: u16,
    pool: &RangeInclusive<Ipv4Addr>,
) -> Ipv4Addr {
    let ack = acks(events, mac).into_iter().rev().find(|d| d.is_ipxe).unwrap_or_else(|| {
        panic!("no DHCP ACK to {mac} as an iPXE client; its DHCP events:\n{}", dhcp_story(events, mac))
    });
    let boot = ack.boot.as_deref().unwrap_or("");
    assert!(
        is_script_url(boot, server, http_port),
        "iPXE client {mac} was given {boot:?}, expected http://{server}:{http_port}/boot.ipxe; DHCP events:\n{}",
        dhcp_story(events, mac)
    );
    let address =
        ack.address.unwrap_or_else(|| panic!("ACK to {mac} without an address:\n{}", dhcp_story(events, mac)));
    assert!(pool.contains(&address), "{mac} got {address}, outside the pool {pool:?}");
    address
}

/// Transfers of `file` (leading `/` ignored) over `protocol` to `client_ip`.
pub fn transfers_of<'a>(
    events: &'a [Event],
    protocol: &str,
    file: &str,
    client_ip: Ipv4Addr,
) -> Vec<&'a TransferEvent> {
    events
        .transfers()
        .into_iter()
        .filter(|t| t.protocol == protocol && t.name() == file && t.client.ip() == client_ip)
        .collect()
}

/// Exactly one transfer of `file` to `client_ip` finished, with `size` bytes.
pub fn finished_once(events: &[Event], protocol: &str, file: &str, client_ip: Ipv4Addr, size: u64) {
    let finished: Vec<u64> =
        transfers_of(events, protocol, file, client_ip).iter().filter_map(|t| t.finished_bytes()).collect();
    assert!(
        finished == [size],
        "expected one finished {protocol} transfer of {file} ({size} bytes) to {client_ip}, got finished={finished:?}; \
         transfer events:\n{}",
        transfer_story(events)
    );
}

/// At least one transfer of `file` to `client_ip` finished with a non-zero size; returns it.
pub fn finished_nonempty(events: &[Event], protocol: &str, file: &str, client_ip: Ipv4Addr) -> u64 {
    let finished: Vec<u64> =
        transfers_of(events, protocol, file, client_ip).iter().filter_map(|t| t.finished_bytes()).collect();
    match finished.first() {
        Some(&bytes) if bytes > 0 => bytes,
        _ => panic!(
            "expected a finished {protocol} transfer of {file} to {client_ip}, got finished={finished:?}; \
             transfer events:\n{}",
            transfer_story(events)
        ),
    }
}

/// Has a transfer of `file` (any client) finished?
pub fn has_finished(events: &[Event], file: &str) -> bool {
    events.transfers().iter().any(|t| t.name() == file && t.finished_bytes().is_some())
}

/// The firmware of `mac` was sent to shim and fetched the signed chain over TFTP: shim,
/// GRUB, GRUB's config, then the guest's kernel and initrd once each, whole. Returns
/// the client's address.
pub fn booted_signed_chain(events: &[Event], mac: &str, guest: &Guest) -> Ipv4Addr {
    booted_signed_chain_with(events, mac, &[("vmlinuz", guest.kernel_size()), ("initrd.img", guest.initrd_size())])
}

/// [`booted_signed_chain`] with these files (served name, size) fetched by GRUB after its config.
pub fn booted_signed_chain_with(events: &[Event], mac: &str, files: &[(&str, u64)]) -> Ipv4Addr {
    let firmware_ack = acks(events, mac).into_iter().find(|d| !d.is_ipxe).unwrap_or_else(|| {
        panic!("no ACK to the firmware PXE client {mac}; DHCP events:\n{}", dhcp_story(events, mac))
    });
    assert_eq!(firmware_ack.boot.as_deref(), Some(SHIM_FILE), "{}", dhcp_story(events, mac));
    let address = firmware_ack.address.unwrap_or_else(|| panic!("an ACK without an address to {mac}"));
    for file in [SHIM_FILE, GRUB_FILE, "grub/grub.cfg"] {
        finished_nonempty(events, "tftp", file, address);
    }
    for &(file, size) in files {
        finished_once(events, "tftp", file, address, size);
    }
    address
}

/// The guest's kernel said Secure Boot was on (Debian's kernel prints "secureboot:
/// Secure boot enabled").
pub fn secure_boot_was_on(boot: &crate::qemu::Boot) {
    assert!(boot.serial.contains("Secure boot enabled"), "the kernel did not report Secure Boot on:\n{}", boot.serial);
}
