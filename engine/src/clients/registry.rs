use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use crate::events::{DhcpEvent, EngineEvent, MacAddr, Protocol, TransferEvent, TransferPhase, WireDhcp};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Clients kept at most; the longest idle one goes first.
const MAX_CLIENTS: usize = 1024;
/// Timeline entries kept per client.
const MAX_TIMELINE: usize = 64;
/// A client silent this long is forgotten.
const IDLE_FORGET_MS: Millis = 60 * 60 * 1000;
/// A proxy offer not followed by a 4011 request or a download within this long is a stuck boot.
const PROXY_FOLLOW_UP_MS: Millis = 15_000;
/// The firmware asking again this soon after it fetched its loader: the loader was refused.
/// OVMF tries PXE over IPv6 in between, which took 64 s here (emulated): 5 minutes.
const LOADER_RESTART_MS: Millis = 5 * 60_000;
/// A kernel fetched and no initrd asked for within this long: the loader refused the kernel.
const KERNEL_FOLLOW_UP_MS: Millis = 10_000;

/// What a kernel the server offers is, so a boot that stops right after it can be explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedKernel {
    /// The boot entry it belongs to.
    pub entry: String,
    /// Root-relative paths of its initrds, fetched right after it when the kernel is accepted.
    pub initrds: Vec<String>,
    /// Why shim refuses it ("the kernel is not signed"), when it does.
    pub secure_boot_problem: Option<String>,
}

/// Why a machine's boot stopped at the firmware's or shim's signature check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum SecureBootRefusal {
    /// The firmware ran the loader over TFTP and then started over instead of running it.
    Loader { file: String },
    /// The kernel was fetched and its initrd never asked for: the loader refused the kernel.
    Kernel { file: String, entry: String, problem: Option<String> },
}

impl std::fmt::Display for SecureBootRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Loader { file } => write!(
                f,
                "the firmware refused {file}: Secure Boot is probably on — use the signed chain (default) or turn \
                 Secure Boot off"
            ),
            Self::Kernel { file, entry, problem: Some(problem) } => write!(
                f,
                "the kernel {file} of \"{entry}\" was refused after it was fetched ({problem}): Secure Boot is on. \
                 Boot a signed kernel (Debian's) or turn Secure Boot off"
            ),
            Self::Kernel { file, entry, problem: None } => write!(
                f,
                "the kernel {file} of \"{entry}\" was fetched but its initrd never was: the loader refused the \
                 kernel (with Secure Boot on, one not signed by a key shim trusts)"
            ),
        }
    }
}

/// The path of a boot file as a client names it: a UEFI HTTP boot URL's path, or the TFTP name.
fn boot_path(boot: &str) -> &str {
    match boot.strip_prefix("http://").or_else(|| boot.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => boot,
    }
}

fn served_name(file: &str) -> &str {
    file.trim_start_matches(['/', '\\'])
}

/// How far a client got, in the order a network boot goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientPhase {
    Discover,
    Offer,
    Request,
    Ack,
    /// Loading the boot program over TFTP.
    BootFile,
    /// Fetching files (script, kernel, initrd, image) over HTTP.
    Http,
    /// Everything it asked for arrived; the booted system has taken over.
    HandedOff,
    /// We do not answer it (rules) or it went elsewhere.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", content = "server", rename_all = "snake_case")]
