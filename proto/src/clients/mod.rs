//! The live client registry: one record per booting machine, merged from our own
//! DHCP, TFTP and HTTP events (and, where capture runs, from the wire).
//!
//! Owns: the pure [`ClientRegistry`] (apply an event at a time `now`, read a
//! snapshot), the plain-words diagnosis of why a boot stopped, and the bounds that
//! keep its memory flat. Must not open sockets; the engine feeds it.

mod diagnosis;
mod registry;
mod vendor;

pub use diagnosis::{Diagnosis, SecureBootRefusal};
pub use registry::{
    AddressSource, ClientPhase, ClientRecord, ClientRegistry, ServedKernel, TimelineEntry, TransferProgress,
};
pub use vendor::vendor;
