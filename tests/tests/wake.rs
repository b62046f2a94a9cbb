//! Wake-on-LAN: `portapxe wake` broadcasts each seat's magic packet on the serving
//! interface, and a host on that segment receives it.

use std::net::UdpSocket;
use std::time::Duration;

use portapxe_lab::process::run_bounded;
use portapxe_lab::{Lab, binary};

#[test]
fn wake_broadcasts_each_seats_magic_packet_on_the_serving_segment() {
    let mut lab = Lab::new("wake").unwrap();
    let seat = lab.add_client("52:54:00:3a:00:01").unwrap();
    seat.add_address(lab.ip(50)).unwrap();
    // A listener on the seat's segment stands in for a sleeping NIC: it sees what reaches the wire.
    let listener = portapxe_lab::netns::in_netns(&seat.ns, || {
        let socket = UdpSocket::bind("0.0.0.0:9").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        socket
    })
    .unwrap();

    let macs = ["52:54:00:3a:00:01", "52:54:00:3a:00:02"];
    let mut command = lab.server_command(binary::portapxe().to_str().unwrap());
    command.args(["wake", "--interface", "br0"]).args(macs);
    let finished = run_bounded("portapxe wake", &mut command, Duration::from_secs(20)).unwrap();
    assert!(finished.success(), "{finished}");
    let broadcast = format!("10.77.{}.255:9", lab.net);
    assert!(finished.stdout.contains(&broadcast), "the output names where the packets went\n{finished}");

    let mut seen = Vec::new();
    let mut buffer = [0u8; 1500];
    while let Ok((len, from)) = listener.recv_from(&mut buffer) {
        assert_eq!(from.ip(), std::net::IpAddr::V4(lab.server_ip()), "sent from the serving address");
        seen.push(buffer[..len].to_vec());
        if seen.len() == 6 {
            break;
        }
    }
    for mac in macs {
        let bytes: Vec<u8> = mac.split(':').map(|part| u8::from_str_radix(part, 16).unwrap()).collect();
        let mut expected = vec![0xFF; 6];
        for _ in 0..16 {
            expected.extend_from_slice(&bytes);
        }
        let copies = seen.iter().filter(|packet| **packet == expected).count();
        assert_eq!(copies, 3, "{mac}: three magic packets of 102 bytes expected, got {copies} of {}", seen.len());
    }
}
