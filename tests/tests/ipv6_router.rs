//! In full DHCP mode PortaPXE answers IPv6 router solicitations with "no router here",
//! so iPXE does not wait for IPv6; never in proxy mode, and not when turned off.
//! A client namespace sends real router solicitations and reads what comes back.

use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use portapxe_lab::events::EventsExt;
use portapxe_lab::{ClientNs, Lab, Server, ServerSpec, netns};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// Type 133, code 0, checksum (the kernel fills it), reserved.
const SOLICITATION: [u8; 8] = [133, 0, 0, 0, 0, 0, 0, 0];

/// Solicits every 300 ms for `within` and returns the first router advertisement
/// that arrives (the ICMPv6 message as sent, and its source address).
fn solicit(client: &ClientNs, within: Duration) -> Option<(Vec<u8>, Ipv6Addr)> {
    netns::in_netns(&client.ns, || {
        let index = nix::net::if_::if_nametoindex(client.interface()).expect("client interface");
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).expect("raw ICMPv6 socket");
        socket.bind_device(Some(client.interface().as_bytes())).unwrap();
        socket.set_multicast_if_v6(index).unwrap();
        socket.set_multicast_hops_v6(255).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let to = SockAddr::from(SocketAddrV6::new(ALL_ROUTERS, 0, 0, index));
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            // Fails while the client's link-local address is still tentative: try again.
            let _ = socket.send_to(&SOLICITATION, &to);
            let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                // SAFETY: recv_from initialised the first `len` bytes.
                let message: Vec<u8> = buf[..len].iter().map(|b| unsafe { b.assume_init() }).collect();
                if message.first() == Some(&134) {
                    let from = from.as_socket_ipv6().map(|a| *a.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
                    return Some((message, from));
                }
            }
        }
        None
    })
    .expect("enter the client namespace")
}

#[test]
fn full_dhcp_answers_router_solicitations_with_no_router_here() {
    let mut lab = Lab::new("ipv6-ra").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    portapxe_lab::guest::install_ipxe_binaries(&spec.root).unwrap();
    let server = Server::start(&lab, &spec).unwrap();
    let client = lab.add_client("52:54:00:6a:00:01").unwrap();
    let started = Instant::now();
    let (advertisement, from) = solicit(&client, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no router advertisement within 5 s\n{}", server.report()));
    eprintln!("[ipv6] advertisement from {from} after {:.1?}: {advertisement:?}", started.elapsed());
    assert_eq!(advertisement.len(), 16, "no options: no prefix, no route, no MTU: {advertisement:?}");
    assert_eq!(advertisement[1], 0, "code 0");
    assert_eq!(advertisement[5] & 0xc0, 0, "no managed or other-config flag");
    assert_eq!(&advertisement[6..8], &[0, 0], "router lifetime 0: nobody's default router");
    assert!(from.is_unicast_link_local(), "sent from a link-local address: {from}");
    assert!(
        server.events().services().iter().any(|s| s.ok && s.service == "ipv6"),
        "the log says the solicitations are answered\n{}",
        server.report()
    );
}

#[test]
fn proxy_mode_and_the_setting_off_stay_silent() {
    let mut lab = Lab::new("ipv6-quiet").unwrap();
    let client = lab.add_client("52:54:00:6a:00:02").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    portapxe_lab::guest::install_ipxe_binaries(&spec.root).unwrap();
    for (what, spec) in [
        ("full DHCP with --no-router-advertisement", spec.clone().flag("--no-router-advertisement")),
        ("proxy mode", spec.clone().proxy()),
    ] {
        let mut server = Server::start(&lab, &spec).unwrap();
        let answer = solicit(&client, Duration::from_secs(3));
        assert!(answer.is_none(), "{what}: a router advertisement came back: {answer:?}");
        server.stop();
    }
    // The same client hears the default mode: the silence above is the server's.
    let mut server = Server::start(&lab, &spec).unwrap();
    let heard = solicit(&client, Duration::from_secs(5));
    assert!(heard.is_some(), "the client hears no advertisement even in full DHCP\n{}", server.report());
    server.stop();
}
