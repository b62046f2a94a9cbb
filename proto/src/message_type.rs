//! A DHCP message type with its wire name: a leaf every module may use.

use std::fmt;

use dhcproto::v4::MessageType;
use serde::Serialize;

/// A DHCP message type as its name on the wire ("DISCOVER", "ACK").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpMessage(pub MessageType);

impl DhcpMessage {
    pub const DISCOVER: Self = Self(MessageType::Discover);
    pub const OFFER: Self = Self(MessageType::Offer);
    pub const REQUEST: Self = Self(MessageType::Request);
    pub const ACK: Self = Self(MessageType::Ack);
    pub const NAK: Self = Self(MessageType::Nak);
    pub const INFORM: Self = Self(MessageType::Inform);
}

impl fmt::Display for DhcpMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format!("{:?}", self.0).to_uppercase())
    }
}

impl Serialize for DhcpMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
