//! The socket that answers router solicitations on the serving interface: one raw
//! ICMPv6 socket bound to it, joined to all-routers, read by one thread that wakes
//! every [`POLL`] to see whether it should stop.

use std::io;
use std::net::SocketAddrV6;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{ADVERTISEMENT, ALL_NODES, ALL_ROUTERS, Destination, Responder};

/// How often the reading thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Answers router solicitations until stopped or dropped.
pub struct RouterAdvertiser {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RouterAdvertiser {
    /// Opens the socket on `interface` (index `index`) and starts answering. Fails
    /// without the privilege to open raw sockets (root, or `cap_net_raw` on Linux).
    pub fn start(interface: &str, index: u32) -> io::Result<Self> {
        let socket = open_socket(interface, index)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name(format!("ra-{interface}")).spawn({
            let stop = Arc::clone(&stop);
            move || answer(&socket, index, &stop)
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Stops answering; the socket is closed when this returns (within [`POLL`]).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RouterAdvertiser {
    fn drop(&mut self) {
        self.halt();
    }
}

fn open_socket(interface: &str, index: u32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    crate::socket::bind_to_interface(&socket, &crate::socket::Interface { name: interface.into(), index }, true)?;
    // Hosts drop neighbour-discovery messages whose hop limit is not 255 (RFC 4861 §6.1.2).
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_if_v6(index)?;
    socket.set_multicast_loop_v6(false)?;
    // A host that is not a router is not in the all-routers group: join it on this interface only.
    socket.join_multicast_v6(&ALL_ROUTERS, index)?;
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

fn answer(socket: &Socket, index: u32, stop: &AtomicBool) {
    let started = Instant::now();
    let mut responder = Responder::new();
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let received = nix::sys::socket::recvfrom::<nix::sys::socket::SockaddrIn6>(socket.as_raw_fd(), &mut buf);
        let (len, from) = match received {
            Ok((len, Some(from))) => (len, from),
            Ok((_, None)) => continue,
            // The read timeout (EAGAIN), a signal, or a socket error: look at the stop flag again.
            Err(_) => continue,
        };
        let now_ms = started.elapsed().as_millis() as u64;
        let Ok(destination) = responder.decide(&buf[..len], from.ip(), now_ms) else { continue };
        let to = match destination {
            Destination::Unicast(address) => address,
            Destination::AllNodes => ALL_NODES,
        };
        let scope = if to.is_unicast_link_local() || to.is_multicast() { index } else { 0 };
        // Fails while the interface's link-local address is still tentative (just after
        // it came up); the host solicits again.
        if let Err(err) = socket.send_to(&ADVERTISEMENT, &SockAddr::from(SocketAddrV6::new(to, 0, 0, scope))) {
            tracing::debug!(%err, "cannot send a router advertisement to {to}");
        }
    }
}
