//! What the DHCP side (full DHCP, proxyDHCP, the PXE boot server on 4011) did with
//! one client message, as typed facts. The words are in `Display` only: the client
//! registry and the window match on these types, never on the text.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::dhcp::leases::LeaseError;
use crate::mac::MacAddr;
use crate::message_type::DhcpMessage;
use crate::pxe::{ClientArch, NoBootFile, PxeRequest};
use crate::rules::{AppliedRule, IgnoreReason};

/// Which of our DHCP roles the message reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DhcpRole {
    /// Full DHCP on port 67: addresses and boot files.
    Server,
    /// proxyDHCP on port 67, beside the network's DHCP server: boot files only.
    Proxy,
    /// The PXE boot server on port 4011 (proxy mode).
    BootServer,
}

/// Why we answered the way we did (or stayed silent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DhcpReason {
    /// The client rules keep this client unanswered.
    Ignored(IgnoreReason),
    /// A relay forwarded it from a subnet we hold no pool for.
    ForeignRelay {
        relay: Ipv4Addr,
    },
    Released {
        address: Ipv4Addr,
    },
    ReleaseNotOurs,
    /// The client found the address in use (DHCPDECLINE): held back.
    Declined {
        address: Ipv4Addr,
    },
    DeclineNotOffered,
    /// DHCPINFORM: options only, no lease.
    InformOnly,
    /// A message type servers do not answer (an OFFER or ACK from another server).
    NotForServer,
    /// The lease table could not give an address.
    Lease(LeaseError),
    /// The client's REQUEST names another server's offer.
    TookOtherOffer {
        server: Ipv4Addr,
    },
    /// INIT-REBOOT for an address outside this network.
    NotOnNetwork {
        address: Ipv4Addr,
    },
    /// INIT-REBOOT for an address that is not the one this client holds.
    NotClientsAddress {
        address: Ipv4Addr,
        lease: Ipv4Addr,
    },
    /// INIT-REBOOT from a client we have no lease for: another server may know it.
    NoRecord {
        address: Ipv4Addr,
    },
    NoAddressNamed,
    /// A REQUEST in our subnet but outside the pool.
    NotInPool {
        address: Ipv4Addr,
    },
    /// A REQUEST for an address on another network: not ours to refuse.
    ForeignAddress {
        address: Ipv4Addr,
    },
    NotOffered {
        address: Ipv4Addr,
    },
    /// A boot client we have nothing for.
    NoBootFile(NoBootFile),
    /// iPXE asked: it gets the script, never the loader again.
    IpxeScript,
    /// proxy mode: a client that does not network-boot.
    NotPxeClient,
    /// proxy mode: a REQUEST on port 67 is the network's DHCP server's business.
    AddressRequest,
    /// proxy mode: port 4011 answers REQUEST and INFORM only.
    NotForBootServer,
    /// proxy mode: no boot program for this client.
    NothingToBoot,
    /// proxy mode: the boot file offered beside the network's own offer.
    BootFileOffered,
    /// proxy mode: the boot file confirmed on port 4011.
    BootFileConfirmed,
}

impl fmt::Display for DhcpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ignored(reason) => write!(f, "ignored: {reason}"),
            Self::ForeignRelay { relay } => write!(f, "relayed from {relay}, a subnet we have no pool for"),
            Self::Released { .. } => f.write_str("address released"),
            Self::ReleaseNotOurs => f.write_str("release for an address we did not lease"),
            Self::Declined { address } => write!(f, "client reports {address} already in use; held back"),
            Self::DeclineNotOffered => f.write_str("decline for an address we did not offer"),
            Self::InformOnly => f.write_str("configuration only (INFORM)"),
            Self::NotForServer => f.write_str("not a message for a server"),
            Self::Lease(error) => error.fmt(f),
            Self::TookOtherOffer { server } => write!(f, "client took the offer of server {server}"),
            Self::NotOnNetwork { address } => write!(f, "{address} is not on this network"),
            Self::NotClientsAddress { address, lease } => {
                write!(f, "{address} is not this client's address ({lease})")
            }
            Self::NoRecord { address } => write!(f, "no record of this client asking for {address}"),
            Self::NoAddressNamed => f.write_str("request names no address"),
            Self::NotInPool { address } => write!(f, "{address} is not in our pool"),
            Self::ForeignAddress { address } => write!(f, "{address} is not on our network"),
            Self::NotOffered { address } => write!(f, "{address} was not offered to this client"),
            Self::NoBootFile(reason) => reason.fmt(f),
            Self::IpxeScript => f.write_str("iPXE is running: handing it the script"),
            Self::NotPxeClient => f.write_str("not a PXE client: its address comes from the network's DHCP server"),
            Self::AddressRequest => f.write_str("address requests are for the network's DHCP server (proxy mode)"),
            Self::NotForBootServer => f.write_str("only REQUEST and INFORM are answered on port 4011"),
            Self::NothingToBoot => f.write_str("nothing to boot for this client"),
            Self::BootFileOffered => f.write_str("boot file offered; address left to the network's DHCP server"),
            Self::BootFileConfirmed => f.write_str("boot file confirmed on port 4011"),
        }
    }
}

