//! End-to-end tests of the HTTP service over real sockets on 127.0.0.1, with a
//! hand-written HTTP/1.1 client so that hostile paths reach the server unaltered.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::timeout;

use super::*;
use crate::events::{EngineEvent, EventSink, Protocol, TransferEvent, TransferPhase};
use crate::served::Served;

const SMALL_LEN: usize = 1000;
const BIG_LEN: usize = 8 << 20;
const SCRIPT: &str = "#!ipxe\nkernel vmlinuz\nboot\n";
const WAIT: Duration = Duration::from_secs(10);

/// Bytes whose value depends on their position, so a shifted range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A temporary tree: `<tmp>/root` is the boot root, `<tmp>/secret.txt` and
/// `<tmp>/outside/` lie next to it and must never be served.
struct Fixture {
    _tmp: tempfile::TempDir,
    service: HttpService,
    events: broadcast::Receiver<EngineEvent>,
}

impl Fixture {
    async fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("sub/dir")).expect("mkdir");
        std::fs::write(root.join("small.bin"), pattern(SMALL_LEN)).expect("write");
        std::fs::write(root.join("big.iso"), pattern(BIG_LEN)).expect("write");
        std::fs::write(root.join("sub/dir/file.txt"), "nested\n").expect("write");
        std::fs::write(root.join("boot.ipxe"), "real file, shadowed\n").expect("write");
        std::fs::write(tmp.path().join("secret.txt"), "SECRET\n").expect("write");
        std::fs::create_dir(tmp.path().join("outside")).expect("mkdir");
        std::fs::write(tmp.path().join("outside/secret.txt"), "SECRET\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(tmp.path().join("secret.txt"), root.join("escape.txt")).expect("symlink");
            symlink("../secret.txt", root.join("escape-relative.txt")).expect("symlink");
            symlink(tmp.path().join("outside"), root.join("outdir")).expect("symlink");
            symlink("small.bin", root.join("inside-link.bin")).expect("symlink");
        }

        let sink = EventSink::new();
        let events = sink.subscribe();
        let generated = Served::new([("boot.ipxe".to_string(), Bytes::from(SCRIPT))]);
        let settings = HttpSettings { bind: "127.0.0.1:0".parse().expect("addr"), root, interface: None, routes: None };
        let service = start(settings, generated, sink).await.expect("start");
        Self { _tmp: tmp, service, events }
    }

    fn addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    /// The next transfer event, skipping others.
    async fn next_transfer(&mut self) -> TransferEvent {
        timeout(WAIT, async {
            loop {
                match self.events.recv().await.expect("event channel") {
                    EngineEvent::Transfer(event) => return event,
                    _ => continue,
                }
            }
        })
        .await
        .expect("a transfer event within the timeout")
    }

    /// The next transfer event that is not `Progress`.
    async fn next_milestone(&mut self) -> TransferEvent {
        loop {
            let event = self.next_transfer().await;
            if !matches!(event.phase, TransferPhase::Progress { .. }) {
                return event;
            }
        }
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn request_text(method: &str, target: &str, extra_headers: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra_headers}\r\n")
}

/// Sends one request and reads the whole reply (the server closes after it).
async fn send(addr: SocketAddr, method: &str, target: &str, extra_headers: &str) -> Reply {
    timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let text = request_text(method, target, extra_headers);
        stream.write_all(text.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("receive");
        parse_reply(&raw)
    })
    .await
    .expect("a reply within the timeout")
}

async fn get(addr: SocketAddr, target: &str) -> Reply {
    send(addr, "GET", target, "").await
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII headers");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: raw[split + 4..].to_vec() }
}

#[tokio::test]
async fn get_serves_a_file_byte_exact_with_validators() {
    let fx = Fixture::new().await;
    let reply = get(fx.addr(), "/small.bin").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, pattern(SMALL_LEN));
    assert_eq!(reply.header("content-length"), Some("1000"));
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert!(reply.header("etag").is_some(), "ETag missing: {:?}", reply.headers);
    assert!(reply.header("last-modified").is_some(), "Last-Modified missing");

    let nested = get(fx.addr(), "/sub/dir/file.txt").await;
    assert_eq!((nested.status, nested.body.as_slice()), (200, &b"nested\n"[..]));
}

