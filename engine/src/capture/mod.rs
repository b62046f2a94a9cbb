//! Packet capture of DHCP traffic (UDP 67, 68, 4011) on the serving interface.
//!
//! Owns: turning captured Ethernet frames into DHCP messages with their sender's
//! MAC ([`frame`], pure), recording them as pcapng ([`pcapng`]), and the libpcap
//! driver ([`live`], cargo feature `capture`). What it sees feeds the conflict
//! detector (other servers' offers, with their MAC) and the client registry
//! (clients served by another server). Where capture cannot run, everything else
//! still works and the reason is reported. Must not send packets.

pub mod live;
pub mod pcapng;

pub use portapxe_proto::capture::{DhcpFrame, frame, parse_dhcp_frame};
