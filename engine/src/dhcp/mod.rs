//! Full-mode DHCP server: a pool, persisted leases, and PXE boot information.
//!
//! Owns: the lease table ([`leases`]) and its files ([`lease_store`]), the pure request → reply decision
//! ([`server`], both from `portapxe_proto::dhcp`) and the socket driver that puts replies on the chosen
//! interface ([`service`]). Must not touch TFTP/HTTP or decide boot files itself (that is `pxe`).

pub mod lease_store;
pub mod service;

pub use portapxe_proto::dhcp::{Destination, DhcpSettings, LeaseTable, Outcome, Timestamp, handle, leases, server};
pub use service::{BoundDhcp, DhcpService, DhcpStartError, bind};
