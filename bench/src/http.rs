//! A minimal HTTP/1.1 GET for readiness probes and the Range check (4c).
//!
//! Owns: one request per connection (`Connection: close`) and parsing the reply. The
//! reply is hostile until parsed: a malformed one is an error, never a panic.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// `GET path` with extra `headers`; `timeout` bounds the connect and every read.
pub fn get(to: SocketAddr, path: &str, headers: &[(&str, &str)], timeout: Duration) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&to, timeout).with_context(|| format!("connect to {to}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // As a browser writes it: the port only when it is not HTTP's own.
    let host = if to.port() == 80 { to.ip().to_string() } else { to.to_string() };
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    // Read until the reply is complete by its Content-Length, not until the server closes:
    // a server that keeps the connection open must not cost a read timeout.
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).with_context(|| format!("reading the reply to GET {path}"))?;
        raw.extend_from_slice(&buf[..n]);
        if let Some(reply) = parse_response(&raw, n == 0)? {
            return Ok(reply);
        }
    }
}

/// The reply in `raw`; `Ok(None)` while more bytes are needed and the server has not
/// closed the connection (`closed`).
fn parse_response(raw: &[u8], closed: bool) -> Result<Option<Response>> {
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        if !closed {
            return Ok(None);
        }
        bail!("reply has no end of headers ({} bytes)", raw.len());
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next().and_then(|code| code.parse::<u16>().ok())) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code,
        _ => bail!("not an HTTP status line: {status_line:?}"),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let length =
        headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("Content-Length")).map(|(_, v)| v.parse::<usize>());
    match length {
        Some(Ok(length)) if body.len() >= length => body.truncate(length),
        Some(Ok(_)) if !closed => return Ok(None),
        Some(Ok(length)) => bail!("reply ended after {} of {length} body bytes", body.len()),
        Some(Err(_)) => bail!("reply has a malformed Content-Length"),
        None if !closed => return Ok(None),
        None => {}
    }
    Ok(Some(Response { status, headers, body }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_reply_parses() {
        let raw = b"HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-0/10\r\nContent-Length: 1\r\n\r\nAtrailing";
        let reply = parse_response(raw, false).expect("valid reply").expect("complete");
        assert_eq!(reply.status, 206);
        assert_eq!(reply.header("Content-Range"), Some("bytes 0-0/10"));
        assert_eq!(reply.body, b"A");
    }

    #[test]
    fn without_length_the_body_runs_to_the_end() {
        let raw = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nready\n";
        assert!(parse_response(raw, false).expect("valid so far").is_none(), "the end is the close");
        let reply = parse_response(raw, true).expect("valid reply").expect("complete");
        assert_eq!((reply.status, reply.body.as_slice()), (200, b"ready\n".as_slice()));
        assert_eq!(reply.header("missing"), None);
    }

    #[test]
    fn incomplete_replies_wait_for_more_bytes() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", false).expect("no error yet").is_none());
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort";
        assert!(parse_response(partial, false).expect("no error yet").is_none());
    }

    #[test]
    fn malformed_or_cut_replies_are_errors() {
        assert!(parse_response(b"", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n", true).is_err());
        assert!(parse_response(b"SSH-2.0 hello\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
    }
}
