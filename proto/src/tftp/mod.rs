//! TFTP, the pure half: the wire format ([`packet`], parsed without trusting a byte),
//! one read transfer as a sans-IO state machine ([`transfer`]: options, windows,
//! resends) and how many transfers are admitted at once ([`admission`]). The
//! engine's `tftp` adds the sockets and the files.

pub mod admission;
pub mod packet;
pub mod transfer;
