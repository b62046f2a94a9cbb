//! HTTP service: read-only GET/HEAD of the boot root and of the engine's generated
//! files (the iPXE script), for iPXE and UEFI HTTP-boot clients.
//!
//! Owns: the listening socket, the mapping from URL path to file (generated files
//! first, then the boot root through tower-http's `ServeDir`, confined so that a
//! symlink cannot lead out of the root), and one [`TransferEvent`] stream per
//! request. Ranges, ETag/Last-Modified and streaming come from `ServeDir` itself;
//! on Linux a file's body then goes out with sendfile(2) ([`zero_copy`]).
//!
//! Must not touch: DHCP, the configuration, or anything on disk outside the boot
//! root; it never writes.
//!
//! [`TransferEvent`]: crate::events::TransferEvent

mod admission;
mod confine;
mod connection;
mod observe;
mod router;
mod server;
mod site;
#[cfg(target_os = "linux")]
mod zero_copy;

#[cfg(test)]
mod tests;

pub use observe::Peer;
pub use server::{HttpService, HttpSettings, HttpStartError, start};
