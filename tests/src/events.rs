//! The server's `--events FILE` (JSON lines), read back as typed values.
//!
//! This mirrors the documented JSON contract on purpose rather than importing the
//! engine's types: the tests check what the binary writes, not what the code means.
//! A `dhcp`, `transfer` or `service` line that does not match is a contract violation
//! and fails the test; lines of other kinds are kept as [`Event::Other`].

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Dhcp(DhcpEvent),
    Transfer(TransferEvent),
    Service(ServiceEvent),
    /// A kind this lab does not know (yet); its `kind` field.
    #[serde(skip)]
    Other(String),
}

const KNOWN_KINDS: [&str; 3] = ["dhcp", "transfer", "service"];

fn parse_line(line: &str) -> Result<Event> {
    let value: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("event line is not JSON: {line}"))?;
    let kind = value["kind"].as_str().with_context(|| format!("event line without a \"kind\": {line}"))?;
    if !KNOWN_KINDS.contains(&kind) {
        return Ok(Event::Other(kind.to_owned()));
    }
    serde_json::from_value(value).with_context(|| format!("event line does not match the contract: {line}"))
}

#[derive(Debug, Clone, Deserialize)]
pub struct DhcpEvent {
    pub mac: String,
    pub role: DhcpRole,
    /// The message type as on the wire: "DISCOVER", "REQUEST".
    pub received: String,
    pub answered: Option<String>,
    pub address: Option<Ipv4Addr>,
    pub arch: Option<String>,
    pub is_ipxe: bool,
    pub boot: Option<String>,
    /// Why, as a tag with its facts; `None` for a plain OFFER or ACK.
    pub reason: Option<DhcpReason>,
    /// The reason (and the rule) in words.
    pub note: String,
}

impl DhcpEvent {
    /// Our full DHCP server answered with an ACK.
    pub fn is_ack(&self) -> bool {
        self.role == DhcpRole::Server && self.answered.as_deref() == Some("ACK")
    }

    /// The reason's tag ("ignored", "took_other_offer"), if there is one.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_ref().map(|r| r.reason.as_str())
    }
}

/// Which of the server's DHCP roles the message reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DhcpRole {
    Server,
    Proxy,
    BootServer,
}

/// The reason's tag; its other fields (addresses, the rule) are left to the note.
#[derive(Debug, Clone, Deserialize)]
pub struct DhcpReason {
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TransferEvent {
    pub protocol: String,
    pub client: SocketAddr,
    pub file: String,
    pub phase: Phase,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Started { size: Option<u64> },
    Progress { bytes: u64, size: Option<u64> },
    Finished { bytes: u64 },
    Failed { bytes: u64, reason: String },
    Refused { reason: String, not_found: bool },
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceEvent {
    pub service: String,
    pub message: String,
    pub ok: bool,
}

/// Every event in the file so far. A missing file is an empty list.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    // The last line may be half-written while the server runs: only complete lines count.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete.lines().filter(|line| !line.trim().is_empty()).map(parse_line).collect()
}

/// Helpers over a list of events.
pub trait EventsExt {
    fn dhcp(&self) -> Vec<&DhcpEvent>;
    fn dhcp_for(&self, mac: &str) -> Vec<&DhcpEvent>;
    fn transfers(&self) -> Vec<&TransferEvent>;
    fn services(&self) -> Vec<&ServiceEvent>;
    /// The first service that failed to start. Capture, IPv6 router advertisements, the
    /// signed chain (`boot`) and the open-file limit (`files`) are helps: without them serving goes on, so they are not failures.
    fn failed_service(&self) -> Option<&ServiceEvent> {
        const HELPS: [&str; 4] = ["capture", "ipv6", "boot", "files"];
        self.services().into_iter().find(|s| !s.ok && !HELPS.contains(&s.service.as_str()))
    }
}

impl EventsExt for [Event] {
    fn dhcp(&self) -> Vec<&DhcpEvent> {
        self.iter().filter_map(|e| if let Event::Dhcp(d) = e { Some(d) } else { None }).collect()
    }

