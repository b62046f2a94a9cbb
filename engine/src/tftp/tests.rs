//! The real server on 127.0.0.1 (ephemeral ports), spoken to in raw TFTP.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio::time::timeout;

use super::*;
use crate::events::{EngineEvent, EventSink, TransferPhase};
use crate::served::Served;

/// Every receive waits at most this long; nothing on loopback takes longer.
const RECV_TIMEOUT: Duration = Duration::from_secs(3);
/// How long "nothing else arrives" is watched for after an ERROR.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

fn request(opcode: u16, name: &[u8], opts: &[(&str, &str)]) -> Vec<u8> {
    request_in(opcode, name, "octet", opts)
}

fn request_in(opcode: u16, name: &[u8], mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
    let mut packet = opcode.to_be_bytes().to_vec();
    packet.extend_from_slice(name);
    packet.push(0);
    packet.extend_from_slice(mode.as_bytes());
    packet.push(0);
    for (key, value) in opts {
        packet.extend_from_slice(key.as_bytes());
        packet.push(0);
        packet.extend_from_slice(value.as_bytes());
        packet.push(0);
    }
    packet
}

fn ack(block: u16) -> Vec<u8> {
    let mut packet = OP_ACK.to_be_bytes().to_vec();
    packet.extend_from_slice(&block.to_be_bytes());
    packet
}

#[derive(Debug, PartialEq)]
enum Reply {
    Data { block: u16, data: Vec<u8> },
    OAck(Vec<(String, String)>),
    Error { code: u16, message: String },
    Other(Vec<u8>),
}

fn parse(packet: &[u8]) -> Reply {
    let field = |at: usize| u16::from_be_bytes([packet[at], packet[at + 1]]);
    let strings = |bytes: &[u8]| -> Vec<String> {
        bytes.split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>()
    };
    if packet.len() < 4 {
        return Reply::Other(packet.to_vec());
    }
    match field(0) {
        OP_DATA => Reply::Data { block: field(2), data: packet[4..].to_vec() },
        OP_ERROR => {
            Reply::Error { code: field(2), message: strings(&packet[4..]).into_iter().next().unwrap_or_default() }
        }
        OP_OACK => {
            let mut parts = strings(&packet[2..]);
            parts.pop(); // after the final NUL
            Reply::OAck(parts.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect())
        }
        _ => Reply::Other(packet.to_vec()),
    }
}

async fn recv(socket: &UdpSocket) -> (Reply, SocketAddr) {
    let mut buf = vec![0u8; 70_000];
    let (len, from) = timeout(RECV_TIMEOUT, socket.recv_from(&mut buf))
        .await
        .expect("no reply from the TFTP server in time")
        .expect("recv_from");
    (parse(&buf[..len]), from)
}

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("bind test client")
}

#[derive(Debug)]
struct Fetched {
    data: Vec<u8>,
    oack: Option<Vec<(String, String)>>,
}

/// Read `name` the way a PXE client does: RRQ, ACK the OACK (if any) with
/// block 0, ACK the last block of every window, stop at the short block.
async fn fetch(server: SocketAddr, name: &str, opts: &[(&str, &str)]) -> Result<Fetched, (u16, String)> {
    fetch_in(server, name, "octet", opts).await
}

async fn fetch_in(server: SocketAddr, name: &str, mode: &str, opts: &[(&str, &str)]) -> Result<Fetched, (u16, String)> {
    let socket = client().await;
    socket.send_to(&request_in(OP_RRQ, name.as_bytes(), mode, opts), server).await.unwrap();

    let mut block_size = 512usize;
    let mut window = 1u16;
    let mut oack = None;
    let mut data = Vec::new();
    let mut expected = 1u16;
    let mut in_window = 0u16;

    let (mut reply, peer) = recv(&socket).await;
    assert_ne!(peer, server, "transfers must come from a new port (TID)");
    loop {
        match reply {
            Reply::OAck(opts) => {
                for (key, value) in &opts {
                    match key.as_str() {
                        "blksize" => block_size = value.parse().unwrap(),
                        "windowsize" => window = value.parse().unwrap(),
                        _ => {}
                    }
                }
                oack = Some(opts);
                socket.send_to(&ack(0), peer).await.unwrap();
            }
            Reply::Data { block, data: chunk } => {
                assert_eq!(block, expected, "blocks arrive in order on loopback");
                assert!(chunk.len() <= block_size, "block {block} is {} bytes", chunk.len());
                data.extend_from_slice(&chunk);
                expected = expected.wrapping_add(1);
                in_window += 1;
                let last = chunk.len() < block_size;
                if last || in_window == window {
                    socket.send_to(&ack(block), peer).await.unwrap();
                    in_window = 0;
                }
                if last {
                    return Ok(Fetched { data, oack });
                }
            }
            Reply::Error { code, message } => return Err((code, message)),
            Reply::Other(packet) => panic!("unexpected packet {packet:?}"),
        }
        let (next, from) = recv(&socket).await;
        assert_eq!(from, peer, "the transfer changed its port");
        reply = next;
    }
}

