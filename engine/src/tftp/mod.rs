//! TFTP: read-only file service out of one boot root.
//!
//! Owns: the TFTP sockets on one address (the listening port and one port per
//! transfer), the TFTP wire format ([`packet`]), each read transfer as a
//! sans-IO state machine ([`transfer`]: options, windows, resends), the rules
//! that turn a wire filename into a file inside the root ([`paths`], the only
//! place a request becomes a path), serving [`Served`] ahead of real
//! files, and reporting every transfer as a
//! [`TransferEvent`](crate::events::TransferEvent).
//!
//! Must not touch: DHCP and proxyDHCP (they decide what file name a client is
//! given, not this module), configuration files (settings arrive as a
//! [`TftpSettings`]), and anything outside the root. It never writes: write
//! requests are refused.
//!
//! Flow of one read request: the listener parses the RRQ, [`admission`] lets it in
//! (at most 512 transfers, 64 per client address) and it starts a transfer thread → [`TftpHandler`] normalises the name → a generated file, or
//! [`crate::paths::resolve_request`] then open → options negotiated → the
//! [`transfer::ReadTransfer`] says which blocks to send as ACKs and timeouts
//! come in → a [`TransferReport`] reports `Started`, `Progress`,
//! `Finished`/`Failed`.
//!
//! [`Served`]: crate::served::Served

mod handler;
mod service;

#[cfg(test)]
mod tests;

pub use crate::paths::{PathError, RelativePath, ResolvedPath, normalise, resolve_request};
pub use handler::{
    BlockSource, Opened, PROGRESS_INTERVAL, READ_ONLY_MESSAGE, Refusal, TftpHandler, TransferReport, tftp_error,
};
pub use portapxe_proto::tftp::{admission, packet, transfer};
pub use service::{
    DEFAULT_MAX_SEND_RETRIES, DEFAULT_TIMEOUT, DEFAULT_WINDOW_SIZE_LIMIT, TftpService, TftpSettings, TftpStartError,
    bind_error, start,
};
pub use transfer::MAX_BLOCK_SIZE;
