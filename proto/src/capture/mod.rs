//! Captured Ethernet frames turned into DHCP messages with their sender's MAC
//! ([`frame`], pure). The engine's `capture` adds libpcap and pcapng.

pub mod frame;

pub use frame::{DhcpFrame, parse_dhcp_frame};