/// What the DHCP side did with one client message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DhcpEvent {
    pub mac: MacAddr,
    pub role: DhcpRole,
    pub received: DhcpMessage,
    /// What we answered, or `None` when we stayed silent.
    pub answered: Option<DhcpMessage>,
    pub address: Option<Ipv4Addr>,
    /// Client architecture (option 93), when the client sent one.
    pub arch: Option<ClientArch>,
    /// Option 60 as the client sent it.
    pub vendor_class: Option<String>,
    pub is_ipxe: bool,
    /// The boot file or URL we handed out, if any.
    pub boot: Option<String>,
    /// Why we answered the way we did; `None` for a plain OFFER or ACK.
    pub reason: Option<DhcpReason>,
    /// The client rule that shaped the answer.
    pub rule: Option<AppliedRule>,
}

impl DhcpEvent {
    /// The event for `request` reaching `role`, before any answer.
    pub fn for_request(request: &PxeRequest, role: DhcpRole) -> Self {
        Self {
            mac: request.mac,
            role,
            received: DhcpMessage(request.message_type),
            answered: None,
            address: None,
            arch: request.arch,
            vendor_class: request.vendor_class.clone(),
            is_ipxe: request.is_ipxe,
            boot: None,
            reason: None,
            rule: None,
        }
    }

    /// The message received, as a person reads it ("REQUEST (port 4011)").
    pub fn received_text(&self) -> String {
        match self.role {
            DhcpRole::BootServer => format!("{} (port 4011)", self.received),
            DhcpRole::Server | DhcpRole::Proxy => self.received.to_string(),
        }
    }

    /// The answer, as a person reads it ("proxy OFFER"), or `None` for silence.
    pub fn answered_text(&self) -> Option<String> {
        let answered = self.answered?;
        Some(match self.role {
            DhcpRole::Server => answered.to_string(),
            DhcpRole::Proxy => format!("proxy {answered}"),
            DhcpRole::BootServer => format!("{answered} (port 4011)"),
        })
    }

    /// The reason and the rule, in words ("" when there is nothing to say).
    pub fn note(&self) -> String {
        match (&self.reason, &self.rule) {
            (Some(reason), Some(rule)) => format!("{reason} [{rule}]"),
            (Some(reason), None) => reason.to_string(),
            (None, Some(rule)) => format!("[{rule}]"),
            (None, None) => String::new(),
        }
    }
}

/// The typed fields, and the words (`note`) beside them so a person reading the
/// `--events` file does not need this code (for `#[serde(serialize_with)]`).
pub(super) fn with_note<S: serde::Serializer>(event: &DhcpEvent, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct WithNote<'a> {
        #[serde(flatten)]
        event: &'a DhcpEvent,
        note: String,
    }
    WithNote { event, note: event.note() }.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::PoolRange;

    fn event(reason: DhcpReason) -> DhcpEvent {
        DhcpEvent {
            mac: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
            role: DhcpRole::Server,
            received: DhcpMessage::DISCOVER,
            answered: None,
            address: None,
            arch: Some(ClientArch::UefiX64),
            vendor_class: None,
            is_ipxe: false,
            boot: None,
            reason: Some(reason),
            rule: None,
        }
    }

    #[test]
    fn every_reason_serializes_with_its_tag_and_words() {
        let pool = PoolRange { start: Ipv4Addr::new(10, 0, 0, 100), end: Ipv4Addr::new(10, 0, 0, 200) };
        let cases = [
            (DhcpReason::Lease(LeaseError::PoolExhausted { pool }), "lease", "exhausted"),
            (
                DhcpReason::Ignored(IgnoreReason::NotAllowlisted { mac: MacAddr([0x52, 0x54, 0, 0, 0, 1]) }),
                "ignored",
                "ignored: 52:54:00:00:00:01 is not in the allowlist",
            ),
            (DhcpReason::TookOtherOffer { server: Ipv4Addr::new(10, 0, 0, 2) }, "took_other_offer", "10.0.0.2"),
            (DhcpReason::NoBootFile(NoBootFile::NotConfigured(ClientArch::UefiArm64)), "no_boot_file", "UEFI ARM64"),
        ];
        for (reason, tag, words) in cases {
            // As a line of the event stream.
            let json = serde_json::to_value(crate::events::EngineEvent::Dhcp(event(reason))).unwrap();
            assert_eq!(json["kind"], "dhcp", "{json}");
            assert_eq!(json["reason"]["reason"], tag, "{json}");
            assert!(json["note"].as_str().unwrap().contains(words), "{json}");
            assert_eq!(json["arch"], "UEFI x64");
            assert_eq!(json["received"], "DISCOVER");
        }
    }

    #[test]
    fn the_role_says_which_port_in_words() {
        let mut event = event(DhcpReason::BootFileConfirmed);
        event.role = DhcpRole::BootServer;
        event.received = DhcpMessage::REQUEST;
        event.answered = Some(DhcpMessage::ACK);
        event.rule = Some(AppliedRule { number: 2, description: "every client → boot file snp.efi".into() });
        assert_eq!(event.received_text(), "REQUEST (port 4011)");
        assert_eq!(event.answered_text().as_deref(), Some("ACK (port 4011)"));
        assert_eq!(event.note(), "boot file confirmed on port 4011 [rule 2 (every client → boot file snp.efi)]");
        event.role = DhcpRole::Proxy;
        assert_eq!(event.answered_text().as_deref(), Some("proxy ACK"));
    }
}
