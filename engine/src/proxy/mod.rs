//! proxyDHCP: boot information for PXE clients on a network whose own DHCP server
//! hands out the addresses. Never assigns an address, never keeps a lease.
//!
//! Owns: the pure decision of what a PXE client is told on port 67 (a proxy
//! offer) and on port 4011 (the boot-server ACK), and the driver of both sockets.
//! Must not touch leases or decide boot files itself (that is `pxe`).

mod decide;
mod service;

pub use decide::{ProxyPort, ProxySettings, decide};
pub use service::{ProxyService, ProxyServiceSettings, start};