pub enum AddressSource {
    Us,
    Other(Ipv4Addr),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferProgress {
    pub protocol: Protocol,
    pub file: String,
    pub bytes: u64,
    pub size: Option<u64>,
    pub started_ms: Millis,
    pub updated_ms: Millis,
    pub done: bool,
    /// Bytes per second over the transfer so far.
    pub throughput: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub at_ms: Millis,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientRecord {
    pub mac: MacAddr,
    /// NIC maker from the IEEE OUI table.
    pub vendor: Option<String>,
    pub first_seen_ms: Millis,
    pub last_seen_ms: Millis,
    pub vendor_class: Option<String>,
    pub arch: Option<String>,
    pub is_ipxe: bool,
    pub address: Option<Ipv4Addr>,
    pub address_from: Option<AddressSource>,
    pub phase: ClientPhase,
    pub boot: Option<String>,
    pub transfer: Option<TransferProgress>,
    /// Files fully sent, in order.
    pub completed: Vec<(String, u64)>,
    pub timeline: VecDeque<TimelineEntry>,
    /// Why the boot stopped, in plain words, when we can tell.
    pub diagnosis: Option<String>,
    /// The boot stopped at a Secure Boot signature check (also in `diagnosis`).
    pub secure_boot_refusal: Option<SecureBootRefusal>,
    proxy_offer_ms: Option<Millis>,
    /// The boot program we named, fetched over TFTP by the firmware (and when), not yet seen running.
    #[serde(skip)]
    loader_fetched: Option<(String, Millis)>,
}

impl ClientRecord {
    fn new(mac: MacAddr, now: Millis) -> Self {
        Self {
            mac,
            vendor: super::vendor(mac).map(str::to_owned),
            first_seen_ms: now,
            last_seen_ms: now,
            vendor_class: None,
            arch: None,
            is_ipxe: false,
            address: None,
            address_from: None,
            phase: ClientPhase::Discover,
            boot: None,
            transfer: None,
            completed: Vec::new(),
            timeline: VecDeque::new(),
            diagnosis: None,
            secure_boot_refusal: None,
            proxy_offer_ms: None,
            loader_fetched: None,
        }
    }

    fn log(&mut self, now: Millis, text: String) {
        if self.timeline.len() == MAX_TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(TimelineEntry { at_ms: now, text });
        self.last_seen_ms = now;
    }
}

/// Every client seen recently. Cheap to snapshot; bounded in size.
#[derive(Debug, Default, Clone)]
pub struct ClientRegistry {
    clients: HashMap<MacAddr, ClientRecord>,
    by_address: HashMap<Ipv4Addr, MacAddr>,
    /// Kernels served, by root-relative path.
    kernels: HashMap<String, ServedKernel>,
}

impl ClientRegistry {
    /// Tells the registry which kernels the boot entries serve (paths root-relative).
    pub fn set_served_kernels(&mut self, kernels: impl IntoIterator<Item = (String, ServedKernel)>) {
        self.kernels = kernels.into_iter().map(|(path, kernel)| (served_name(&path).to_owned(), kernel)).collect();
    }

    pub fn apply(&mut self, event: &EngineEvent, now: Millis) {
        match event {
            EngineEvent::Dhcp(dhcp) => self.apply_dhcp(dhcp, now),
            EngineEvent::Transfer(transfer) => self.apply_transfer(transfer, now),
            EngineEvent::Wire(wire) => self.apply_wire(wire, now),
            EngineEvent::Service(_) | EngineEvent::Conflict(_) => {}
        }
        self.forget_idle(now);
    }

    fn apply_dhcp(&mut self, event: &DhcpEvent, now: Millis) {
        let record = self.clients.entry(event.mac).or_insert_with(|| ClientRecord::new(event.mac, now));
        if event.arch.is_some() {
            record.arch.clone_from(&event.arch);
        }
        if event.vendor_class.is_some() {
            record.vendor_class.clone_from(&event.vendor_class);
        }
        record.is_ipxe |= event.is_ipxe;
        let received = event.received.split(' ').next().unwrap_or_default();
        let answer = event.answered.as_deref().unwrap_or("no reply");
        let mut line = format!("{} → {answer}", event.received);
        if let Some(address) = event.address {
            line.push_str(&format!(" {address}"));
        }
        if let Some(boot) = &event.boot {
            line.push_str(&format!(", boot {boot}"));
        }
        if !event.note.is_empty() {
            line.push_str(&format!(" ({})", event.note));
        }
        record.log(now, line);

        match (received, event.answered.as_deref()) {
            (_, None) if event.note.starts_with("ignored:") => {
                record.phase = ClientPhase::Ignored;
                record.diagnosis = Some(format!("denied by a rule: {}", event.note.trim_start_matches("ignored: ")));
            }
            (_, None) if event.note.starts_with("client took the offer of server ") => {
                let server = event.note.trim_start_matches("client took the offer of server ");
                record.phase = ClientPhase::Ignored;
                record.address_from = server.parse().ok().map(AddressSource::Other);
                record.diagnosis = Some(format!("took an offer from another DHCP server ({server})"));
            }
            ("DISCOVER", Some("proxy OFFER")) => {
                record.phase = ClientPhase::Offer;
                record.proxy_offer_ms = Some(now);
            }
            ("DISCOVER", Some("OFFER")) => record.phase = ClientPhase::Offer,
            ("DISCOVER", None) => record.phase = ClientPhase::Discover,
            ("REQUEST", Some("ACK")) | ("INFORM", Some("ACK")) => {
                record.phase = ClientPhase::Ack;
                record.proxy_offer_ms = None;
            }
            ("REQUEST", Some(_)) => record.phase = ClientPhase::Request,
            _ => {}
        }
        if event.answered.as_deref() == Some("ACK") && event.address.is_some() {
            record.address = event.address;
            record.address_from = Some(AddressSource::Us);
        }
        if event.answered.is_some() {
            record.boot.clone_from(&event.boot);
            if event.boot.is_none() && event.note.starts_with("no boot file") {
                record.diagnosis = Some(format!("{}: it gets an address but nothing to boot", event.note));
            } else if !matches!(record.phase, ClientPhase::Ignored) {
                record.diagnosis = None;
            }
        }
        // iPXE asking means the loader ran; the firmware asking again means it did not.
        if event.is_ipxe {
            record.loader_fetched = None;
            record.secure_boot_refusal = None;
        } else if received == "DISCOVER"
            && let Some((file, at)) = record.loader_fetched.take()
            && now.saturating_sub(at) <= LOADER_RESTART_MS
        {
            record.secure_boot_refusal = Some(SecureBootRefusal::Loader { file });
        }
        // The firmware's next tries (HTTP boot, PXE again) are answered: the refusal stands.
        if let Some(refusal) = &record.secure_boot_refusal
            && record.diagnosis.is_none()
        {
            record.diagnosis = Some(refusal.to_string());
        }
        if let Some(address) = record.address {
            self.by_address.insert(address, event.mac);
        }
    }

    /// Another server answered a client (seen by capture).
    fn apply_wire(&mut self, wire: &WireDhcp, now: Millis) {
        let record = self.clients.entry(wire.client).or_insert_with(|| ClientRecord::new(wire.client, now));
        let mut line = format!("{} from server {} ({})", wire.message, wire.server, wire.server_mac);
        if let Some(address) = wire.address {
            line.push_str(&format!(" → {address}"));
        }
        record.log(now, line);
        if wire.message == "ACK"
            && let Some(address) = wire.address
        {
            record.address = Some(address);
            record.address_from = Some(AddressSource::Other(wire.server));
            self.by_address.insert(address, wire.client);
            // Beside a proxy offer of ours this is how it should be: the client now has its
            // address and goes on to fetch our boot file. Otherwise the client went elsewhere.
            if record.phase < ClientPhase::Ack {
                if record.proxy_offer_ms.is_some() {
                    record.phase = ClientPhase::Ack;
                } else {
                    record.diagnosis = Some(format!("took an offer from another DHCP server ({})", wire.server));
                }
            }
        }
    }

    fn apply_transfer(&mut self, event: &TransferEvent, now: Millis) {
        let IpAddr::V4(ip) = event.client.ip() else { return };
        // Proxy clients get their address elsewhere: the first download tells us who they are.
        let Some(mac) = self.by_address.get(&ip).copied().or_else(|| self.adopt_proxy_client(ip, now)) else {
            return;
        };
        let Some(record) = self.clients.get_mut(&mac) else { return };
        let protocol = match event.protocol {
            Protocol::Tftp => "TFTP",
            Protocol::Http => "HTTP",
        };
        let phase = match event.protocol {
            Protocol::Tftp => ClientPhase::BootFile,
            Protocol::Http => ClientPhase::Http,
        };
        record.proxy_offer_ms = None;
        match &event.phase {
            TransferPhase::Started { size } => {
                // Asking for another file means the loader runs (shim fetching GRUB, GRUB its config).
                if record.loader_fetched.as_ref().is_some_and(|(file, _)| file != served_name(&event.file)) {
                    record.loader_fetched = None;
                }
                record.phase = phase;
                record.transfer = Some(TransferProgress {
                    protocol: event.protocol,
                    file: event.file.clone(),
                    bytes: 0,
                    size: *size,
                    started_ms: now,
                    updated_ms: now,
                    done: false,
                    throughput: 0.0,
                });
                record.log(now, format!("{protocol} {} started", event.file));
            }
            TransferPhase::Progress { bytes, .. } => {
                if let Some(transfer) = record.transfer.as_mut().filter(|t| t.file == event.file) {
                    transfer.update(*bytes, now);
                }
                record.last_seen_ms = now;
            }
            TransferPhase::Finished { bytes } => {
                if let Some(transfer) = record.transfer.as_mut().filter(|t| t.file == event.file) {
                    transfer.update(*bytes, now);
                    transfer.done = true;
                }
                record.completed.push((event.file.clone(), *bytes));
                record.phase = if event.protocol == Protocol::Http { ClientPhase::HandedOff } else { phase };
                let file = served_name(&event.file);
                // The firmware fetching the loader it refused (again, or over HTTP boot) changes nothing.
                let refused_again = matches!(&record.secure_boot_refusal, Some(SecureBootRefusal::Loader { file: refused }) if refused == file);
                if !refused_again {
                    record.diagnosis = None;
                    record.secure_boot_refusal = None;
                }
                if !record.is_ipxe && record.boot.as_deref().is_some_and(|boot| served_name(boot_path(boot)) == file) {
                    record.loader_fetched = Some((file.to_owned(), now));
                }
                record.log(now, format!("{protocol} {} finished, {bytes} bytes", event.file));
            }
            TransferPhase::Failed { bytes, reason } => {
                if let Some(transfer) = record.transfer.as_mut().filter(|t| t.file == event.file) {
                    transfer.update(*bytes, now);
                }
                record.diagnosis = Some(match event.protocol {
                    Protocol::Tftp => format!(
                        "TFTP of {} stopped after {bytes} bytes ({reason}): a firewall dropping packets, or the client gave up",
                        event.file
                    ),
                    Protocol::Http => format!("HTTP download of {} stopped after {bytes} bytes ({reason})", event.file),
                });
                record.log(now, format!("{protocol} {} failed after {bytes} bytes: {reason}", event.file));
            }
            TransferPhase::Refused { reason } => {
                record.diagnosis = Some(if reason.contains("not found") || reason.starts_with("404") {
                    format!("file not found: {} ({reason})", event.file)
                } else {
                    format!("{protocol} refused {}: {reason}", event.file)
                });
                record.log(now, format!("{protocol} {} refused: {reason}", event.file));
            }
        }
    }

    /// The one client waiting after a proxy offer, if exactly one is.
    fn adopt_proxy_client(&mut self, ip: Ipv4Addr, now: Millis) -> Option<MacAddr> {
        let mut waiting =
            self.clients.values().filter(|record| record.proxy_offer_ms.is_some() && record.address.is_none());
        let record = waiting.next()?;
        if waiting.next().is_some() {
            return None;
        }
        let mac = record.mac;
        let record = self.clients.get_mut(&mac)?;
        record.address = Some(ip);
        record.address_from = Some(AddressSource::Other(Ipv4Addr::UNSPECIFIED));
        record.last_seen_ms = now;
        self.by_address.insert(ip, mac);
        Some(mac)
    }

    fn forget_idle(&mut self, now: Millis) {
        let stale: Vec<MacAddr> = self
            .clients
            .values()
            .filter(|record| now.saturating_sub(record.last_seen_ms) > IDLE_FORGET_MS)
            .map(|record| record.mac)
            .collect();
        for mac in stale {
            self.remove(mac);
        }
        while self.clients.len() > MAX_CLIENTS {
            let Some(oldest) = self.clients.values().min_by_key(|r| r.last_seen_ms).map(|r| r.mac) else { break };
            self.remove(oldest);
        }
    }

    fn remove(&mut self, mac: MacAddr) {
        if let Some(record) = self.clients.remove(&mac)
            && let Some(address) = record.address
        {
            self.by_address.remove(&address);
        }
    }

    /// All clients, most recently seen first, with time-based diagnoses filled in.
    pub fn snapshot(&self, now: Millis) -> Vec<ClientRecord> {
        let mut all: Vec<ClientRecord> = self.clients.values().cloned().collect();
        for record in &mut all {
            if let Some(offered) = record.proxy_offer_ms
                && now.saturating_sub(offered) > PROXY_FOLLOW_UP_MS
                && record.diagnosis.is_none()
            {
                record.diagnosis = Some(
                    "got our proxy offer but never asked on port 4011 or for the boot file: \
                     its firmware may ignore proxyDHCP, or a firewall blocks UDP 4011/69"
                        .into(),
                );
            }
            if record.diagnosis.is_none()
                && now.saturating_sub(record.last_seen_ms) > KERNEL_FOLLOW_UP_MS
                && let Some(refusal) = self.refused_kernel(record)
            {
                record.diagnosis = Some(refusal.to_string());
                record.secure_boot_refusal = Some(refusal);
            }
        }
        all.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.mac.cmp(&b.mac)));
        all
    }