    fn dhcp_for(&self, mac: &str) -> Vec<&DhcpEvent> {
        self.dhcp().into_iter().filter(|d| d.mac.eq_ignore_ascii_case(mac)).collect()
    }

    fn transfers(&self) -> Vec<&TransferEvent> {
        self.iter().filter_map(|e| if let Event::Transfer(t) = e { Some(t) } else { None }).collect()
    }

    fn services(&self) -> Vec<&ServiceEvent> {
        self.iter().filter_map(|e| if let Event::Service(s) = e { Some(s) } else { None }).collect()
    }
}

impl TransferEvent {
    /// The file name without leading slashes (HTTP paths arrive as `/vmlinuz`).
    pub fn name(&self) -> &str {
        self.file.trim_start_matches('/')
    }

    pub fn finished_bytes(&self) -> Option<u64> {
        match self.phase {
            Phase::Finished { bytes } => Some(bytes),
            _ => None,
        }
    }
}

/// `http://HOST[:PORT]/PATH` split into host, port (80 by default) and path.
pub fn parse_http_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()?),
        None => (authority, 80),
    };
    Some((host.to_owned(), port, path.to_owned()))
}

/// Does `boot` name the generated script on `server:port`?
pub fn is_script_url(boot: &str, server: Ipv4Addr, port: u16) -> bool {
    parse_http_url(boot).is_some_and(|(host, p, path)| host == server.to_string() && p == port && path == "/boot.ipxe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_examples_parse() {
        let dhcp = r#"{"kind":"dhcp","mac":"52:54:00:12:34:56","role":"server","received":"DISCOVER","answered":"OFFER","address":"10.77.0.100","arch":"BIOS","vendor_class":null,"is_ipxe":true,"boot":"http://10.77.0.1:80/boot.ipxe","reason":{"reason":"ipxe_script"},"rule":null,"note":"iPXE is running: handing it the script"}"#;
        let ignored = r#"{"kind":"dhcp","mac":"52:54:00:00:00:02","role":"proxy","received":"DISCOVER","answered":null,"address":null,"arch":"UEFI x64","vendor_class":"PXEClient:Arch:00007:UNDI:003000","is_ipxe":false,"boot":null,"reason":{"reason":"ignored","by":"not_allowlisted","mac":"52:54:00:00:00:02"},"rule":null,"note":"ignored: 52:54:00:00:00:02 is not in the allowlist"}"#;
        assert!(
            matches!(parse_line(ignored).unwrap(), Event::Dhcp(d) if d.role == DhcpRole::Proxy && d.reason() == Some("ignored"))
        );
        let transfer = r#"{"kind":"transfer","protocol":"tftp","client":"10.77.0.100:1234","file":"ipxe.efi","phase":{"phase":"finished","bytes":1234}}"#;
        let service = r#"{"kind":"service","service":"dhcp","message":"...","ok":true}"#;
        assert!(matches!(parse_line(dhcp).unwrap(), Event::Dhcp(d) if d.is_ipxe));
        assert!(matches!(parse_line(transfer).unwrap(), Event::Transfer(t) if t.finished_bytes() == Some(1234)));
        assert!(matches!(parse_line(service).unwrap(), Event::Service(s) if s.ok));
        assert!(matches!(parse_line(r#"{"kind":"conflict","x":1}"#).unwrap(), Event::Other(k) if k == "conflict"));
        assert!(parse_line(r#"{"kind":"dhcp","mac":1}"#).is_err());
        assert!(is_script_url("http://10.77.0.1:80/boot.ipxe", Ipv4Addr::new(10, 77, 0, 1), 80));
        assert!(is_script_url("http://10.77.0.1/boot.ipxe", Ipv4Addr::new(10, 77, 0, 1), 80));
        assert!(!is_script_url("undionly.kpxe", Ipv4Addr::new(10, 77, 0, 1), 80));
    }
}
