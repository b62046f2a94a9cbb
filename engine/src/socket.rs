//! Sockets tied to the serving interface, so packets that reach the serving address
//! through another interface (a laptop's corporate Wi-Fi that routes the bench subnet
//! through it) are not answered: Linux and macOS accept a packet for a local address on
//! any interface. Boot folders hold answer files and images.
//!
//! Owns: creating a TFTP (UDP) or HTTP (TCP listening) socket bound to an address and,
//! where the system can, to one interface. Must not touch: what is served.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// The interface a service answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// Used on macOS (IP_BOUND_IF).
    pub index: u32,
}

impl From<&crate::net::InterfaceInfo> for Interface {
    fn from(info: &crate::net::InterfaceInfo) -> Self {
        Self { name: info.name.clone(), index: info.index }
    }
}

/// Ties `socket` to `interface`: SO_BINDTODEVICE on Linux, IP_BOUND_IF on macOS. On
/// Windows the address binding is all there is (a socket bound to the interface's
/// address receives only what is addressed to it; not proven here).
pub fn bind_to_interface(socket: &Socket, interface: &Interface, ipv6: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = ipv6;
        socket.bind_device(Some(interface.name.as_bytes()))
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        let index = std::num::NonZeroU32::new(interface.index);
        if ipv6 { socket.bind_device_by_index_v6(index) } else { socket.bind_device_by_index_v4(index) }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios")))]
    {
        let _ = (socket, interface, ipv6);
        Ok(())
    }
}

/// A UDP socket on `addr`, tied to `interface` when one is given.
pub fn udp(addr: SocketAddr, interface: Option<&Interface>) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Some(interface) = interface {
        bind_to_interface(&socket, interface, addr.is_ipv6())?;
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A listening TCP socket on `addr`, tied to `interface` when one is given; address
/// reuse as tokio's `TcpListener::bind` sets it on Unix, so a restart binds at once.
pub fn tcp_listener(addr: SocketAddr, interface: Option<&Interface>) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if let Some(interface) = interface {
        bind_to_interface(&socket, interface, addr.is_ipv6())?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The DHCP client port (68) on `interface`, shared with any DHCP client already running
/// there: what the probe sends from and the watcher listens on.
pub fn dhcp_client_socket(interface: &Interface, port: u16) -> io::Result<tokio::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    bind_to_interface(&socket, interface, false)?;
    socket.bind(&std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, port).into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}
