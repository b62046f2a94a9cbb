//! PortaPXE engine: everything that answers a booting machine, with no GUI in it.

pub mod config;
pub mod dhcp;
pub mod events;
pub mod generated;
pub mod http;
pub mod net;
pub mod pxe;
pub mod tftp;