#[tokio::test]
async fn get_streams_a_large_file_byte_exact() {
    let fx = Fixture::new().await;
    let reply = get(fx.addr(), "/big.iso").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), BIG_LEN);
    assert!(reply.body == pattern(BIG_LEN));
}

#[tokio::test]
async fn head_gives_headers_without_body() {
    let fx = Fixture::new().await;
    let reply = send(fx.addr(), "HEAD", "/big.iso", "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some(BIG_LEN.to_string().as_str()));
    assert!(reply.header("etag").is_some());
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn range_gives_206_with_exactly_those_bytes() {
    let fx = Fixture::new().await;
    let reply = send(fx.addr(), "GET", "/small.bin", "Range: bytes=10-19\r\n").await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &pattern(SMALL_LEN)[10..20]);
    assert_eq!(reply.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(reply.header("content-length"), Some("10"));
}

#[tokio::test]
async fn suffix_range_gives_the_last_bytes() {
    let fx = Fixture::new().await;
    let reply = send(fx.addr(), "GET", "/small.bin", "Range: bytes=-5\r\n").await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body, &pattern(SMALL_LEN)[SMALL_LEN - 5..]);
    assert_eq!(reply.header("content-range"), Some("bytes 995-999/1000"));
}

#[tokio::test]
async fn open_range_in_a_large_file_streams_to_the_end() {
    let fx = Fixture::new().await;
    let from = BIG_LEN - 100_000;
    let reply = send(fx.addr(), "GET", "/big.iso", &format!("Range: bytes={from}-\r\n")).await;
    assert_eq!(reply.status, 206);
    assert!(reply.body == pattern(BIG_LEN)[from..]);
}

#[tokio::test]
async fn unsatisfiable_range_is_416_and_refused() {
    let mut fx = Fixture::new().await;
    let reply = send(fx.addr(), "GET", "/small.bin", "Range: bytes=5000-6000\r\n").await;
    assert_eq!(reply.status, 416);
    assert_eq!(reply.header("content-range"), Some("bytes */1000"));
    let event = fx.next_transfer().await;
    assert!(matches!(event.phase, TransferPhase::Refused { ref reason, .. } if reason.starts_with("416")));
}

#[tokio::test]
async fn multi_range_is_answered_with_the_whole_file() {
    let fx = Fixture::new().await;
    let reply = send(fx.addr(), "GET", "/small.bin", "Range: bytes=0-1,5-6\r\n").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, pattern(SMALL_LEN));
}

#[tokio::test]
async fn parent_directory_paths_are_not_served() {
    let mut fx = Fixture::new().await;
    let attempts = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2fetc%2fpasswd",
        "//etc/passwd",
        "/..\\secret.txt",
    ];
    for target in attempts {
        let reply = get(fx.addr(), target).await;
        assert!((400..500).contains(&reply.status), "{target} gave {}", reply.status);
        let body = String::from_utf8_lossy(&reply.body);
        assert!(!body.contains("SECRET") && !body.contains("root:"), "{target} leaked {body}");
        let event = fx.next_transfer().await;
        assert!(matches!(event.phase, TransferPhase::Refused { .. }), "{target}: {event:?}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() {
    let mut fx = Fixture::new().await;
    for target in ["/escape.txt", "/escape-relative.txt", "/outdir/secret.txt"] {
        for method in ["GET", "HEAD"] {
            let reply = send(fx.addr(), method, target, "").await;
            assert_eq!(reply.status, 404, "{method} {target}");
            assert!(!String::from_utf8_lossy(&reply.body).contains("SECRET"));
            let event = fx.next_transfer().await;
            assert_eq!(event.file, target);
            assert!(matches!(event.phase, TransferPhase::Refused { .. }), "{event:?}");
        }
    }
    // A symlink that stays inside the root is an ordinary file.
    let reply = get(fx.addr(), "/inside-link.bin").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, pattern(SMALL_LEN));
}

