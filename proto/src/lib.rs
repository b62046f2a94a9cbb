//! PortaPXE's protocol logic with no I/O in it: wire formats, the PXE boot decision,
//! client rules, DHCP decisions, the TFTP transfer, udpcast's sender, the conflict
//! classifier, the client registry and the typed events they produce.
//!
//! This crate depends on no async runtime and opens no socket or file, so the
//! compiler keeps its code sans-IO: every function here goes from (input, settings,
//! state, time) to a decision. The engine (`portapxe-engine`) drives it.

pub mod answer;
pub mod capture;
pub mod clients;
pub mod config;
pub mod detect;
pub mod dhcp;
pub mod events;
pub mod export;
pub mod grub;
pub mod http_plan;
pub mod imaging;
pub mod ipxe;
pub mod iso;
pub mod mac;
pub mod message_type;
pub mod multicast;
pub mod names;
pub mod pxe;
pub mod router_advert;
pub mod rules;
pub mod secure_boot;
pub mod tftp;
pub mod url;
