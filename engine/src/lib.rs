//! PortaPXE engine: everything that answers a booting machine, with no GUI in it.
//!
//! The pure protocol logic is the `portapxe-proto` crate; its modules are re-exported
//! here under the same names, so `crate::pxe` means the same inside and outside.

pub use portapxe_proto::{answer, clients, export, ipxe, mac, message_type, pxe, rules, url};

pub mod capture;
pub mod config;
pub mod detect;
pub mod dhcp;
mod engine;
pub mod events;
pub mod grub;
pub mod http;
pub mod imaging;
pub mod iso;
pub mod iso_entries;
pub mod limits;
pub mod net;
pub mod next_boot;
pub mod paths;
pub mod proxy;
pub mod router_advert;
pub mod served;
pub mod signature;
pub mod socket;
pub mod tftp;
pub mod wake;

pub use engine::{
    CaptureStatus, Engine, EngineError, EngineStatus, SignedChain, StartOptions, boot_settings,
    entry_secure_boot_problem, export_target, iso_entry_mount, iso_entry_plan, iso_secure_boot_problem, signed_chain,
    signed_chain_arm64,
};
pub use events::{EngineEvent, EventSink};
