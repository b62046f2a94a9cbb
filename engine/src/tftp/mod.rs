//! TFTP: read-only file service out of one boot root.
//!
//! Owns: the TFTP socket and server (async-tftp) on one address, the rules
//! that turn a wire filename into a file inside the root ([`paths`], the only
//! place a request becomes a path), serving [`GeneratedFiles`] ahead of real
//! files, and reporting every transfer as a
//! [`TransferEvent`](crate::events::TransferEvent).
//!
//! Must not touch: DHCP and proxyDHCP (they decide what file name a client is
//! given, not this module), configuration files (settings arrive as a
//! [`TftpSettings`]), and anything outside the root. It never writes: write
//! requests are refused.
//!
//! Flow of one read request: async-tftp parses the RRQ → [`TftpHandler`]
//! normalises the name → a generated file, or [`paths::resolve_request`] then
//! open → a [`TransferReader`] that async-tftp sends from and that reports
//! `Started`, `Progress`, `Finished`/`Failed`.
//!
//! [`GeneratedFiles`]: crate::generated::GeneratedFiles

mod handler;
pub mod paths;
mod service;

#[cfg(test)]
mod tests;

pub use handler::{PROGRESS_INTERVAL, READ_ONLY_MESSAGE, TftpHandler, TransferReader, tftp_error};
pub use paths::{PathError, RelativePath, ResolvedPath, normalise, resolve_request};
pub use service::{
    DEFAULT_MAX_SEND_RETRIES, DEFAULT_TIMEOUT, DEFAULT_WINDOW_SIZE_LIMIT, MAX_BLOCK_SIZE, TftpService, TftpSettings,
    TftpStartError, bind_error, start,
};
