//! Full-mode DHCP server: a pool, persisted leases, and PXE boot information.
//!
//! Owns: the lease table ([`leases`]) and its files ([`lease_store`]), the pure request → reply decision
//! ([`server`]) and the socket driver that puts replies on the chosen interface
//! ([`service`]). Must not touch TFTP/HTTP or decide boot files itself (that is `pxe`).

pub mod lease_store;
pub mod leases;
pub mod server;
pub mod service;

pub use leases::{LeaseTable, Timestamp};
pub use server::{Destination, DhcpSettings, Outcome, handle};
pub use service::{BoundDhcp, DhcpService, DhcpStartError, bind};