#[tokio::test]
async fn directories_are_not_listed() {
    let fx = Fixture::new().await;
    for target in ["/", "/sub", "/sub/", "/sub/dir/"] {
        let reply = get(fx.addr(), target).await;
        assert_eq!(reply.status, 404, "{target}");
    }
}

#[tokio::test]
async fn missing_file_is_404_and_refused() {
    let mut fx = Fixture::new().await;
    let reply = get(fx.addr(), "/nope.efi").await;
    assert_eq!(reply.status, 404);
    let event = fx.next_transfer().await;
    assert_eq!(event.file, "/nope.efi");
    assert!(matches!(event.phase, TransferPhase::Refused { not_found: true, ref reason } if reason.starts_with("404")));
}

#[tokio::test]
async fn writes_are_refused() {
    let mut fx = Fixture::new().await;
    for method in ["POST", "PUT", "DELETE"] {
        let reply = send(fx.addr(), method, "/small.bin", "Content-Length: 0\r\n").await;
        assert_eq!(reply.status, 405, "{method}");
        let event = fx.next_transfer().await;
        assert!(matches!(event.phase, TransferPhase::Refused { .. }));
    }
}

#[tokio::test]
async fn generated_file_is_served_and_shadows_the_real_one() {
    let mut fx = Fixture::new().await;
    for target in ["/boot.ipxe", "/./boot.ipxe", "//boot.ipxe", "/boot%2Eipxe"] {
        let reply = get(fx.addr(), target).await;
        assert_eq!(reply.status, 200, "{target}");
        assert_eq!(reply.body, SCRIPT.as_bytes(), "{target}");
        assert!(reply.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
        assert_eq!(fx.next_milestone().await.phase, TransferPhase::Started { size: Some(SCRIPT.len() as u64) });
        assert_eq!(fx.next_milestone().await.phase, TransferPhase::Finished { bytes: SCRIPT.len() as u64 });
    }
    let head = send(fx.addr(), "HEAD", "/boot.ipxe", "").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(SCRIPT.len().to_string().as_str()));
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn a_complete_get_reports_started_then_finished_with_all_bytes() {
    let mut fx = Fixture::new().await;
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    let client = stream.local_addr().expect("local addr");
    stream.write_all(request_text("GET", "/small.bin", "").as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    assert_eq!(parse_reply(&raw).body.len(), SMALL_LEN);

    let started = fx.next_transfer().await;
    assert_eq!(started.protocol, Protocol::Http);
    assert_eq!(started.client, client);
    assert_eq!(started.file, "/small.bin");
    assert_eq!(started.phase, TransferPhase::Started { size: Some(SMALL_LEN as u64) });
    let finished = fx.next_milestone().await;
    assert_eq!(finished.phase, TransferPhase::Finished { bytes: SMALL_LEN as u64 });

    // A range transfer counts the range.
    send(fx.addr(), "GET", "/small.bin", "Range: bytes=10-19\r\n").await;
    assert_eq!(fx.next_milestone().await.phase, TransferPhase::Started { size: Some(10) });
    assert_eq!(fx.next_milestone().await.phase, TransferPhase::Finished { bytes: 10 });
}

#[tokio::test]
async fn a_slow_large_download_reports_progress() {
    let mut fx = Fixture::new().await;
    // A small, fixed receive buffer keeps the kernel from absorbing the file, so
    // the server has to wait for this slow reader.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
    let mut stream = socket.connect(fx.addr()).await.expect("connect");
    stream.write_all(request_text("GET", "/big.iso", "").as_bytes()).await.expect("send");
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await.expect("receive");
        if n == 0 {
            break;
        }
        total += n;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(total > BIG_LEN);

    let size = Some(BIG_LEN as u64);
    assert_eq!(fx.next_transfer().await.phase, TransferPhase::Started { size });
    let mut progress = Vec::new();
    let end = loop {
        match fx.next_transfer().await.phase {
            TransferPhase::Progress { bytes, size: s } => {
                assert_eq!(s, size);
                progress.push(bytes);
            }
            other => break other,
        }
    };
    assert_eq!(end, TransferPhase::Finished { bytes: BIG_LEN as u64 });
    assert!(!progress.is_empty(), "no Progress event in a slow 8 MiB download");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert!(progress.iter().all(|&b| b <= BIG_LEN as u64));
}

#[tokio::test]
async fn a_client_leaving_mid_body_reports_failed() {
    let mut fx = Fixture::new().await;
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    stream.write_all(request_text("GET", "/big.iso", "").as_bytes()).await.expect("send");
    let mut buf = vec![0u8; 64 << 10];
    stream.read_exact(&mut buf).await.expect("the first bytes");
    drop(stream);

    assert!(matches!(fx.next_milestone().await.phase, TransferPhase::Started { .. }));
    match fx.next_milestone().await.phase {
        TransferPhase::Failed { bytes, reason } => {
            assert!(bytes < BIG_LEN as u64, "{bytes}");
            assert!(reason.contains("closed"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn stop_cuts_a_stalled_transfer_and_frees_the_port() {
    let mut fx = Fixture::new().await;
    let addr = fx.addr();
    // A client that asks for a large file and never reads it.
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled.write_all(request_text("GET", "/big.iso", "").as_bytes()).await.expect("send");
    assert!(matches!(fx.next_milestone().await.phase, TransferPhase::Started { .. }));

    let Fixture { _tmp, service, mut events } = fx;
    timeout(WAIT, service.stop()).await.expect("stop() returns despite the stalled client");
    let failed = timeout(WAIT, async {
        loop {
            if let Ok(EngineEvent::Transfer(event)) = events.recv().await
                && !matches!(event.phase, TransferPhase::Progress { .. })
            {
                return event.phase;
            }
        }
    })
    .await
    .expect("an end event");
    assert!(matches!(failed, TransferPhase::Failed { .. }), "{failed:?}");

    let again = HttpSettings { bind: addr, root: _tmp.path().join("root"), interface: None, routes: None };
    let service = start(again, Served::default(), EventSink::new()).await.expect("rebind");
    assert_eq!(get(service.local_addr(), "/small.bin").await.status, 200);
    service.stop().await;
}

/// Replies one after another on one connection; `heads[i]` says whether reply i
/// answers a HEAD (which has a length but no body).
fn parse_replies(mut raw: &[u8], heads: &[bool]) -> Vec<Reply> {
    let mut replies = Vec::new();
    for &is_head in heads {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers") + 4;
        let mut reply = parse_reply(&raw[..split]);
        let len = match is_head {
            true => 0,
            false => reply.header("content-length").map_or(raw.len() - split, |l| l.parse().expect("length")),
        };
        reply.body = raw[split..split + len].to_vec();
        raw = &raw[split + len..];
        replies.push(reply);
    }
    assert!(raw.is_empty(), "{} bytes after the last reply", raw.len());
    replies
}

#[tokio::test]
async fn one_connection_carries_pipelined_requests_and_then_a_post() {
    let mut fx = Fixture::new().await;
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    let keep =
        |method: &str, target: &str, extra: &str| format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    // File bytes, a HEAD, a generated file and a 404 keep the connection open;
    // the POST (hyper's to answer) comes after them on the same connection, and a
    // last GET after it.
    let requests = [
        keep("GET", "/small.bin", "Range: bytes=10-19\r\n"),
        keep("HEAD", "/big.iso", ""),
        keep("GET", "/boot.ipxe", ""),
        keep("GET", "/nope.efi", ""),
        keep("GET", "/big.iso", ""),
        keep("POST", "/small.bin", "Content-Length: 3\r\n") + "abc",
        keep("GET", "/small.bin", "Connection: close\r\n"),
    ];
    stream.write_all(requests.concat().as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("all replies, then close").expect("receive");

    let replies = parse_replies(&raw, &[false, true, false, false, false, false, false]);
    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status).collect();
    assert_eq!(statuses, [206, 200, 200, 404, 200, 405, 200]);
    assert_eq!(replies[0].body, pattern(SMALL_LEN)[10..20]);
    assert_eq!(replies[0].header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(replies[1].header("content-length"), Some(BIG_LEN.to_string().as_str()));
    assert_eq!(replies[2].body, SCRIPT.as_bytes());
    assert!(replies[4].body == pattern(BIG_LEN), "8 MiB byte-exact on a kept-alive connection");
    assert_eq!(replies[6].body, pattern(SMALL_LEN));
    assert!(replies.iter().all(|reply| reply.header("date").is_some()));

    let mut milestones = Vec::new();
    for _ in 0..8 {
        let event = fx.next_milestone().await;
        milestones.push((event.file, event.phase));
    }
    let refused =
        |reason: &str| TransferPhase::Refused { reason: reason.to_owned(), not_found: reason.starts_with("404") };
    let big = BIG_LEN as u64;
    assert_eq!(
        milestones,
        [
            ("/small.bin".into(), TransferPhase::Started { size: Some(10) }),
            ("/small.bin".into(), TransferPhase::Finished { bytes: 10 }),
            ("/boot.ipxe".into(), TransferPhase::Started { size: Some(SCRIPT.len() as u64) }),
            ("/boot.ipxe".into(), TransferPhase::Finished { bytes: SCRIPT.len() as u64 }),
            ("/nope.efi".into(), refused("404 not found in the boot root")),
            ("/big.iso".into(), TransferPhase::Started { size: Some(big) }),
            ("/big.iso".into(), TransferPhase::Finished { bytes: big }),
            ("/small.bin".into(), refused("405 only GET and HEAD are served")),
        ]
    );
}

#[tokio::test]
async fn http_1_0_is_served_and_closed() {
    let fx = Fixture::new().await;
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    stream.write_all(b"GET /small.bin HTTP/1.0\r\n\r\n").await.expect("send");
    let mut raw = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("closed after the reply").expect("receive");
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, pattern(SMALL_LEN));
}

#[tokio::test]
async fn a_client_that_has_the_file_gets_304_on_both_paths() {
    let fx = Fixture::new().await;
    let first = get(fx.addr(), "/small.bin").await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    // The zero-copy path (HTTP/1.1 GET) and hyper (HTTP/1.0) answer from the same plan.
    let cached = send(fx.addr(), "GET", "/small.bin", &format!("If-None-Match: {etag}\r\n")).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty(), "{} body bytes", cached.body.len());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    let request = format!("GET /small.bin HTTP/1.0\r\nIf-None-Match: {etag}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("closed after the reply").expect("receive");
    let reply = parse_reply(&raw);
    assert_eq!((reply.status, reply.body.len()), (304, 0));
    // A range of a file the client has an old copy of is the whole new file.
    let changed = send(fx.addr(), "GET", "/small.bin", "Range: bytes=0-9\r\nIf-Range: \"old\"\r\n").await;
    assert_eq!((changed.status, changed.body), (200, pattern(SMALL_LEN)));
}

#[tokio::test]
async fn a_reply_sent_while_stopping_says_the_connection_will_close() {
    let fx = Fixture::new().await;
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    // Two requests at once; the client reads nothing until the stop has begun, so the
    // second reply is made while the service drains.
    let two = "GET /big.iso HTTP/1.1\r\nHost: t\r\n\r\nGET /small.bin HTTP/1.1\r\nHost: t\r\n\r\n";
    stream.write_all(two.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(fx.service.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut raw = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("both replies, then close").expect("receive");
    let replies = parse_replies(&raw, &[false, false]);
    assert!(replies[0].body == pattern(BIG_LEN));
    assert_eq!(replies[0].header("connection"), None, "made before the stop");
    assert_eq!(replies[1].body, pattern(SMALL_LEN));
    assert_eq!(replies[1].header("connection"), Some("close"));
    timeout(WAIT, stopping).await.expect("stop returns").expect("stop task");
}

#[tokio::test]
async fn stop_closes_idle_kept_alive_connections_at_once() {
    let fx = Fixture::new().await;
    let mut stream = TcpStream::connect(fx.addr()).await.expect("connect");
    stream.write_all(b"GET /small.bin HTTP/1.1\r\nHost: t\r\n\r\n").await.expect("send");
    let mut reply = vec![0u8; 4096];
    let mut got = 0;
    while !reply[..got].ends_with(&pattern(SMALL_LEN)[SMALL_LEN - 8..]) {
        got += timeout(WAIT, stream.read(&mut reply[got..])).await.expect("the reply").expect("receive");
    }

    let started = std::time::Instant::now();
    fx.service.stop().await;
    // Well below the grace a running response gets: nothing was running.
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(timeout(WAIT, stream.read(&mut reply)).await.expect("closed").expect("receive"), 0);
}

#[tokio::test]
async fn dropping_the_service_stops_it() {
    let fx = Fixture::new().await;
    let addr = fx.addr();
    assert_eq!(get(addr, "/small.bin").await.status, 200);
    drop(fx);
    timeout(WAIT, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the port stops accepting after drop");
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr");
    let tmp = tempfile::tempdir().expect("tempdir");
    let settings = HttpSettings { bind: addr, root: tmp.path().to_path_buf(), interface: None, routes: None };
    let error = start(settings, Served::default(), EventSink::new()).await.expect_err("the port is taken");
    assert!(matches!(error, HttpStartError::AddressInUse { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.contains("another web server holds port") && message.contains("--http-port"));
}

#[tokio::test]
async fn a_missing_root_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("no-such-folder");
    let settings = HttpSettings {
        bind: "127.0.0.1:0".parse().expect("addr"),
        root: missing.clone(),
        interface: None,
        routes: None,
    };
    let error = start(settings, Served::default(), EventSink::new()).await.expect_err("no root");
    assert!(matches!(error, HttpStartError::Root { .. }), "{error:?}");
    assert!(error.to_string().contains(&missing.display().to_string()));

    let file = tmp.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let settings =
        HttpSettings { bind: "127.0.0.1:0".parse().expect("addr"), root: file, interface: None, routes: None };
    let error = start(settings, Served::default(), EventSink::new()).await.err();
    assert!(matches!(error, Some(HttpStartError::Root { .. })), "{error:?}");
}

#[test]
fn bind_errors_say_what_to_do() {
    use std::io::{Error, ErrorKind};
    let low: SocketAddr = "0.0.0.0:80".parse().expect("addr");
    let error = HttpStartError::from_bind(low, Error::from(ErrorKind::PermissionDenied));
    let message = error.to_string();
    assert!(message.contains("0.0.0.0:80") && message.contains("CAP_NET_BIND_SERVICE"), "{message}");

    let error = HttpStartError::from_bind(low, Error::from(ErrorKind::AddrInUse));
    assert!(error.to_string().contains("another web server holds port 80; stop it or choose --http-port"));

    let foreign: SocketAddr = "192.0.2.1:8080".parse().expect("addr");
    let error = HttpStartError::from_bind(foreign, Error::from(ErrorKind::AddrNotAvailable));
    assert!(error.to_string().contains("192.0.2.1 is not an address of this machine"));
}

#[tokio::test]
async fn a_file_inside_an_iso_image_is_served_whole_and_by_range() {
    let images = tempfile::tempdir().unwrap();
    let squashfs = pattern(3_000_001);
    let iso = crate::iso::testing::image(images.path(), "live.iso", &[("live/filesystem.squashfs", &squashfs)]);
    let root = images.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let served = Served::default().with_images([crate::iso::testing::mounted(&iso, "iso/live.iso")]);
    let settings = HttpSettings { bind: "127.0.0.1:0".parse().unwrap(), root, interface: None, routes: None };
    let service = start(settings, served, EventSink::new()).await.expect("start");
    let addr = service.local_addr();
    let path = "/iso/live.iso/live/filesystem.squashfs";

    let whole = send(addr, "GET", path, "").await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(whole.body == squashfs, "byte-exact ({} bytes)", whole.body.len());
    let part = send(addr, "GET", path, "Range: bytes=1000000-1000099\r\n").await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000000-1000099/3000001"));
    assert_eq!(part.body, squashfs[1_000_000..1_000_100]);
    let tail = send(addr, "GET", path, "Range: bytes=-5\r\n").await;
    assert_eq!(tail.body, squashfs[squashfs.len() - 5..]);
    let beyond = send(addr, "GET", path, "Range: bytes=3000001-\r\n").await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */3000001"));
    let head = send(addr, "HEAD", path, "").await;
    assert_eq!((head.status, head.header("content-length"), head.body.len()), (200, Some("3000001"), 0));
    let image = send(addr, "GET", "/iso/live.iso", "").await;
    assert_eq!(image.body, std::fs::read(&iso).unwrap(), "the image itself is served at its mount");
    assert_eq!(send(addr, "GET", "/iso/live.iso/live/nothing", "").await.status, 404);
    assert_eq!(send(addr, "GET", "/iso/live.iso/live/%2e%2e/%2e%2e/etc/passwd", "").await.status, 404);
    service.stop().await;
}

/// Reads until the server closes the connection; how long that took (bounded by `limit`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    let mut sink = [0u8; 1024];
    let closed = timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.is_ok().then(|| start.elapsed())
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let fixture = Fixture::new().await;
    let mut held = Vec::new();
    for _ in 0..super::admission::PER_CLIENT {
        held.push(TcpStream::connect(fixture.addr()).await.unwrap());
    }
    let mut over = TcpStream::connect(fixture.addr()).await.unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await.is_some(),
        "a connection over the per-client limit is closed at once"
    );
    // A held connection still answers, and a place given back is taken again.
    let mut first = held.remove(0);
    first.write_all(request_text("GET", "/small.bin", "").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    first.read_to_end(&mut raw).await.unwrap();
    assert_eq!(parse_reply(&raw).status, 200);
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(send(fixture.addr(), "GET", "/small.bin", "").await.status, 200);
}

#[tokio::test]
async fn a_head_that_never_ends_is_closed_after_the_head_timeout() {
    let fixture = Fixture::new().await;
    let mut slow = TcpStream::connect(fixture.addr()).await.unwrap();
    slow.write_all(b"GET /small.bin HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let after = closed_within(&mut slow, super::site::HEAD_TIMEOUT + Duration::from_secs(3)).await;
    let after = after.expect("the slow head was closed");
    assert!(after >= super::site::HEAD_TIMEOUT - Duration::from_millis(500), "not before the timeout: {after:?}");
    // The same with a head that drips one byte a second (slowloris): the drip does not extend it.
    let mut drip = TcpStream::connect(fixture.addr()).await.unwrap();
    let started = std::time::Instant::now();
    let dripping = async {
        for byte in b"GET /small.bin HTTP/1.1\r\nX-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".iter() {
            if drip.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let _ = timeout(super::site::HEAD_TIMEOUT + Duration::from_secs(5), dripping).await;
    assert!(started.elapsed() < super::site::HEAD_TIMEOUT + Duration::from_secs(4), "the drip was cut off");
    assert!(closed_within(&mut drip, Duration::from_secs(2)).await.is_some());
}

#[tokio::test]
async fn a_name_longer_than_the_file_system_allows_is_not_found() {
    let fixture = Fixture::new().await;
    for name in ["a".repeat(256), format!("sub/{}", "b".repeat(300)), format!("{}/x", "c".repeat(4000))] {
        let reply = send(fixture.addr(), "GET", &format!("/{name}"), "").await;
        assert_eq!(reply.status, 404, "/{} ({} bytes)", &name[..20], name.len());
    }
}