/// Send one request and expect exactly one ERROR packet back, nothing else.
async fn expect_only_error(server: SocketAddr, packet: &[u8]) -> (u16, String) {
    let socket = client().await;
    socket.send_to(packet, server).await.unwrap();
    let (reply, _) = recv(&socket).await;
    let Reply::Error { code, message } = reply else {
        panic!("expected an ERROR packet, got {reply:?}");
    };
    let mut buf = [0u8; 2048];
    if let Ok(extra) = timeout(QUIET_PERIOD, socket.recv_from(&mut buf)).await {
        panic!("expected nothing after the ERROR, got {extra:?}");
    }
    (code, message)
}

/// Transfer phases for `file`, up to and including the one `done` accepts.
async fn phases_until(
    rx: &mut broadcast::Receiver<EngineEvent>,
    file: &str,
    done: impl Fn(&TransferPhase) -> bool,
) -> Vec<TransferPhase> {
    let mut phases = Vec::new();
    loop {
        let event = timeout(RECV_TIMEOUT, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no final event for {file:?}; so far {phases:?}"))
            .expect("event channel");
        if let EngineEvent::Transfer(transfer) = event
            && transfer.file == file
        {
            let finished = done(&transfer.phase);
            phases.push(transfer.phase);
            if finished {
                return phases;
            }
        }
    }
}

fn is_final(phase: &TransferPhase) -> bool {
    matches!(phase, TransferPhase::Finished { .. } | TransferPhase::Failed { .. } | TransferPhase::Refused { .. })
}

/// Bytes that differ block to block, so a misplaced block shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

struct Lab {
    root: tempfile::TempDir,
    events: EventSink,
    rx: broadcast::Receiver<EngineEvent>,
    service: TftpService,
}

impl Lab {
    async fn start() -> Lab {
        Self::start_with(|_| {}, Served::default()).await
    }

    async fn start_with(tune: impl FnOnce(&mut TftpSettings), generated: Served) -> Lab {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("boot")).unwrap();
        std::fs::write(root.path().join("pxelinux.0"), pattern(100_000)).unwrap();
        std::fs::write(root.path().join("boot/x64.efi"), pattern(1024)).unwrap();
        std::fs::write(root.path().join("boot.ipxe"), b"#!ipxe\necho the real file\n").unwrap();
        std::fs::write(root.path().join("big.img"), pattern(300_000)).unwrap();
        let events = EventSink::new();
        let rx = events.subscribe();
        let mut settings = TftpSettings::new("127.0.0.1:0".parse().unwrap(), root.path());
        tune(&mut settings);
        let service = start(settings, generated, events.clone()).await.expect("start TFTP");
        Lab { root, events, rx, service }
    }

    fn addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.root.path().join(name)).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_a_real_file_with_blksize_and_tsize() {
    let mut lab = Lab::start().await;
    let fetched = fetch(lab.addr(), "pxelinux.0", &[("blksize", "1468"), ("tsize", "0")]).await.unwrap();
    assert_eq!(fetched.data, lab.read("pxelinux.0"));
    let oack = fetched.oack.expect("OACK");
    assert!(oack.contains(&("blksize".to_owned(), "1468".to_owned())), "{oack:?}");
    assert!(oack.contains(&("tsize".to_owned(), "100000".to_owned())), "{oack:?}");

    let phases = phases_until(&mut lab.rx, "pxelinux.0", is_final).await;
    assert_eq!(phases.first(), Some(&TransferPhase::Started { size: Some(100_000) }));
    assert_eq!(phases.last(), Some(&TransferPhase::Finished { bytes: 100_000 }));
}

