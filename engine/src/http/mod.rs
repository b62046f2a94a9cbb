//! HTTP service: read-only GET/HEAD of the boot root and of the engine's generated
//! files (the iPXE script), for iPXE and UEFI HTTP-boot clients.
//!
//! Owns: the listening socket, the lookup of a URL in the served namespace
//! (`router`: generated files, files inside ISO images, then the boot root and the
//! loader folder behind it, by the path rules TFTP uses), the one decision of status,
//! headers and body span (`portapxe_proto::http_plan`: ranges, validators, HEAD, refusals), and one
//! [`TransferEvent`] stream per request. On Linux a file's body goes out with
//! sendfile(2) (`zero_copy`); elsewhere, and for what that path leaves, hyper streams it.
//!
//! Must not touch: DHCP, the configuration, or anything on disk outside the boot
//! root; it never writes.
//!
//! [`TransferEvent`]: crate::events::TransferEvent

mod admission;
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
