//! The conflict detector: other DHCP and proxyDHCP servers on the segment.
//!
//! Owns: classifying an observed server reply (`classify`, pure, in `portapxe_proto::detect`), remembering which
//! foreign servers were already reported ([`ConflictDetector`]), whether a reply
//! answers a client of this segment or is forged or relayed elsewhere (`solicit`), the active probe
//! behind `portapxe scan` and the full-DHCP safety gate ([`probe`]), and the passive
//! watcher that listens while PortaPXE serves ([`watch`]). The classifier is pure;
//! the probe and watcher are thin drivers. Must not answer clients.

pub mod probe;
pub mod watch;

pub use portapxe_proto::detect::{
    ConflictDetector, Provenance, RecentRequests, ReplyTo, ServerRole, ServerSighting, classify, solicit,
};