#[tokio::test]
async fn serves_without_options_in_512_byte_blocks() {
    let mut lab = Lab::start().await;
    // 1024 bytes: two full blocks and then an empty last one.
    let fetched = fetch(lab.addr(), "\\boot\\x64.efi", &[]).await.unwrap();
    assert!(fetched.oack.is_none());
    assert_eq!(fetched.data, lab.read("boot/x64.efi"));
    let phases = phases_until(&mut lab.rx, "\\boot\\x64.efi", is_final).await;
    assert_eq!(phases.last(), Some(&TransferPhase::Finished { bytes: 1024 }));
}

#[tokio::test]
async fn serves_the_largest_blocks() {
    let mut lab = Lab::start().await;
    let fetched = fetch(lab.addr(), "big.img", &[("blksize", "65464"), ("tsize", "0")]).await.unwrap();
    assert_eq!(fetched.data, lab.read("big.img"));
    let oack = fetched.oack.expect("OACK");
    assert!(oack.contains(&("blksize".to_owned(), "65464".to_owned())), "{oack:?}");
    let phases = phases_until(&mut lab.rx, "big.img", is_final).await;
    assert_eq!(phases.last(), Some(&TransferPhase::Finished { bytes: 300_000 }));
}

#[tokio::test]
async fn serves_windows_up_to_the_limit() {
    let lab = Lab::start_with(|s| s.window_size_limit = Some(4), Served::default()).await;
    let opts = [("blksize", "1468"), ("windowsize", "16")];
    let fetched = fetch(lab.addr(), "big.img", &opts).await.unwrap();
    assert_eq!(fetched.data, lab.read("big.img"));
    let oack = fetched.oack.expect("OACK");
    assert!(oack.contains(&("windowsize".to_owned(), "4".to_owned())), "window capped: {oack:?}");
}

#[tokio::test]
async fn block_size_limit_caps_the_client() {
    let lab = Lab::start_with(|s| s.block_size_limit = Some(1024), Served::default()).await;
    let fetched = fetch(lab.addr(), "pxelinux.0", &[("blksize", "1468")]).await.unwrap();
    assert_eq!(fetched.oack, Some(vec![("blksize".to_owned(), "1024".to_owned())]));
    assert_eq!(fetched.data, lab.read("pxelinux.0"));
}

#[tokio::test]
async fn serves_a_generated_file_over_a_real_one() {
    let script = Bytes::from_static(b"#!ipxe\nchain http://10.0.0.1/boot\n");
    let generated = Served::new([("boot.ipxe".to_owned(), script.clone())]);
    let mut lab = Lab::start_with(|_| {}, generated).await;
    for name in ["boot.ipxe", "/boot.ipxe"] {
        let fetched = fetch(lab.addr(), name, &[("tsize", "0")]).await.unwrap();
        assert_eq!(fetched.data, script);
        assert_eq!(fetched.oack, Some(vec![("tsize".to_owned(), script.len().to_string())]));
        let phases = phases_until(&mut lab.rx, name, is_final).await;
        assert_eq!(phases.first(), Some(&TransferPhase::Started { size: Some(script.len() as u64) }));
        assert_eq!(phases.last(), Some(&TransferPhase::Finished { bytes: script.len() as u64 }));
    }
}

#[tokio::test]
async fn traversal_gets_an_error_and_nothing_else() {
    let mut lab = Lab::start().await;
    for name in ["../../etc/passwd", "..\\..\\x", "C:\\x"] {
        let (code, _) = expect_only_error(lab.addr(), &request(OP_RRQ, name.as_bytes(), &[])).await;
        assert_eq!(code, 2, "{name:?} should be an access violation");
        let phases = phases_until(&mut lab.rx, name, is_final).await;
        assert!(matches!(phases.as_slice(), [TransferPhase::Refused { .. }]), "{phases:?}");
    }
}

