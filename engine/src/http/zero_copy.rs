//! Linux: file bodies sent with sendfile(2), straight from the page cache.
//!
//! Hyper writes every body byte from a buffer, so a file crosses user space twice
//! (read, then write); with 40 clients pulling an image that copying is what fills
//! the CPUs (BENCHMARKS.md, case 4b). This path takes the connection first. It
//! answers the requests boot clients make, an HTTP/1.1 GET or HEAD without a body,
//! with the same router hyper would use (the same status, headers, ranges and
//! refusals), then sends a file's body with sendfile(2) instead of copying it.
//! Anything else (HTTP/1.0, other methods, a body, an upgrade, a head it cannot
//! parse) goes to hyper with the bytes already read, for the rest of the connection.
//!
//! The router decided the response (`plan`) and opened the file it answers from; the
//! response carries that open file and the span of it its body is ([`SendFile`]), which
//! this path sends instead of reading the body.

use std::future::poll_fn;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use bytes::{Buf, Bytes, BytesMut};
use http_body::Body as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tower::ServiceExt;

use super::observe::{self, Peer};
use super::router::SendFile;
use super::site::{CuttableStream, HEAD_TIMEOUT, IDLE_TIMEOUT, MAX_HEAD, Site};

/// More header lines than this are left to hyper.
const MAX_HEADERS: usize = 64;
/// Room made in the read buffer before each read.
const READ_SIZE: usize = 4096;
/// A head and a body up to this size go out in one write.
const COALESCE: usize = 16 * 1024;

/// How a connection left this path.
pub(super) enum Outcome {
    /// Closed: by the client, after `Connection: close`, on an error, or while draining.
    Closed,
    /// A request this path does not answer: hyper serves the connection from here.
    ForHyper { stream: CuttableStream, already_read: Bytes, draining: watch::Receiver<bool> },
}

pub(super) async fn serve(
    mut stream: CuttableStream,
    peer: SocketAddr,
    site: &Site,
    mut draining: watch::Receiver<bool>,
) -> Outcome {
    let mut buffer = BytesMut::new();
    loop {
        let plain = match next_request(&mut stream, &mut buffer, &mut draining, peer).await {
            Next::Plain(plain) => plain,
            Next::Other => return Outcome::ForHyper { stream, already_read: buffer.freeze(), draining },
            Next::Gone => return Outcome::Closed,
        };
        buffer.advance(plain.head_len);
        match respond(&mut stream, plain, peer, site, &draining).await {
            Ok(KeepOpen::Yes) => {}
            Ok(KeepOpen::No) => {
                let _ = stream.shutdown().await;
                return Outcome::Closed;
            }
            Err(error) => {
                tracing::debug!(%peer, "HTTP: connection ended: {error}");
                return Outcome::Closed;
            }
        }
    }
}

enum Next {
    Plain(Box<PlainRequest>),
    Other,
    Gone,
}

/// Reads until `buffer` starts with a whole request head. Gone: the client closed
/// the connection, or the service drains while no request is under way.
async fn next_request(
    stream: &mut CuttableStream,
    buffer: &mut BytesMut,
    draining: &mut watch::Receiver<bool>,
    peer: SocketAddr,
) -> Next {
    // Closed when no request starts in time, or a started one is not whole in time.
    let mut deadline = tokio::time::Instant::now() + IDLE_TIMEOUT;
    let mut head_started = false;
    loop {
        match parse_plain(buffer, peer) {
            Parsed::Plain(plain) => return Next::Plain(plain),
            Parsed::Other => return Next::Other,
            Parsed::Partial if buffer.len() >= MAX_HEAD => return Next::Other,
            Parsed::Partial => {}
        }
        // Blank lines between requests are allowed (RFC 9112 §2.2): still idle.
        let idle = buffer.iter().all(u8::is_ascii_whitespace);
        if !idle && !head_started {
            head_started = true;
            deadline = deadline.min(tokio::time::Instant::now() + HEAD_TIMEOUT);
        }
        buffer.reserve(READ_SIZE);
        tokio::select! {
            read = stream.read_buf(buffer) => match read {
                Ok(0) | Err(_) => return Next::Gone,
                Ok(_) => {}
            },
            // `Err`: the service is gone, which drains as well.
            _ = draining.wait_for(|&draining| draining), if idle => return Next::Gone,
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, "HTTP: closed a connection whose request did not arrive in time");
                return Next::Gone;
            }
        }
    }
}

/// A request this path answers, parsed from the start of the read buffer.
#[derive(Debug)]
struct PlainRequest {
    request: Request<Body>,
    /// Bytes of the buffer the head took.
    head_len: usize,
    /// The client asked to close the connection after this response.
    close: bool,
}

#[derive(Debug)]
enum Parsed {
    Plain(Box<PlainRequest>),
    /// Not a request this path answers, or not a valid one: hyper's to answer.
    Other,
    /// The head is not complete yet.
    Partial,
}

