//! Full-mode DHCP, the pure half: the lease table ([`leases`]), the address pool
//! ([`PoolRange`]) and the request → reply decision ([`server`]). The engine's `dhcp`
//! module adds the lease files and the socket driver.

pub mod leases;
mod pool;
pub mod server;

pub use leases::{LeaseTable, Timestamp};
pub use pool::PoolRange;
pub use server::{Destination, DhcpSettings, Outcome, handle};