#[tokio::test]
async fn absolute_names_are_served_from_the_root() {
    let lab = Lab::start().await;
    std::fs::create_dir(lab.root.path().join("etc")).unwrap();
    std::fs::write(lab.root.path().join("etc/passwd"), b"inside the root").unwrap();
    let fetched = fetch(lab.addr(), "/etc/passwd", &[]).await.unwrap();
    assert_eq!(fetched.data, b"inside the root");
}

#[cfg(unix)]
#[tokio::test]
async fn symlink_out_of_the_root_gets_an_error() {
    let mut lab = Lab::start().await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), lab.root.path().join("escape")).unwrap();
    std::os::unix::fs::symlink("pxelinux.0", lab.root.path().join("alias")).unwrap();

    let (code, _) = expect_only_error(lab.addr(), &request(OP_RRQ, b"escape", &[])).await;
    assert_eq!(code, 2);
    let phases = phases_until(&mut lab.rx, "escape", is_final).await;
    assert!(
        matches!(phases.as_slice(), [TransferPhase::Refused { reason, .. }] if reason.contains("outside the boot root")),
        "{phases:?}"
    );

    // A link that stays inside is fine.
    assert_eq!(fetch(lab.addr(), "alias", &[]).await.unwrap().data, lab.read("pxelinux.0"));
}

/// A request whose name is not UTF-8 cannot name a boot file: no reply, no event.
#[tokio::test]
async fn non_utf8_names_are_dropped_silently() {
    let mut lab = Lab::start().await;
    let socket = client().await;
    socket.send_to(&request(OP_RRQ, b"boot\xff.efi", &[]), lab.addr()).await.unwrap();
    let mut buf = [0u8; 2048];
    assert!(timeout(QUIET_PERIOD, socket.recv_from(&mut buf)).await.is_err(), "expected no reply");
    while let Ok(event) = lab.rx.try_recv() {
        assert!(!matches!(event, EngineEvent::Transfer(_)), "unexpected {event:?}");
    }
}

#[tokio::test]
async fn missing_file_is_not_found() {
    let mut lab = Lab::start().await;
    let (code, _) = expect_only_error(lab.addr(), &request(OP_RRQ, b"nope.efi", &[("tsize", "0")])).await;
    assert_eq!(code, 1);
    let phases = phases_until(&mut lab.rx, "nope.efi", is_final).await;
    assert!(
        matches!(phases.as_slice(), [TransferPhase::Refused { reason, not_found: true }] if reason.contains("does not exist")),
        "{phases:?}"
    );
}

