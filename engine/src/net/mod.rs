//! What the host's network interfaces are, as the engine and the user need to see them.
//!
//! Owns: listing interfaces (name, MAC, IPv4, state, kind) and finding the one
//! to serve on. Must not open sockets.

mod interfaces;

pub use interfaces::{
    InterfaceInfo, InterfaceKind, InterfaceLookupError, find_interface, find_up_interface, list_interfaces,
};