    /// The last file `record` fetched is a kernel with an initrd that never followed.
    fn refused_kernel(&self, record: &ClientRecord) -> Option<SecureBootRefusal> {
        let (file, _) = record.completed.last()?;
        let kernel = self.kernels.get(served_name(file))?;
        if kernel.initrds.is_empty() || record.transfer.as_ref().is_some_and(|t| !t.done) {
            return None;
        }
        Some(SecureBootRefusal::Kernel {
            file: served_name(file).to_owned(),
            entry: kernel.entry.clone(),
            problem: kernel.secure_boot_problem.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

impl TransferProgress {
    fn update(&mut self, bytes: u64, now: Millis) {
        self.bytes = bytes;
        self.updated_ms = now;
        let elapsed = now.saturating_sub(self.started_ms).max(1) as f64 / 1000.0;
        self.throughput = bytes as f64 / elapsed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    const MAC: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    fn dhcp(received: &str, answered: Option<&str>, address: Option<[u8; 4]>, note: &str) -> EngineEvent {
        EngineEvent::Dhcp(DhcpEvent {
            mac: MAC,
            received: received.into(),
            answered: answered.map(str::to_owned),
            address: address.map(Ipv4Addr::from),
            arch: Some("BIOS".into()),
            vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
            is_ipxe: false,
            boot: answered.map(|_| "undionly.kpxe".to_owned()),
            note: note.into(),
        })
    }

    /// Another server's ACK of `address` to the test client, as capture reports it.
    fn captured_ack(server: [u8; 4], address: [u8; 4]) -> EngineEvent {
        EngineEvent::Wire(WireDhcp {
            client: MAC,
            server: server.into(),
            server_mac: MacAddr([0xaa, 0, 0, 0, 0, server[3]]),
            message: "ACK".into(),
            address: Some(address.into()),
        })
    }

    fn transfer(protocol: Protocol, file: &str, phase: TransferPhase) -> EngineEvent {
        EngineEvent::Transfer(TransferEvent {
            protocol,
            client: SocketAddr::from(([10, 77, 0, 100], 2000)),
            file: file.into(),
            phase,
        })
    }

    #[test]
    fn a_boot_walks_the_phases_with_bytes_and_throughput() {
        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("DISCOVER", Some("OFFER"), Some([10, 77, 0, 100]), ""), 1_000);
        assert_eq!(registry.snapshot(1_000)[0].phase, ClientPhase::Offer);
        registry.apply(&dhcp("REQUEST", Some("ACK"), Some([10, 77, 0, 100]), ""), 1_100);
        registry.apply(&transfer(Protocol::Tftp, "undionly.kpxe", TransferPhase::Started { size: Some(1000) }), 1_200);
        let record = &registry.snapshot(1_200)[0];
        assert_eq!(record.phase, ClientPhase::BootFile);
        assert_eq!(record.address_from, Some(AddressSource::Us));
        registry.apply(
            &transfer(Protocol::Tftp, "undionly.kpxe", TransferPhase::Progress { bytes: 500, size: Some(1000) }),
            1_700,
        );
        assert_eq!(registry.snapshot(1_700)[0].transfer.as_ref().unwrap().throughput, 1000.0);
        registry.apply(&transfer(Protocol::Tftp, "undionly.kpxe", TransferPhase::Finished { bytes: 1000 }), 2_200);
        registry.apply(&transfer(Protocol::Http, "/vmlinuz", TransferPhase::Started { size: Some(8) }), 2_300);
        registry.apply(&transfer(Protocol::Http, "/vmlinuz", TransferPhase::Finished { bytes: 8 }), 2_400);
        let record = &registry.snapshot(2_400)[0];
        assert_eq!(record.phase, ClientPhase::HandedOff);
        assert_eq!(record.completed, vec![("undionly.kpxe".to_owned(), 1000), ("/vmlinuz".to_owned(), 8)]);
        assert_eq!(record.vendor.as_deref(), None, "52:54:00 is QEMU's, not in the IEEE table");
        assert_eq!(record.arch.as_deref(), Some("BIOS"));
        assert_eq!(record.timeline.len(), 6);
        assert!(record.diagnosis.is_none());
    }

    #[test]
    fn diagnoses_in_plain_words() {
        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("DISCOVER", None, None, "ignored: 52:54:00:12:34:56 is not in the allowlist"), 0);
        assert_eq!(
            registry.snapshot(0)[0].diagnosis.as_deref(),
            Some("denied by a rule: 52:54:00:12:34:56 is not in the allowlist")
        );

        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("REQUEST", None, None, "client took the offer of server 10.77.0.2"), 0);
        let record = &registry.snapshot(0)[0];
        assert_eq!(record.address_from, Some(AddressSource::Other([10, 77, 0, 2].into())));
        assert!(record.diagnosis.as_deref().unwrap().contains("another DHCP server (10.77.0.2)"));

        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("REQUEST", Some("ACK"), Some([10, 77, 0, 100]), ""), 0);
        registry.apply(
            &transfer(Protocol::Tftp, "ipxe.efi", TransferPhase::Failed { bytes: 2936, reason: "timeout".into() }),
            9,
        );
        assert!(
            registry.snapshot(9)[0]
                .diagnosis
                .as_deref()
                .unwrap()
                .starts_with("TFTP of ipxe.efi stopped after 2936 bytes")
        );
        registry
            .apply(&transfer(Protocol::Tftp, "nope.efi", TransferPhase::Refused { reason: "not found".into() }), 10);
        assert!(registry.snapshot(10)[0].diagnosis.as_deref().unwrap().starts_with("file not found: nope.efi"));
    }

    #[test]
    fn proxy_clients_are_adopted_by_their_first_download_or_diagnosed() {
        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("DISCOVER", Some("proxy OFFER"), None, ""), 0);
        assert!(
            registry.snapshot(PROXY_FOLLOW_UP_MS + 1)[0]
                .diagnosis
                .as_deref()
                .unwrap()
                .contains("never asked on port 4011")
        );
        registry.apply(&transfer(Protocol::Tftp, "ipxe.efi", TransferPhase::Started { size: None }), 100);
        let record = &registry.snapshot(PROXY_FOLLOW_UP_MS + 200)[0];
        assert_eq!(record.address, Some([10, 77, 0, 100].into()));
        assert_eq!(record.phase, ClientPhase::BootFile);
        assert!(record.diagnosis.is_none());
    }

