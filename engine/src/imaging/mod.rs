//! Classroom imaging: images of a disk kept in an image folder, and a multicast
//! restore session that sends one to every seat at once.

pub mod clonezilla;
pub mod entry;
pub mod hub;
pub mod image;
pub mod multicast;
pub mod routes;

pub use portapxe_proto::imaging::capture;
