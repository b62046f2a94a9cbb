//! Wake-on-LAN: the magic packet (six 0xFF bytes, then the MAC sixteen times) sent as a
//! UDP broadcast on the serving interface, so a room of powered-off seats can be woken
//! before it is booted or imaged.
//!
//! Owns: the packet (pure), where it goes, and sending it. Must not touch: which MACs
//! are woken (the caller's choice: the user's list, or the seats the registry knows).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::config::InterfaceFacts;
use crate::mac::MacAddr;
use crate::socket::Interface;

/// The port most wake tools use ("discard"); NICs match the packet whatever the port.
pub const WAKE_PORT: u16 = 9;

/// How many times each packet is sent: a broadcast is not acknowledged, and a switch
/// port that has just come up can lose the first one. Three is what `etherwake`-style
/// tools settle on for unreliable links.
pub const REPEATS: usize = 3;

/// The magic packet for `mac`: 6 × 0xFF, then the MAC 16 times (102 bytes).
pub fn magic_packet(mac: MacAddr) -> [u8; 102] {
    let mut packet = [0xFF; 102];
    for copy in packet[6..].chunks_exact_mut(6) {
        copy.copy_from_slice(&mac.0);
    }
    packet
}

/// Where the packets go: the serving subnet's broadcast address; a /31 or /32 has
/// none, so the limited broadcast (which the socket's interface binding keeps on the
/// serving interface).
pub fn destination(facts: &InterfaceFacts) -> SocketAddrV4 {
    let address = if facts.prefix >= 31 { Ipv4Addr::BROADCAST } else { facts.subnet().broadcast() };
    SocketAddrV4::new(address, WAKE_PORT)
}

/// What was sent, for the caller to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Woken {
    pub macs: Vec<MacAddr>,
    pub to: SocketAddrV4,
}

#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    #[error("cannot open a broadcast socket on {interface}: {source}")]
    Socket { interface: String, source: io::Error },
    #[error("cannot send the wake packet for {mac} to {to}: {source}")]
    Send { mac: MacAddr, to: SocketAddrV4, source: io::Error },
}

/// Sends each MAC's magic packet `REPEATS` times from the serving address, tied to
/// the serving interface. Blocking (a few datagrams): call it off any event loop.
pub fn wake(interface: &Interface, facts: &InterfaceFacts, macs: &[MacAddr]) -> Result<Woken, WakeError> {
    let socket_error = |source| WakeError::Socket { interface: interface.name.clone(), source };
    let from = SocketAddr::V4(SocketAddrV4::new(facts.address, 0));
    let socket = crate::socket::udp(from, Some(interface)).map_err(socket_error)?;
    socket.set_broadcast(true).map_err(socket_error)?;
    let to = destination(facts);
    for &mac in macs {
        let packet = magic_packet(mac);
        for _ in 0..REPEATS {
            socket.send_to(&packet, to).map_err(|source| WakeError::Send { mac, to, source })?;
        }
    }
    Ok(Woken { macs: macs.to_vec(), to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_is_six_ff_then_the_mac_sixteen_times() {
        let mac = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        let packet = magic_packet(mac);
        assert_eq!(packet[..6], [0xFF; 6]);
        let copies: Vec<&[u8]> = packet[6..].chunks(6).collect();
        assert_eq!(copies.len(), 16);
        assert!(copies.iter().all(|copy| *copy == mac.0));
    }

    #[test]
    fn it_goes_to_the_subnet_broadcast_or_the_limited_one() {
        let facts = |prefix| InterfaceFacts { address: Ipv4Addr::new(192, 168, 50, 1), prefix, loopback: false };
        assert_eq!(destination(&facts(24)), SocketAddrV4::new(Ipv4Addr::new(192, 168, 50, 255), 9));
        assert_eq!(destination(&facts(22)), SocketAddrV4::new(Ipv4Addr::new(192, 168, 51, 255), 9));
        assert_eq!(destination(&facts(32)).ip(), &Ipv4Addr::BROADCAST);
    }
}
