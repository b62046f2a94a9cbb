//! PortaPXE engine: everything that answers a booting machine, with no GUI in it.

pub mod answer;
pub mod capture;
pub mod clients;
pub mod config;
pub mod detect;
pub mod dhcp;
mod engine;
pub mod events;
pub mod export;
pub mod grub;
pub mod http;
pub mod imaging;
pub mod ipxe;
pub mod iso;
pub mod iso_entries;
pub mod limits;
pub mod mac;
pub mod message_type;
pub mod net;
pub mod next_boot;
pub mod paths;
pub mod proxy;
pub mod pxe;
pub mod router_advert;
pub mod rules;
pub mod served;
pub mod signature;
pub mod socket;
pub mod tftp;
pub mod url;
pub mod wake;

pub use engine::{
    CaptureStatus, Engine, EngineError, EngineStatus, SignedChain, StartOptions, boot_settings,
    entry_secure_boot_problem, export_target, iso_entry_mount, iso_secure_boot_problem, signed_chain,
    signed_chain_arm64,
};
pub use events::{EngineEvent, EventSink};
