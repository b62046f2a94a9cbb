//! Ends iPXE's wait for IPv6 on a segment with no IPv6 router: the pure [`Responder`]
//! (`portapxe_proto::router_advert`, re-exported) and its socket ([`service`], Unix only).

pub use portapxe_proto::router_advert::*;

#[cfg(unix)]
pub mod service;
