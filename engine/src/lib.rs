//! PortaPXE engine: everything that answers a booting machine, with no GUI in it.

pub mod events;
pub mod generated;
pub mod http;
pub mod tftp;
