//! PXE logic: what a booting client is ([`PxeRequest`]) and what it should boot
//! ([`choose_boot`]). Pure functions over parsed messages; no sockets, no files.
//!
//! Owns: reading options 60/77/93/94/97/175 into one typed request, the
//! architecture → boot file table, the iPXE chainload-loop breaker and the
//! PXE-specific reply options (60, 43). Must not touch leases or the wire.

mod arch;
mod boot;
/// Requests and settings for tests, here and in the engine (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod request;

pub use arch::ClientArch;
pub use boot::{
    BootOverride, BootPlan, BootSettings, NoBootFile, choose_boot, pxe_vendor_options, rule_script_path,
    write_boot_fields,
};
pub use request::PXE_BOOT_ITEM;
pub(crate) use request::pxe_sub_option;
pub use request::{ClientKind, ParseError, PxeRequest, decode_message};
