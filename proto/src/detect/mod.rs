//! Other DHCP and proxyDHCP servers on the segment, the pure half: classifying an
//! observed server reply ([`classify`]), remembering which foreign servers were already
//! reported ([`ConflictDetector`]), and whether a reply answers a client of this segment
//! or is forged or relayed elsewhere ([`solicit`]). The engine's `detect` adds the probe
//! and the watcher.

pub mod classify;
pub mod solicit;

pub use classify::{ConflictDetector, ServerRole, ServerSighting, classify};
pub use solicit::{Provenance, RecentRequests, ReplyTo};