#[tokio::test]
async fn write_requests_are_refused() {
    let mut lab = Lab::start().await;
    let (code, message) = expect_only_error(lab.addr(), &request(OP_WRQ, b"upload.bin", &[])).await;
    assert_eq!((code, message.as_str()), (0, READ_ONLY_MESSAGE));
    let phases = phases_until(&mut lab.rx, "upload.bin", is_final).await;
    assert!(matches!(phases.as_slice(), [TransferPhase::Refused { reason, .. }] if reason.contains("read-only")));
    assert!(!lab.root.path().join("upload.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_both_complete() {
    let lab = Lab::start().await;
    let (a, b) = tokio::join!(
        fetch(lab.addr(), "pxelinux.0", &[("blksize", "1468")]),
        fetch(lab.addr(), "big.img", &[("blksize", "1468"), ("windowsize", "8")]),
    );
    assert_eq!(a.unwrap().data, lab.read("pxelinux.0"));
    assert_eq!(b.unwrap().data, lab.read("big.img"));
}

#[tokio::test]
async fn a_client_that_goes_silent_is_a_failed_transfer() {
    let mut lab = Lab::start_with(
        |s| {
            s.timeout = Duration::from_millis(50);
            s.max_send_retries = 1;
        },
        Served::default(),
    )
    .await;
    let socket = client().await;
    socket.send_to(&request(OP_RRQ, b"pxelinux.0", &[]), lab.addr()).await.unwrap();
    let (first, _) = recv(&socket).await;
    assert!(matches!(first, Reply::Data { block: 1, .. }));
    // ...and never acknowledge it.
    let phases = phases_until(&mut lab.rx, "pxelinux.0", is_final).await;
    match phases.last() {
        Some(TransferPhase::Failed { bytes, reason }) => {
            assert_eq!(*bytes, 0, "bytes count what the client acknowledged");
            assert!(reason.contains("0 of 100000 bytes") && reason.contains("no acknowledgement"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

/// A datagram from another port or address (a stray TID) gets ERROR 5, and the
/// transfer it landed on goes on (RFC 1350, section 4).
#[tokio::test]
async fn a_stray_tid_gets_error_5_and_the_transfer_goes_on() {
    let lab = Lab::start().await;
    let socket = client().await;
    socket.send_to(&request(OP_RRQ, b"pxelinux.0", &[]), lab.addr()).await.unwrap();
    let (first, peer) = recv(&socket).await;
    assert!(matches!(first, Reply::Data { block: 1, .. }), "{first:?}");

    let stray = client().await;
    stray.send_to(&ack(1), peer).await.unwrap();
    let (reply, from) = recv(&stray).await;
    assert_eq!(from, peer, "the error comes from the transfer's port");
    assert!(matches!(&reply, Reply::Error { code: 5, .. }), "{reply:?}");

    // Only once a second, and never to an ERROR (two such sockets would bounce forever).
    let mut error = OP_ERROR.to_be_bytes().to_vec();
    error.extend_from_slice(&5u16.to_be_bytes());
    error.extend_from_slice(b"unknown transfer ID\0");
    let other = client().await;
    other.send_to(&error, peer).await.unwrap();
    stray.send_to(&ack(1), peer).await.unwrap();
    let mut buf = [0u8; 2048];
    assert!(timeout(QUIET_PERIOD, other.recv_from(&mut buf)).await.is_err(), "an ERROR was answered");
    assert!(timeout(QUIET_PERIOD, stray.recv_from(&mut buf)).await.is_err(), "answered twice within a second");

    // The client's own ACK still moves its transfer on (block 1 may have been resent
    // meanwhile: skipped).
    socket.send_to(&ack(1), peer).await.unwrap();
    let mut next = recv(&socket).await.0;
    while matches!(next, Reply::Data { block: 1, .. }) {
        next = recv(&socket).await.0;
    }
    let expected = &lab.read("pxelinux.0")[512..1024];
    assert!(matches!(&next, Reply::Data { block: 2, data } if data.as_slice() == expected), "{next:?}");
}

/// A client's ERROR ends the transfer at once: nothing more is sent.
#[tokio::test]
async fn a_client_error_ends_the_transfer() {
    let mut lab = Lab::start_with(|s| s.timeout = Duration::from_millis(50), Served::default()).await;
    let socket = client().await;
    socket.send_to(&request(OP_RRQ, b"pxelinux.0", &[]), lab.addr()).await.unwrap();
    let (first, peer) = recv(&socket).await;
    assert!(matches!(first, Reply::Data { block: 1, .. }));
    let mut error = OP_ERROR.to_be_bytes().to_vec();
    error.extend_from_slice(&0u16.to_be_bytes());
    error.extend_from_slice(b"client gave up\0");
    socket.send_to(&error, peer).await.unwrap();

    let phases = phases_until(&mut lab.rx, "pxelinux.0", is_final).await;
    match phases.last() {
        Some(TransferPhase::Failed { bytes: 0, reason }) => assert!(reason.contains("client gave up"), "{reason}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    let mut buf = [0u8; 2048];
    if let Ok(extra) = timeout(QUIET_PERIOD, socket.recv_from(&mut buf)).await {
        panic!("expected nothing after the client's ERROR, got {extra:?}");
    }
}

/// A lost block in a window is sent again after a short wait, not after the
/// full timeout: the client acknowledges the last block it got in order.
#[tokio::test]
async fn a_lost_block_in_a_window_is_resent_from_the_gap() {
    let lab = Lab::start().await;
    let socket = client().await;
    let opts = [("blksize", "1000"), ("windowsize", "4")];
    socket.send_to(&request(OP_RRQ, b"big.img", &opts), lab.addr()).await.unwrap();
    let (oack, peer) = recv(&socket).await;
    assert!(matches!(oack, Reply::OAck(_)), "{oack:?}");
    socket.send_to(&ack(0), peer).await.unwrap();
    let mut blocks = Vec::new();
    for _ in 0..4 {
        let (Reply::Data { block, .. }, _) = recv(&socket).await else { panic!("expected DATA") };
        blocks.push(block);
    }
    assert_eq!(blocks, [1, 2, 3, 4]);
    // "Block 3 never arrived": acknowledge 2; the window resumes at 3.
    socket.send_to(&ack(2), peer).await.unwrap();
    let (Reply::Data { block, data }, _) = recv(&socket).await else { panic!("expected DATA") };
    assert_eq!((block, data.as_slice()), (3, &lab.read("big.img")[2000..3000]));
}

/// Block numbers past 65535 wrap to 0 and the file still arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_numbers_wrap_on_a_long_transfer() {
    let lab = Lab::start().await;
    std::fs::write(lab.root.path().join("long.img"), pattern(70_000 * 16)).unwrap();
    let fetched = fetch(lab.addr(), "long.img", &[("blksize", "16"), ("windowsize", "64")]).await.unwrap();
    assert!(fetched.data == lab.read("long.img"), "bytes differ");
}

fn can_bind(addr: SocketAddr) -> bool {
    StdUdpSocket::bind(addr).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cuts_transfers_and_frees_the_port() {
    let lab = Lab::start().await;
    let addr = lab.addr();
    assert!(lab.service.is_running());
    assert!(!can_bind(addr));

    // A transfer in flight when the server stops.
    let socket = client().await;
    socket.send_to(&request(OP_RRQ, b"big.img", &[]), addr).await.unwrap();
    let (first, _) = recv(&socket).await;
    assert!(matches!(first, Reply::Data { block: 1, .. }));

    let Lab { root: _root, events: _events, mut rx, service } = lab;
    service.stop().await;
    assert!(can_bind(addr), "the port is free once stop() returns");

    let phases = phases_until(&mut rx, "big.img", is_final).await;
    assert!(matches!(phases.last(), Some(TransferPhase::Failed { .. })), "{phases:?}");
}

#[tokio::test]
async fn drop_frees_the_port() {
    let lab = Lab::start().await;
    let addr = lab.addr();
    drop(lab);
    let freed = timeout(RECV_TIMEOUT, async {
        while !can_bind(addr) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(freed.is_ok(), "port {addr} still bound after drop");
}

#[tokio::test]
async fn start_reports_a_taken_port() {
    let squatter = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = squatter.local_addr().unwrap();
    let root = tempfile::tempdir().unwrap();
    let err = start(TftpSettings::new(addr, root.path()), Served::default(), EventSink::new()).await.unwrap_err();
    assert!(matches!(err, TftpStartError::AddressInUse { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&addr.to_string()) && message.contains("tftpd-hpa"), "{message}");
}

#[tokio::test]
async fn start_reports_a_bad_root_and_bad_settings() {
    let root = tempfile::tempdir().unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();

    let missing = root.path().join("missing");
    let err = start(TftpSettings::new(addr, &missing), Served::default(), EventSink::new()).await.unwrap_err();
    assert!(matches!(err, TftpStartError::Root { .. }) && err.to_string().contains("does not exist"), "{err}");

    let file = root.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = start(TftpSettings::new(addr, &file), Served::default(), EventSink::new()).await.unwrap_err();
    assert!(matches!(err, TftpStartError::Root { .. }), "{err}");

    for tune in [
        (|s: &mut TftpSettings| s.block_size_limit = Some(4)) as fn(&mut TftpSettings),
        |s| s.block_size_limit = Some(65465),
        |s| s.window_size_limit = Some(0),
        |s| s.timeout = Duration::ZERO,
    ] {
        let mut settings = TftpSettings::new(addr, root.path());
        tune(&mut settings);
        let err = start(settings, Served::default(), EventSink::new()).await.unwrap_err();
        assert!(matches!(err, TftpStartError::InvalidSetting(_)), "{err}");
    }
}

#[test]
fn bind_errors_say_what_to_do() {
    let addr: SocketAddr = "10.0.0.1:69".parse().unwrap();
    let denied = bind_error(addr, std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    assert!(denied.to_string().contains("CAP_NET_BIND_SERVICE"), "{denied}");
    assert!(denied.to_string().contains("10.0.0.1:69"), "{denied}");

    let high: SocketAddr = "10.0.0.1:6969".parse().unwrap();
    let denied = bind_error(high, std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    assert!(!denied.to_string().contains("CAP_NET_BIND_SERVICE"), "{denied}");

    let in_use = bind_error(addr, std::io::Error::from(std::io::ErrorKind::AddrInUse));
    assert_eq!(
        in_use.to_string(),
        "cannot bind TFTP on 10.0.0.1:69: address in use — another TFTP server (tftpd-hpa, dnsmasq) is running; \
         stop it or choose --tftp-port"
    );
    let absent = bind_error(addr, std::io::Error::from(std::io::ErrorKind::AddrNotAvailable));
    assert!(matches!(absent, TftpStartError::AddressNotAvailable { .. }));
}

async fn next_service_event(rx: &mut broadcast::Receiver<EngineEvent>) -> crate::events::ServiceEvent {
    loop {
        let event = timeout(RECV_TIMEOUT, rx.recv()).await.expect("a service event").expect("event channel");
        if let EngineEvent::Service(service) = event {
            return service;
        }
    }
}

#[tokio::test]
async fn service_events_on_start_and_stop() {
    let Lab { root: _root, events: _events, mut rx, service } = Lab::start().await;
    let addr = service.local_addr().to_string();
    let started = next_service_event(&mut rx).await;
    assert!(started.ok && started.message.contains("TFTP serving") && started.message.contains(&addr));
    service.stop().await;
    let stopped = next_service_event(&mut rx).await;
    assert!(stopped.ok && stopped.message.contains("stopped") && stopped.message.contains(&addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_inside_an_iso_image_is_served_byte_exact() {
    let images = tempfile::tempdir().unwrap();
    let kernel = pattern(1_500_000);
    let iso = crate::iso::testing::image(images.path(), "live.iso", &[("live/vmlinuz", &kernel), ("a.txt", b"a")]);
    let served = Served::default().with_images([crate::iso::testing::mounted(&iso, "iso/live.iso")]);
    let mut lab = Lab::start_with(|_| {}, served).await;
    let opts = [("blksize", "1468"), ("windowsize", "8"), ("tsize", "0")];
    let fetched = fetch(lab.addr(), "/iso/live.iso/live/vmlinuz", &opts).await.unwrap();
    assert!(fetched.data == kernel, "byte-exact ({} bytes fetched)", fetched.data.len());
    assert!(fetched.oack.unwrap().contains(&("tsize".to_owned(), "1500000".to_owned())));
    let phases = phases_until(&mut lab.rx, "/iso/live.iso/live/vmlinuz", is_final).await;
    assert_eq!(phases.last(), Some(&TransferPhase::Finished { bytes: 1_500_000 }));
    let missing = fetch(lab.addr(), "iso/live.iso/live/../../../etc/passwd", &[]).await.unwrap_err();
    assert_eq!(missing.0, 2, "a name with .. is refused before any image is asked");
    let missing = fetch(lab.addr(), "iso/live.iso/nothing", &[]).await.unwrap_err();
    assert_eq!(missing.0, 1, "a name the image lacks is not found");
}

#[tokio::test]
async fn netascii_sends_text_with_network_line_ends() {
    let lab = Lab::start().await;
    std::fs::write(lab.root.path().join("answers.txt"), b"one\ntwo\r\nthree\rfour").unwrap();
    let fetched = fetch_in(lab.addr(), "answers.txt", "netascii", &[("tsize", "0")]).await.unwrap();
    assert_eq!(fetched.data, b"one\r\ntwo\r\nthree\r\0four");
    assert_eq!(fetched.oack, Some(vec![("tsize".to_owned(), "21".to_owned())]), "tsize is the size sent");
    let octet = fetch(lab.addr(), "answers.txt", &[]).await.unwrap();
    assert_eq!(octet.data, b"one\ntwo\r\nthree\rfour", "octet mode sends the bytes as they are");
}
