//! The thin driver of the multicast sender: one UDP socket on the sender's port (the
//! port base + 1) tied to the serving interface, the stream read in slices, datagrams
//! sent where the state machine says, and its events handed to the caller.
//!
//! Run it on a runtime of its own (the CLI's, or a thread the engine gives it): it reads
//! the stream with blocking reads, a slice (under 1.5 MB) at a time.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Instant;

use super::sender::{Destination, Ending, Sender, SenderSettings, SessionEvent};
use crate::socket::Interface;

/// Where the session sends from and to.
#[derive(Debug, Clone)]
pub struct Link {
    pub interface: Interface,
    /// The serving address: multicast leaves from it.
    pub address: Ipv4Addr,
    /// The subnet's broadcast address: where HELLO goes.
    pub broadcast: Ipv4Addr,
    /// Receivers listen on it, the sender on the next port (udpcast: 9000).
    pub port_base: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "cannot open the multicast sender's port {port} on {interface}: {source} (is another restore session or udp-sender running on it? pick another port base)"
    )]
    Bind { port: u16, interface: String, source: io::Error },
    #[error("cannot set up multicast on {interface}: {source}")]
    Multicast { interface: String, source: io::Error },
    #[error("cannot send to {to}: {source}")]
    Send { to: SocketAddrV4, source: io::Error },
    #[error("cannot read the image stream: {0}")]
    Read(io::Error),
}

/// The sender's port, tied to the interface: broadcasts (join requests) reach it, and
/// multicast leaves from the serving address with a TTL of 1 (it never leaves the segment).
fn open_socket(link: &Link) -> Result<tokio::net::UdpSocket, SessionError> {
    let port = link.port_base.wrapping_add(1);
    let bind = |source| SessionError::Bind { port, interface: link.interface.name.clone(), source };
    let multicast = |source| SessionError::Multicast { interface: link.interface.name.clone(), source };
    let std_socket =
        crate::socket::udp(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)), Some(&link.interface))
            .map_err(bind)?;
    std_socket.set_broadcast(true).map_err(multicast)?;
    std_socket.set_multicast_ttl_v4(1).map_err(multicast)?;
    std_socket.set_multicast_loop_v4(false).map_err(multicast)?;
    let socket = socket2::SockRef::from(&std_socket);
    socket.set_multicast_if_v4(&link.address).map_err(multicast)?;
    // Room for a few milliseconds of blocks at a gigabit; the kernel may grant less.
    let _ = socket.set_send_buffer_size(4 << 20);
    std_socket.set_nonblocking(true).map_err(bind)?;
    tokio::net::UdpSocket::from_std(std_socket).map_err(bind)
}

/// Reads up to `want` bytes; fewer only at the end of the stream.
fn read_slice(source: &mut impl Read, want: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut bytes = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match source.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    bytes.truncate(filled);
    Ok((bytes, filled < want))
}

/// Datagrams sent in a row before the driver looks for answers again.
const BURST: usize = 64;

/// Runs one session to its end: seats join, the stream is sent, the session ends
/// (`Ending`). Every event goes to `report` as it happens. Cancel by dropping the future.
pub async fn run_session(
    link: &Link,
    settings: SenderSettings,
    mut source: impl Read,
    mut report: impl FnMut(&SessionEvent),
) -> Result<Ending, SessionError> {
    let socket = open_socket(link)?;
    let group = settings.group;
    let mut sender = Sender::new(settings, Instant::now());
    let mut out = Vec::with_capacity(2048);
    let mut buffer = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        // The first slice is read while seats join, so the start costs nothing.
        if let Some(want) = sender.wants_data() {
            let (bytes, at_end) = read_slice(&mut source, want).map_err(SessionError::Read)?;
            sender.feed(bytes, at_end);
        }
        let mut sent = 0;
        while sent < BURST {
            let Some(destination) = sender.poll_transmit(now, &mut out) else { break };
            let to = match destination {
                Destination::Seat(seat) => seat,
                Destination::Group => SocketAddrV4::new(group, link.port_base),
                Destination::Broadcast => SocketAddrV4::new(link.broadcast, link.port_base),
            };
            match socket.send_to(&out, to).await {
                Ok(_) => {}
                // A reply to one receiver that cannot be sent (an address with no route here,
                // a forged one) concerns that receiver only.
                Err(err) if matches!(destination, Destination::Seat(_)) => {
                    tracing::debug!(%to, %err, "multicast session: cannot answer this receiver");
                }
                Err(source) => return Err(SessionError::Send { to, source }),
            }
            sent += 1;
        }
        while let Some(event) = sender.poll_event() {
            report(&event);
        }
        if let Some(ending) = sender.ended() {
            return Ok(ending);
        }
        // Take every answer already here, then wait for one or for the next deadline.
        let mut heard = false;
        while let Ok((len, SocketAddr::V4(from))) = socket.try_recv_from(&mut buffer) {
            heard = true;
            let _ = sender.on_datagram(from, &buffer[..len], Instant::now());
        }
        if sent == BURST || heard || sender.wants_data().is_some() {
            continue;
        }
        let deadline = sender.deadline().map(tokio::time::Instant::from_std);
        let received = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await.ok(),
            None => Some(socket.recv_from(&mut buffer).await),
        };
        if let Some(Ok((len, SocketAddr::V4(from)))) = received {
            let _ = sender.on_datagram(from, &buffer[..len], Instant::now());
        }
    }
}
