//! proxyDHCP's PXE boot server port (UDP 4011), which neither QEMU's iPXE nor OVMF
//! used in the proxy boots (both take the file from the first proxy offer) but
//! which EDK2 uses for ProxyBinl offers and many PXE 2.x ROMs always use: a
//! hand-built PXE REQUEST from a client that already has an address.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};
use portapxe_lab::netns::in_netns;
use portapxe_lab::wire::bootp_header;
use portapxe_lab::{Lab, Server, ServerSpec, mac_bytes};

const CLIENT_MAC: &str = "52:54:00:40:11:01";
const BOOT_SERVER_PORT: u16 = 4011;

/// A PXE REQUEST as a UEFI x64 client sends it to a boot server: ciaddr set, option 43
/// naming boot item 0x8000 layer 0 (sub-option 71).
fn pxe_request(mac: [u8; 6], xid: u32, ciaddr: Ipv4Addr, vendor_class: &[u8]) -> Vec<u8> {
    let mut p = bootp_header(mac, xid, false);
    p[12..16].copy_from_slice(&ciaddr.octets());
    p.extend_from_slice(&[53, 1, 3]);
    p.extend_from_slice(&[93, 2, 0, 7]);
    p.extend_from_slice(&[94, 3, 1, 3, 0]);
    p.extend_from_slice(&[97, 17, 0]);
    p.extend_from_slice(&[0x11; 16]);
    p.extend_from_slice(&[60, vendor_class.len() as u8]);
    p.extend_from_slice(vendor_class);
    p.extend_from_slice(&[43, 7, 71, 4, 0x80, 0x00, 0x00, 0x00, 255]);
    p.push(255);
    p.resize(p.len().max(300), 0);
    p
}

/// Sends `request` to the boot server port and returns the first reply with `xid`, if any.
fn ask(socket: &UdpSocket, server: SocketAddr, request: &[u8], xid: u32) -> Option<Message> {
    socket.send_to(request, server).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        if let Ok(message) = Message::decode(&mut Decoder::new(&buf[..n]))
            && message.xid() == xid
        {
            return Some(message);
        }
    }
    None
}

#[test]
fn port_4011_acks_a_pxe_request_with_the_boot_file_and_no_address() {
    let mut lab = Lab::new("proxy4011").unwrap();
    let spec = ServerSpec::new(&lab).unwrap().proxy();
    std::fs::copy("/usr/lib/ipxe/ipxe.efi", spec.root.join("ipxe.efi"))
        .expect("Debian's ipxe package provides /usr/lib/ipxe/ipxe.efi");
    let mut server = Server::start(&lab, &spec).unwrap();
    let client = lab.add_client(CLIENT_MAC).unwrap();
    let client_ip = lab.ip(60);
    client.add_address(client_ip).unwrap();
    let server_addr = SocketAddr::from((lab.server_ip(), BOOT_SERVER_PORT));
    let mac = mac_bytes(CLIENT_MAC);

    let (ack, plain) = in_netns(&client.ns, || {
        let socket = UdpSocket::bind((client_ip, 0)).unwrap();
        let ack = ask(
            &socket,
            server_addr,
            &pxe_request(mac, 0x4011_0001, client_ip, b"PXEClient:Arch:00007:UNDI:003000"),
            0x4011_0001,
        );
        let plain =
            ask(&socket, server_addr, &pxe_request(mac, 0x4011_0002, client_ip, b"not-a-pxe-client"), 0x4011_0002);
        (ack, plain)
    })
    .unwrap();

    let ack = ack.unwrap_or_else(|| panic!("no reply on port 4011\n{}", server.report()));
    assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack), "{ack:?}");
    assert_eq!(ack.yiaddr(), Ipv4Addr::UNSPECIFIED, "proxyDHCP must never hand out an address");
    assert_eq!(ack.ciaddr(), client_ip);
    assert_eq!(ack.siaddr(), lab.server_ip());
    assert_eq!(
        ack.fname_str().and_then(Result::ok).map(|f| f.trim_end_matches('\0').to_owned()).as_deref(),
        Some("ipxe.efi")
    );
    assert_eq!(ack.opts().get(OptionCode::ClassIdentifier), Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec())));
    assert_eq!(ack.opts().get(OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(lab.server_ip())));
    let Some(DhcpOption::VendorExtensions(vendor)) = ack.opts().get(OptionCode::VendorExtensions) else {
        panic!("no option 43 in {ack:?}")
    };
    assert!(vendor.windows(6).any(|w| w == [71, 4, 0x80, 0, 0, 0]), "boot item not echoed: {vendor:02x?}");
    assert!(plain.is_none(), "a non-PXE client was answered on 4011: {plain:?}");
    server.assert_alive();
}