/// An HTTP/1.1 GET or HEAD without a body, without `Expect` and `Upgrade`.
fn parse_plain(buffer: &[u8], peer: SocketAddr) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let method = match parsed.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::Other,
    };
    let (Some(1), Some(target)) = (parsed.version, parsed.path) else {
        return Parsed::Other;
    };
    let mut close = false;
    let mut builder = Request::builder().method(method).uri(target).version(Version::HTTP_11);
    for line in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(line.name.as_bytes()), HeaderValue::from_bytes(line.value))
        else {
            return Parsed::Other;
        };
        let has_body = name == header::CONTENT_LENGTH && value.as_bytes() != b"0";
        if has_body || name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE {
            return Parsed::Other;
        }
        if name == header::CONNECTION {
            close |=
                value.to_str().is_ok_and(|tokens| tokens.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        }
        builder = builder.header(name, value);
    }
    match builder.extension(ConnectInfo(Peer(peer))).body(Body::empty()) {
        Ok(request) => Parsed::Plain(Box::new(PlainRequest { request, head_len, close })),
        Err(_) => Parsed::Other,
    }
}

enum KeepOpen {
    Yes,
    No,
}

async fn respond(
    stream: &mut CuttableStream,
    plain: Box<PlainRequest>,
    peer: SocketAddr,
    site: &Site,
    draining: &watch::Receiver<bool>,
) -> io::Result<KeepOpen> {
    let PlainRequest { request, close, .. } = *plain;
    let is_head = request.method() == Method::HEAD;
    let file = observe::requested_file(request.uri());
    let Ok(response) = site.files.clone().oneshot(request).await;
    let mut progress = observe::begin(&site.events, peer, file, is_head, &response);
    let (parts, body) = response.into_parts();

    let has_body = !is_head && !is_bodiless(parts.status);
    let announced = parts.headers.get(header::CONTENT_LENGTH);
    let added_length = if announced.is_some() || is_bodiless(parts.status) { None } else { body.size_hint().exact() };
    let length = announced.and_then(|value| value.to_str().ok()?.parse().ok()).or(added_length);
    // Without a length the body ends where the connection does; a draining service
    // says it will close, as hyper does.
    let close = close || *draining.borrow() || (has_body && length.is_none());
    let send_file = parts.extensions.get::<SendFile>().filter(|_| has_body).cloned();

    let head = encode_head(parts.status, &parts.headers, added_length, close, SystemTime::now());
    let mut sent = |count| {
        if let Some(progress) = progress.as_mut() {
            progress.sent(count);
        }
    };
    let outcome = match (has_body, send_file) {
        (false, _) => stream.write_all(&head).await,
        (true, Some(SendFile { file, offset, len })) => {
            stream.write_all(&head).await?;
            match stream.send_file(&file, offset, len, &mut sent).await {
                // The file system has no sendfile: the router's body holds the same bytes.
                Err(error) if error.kind() == io::ErrorKind::Unsupported => {
                    tracing::debug!("HTTP: sendfile refused ({error}), copying the file instead");
                    write_body(stream, Vec::new(), body, length, &mut sent).await
                }
                other => other,
            }
        }
        (true, None) => write_body(stream, head, body, length, &mut sent).await,
    };
    if let Some(progress) = progress.as_mut() {
        progress.ended(&outcome);
    }
    outcome?;
    stream.flush().await?;
    Ok(if close { KeepOpen::No } else { KeepOpen::Yes })
}

/// Statuses that never carry a body (RFC 9110 §6.4.1).
fn is_bodiless(status: StatusCode) -> bool {
    status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED
}

/// Writes `pending` (the head, or nothing) and then the body, exactly `length` bytes
/// of it when the head announced a length: a file that grew is cut there, one that
/// shrank is an error that closes the connection, so the next response on it cannot
/// be taken for body bytes. A small body goes out in one write with the head.
async fn write_body(
    stream: &mut CuttableStream,
    mut pending: Vec<u8>,
    mut body: Body,
    length: Option<u64>,
    mut sent: impl FnMut(u64),
) -> io::Result<()> {
    let mut left = length;
    while left != Some(0) {
        let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await else {
            break;
        };
        let frame = frame.map_err(|error| io::Error::other(format!("reading the file failed: {error}")))?;
        let Ok(mut data) = frame.into_data() else { continue };
        if let Some(left) = left.as_mut() {
            data.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= data.len() as u64;
        }
        if pending.len() + data.len() <= COALESCE {
            pending.extend_from_slice(&data);
        } else {
            stream.write_all(&pending).await?;
            pending.clear();
            stream.write_all(&data).await?;
        }
        sent(data.len() as u64);
    }
    stream.write_all(&pending).await?;
    match left {
        Some(left) if left > 0 => {
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was served"))
        }
        _ => Ok(()),
    }
}

