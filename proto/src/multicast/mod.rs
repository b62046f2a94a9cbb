//! Multicast restore compatible with udpcast, the pure half: the message formats
//! ([`wire`]) and the session as a state machine ([`sender`]). The engine's
//! `imaging::multicast::driver` puts it on a socket.

pub mod sender;
pub mod wire;

pub use sender::{DropReason, Ending, Refusal, SenderSettings, SessionEvent, StartWhen};

#[cfg(test)]
mod tests;
