//! Readiness: a server counts as started when it serves `ready.txt` (TFTP, HTTP) or its
//! log says it serves (DHCP). Every probe has a deadline and gives up early when the
//! server has exited or the run has to stop.
//!
//! Owns: the probe loops. Must not touch: the server processes (it only reads them).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Result;
use portapxe_lab::netns::in_netns;
use portapxe_lab::wire::tftp_request;

use crate::http;
use crate::procs::Proc;
use crate::stop;

/// The file every server root has, so a probe reads something real.
pub const READY_FILE: &str = "ready.txt";

/// Try one TFTP read of `ready.txt`: send RRQ, and if DATA comes back, ACK it.
fn tftp_answers(server: SocketAddrV4, wait: Duration) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_read_timeout(Some(wait))?;
        socket.send_to(&tftp_request(1, READY_FILE.as_bytes()), server)?;
        let mut buf = [0u8; 2048];
        let (n, from) = socket.recv_from(&mut buf)?;
        let reply = &buf[..n];
        if reply.get(..2) != Some(&[0, 3]) {
            return Ok(false);
        }
        // ACK the block so the server's transfer ends at once, not after its retries.
        let block = reply.get(2..4).unwrap_or(&[0, 0]);
        socket.send_to(&[0, 4, block[0], block[1]], from)?;
        Ok(true)
    };
    attempt().unwrap_or(false)
}

/// TFTP on `host:69` from this namespace, for up to 10 s, while `proc` is alive.
pub fn tftp_ready(host: Ipv4Addr, proc: &mut Proc) -> Result<bool> {
    let server = SocketAddrV4::new(host, 69);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !proc.alive() {
            return Ok(false);
        }
        if tftp_answers(server, Duration::from_millis(200)) {
            return Ok(true);
        }
        stop::sleep(Duration::from_millis(20))?;
    }
    Ok(false)
}

/// TFTP on `host:69` as seen from namespace `ns` (through the delay line), up to 10 s.
pub fn remote_tftp_ready(ns: &str, host: Ipv4Addr) -> Result<bool> {
    let server = SocketAddrV4::new(host, 69);
    in_netns(ns, || -> Result<bool> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if tftp_answers(server, Duration::from_millis(300)) {
                return Ok(true);
            }
            stop::sleep(Duration::from_millis(50))?;
        }
        Ok(false)
    })?
}

/// HTTP 200 for `GET /ready.txt` on `host:80`, for up to 10 s, while `proc` is alive.
pub fn http_ready(host: Ipv4Addr, proc: &mut Proc) -> Result<bool> {
    let to = SocketAddr::from((host, 80));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !proc.alive() {
            return Ok(false);
        }
        let path = format!("/{READY_FILE}");
        if http::get(to, &path, &[], Duration::from_millis(500)).is_ok_and(|reply| reply.status == 200) {
            return Ok(true);
        }
        stop::sleep(Duration::from_millis(20))?;
    }
    Ok(false)
}

/// `needle` in the server's log before `deadline`, while it is alive.
pub fn log_ready(proc: &mut Proc, needle: &str, deadline: Instant) -> Result<bool> {
    while Instant::now() < deadline {
        if proc.log_text().contains(needle) {
            return Ok(true);
        }
        if !proc.alive() {
            return Ok(false);
        }
        stop::sleep(Duration::from_millis(20))?;
    }
    Ok(false)
}
