use std::net::Ipv4Addr;

use dhcproto::v4::Message;
use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::mac::MacAddr;
use crate::pxe::decode_message;

/// UDP ports DHCP and PXE use.
const DHCP_PORTS: [u16; 3] = [67, 68, 4011];

/// One DHCP message as seen on the wire.
#[derive(Debug, Clone)]
pub struct DhcpFrame {
    pub source_mac: MacAddr,
    pub source_ip: Ipv4Addr,
    pub destination_ip: Ipv4Addr,
    pub source_port: u16,
    pub destination_port: u16,
    pub message: Message,
}

/// An Ethernet frame carrying a DHCP message over IPv4/UDP, or `None`. Never panics.
pub fn parse_dhcp_frame(frame: &[u8]) -> Option<DhcpFrame> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(LinkSlice::Ethernet2(ethernet)) = &packet.link else { return None };
    let Some(NetSlice::Ipv4(ipv4)) = &packet.net else { return None };
    let Some(TransportSlice::Udp(udp)) = &packet.transport else { return None };
    let (source_port, destination_port) = (udp.source_port(), udp.destination_port());
    if !DHCP_PORTS.contains(&source_port) && !DHCP_PORTS.contains(&destination_port) {
        return None;
    }
    let message = decode_message(udp.payload()).ok()?;
    Some(DhcpFrame {
        source_mac: MacAddr(ethernet.source()),
        source_ip: ipv4.header().source_addr(),
        destination_ip: ipv4.header().destination_addr(),
        source_port,
        destination_port,
        message,
    })
}

/// A captured frame made for tests, here and in the engine (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub fn build_frame(source_mac: [u8; 6], source: Ipv4Addr, source_port: u16, payload: &[u8]) -> Vec<u8> {
    build_frame_to(source_mac, source, source_port, 68, payload)
}

#[cfg(any(test, feature = "fixtures"))]
pub fn build_frame_to(
    source_mac: [u8; 6],
    source: Ipv4Addr,
    source_port: u16,
    destination_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2(source_mac, [0xff; 6])
        .ipv4(source.octets(), [255, 255, 255, 255], 64)
        .udp(source_port, destination_port);
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).expect("writing to a Vec cannot fail");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::Encodable;
    use dhcproto::v4::{DhcpOption, MessageType, Opcode};

    fn offer_bytes() -> Vec<u8> {
        let mut msg = Message::default();
        msg.set_opcode(Opcode::BootReply).set_chaddr(&[2, 0, 0, 0, 0, 1]).set_yiaddr(Ipv4Addr::new(10, 0, 0, 50));
        msg.opts_mut().insert(DhcpOption::MessageType(MessageType::Offer));
        msg.to_vec().unwrap()
    }

    #[test]
    fn a_broadcast_offer_is_read_with_its_sender() {
        let frame = build_frame([0xaa, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2), 67, &offer_bytes());
        let parsed = parse_dhcp_frame(&frame).unwrap();
        assert_eq!(parsed.source_mac, MacAddr([0xaa, 0, 0, 0, 0, 2]));
        assert_eq!(parsed.source_ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!((parsed.source_port, parsed.destination_port), (67, 68));
        assert_eq!(parsed.message.yiaddr(), Ipv4Addr::new(10, 0, 0, 50));
    }

    #[test]
    fn other_traffic_and_garbage_are_skipped() {
        let dns = build_frame([0xaa, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2), 53, &offer_bytes());
        let mut dns = dns;
        // Rewrite the destination port 68 → 53 as well.
        let udp_start = 14 + 20;
        dns[udp_start + 2..udp_start + 4].copy_from_slice(&53u16.to_be_bytes());
        assert!(parse_dhcp_frame(&dns).is_none());
        let frame = build_frame([0xaa, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2), 67, &offer_bytes());
        for len in 0..frame.len() {
            let _ = parse_dhcp_frame(&frame[..len]);
        }
        assert!(parse_dhcp_frame(&[0u8; 64]).is_none());
    }
}