/// The status line and headers of a response, as HTTP/1.1 puts them on the wire.
fn encode_head(
    status: StatusCode,
    headers: &HeaderMap,
    content_length: Option<u64>,
    close: bool,
    now: SystemTime,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    let reason = status.canonical_reason().unwrap_or("");
    // Writing to a Vec cannot fail.
    let _ = write!(head, "HTTP/1.1 {} {reason}\r\n", status.as_str());
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        let _ = write!(head, "date: {}\r\n", httpdate::fmt_http_date(now));
    }
    if let Some(length) = content_length {
        let _ = write!(head, "content-length: {length}\r\n");
    }
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);

    fn answered_here(head: &str) -> PlainRequest {
        match parse_plain(head.as_bytes(), PEER) {
            Parsed::Plain(plain) => *plain,
            other => panic!("{head:?} parsed as {other:?}"),
        }
    }

    fn is_other(head: &str) -> bool {
        matches!(parse_plain(head.as_bytes(), PEER), Parsed::Other)
    }

    #[test]
    fn a_boot_clients_get_is_answered_here() {
        let head = "GET /images/vmlinuz HTTP/1.1\r\nHost: 10.0.0.1\r\nRange: bytes=0-99\r\n\r\nGET /next";
        let plain = answered_here(head);
        assert_eq!(plain.head_len, head.len() - "GET /next".len(), "the pipelined request is left in the buffer");
        assert_eq!(plain.request.method(), Method::GET);
        assert_eq!(plain.request.uri().path(), "/images/vmlinuz");
        assert_eq!(plain.request.headers()[header::RANGE], "bytes=0-99");
        assert_eq!(plain.request.extensions().get::<ConnectInfo<Peer>>().map(|info| info.0.0), Some(PEER));
        assert!(!plain.close);
        assert!(answered_here("HEAD /x HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").close);
        assert!(!answered_here("GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").close);
    }

    #[test]
    fn an_incomplete_head_waits_for_more() {
        assert!(matches!(parse_plain(b"", PEER), Parsed::Partial));
        assert!(matches!(parse_plain(b"GET /ipxe.efi HTTP/1.1\r\nHost: a\r\n", PEER), Parsed::Partial));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        assert!(is_other("GET /x HTTP/1.0\r\n\r\n"), "HTTP/1.0 keep-alive rules are hyper's");
        assert!(is_other("POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
        assert!(is_other("GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), "a GET with a body");
        assert!(is_other("GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(is_other("GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
        assert!(is_other("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
        assert!(is_other("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(is_other("GET /x HTTP/1.1\r\nBad Header: x\r\n\r\n"));
        let many = format!("GET /x HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(MAX_HEADERS + 1));
        assert!(is_other(&many), "hyper answers a head with too many lines");
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly printable, with the separators a head is made of.
                    b"GET /HTP1.\r\n: a\x00\xff"[(seed % 16) as usize]
                })
                .collect();
            if let Parsed::Plain(plain) = parse_plain(&bytes, PEER) {
                assert!(plain.head_len <= bytes.len(), "{bytes:?}");
                assert!(matches!(*plain.request.method(), Method::GET | Method::HEAD), "{bytes:?}");
            }
        }
    }

    #[test]
    fn the_head_is_http_1_1_with_date_length_and_close_as_needed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let head = encode_head(StatusCode::PARTIAL_CONTENT, &headers, Some(100), true, now);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 206 Partial Content\r\ncontent-type: application/octet-stream\r\n\
             date: Wed, 18 Nov 2026 11:06:40 GMT\r\ncontent-length: 100\r\nconnection: close\r\n\r\n"
        );
        let head = encode_head(StatusCode::NOT_FOUND, &HeaderMap::new(), None, false, now);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "HTTP/1.1 404 Not Found\r\ndate: Wed, 18 Nov 2026 11:06:40 GMT\r\n\r\n"
        );
    }

    /// A connected pair: the server's end as the service wraps it, and the client's.
    async fn connection() -> (CuttableStream, tokio::net::TcpStream, watch::Sender<bool>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (cut, cut_rx) = watch::channel(false);
        (CuttableStream::new(server, cut_rx), client, cut)
    }

    async fn written(pending: &[u8], body: &'static [u8], length: Option<u64>) -> (io::Result<()>, Vec<u8>) {
        let (mut server, mut client, _cut) = connection().await;
        let result = write_body(&mut server, pending.to_vec(), Body::from(body), length, |_| {}).await;
        drop(server);
        let mut received = Vec::new();
        client.read_to_end(&mut received).await.unwrap();
        (result, received)
    }

    #[tokio::test]
    async fn a_streamed_body_is_exactly_the_announced_length() {
        assert_eq!(written(b"HEAD|", b"0123456789", Some(10)).await.1, b"HEAD|0123456789");
        assert_eq!(written(b"", b"0123456789", None).await.1, b"0123456789", "no length: to the end");

        let (result, received) = written(b"HEAD|", b"0123456789", Some(4)).await;
        assert!(result.is_ok());
        assert_eq!(received, b"HEAD|0123", "a file that grew is cut at the announced length");

        let (result, received) = written(b"HEAD|", b"0123456789", Some(20)).await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof, "a file that shrank");
        assert_eq!(received, b"HEAD|0123456789");
    }
}
