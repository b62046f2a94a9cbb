//! Hostile input from a host on the segment: broken DHCP messages and a flood must
//! not stop the server from serving a real client; TFTP must never serve a byte from
//! outside its root, and never accept a write.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::events::{EventsExt, Phase};
use portapxe_lab::netns::{CLIENT_IF, in_netns};
use portapxe_lab::wire::{self, Rng, TftpReply};
use portapxe_lab::{Lab, Server, ServerSpec, mac_bytes, pool};

const ATTACKER_MAC: &str = "52:54:00:66:00:01";
const FLOOD_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x66, 0x00, 0x02];
const PROBE_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x66, 0x00, 0x03];
const FLOOD_COUNT: usize = 2000;
const FLOOD_BURST: usize = 100;

/// Caught panics are the server's business; say how many there were, for the reader.
fn note_panics(server: &Server) {
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let count = log.matches("panicked at").count();
    if count > 0 {
        eprintln!("note: the server log shows {count} panic message(s) (caught or not); see {}", server.log.display());
    }
}

#[test]
fn broken_dhcp_and_a_flood_do_not_stop_a_real_client() {
    let mut lab = Lab::new("hostile-dhcp").unwrap();
    let mut server = Server::start(&lab, &ServerSpec::new(&lab).unwrap()).unwrap();
    let attacker = lab.add_client(ATTACKER_MAC).unwrap();
    attacker.add_address(lab.ip(250)).unwrap();
    let broadcast = SocketAddr::from((Ipv4Addr::BROADCAST, 67));
    let unicast = SocketAddr::from((server.ip, 67));

    let flood_time = in_netns(&attacker.ns, || {
        let socket = wire::dhcp_client_socket(CLIENT_IF).unwrap();
        let mut rng = Rng::new(0x5eed_d4c9);
        let cases = wire::hostile_dhcp(mac_bytes(ATTACKER_MAC), &mut rng);
        eprintln!("sending {} malformed DHCP messages, broadcast and unicast", cases.len());
        // After every malformed message, a valid DISCOVER must still get its OFFER:
        // the first one that goes unanswered names the packet that broke the server.
        for (index, (name, bytes)) in cases.iter().enumerate() {
            for to in [broadcast, unicast] {
                if let Err(error) = socket.send_to(bytes, to) {
                    panic!("could not send `{name}` to {to}: {error}");
                }
            }
            wire::drain(&socket);
            let xid = 0x0bad_0000 + index as u32;
            if let Err(error) = wire::probe_offer(&socket, broadcast, PROBE_MAC, xid, Duration::from_secs(3)) {
                panic!(
                    "the server stopped answering DHCP after the malformed message `{name}` \
                     ({} bytes, sent to {broadcast} and {unicast}): {error:#}\nbytes: {}",
                    bytes.len(),
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
            }
        }
        // A bounded flood: one MAC, random xids, FLOOD_COUNT DISCOVERs within about 2 s.
        let started = Instant::now();
        for burst in 0..FLOOD_COUNT / FLOOD_BURST {
            for _ in 0..FLOOD_BURST {
                let _ = socket.send_to(&wire::discover(FLOOD_MAC, rng.next_u32()), broadcast);
            }
            if burst + 1 < FLOOD_COUNT / FLOOD_BURST {
                std::thread::sleep(Duration::from_millis(90));
            }
        }
        let flood_time = started.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        wire::drain(&socket);
        wire::probe_offer(&socket, broadcast, PROBE_MAC, 0x0bad_f100, Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("after the flood: {error:#}"));
        flood_time
    })
    .unwrap();
    eprintln!("flood of {FLOOD_COUNT} DISCOVERs took {flood_time:.2?}");

    server.assert_alive();
    let client = lab.add_client("52:54:00:66:00:10").unwrap();
    let lease = clients::udhcpc(&client, &PxeIdentity::bios(), &lab.dir().join("clients"))
        .unwrap_or_else(|error| panic!("a real client got no lease after the hostile traffic: {error:#}"));
    assert!(pool(&lab).contains(&lease.address), "{lease:?}");
    server.assert_alive();
    note_panics(&server);
}

/// Names that point outside the root, one way or another.
const ESCAPES: &[&str] = &[
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\x",
    "..\\..\\etc\\passwd",
    "escape/passwd",
    "escape\\passwd",
    "sub/../../etc/passwd",
    "./../etc/passwd",
    "sub/../../../../../../etc/passwd",
];

#[test]
fn tftp_serves_nothing_outside_the_root_and_refuses_writes() {
    let mut lab = Lab::new("hostile-tftp").unwrap();
    let mut spec = ServerSpec::new(&lab).unwrap();
    // Two levels below the lab directory, so `..\..\x` names the real file `LAB/x`.
    spec.root = lab.dir().join("srv/root");
    std::fs::write(lab.dir().join("x"), b"outside the root").unwrap();
    std::fs::create_dir_all(spec.root.join("sub")).unwrap();
    let inside: Vec<u8> = (0..1500u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(spec.root.join("sub/inside.bin"), &inside).unwrap();
    symlink("/etc", spec.root.join("escape")).unwrap();
    let mut server = Server::start(&lab, &spec).unwrap();
    let attacker = lab.add_client(ATTACKER_MAC).unwrap();
    attacker.add_address(lab.ip(250)).unwrap();
    let tftp = SocketAddr::from((server.ip, 69));

    let results = in_netns(&attacker.ns, || {
        // Positive control: the raw client can read a file that is inside.
        let read = wire::tftp_read(tftp, "sub/inside.bin", Duration::from_secs(10));
        let mut results = Vec::new();
        for name in ESCAPES {
            let replies =
                wire::tftp_replies(tftp, &wire::tftp_request(1, name.as_bytes()), Duration::from_millis(1500));
            results.push((format!("RRQ {name}"), replies.unwrap()));
        }
        let write = wire::tftp_replies(tftp, &wire::tftp_request(2, b"uploaded.bin"), Duration::from_millis(1500));
        results.push(("WRQ uploaded.bin".into(), write.unwrap()));
        // Junk on port 69 must not stop the service.
        let junk: [&[u8]; 6] =
            [b"", b"\x00", b"\x00\x01no-terminator", b"\x00\x01file\x00", b"\x00\x09abc", b"\x00\x04\x00\x01"];
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        for packet in junk {
            let _ = socket.send_to(packet, tftp);
        }
        let read_after = wire::tftp_read(tftp, "sub/inside.bin", Duration::from_secs(10));
        (read, results, read_after)
    })
    .unwrap();
    let (read, results, read_after) = results;
    assert_eq!(read.unwrap(), inside, "positive control: reading a file inside the root");

    let mut failures = Vec::new();
    for (request, replies) in &results {
        let data: Vec<String> = replies
            .iter()
            .filter_map(|r| match r {
                TftpReply::Data { block, bytes } => {
                    Some(format!("DATA block {block}: {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(80)])))
                }
                _ => None,
            })
            .collect();
        match replies.first() {
            Some(TftpReply::Error { code, message }) if data.is_empty() => {
                eprintln!("{request}: ERROR {code} {message:?}");
            }
            _ => failures.push(format!("{request}: expected one ERROR and no DATA, got {replies:?} {data:?}")),
        }
    }
    assert!(!spec.root.join("uploaded.bin").exists(), "the WRQ created a file in the root");
    assert!(failures.is_empty(), "TFTP answered hostile requests wrongly:\n{}", failures.join("\n"));
    assert_eq!(read_after.unwrap(), inside, "TFTP stopped serving after junk packets");

    let events = server.events();
    let refused = events.transfers().iter().filter(|t| matches!(t.phase, Phase::Refused { .. })).count();
    eprintln!("{refused} refused transfer events");
    assert!(
        !events
            .transfers()
            .iter()
            .any(|t| t.name().contains("passwd") && matches!(t.phase, Phase::Finished { .. } | Phase::Started { .. })),
        "a transfer of a passwd file started"
    );
    server.assert_alive();
    note_panics(&server);
}

/// 512 read requests asking for `timeout=255`, never acknowledged (they once held every
/// transfer slot for 17 minutes): a real tftp-hpa client still gets its file at once.
#[test]
fn a_flood_of_unanswered_tftp_requests_does_not_lock_out_a_real_client() {
    const FLOOD: usize = 512;
    let mut lab = Lab::new("hostile-tftp-flood").unwrap();
    // Started as from a desktop session, whose soft limit (1024) one flood exhausts.
    let spec = ServerSpec { open_files_soft: Some(1024), ..ServerSpec::new(&lab).unwrap() };
    let file: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(spec.root.join("boot.bin"), &file).unwrap();
    let mut server = Server::start(&lab, &spec).unwrap();
    let attacker = lab.add_client(ATTACKER_MAC).unwrap();
    attacker.add_address(lab.ip(250)).unwrap();
    let student = lab.add_client("52:54:00:66:00:04").unwrap();
    student.add_address(lab.ip(251)).unwrap();
    let tftp = SocketAddr::from((server.ip, 69));

    // The flood's socket stays open (and silent) while the real client asks.
    let flood = in_netns(&attacker.ns, || {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let mut request = wire::tftp_request(1, b"boot.bin");
        request.extend_from_slice(b"timeout\x00255\x00");
        for _ in 0..FLOOD {
            socket.send_to(&request, tftp).unwrap();
        }
        socket
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let work = lab.dir().join("student");
    std::fs::create_dir_all(&work).unwrap();
    let asked = Instant::now();
    let got = clients::tftp_get(&student, server.ip, "boot.bin", &work);
    let took = asked.elapsed();
    eprintln!("[hostile] after {FLOOD} unanswered RRQs with timeout=255: tftp-hpa got its file in {took:.1?}");
    assert_eq!(got.unwrap_or_else(|error| panic!("{error:#}\n{}", server.report())), file);
    assert!(took < Duration::from_secs(10), "the real client waited {took:?}");
    drop(flood);

    // The server raised its open-file limit to the hard limit at start.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid().unwrap())).unwrap();
    let open_files: Vec<&str> =
        limits.lines().find(|line| line.starts_with("Max open files")).unwrap().split_whitespace().collect();
    assert_ne!(open_files[3], "1024", "the server kept the soft open-file limit it was started with: {open_files:?}");
    assert_eq!(open_files[3], open_files[4], "soft and hard open-file limits: {open_files:?}");

    // The flood was answered, but reported once, not once per request.
    let events = server.events();
    let refused = events
        .transfers()
        .iter()
        .filter(|t| matches!(&t.phase, Phase::Refused { reason, .. } if reason.contains("too many")))
        .count();
    assert_eq!(refused, 1, "refusals of the flood reported:\n{}", portapxe_lab::expect::transfer_story(&events));
    server.assert_alive();
}