    #[test]
    fn a_captured_foreign_ack_names_the_other_server() {
        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("DISCOVER", Some("OFFER"), Some([10, 77, 0, 100]), ""), 0);
        registry.apply(&captured_ack([10, 77, 0, 2], [10, 77, 0, 60]), 10);
        let record = &registry.snapshot(10)[0];
        assert_eq!(record.address_from, Some(AddressSource::Other([10, 77, 0, 2].into())));
        assert_eq!(record.diagnosis.as_deref(), Some("took an offer from another DHCP server (10.77.0.2)"));
    }

    #[test]
    fn beside_our_proxy_offer_the_networks_ack_is_the_clients_address() {
        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp("DISCOVER", Some("proxy OFFER"), None, ""), 0);
        registry.apply(&captured_ack([10, 77, 0, 1], [10, 77, 0, 60]), 10);
        let record = &registry.snapshot(10)[0];
        assert_eq!(record.phase, ClientPhase::Ack);
        assert_eq!(record.address, Some([10, 77, 0, 60].into()));
        assert_eq!(record.address_from, Some(AddressSource::Other([10, 77, 0, 1].into())));
        assert!(record.diagnosis.is_none(), "{:?}", record.diagnosis);
    }

    fn uefi(received: &str, answered: Option<&str>, is_ipxe: bool, boot: &str) -> EngineEvent {
        EngineEvent::Dhcp(DhcpEvent {
            mac: MAC,
            received: received.into(),
            answered: answered.map(str::to_owned),
            address: Some(Ipv4Addr::new(10, 77, 0, 100)),
            arch: Some("UEFI x64".into()),
            vendor_class: Some("PXEClient:Arch:00007:UNDI:003000".into()),
            is_ipxe,
            boot: answered.map(|_| boot.to_owned()),
            note: String::new(),
        })
    }

    #[test]
    fn a_firmware_that_starts_over_after_its_loader_was_refused_says_secure_boot() {
        let mut registry = ClientRegistry::default();
        registry.apply(&uefi("DISCOVER", Some("OFFER"), false, "ipxe.efi"), 1_000);
        registry.apply(&uefi("REQUEST", Some("ACK"), false, "ipxe.efi"), 1_100);
        registry.apply(&transfer(Protocol::Tftp, "ipxe.efi", TransferPhase::Finished { bytes: 1000 }), 2_000);
        assert!(registry.snapshot(2_000)[0].diagnosis.is_none());
        // OVMF refused it and tries its next boot option: DHCP again, not as iPXE.
        registry.apply(&uefi("DISCOVER", Some("OFFER"), false, "ipxe.efi"), 3_000);
        let record = &registry.snapshot(3_000)[0];
        assert_eq!(record.secure_boot_refusal, Some(SecureBootRefusal::Loader { file: "ipxe.efi".into() }));
        assert!(
            record
                .diagnosis
                .as_deref()
                .unwrap()
                .starts_with("the firmware refused ipxe.efi: Secure Boot is probably on")
        );
        // OVMF's HTTP boot then fetches the same loader by URL and is refused again.
        registry.apply(&uefi("REQUEST", Some("ACK"), false, "http://10.77.0.1/ipxe.efi"), 3_500);
        registry.apply(&transfer(Protocol::Http, "/ipxe.efi", TransferPhase::Finished { bytes: 1000 }), 4_000);
        let record = &registry.snapshot(4_000)[0];
        assert_eq!(record.secure_boot_refusal, Some(SecureBootRefusal::Loader { file: "ipxe.efi".into() }));
        registry.apply(&uefi("DISCOVER", Some("OFFER"), false, "ipxe.efi"), 5_000);
        assert!(registry.snapshot(5_000)[0].diagnosis.as_deref().unwrap().contains("refused ipxe.efi"));
    }

    #[test]
    fn a_loader_that_runs_is_no_refusal() {
        let mut registry = ClientRegistry::default();
        registry.apply(&uefi("REQUEST", Some("ACK"), false, "ipxe.efi"), 1_000);
        registry.apply(&transfer(Protocol::Tftp, "/ipxe.efi", TransferPhase::Finished { bytes: 1000 }), 2_000);
        registry.apply(&uefi("DISCOVER", Some("OFFER"), true, "boot.ipxe"), 3_000);
        registry.apply(&uefi("DISCOVER", Some("OFFER"), false, "ipxe.efi"), 30_000);
        assert_eq!(registry.snapshot(30_000)[0].secure_boot_refusal, None, "iPXE ran in between");
        // shim ran: it fetched GRUB. The machine boots from the network again the next day.
        registry.apply(&uefi("REQUEST", Some("ACK"), false, "shimx64.efi"), 40_000);
        registry.apply(&transfer(Protocol::Tftp, "shimx64.efi", TransferPhase::Finished { bytes: 10 }), 41_000);
        registry.apply(&transfer(Protocol::Tftp, "grubx64.efi", TransferPhase::Started { size: None }), 42_000);
        registry.apply(&uefi("DISCOVER", Some("OFFER"), false, "shimx64.efi"), 43_000);
        assert_eq!(registry.snapshot(43_000)[0].secure_boot_refusal, None, "shim fetched GRUB: it ran");
        registry.apply(&transfer(Protocol::Tftp, "shimx64.efi", TransferPhase::Finished { bytes: 10 }), 50_000);
        registry.apply(&uefi("DISCOVER", Some("OFFER"), false, "shimx64.efi"), 50_000 + LOADER_RESTART_MS + 1);
        assert_eq!(registry.snapshot(200_000)[0].secure_boot_refusal, None, "a restart much later is a new boot");
    }

    #[test]
    fn a_kernel_whose_initrd_never_follows_was_refused() {
        let kernel = ServedKernel {
            entry: "Linux".into(),
            initrds: vec!["initrd.img".into()],
            secure_boot_problem: Some("the kernel is not signed".into()),
        };
        let mut registry = ClientRegistry::default();
        registry.set_served_kernels([("vmlinuz".to_owned(), kernel)]);
        registry.apply(&uefi("REQUEST", Some("ACK"), false, "shimx64.efi"), 1_000);
        registry.apply(&transfer(Protocol::Tftp, "shimx64.efi", TransferPhase::Finished { bytes: 10 }), 2_000);
        registry.apply(&transfer(Protocol::Tftp, "grubx64.efi", TransferPhase::Finished { bytes: 10 }), 3_000);
        registry.apply(&transfer(Protocol::Tftp, "/vmlinuz", TransferPhase::Finished { bytes: 10 }), 4_000);
        assert!(registry.snapshot(4_000 + KERNEL_FOLLOW_UP_MS)[0].diagnosis.is_none(), "not silent long enough");
        let record = &registry.snapshot(4_001 + KERNEL_FOLLOW_UP_MS)[0];
        let diagnosis = record.diagnosis.as_deref().unwrap();
        assert!(diagnosis.contains("vmlinuz") && diagnosis.contains("not signed"), "{diagnosis}");
        // The same kernel with its initrd after it: a boot that went on.
        registry.apply(&transfer(Protocol::Tftp, "/initrd.img", TransferPhase::Finished { bytes: 10 }), 4_500);
        assert!(registry.snapshot(60_000)[0].diagnosis.is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let mut registry = ClientRegistry::default();
        for n in 0..(MAX_CLIENTS as u32 + 10) {
            let mac = MacAddr([2, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8, 1]);
            let event = EngineEvent::Dhcp(DhcpEvent {
                mac,
                received: "DISCOVER".into(),
                answered: None,
                address: None,
                arch: None,
                vendor_class: None,
                is_ipxe: false,
                boot: None,
                note: String::new(),
            });
            registry.apply(&event, u64::from(n));
        }
        assert_eq!(registry.len(), MAX_CLIENTS);
        for step in 0..(MAX_TIMELINE + 5) {
            registry.apply(&dhcp("DISCOVER", Some("OFFER"), Some([10, 77, 0, 100]), ""), 5_000 + step as u64);
        }
        assert_eq!(registry.snapshot(6_000).iter().find(|r| r.mac == MAC).unwrap().timeline.len(), MAX_TIMELINE);
        registry.apply(&dhcp("DISCOVER", None, None, ""), 5_000 + IDLE_FORGET_MS + 100_000);
        assert_eq!(registry.len(), 1, "idle clients are forgotten");
    }

    #[test]
    fn nic_vendor_comes_from_the_oui_table() {
        let mut registry = ClientRegistry::default();
        let intel = MacAddr([0x00, 0x1b, 0x21, 0, 0, 1]);
        registry.apply(
            &EngineEvent::Dhcp(DhcpEvent {
                mac: intel,
                received: "DISCOVER".into(),
                answered: None,
                address: None,
                arch: None,
                vendor_class: None,
                is_ipxe: false,
                boot: None,
                note: String::new(),
            }),
            0,
        );
        assert!(registry.snapshot(0)[0].vendor.as_deref().unwrap_or_default().contains("Intel"));
    }
}
