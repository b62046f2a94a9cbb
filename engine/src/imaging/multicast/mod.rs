//! Multicast restore, compatible with udpcast: Debian's `udp-receiver` (what FOG and
//! Clonezilla run on their seats) joins a PortaPXE session as it would a `udp-sender`.
//! `wire`: the message formats; `sender`: the session as a state machine; `driver`: its socket.

pub mod driver;

pub use portapxe_proto::multicast::{sender, wire};

pub use driver::{Link, SessionError, run_session};
pub use sender::{DropReason, Ending, Refusal, SenderSettings, SessionEvent, StartWhen};
