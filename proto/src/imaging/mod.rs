//! Classroom imaging, the pure half: the image manifest ([`manifest`]) and the rules of
//! a capture session ([`capture`]: only the seat that asked writes, each file once, the
//! manifest must name exactly what arrived). The engine's `imaging` does the files,
//! the HTTP routes and the multicast socket.

pub mod capture;
pub mod clonezilla;
pub mod manifest;
