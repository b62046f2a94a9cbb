use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use super::diagnosis::{Diagnosis, SecureBootRefusal};
use crate::events::{
    DhcpEvent, DhcpMessage, DhcpReason, DhcpRole, EngineEvent, Protocol, TransferEvent, TransferPhase, WireDhcp,
};
use crate::mac::MacAddr;
use crate::pxe::ClientArch;
use crate::secure_boot::KernelRefusal;

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
    /// Why shim refuses it, when it does.
    pub secure_boot_problem: Option<KernelRefusal>,
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
    pub arch: Option<ClientArch>,
    pub is_ipxe: bool,
    pub address: Option<Ipv4Addr>,
    pub address_from: Option<AddressSource>,
    pub phase: ClientPhase,
    pub boot: Option<String>,
    pub transfer: Option<TransferProgress>,
    /// Files fully sent, in order.
    pub completed: Vec<(String, u64)>,
    pub timeline: VecDeque<TimelineEntry>,
    /// Why the boot stopped, when we can tell (serialized with its words as `text`).
    #[serde(serialize_with = "super::diagnosis::described")]
    pub diagnosis: Option<Diagnosis>,
    /// The boot stopped at a Secure Boot signature check (also in `diagnosis`, unless
    /// something later says more).
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
            // Imaging has its own grid (seat, phase, progress); the registry keeps boots.
            EngineEvent::Service(_) | EngineEvent::Conflict(_) | EngineEvent::Imaging(_) | EngineEvent::NextBoot(_) => {
            }
        }
        self.forget_idle(now);
    }

    fn apply_dhcp(&mut self, event: &DhcpEvent, now: Millis) {
        let record = self.clients.entry(event.mac).or_insert_with(|| ClientRecord::new(event.mac, now));
        if event.arch.is_some() {
            record.arch = event.arch;
        }
        if event.vendor_class.is_some() {
            record.vendor_class.clone_from(&event.vendor_class);
        }
        record.is_ipxe |= event.is_ipxe;
        let answer = event.answered_text().unwrap_or_else(|| "no reply".into());
        let mut line = format!("{} → {answer}", event.received_text());
        if let Some(address) = event.address {
            line.push_str(&format!(" {address}"));
        }
        if let Some(boot) = &event.boot {
            line.push_str(&format!(", boot {boot}"));
        }
        let note = event.note();
        if !note.is_empty() {
            line.push_str(&format!(" ({note})"));
        }
        record.log(now, line);

        match (event.role, event.received, event.answered, &event.reason) {
            (_, _, None, Some(DhcpReason::Ignored(reason))) => {
                record.phase = ClientPhase::Ignored;
                record.diagnosis = Some(Diagnosis::Denied(reason.clone()));
            }
            (_, _, None, Some(DhcpReason::TookOtherOffer { server })) => {
                record.phase = ClientPhase::Ignored;
                record.address_from = Some(AddressSource::Other(*server));
                record.diagnosis = Some(Diagnosis::OtherServer { server: *server });
            }
            (DhcpRole::Proxy, DhcpMessage::DISCOVER, Some(DhcpMessage::OFFER), _) => {
                record.phase = ClientPhase::Offer;
                record.proxy_offer_ms = Some(now);
            }
            (_, DhcpMessage::DISCOVER, Some(DhcpMessage::OFFER), _) => record.phase = ClientPhase::Offer,
            (_, DhcpMessage::DISCOVER, None, _) => record.phase = ClientPhase::Discover,
            (_, DhcpMessage::REQUEST | DhcpMessage::INFORM, Some(DhcpMessage::ACK), _) => {
                record.phase = ClientPhase::Ack;
                record.proxy_offer_ms = None;
            }
            (_, DhcpMessage::REQUEST, Some(_), _) => record.phase = ClientPhase::Request,
            _ => {}
        }
        if event.role == DhcpRole::Server && event.answered == Some(DhcpMessage::ACK) && event.address.is_some() {
            record.address = event.address;
            record.address_from = Some(AddressSource::Us);
        }
        if event.answered.is_some() {
            record.boot.clone_from(&event.boot);
            if let (None, Some(DhcpReason::NoBootFile(reason))) = (&event.boot, &event.reason) {
                record.diagnosis = Some(Diagnosis::NothingToBoot(*reason));
            } else if !matches!(record.phase, ClientPhase::Ignored) {
                record.diagnosis = None;
            }
        }
        // iPXE asking means the loader ran; the firmware asking again means it did not.
        if event.is_ipxe {
            record.loader_fetched = None;
            record.secure_boot_refusal = None;
        } else if event.received == DhcpMessage::DISCOVER
            && let Some((file, at)) = record.loader_fetched.take()
            && now.saturating_sub(at) <= LOADER_RESTART_MS
        {
            record.secure_boot_refusal = Some(SecureBootRefusal::Loader { file });
        }
        // The firmware's next tries (HTTP boot, PXE again) are answered: the refusal stands.
        if let Some(refusal) = &record.secure_boot_refusal
            && record.diagnosis.is_none()
        {
            record.diagnosis = Some(Diagnosis::SecureBoot(refusal.clone()));
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
        if wire.message == DhcpMessage::ACK
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
                    record.diagnosis = Some(Diagnosis::OtherServer { server: wire.server });
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
        let protocol = event.protocol;
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
                record.diagnosis = Some(Diagnosis::TransferStopped {
                    protocol,
                    file: event.file.clone(),
                    bytes: *bytes,
                    reason: reason.clone(),
                });
                record.log(now, format!("{protocol} {} failed after {bytes} bytes: {reason}", event.file));
            }
            TransferPhase::Refused { reason, not_found } => {
                record.log(now, format!("{protocol} {} refused: {reason}", event.file));
                let (file, reason) = (event.file.clone(), reason.clone());
                record.diagnosis = Some(if *not_found {
                    Diagnosis::FileNotFound { file, reason }
                } else {
                    Diagnosis::TransferRefused { protocol, file, reason }
                });
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
                record.diagnosis = Some(Diagnosis::NoProxyFollowUp);
            }
            if record.diagnosis.is_none()
                && now.saturating_sub(record.last_seen_ms) > KERNEL_FOLLOW_UP_MS
                && let Some(refusal) = self.refused_kernel(record)
            {
                record.diagnosis = Some(Diagnosis::SecureBoot(refusal.clone()));
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
    use crate::rules::IgnoreReason;
    use std::net::SocketAddr;

    const MAC: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    const DISCOVER: DhcpMessage = DhcpMessage::DISCOVER;
    const REQUEST: DhcpMessage = DhcpMessage::REQUEST;
    const OFFER: Option<DhcpMessage> = Some(DhcpMessage::OFFER);
    const ACK: Option<DhcpMessage> = Some(DhcpMessage::ACK);

    fn event(received: DhcpMessage, answered: Option<DhcpMessage>, reason: Option<DhcpReason>) -> DhcpEvent {
        DhcpEvent {
            mac: MAC,
            role: DhcpRole::Server,
            received,
            answered,
            address: None,
            arch: Some(ClientArch::Bios),
            vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
            is_ipxe: false,
            boot: answered.map(|_| "undionly.kpxe".to_owned()),
            reason,
            rule: None,
        }
    }

    fn dhcp(received: DhcpMessage, answered: Option<DhcpMessage>, address: Option<[u8; 4]>) -> EngineEvent {
        EngineEvent::Dhcp(DhcpEvent { address: address.map(Ipv4Addr::from), ..event(received, answered, None) })
    }

    fn silent(received: DhcpMessage, reason: DhcpReason) -> EngineEvent {
        EngineEvent::Dhcp(event(received, None, Some(reason)))
    }

    fn proxy_offer() -> EngineEvent {
        EngineEvent::Dhcp(DhcpEvent {
            role: DhcpRole::Proxy,
            reason: Some(DhcpReason::BootFileOffered),
            ..event(DISCOVER, OFFER, None)
        })
    }

    /// Another server's ACK of `address` to the test client, as capture reports it.
    fn captured_ack(server: [u8; 4], address: [u8; 4]) -> EngineEvent {
        EngineEvent::Wire(WireDhcp {
            client: MAC,
            server: server.into(),
            server_mac: MacAddr([0xaa, 0, 0, 0, 0, server[3]]),
            message: DhcpMessage::ACK,
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
        registry.apply(&dhcp(DISCOVER, OFFER, Some([10, 77, 0, 100])), 1_000);
        assert_eq!(registry.snapshot(1_000)[0].phase, ClientPhase::Offer);
        registry.apply(&dhcp(REQUEST, ACK, Some([10, 77, 0, 100])), 1_100);
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
        assert_eq!(record.arch, Some(ClientArch::Bios));
        assert_eq!(record.timeline.len(), 6);
        assert!(record.diagnosis.is_none());
    }

    #[test]
    fn diagnoses_in_plain_words() {
        let mut registry = ClientRegistry::default();
        let not_allowed = IgnoreReason::NotAllowlisted { mac: MAC };
        registry.apply(&silent(DISCOVER, DhcpReason::Ignored(not_allowed.clone())), 0);
        let record = &registry.snapshot(0)[0];
        assert_eq!(record.phase, ClientPhase::Ignored);
        assert_eq!(record.diagnosis, Some(Diagnosis::Denied(not_allowed)));
        assert_eq!(
            record.diagnosis.as_ref().unwrap().to_string(),
            "denied by a rule: 52:54:00:12:34:56 is not in the allowlist"
        );

        let mut registry = ClientRegistry::default();
        registry.apply(&silent(REQUEST, DhcpReason::TookOtherOffer { server: [10, 77, 0, 2].into() }), 0);
        let record = &registry.snapshot(0)[0];
        assert_eq!(record.address_from, Some(AddressSource::Other([10, 77, 0, 2].into())));
        assert_eq!(record.diagnosis, Some(Diagnosis::OtherServer { server: [10, 77, 0, 2].into() }));
        assert!(record.diagnosis.as_ref().unwrap().to_string().contains("another DHCP server (10.77.0.2)"));

        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp(REQUEST, ACK, Some([10, 77, 0, 100])), 0);
        registry.apply(
            &transfer(Protocol::Tftp, "ipxe.efi", TransferPhase::Failed { bytes: 2936, reason: "timeout".into() }),
            9,
        );
        let diagnosis = registry.snapshot(9)[0].diagnosis.clone().unwrap();
        assert!(matches!(diagnosis, Diagnosis::TransferStopped { bytes: 2936, .. }), "{diagnosis:?}");
        assert!(diagnosis.to_string().starts_with("TFTP of ipxe.efi stopped after 2936 bytes"));
        // TFTP says "does not exist", HTTP "404": the registry reads the fact, not the words.
        let missing = TransferPhase::Refused { reason: "\"nope.efi\" does not exist".into(), not_found: true };
        registry.apply(&transfer(Protocol::Tftp, "nope.efi", missing), 10);
        let diagnosis = registry.snapshot(10)[0].diagnosis.clone().unwrap();
        assert!(matches!(diagnosis, Diagnosis::FileNotFound { .. }), "{diagnosis:?}");
        assert!(diagnosis.to_string().starts_with("file not found: nope.efi"));
        let bad_name = TransferPhase::Refused { reason: "contains `..`".into(), not_found: false };
        registry.apply(&transfer(Protocol::Tftp, "../x", bad_name), 11);
        assert_eq!(
            registry.snapshot(11)[0].diagnosis.as_ref().unwrap().to_string(),
            "TFTP refused ../x: contains `..`"
        );
    }

    #[test]
    fn proxy_clients_are_adopted_by_their_first_download_or_diagnosed() {
        let mut registry = ClientRegistry::default();
        registry.apply(&proxy_offer(), 0);
        assert_eq!(registry.snapshot(PROXY_FOLLOW_UP_MS + 1)[0].diagnosis, Some(Diagnosis::NoProxyFollowUp));
        registry.apply(&transfer(Protocol::Tftp, "ipxe.efi", TransferPhase::Started { size: None }), 100);
        let record = &registry.snapshot(PROXY_FOLLOW_UP_MS + 200)[0];
        assert_eq!(record.address, Some([10, 77, 0, 100].into()));
        assert_eq!(record.phase, ClientPhase::BootFile);
        assert!(record.diagnosis.is_none());
    }

    #[test]
    fn a_captured_foreign_ack_names_the_other_server() {
        let mut registry = ClientRegistry::default();
        registry.apply(&dhcp(DISCOVER, OFFER, Some([10, 77, 0, 100])), 0);
        registry.apply(&captured_ack([10, 77, 0, 2], [10, 77, 0, 60]), 10);
        let record = &registry.snapshot(10)[0];
        assert_eq!(record.address_from, Some(AddressSource::Other([10, 77, 0, 2].into())));
        assert_eq!(
            record.diagnosis.as_ref().map(ToString::to_string).as_deref(),
            Some("took an offer from another DHCP server (10.77.0.2)")
        );
    }

    #[test]
    fn beside_our_proxy_offer_the_networks_ack_is_the_clients_address() {
        let mut registry = ClientRegistry::default();
        registry.apply(&proxy_offer(), 0);
        registry.apply(&captured_ack([10, 77, 0, 1], [10, 77, 0, 60]), 10);
        let record = &registry.snapshot(10)[0];
        assert_eq!(record.phase, ClientPhase::Ack);
        assert_eq!(record.address, Some([10, 77, 0, 60].into()));
        assert_eq!(record.address_from, Some(AddressSource::Other([10, 77, 0, 1].into())));
        assert!(record.diagnosis.is_none(), "{:?}", record.diagnosis);
    }

    fn uefi(received: DhcpMessage, answered: Option<DhcpMessage>, is_ipxe: bool, boot: &str) -> EngineEvent {
        EngineEvent::Dhcp(DhcpEvent {
            address: Some(Ipv4Addr::new(10, 77, 0, 100)),
            arch: Some(ClientArch::UefiX64),
            vendor_class: Some("PXEClient:Arch:00007:UNDI:003000".into()),
            is_ipxe,
            boot: answered.map(|_| boot.to_owned()),
            ..event(received, answered, None)
        })
    }

    #[test]
    fn a_firmware_that_starts_over_after_its_loader_was_refused_says_secure_boot() {
        let mut registry = ClientRegistry::default();
        registry.apply(&uefi(DISCOVER, OFFER, false, "ipxe.efi"), 1_000);
        registry.apply(&uefi(REQUEST, ACK, false, "ipxe.efi"), 1_100);
        registry.apply(&transfer(Protocol::Tftp, "ipxe.efi", TransferPhase::Finished { bytes: 1000 }), 2_000);
        assert!(registry.snapshot(2_000)[0].diagnosis.is_none());
        // OVMF refused it and tries its next boot option: DHCP again, not as iPXE.
        registry.apply(&uefi(DISCOVER, OFFER, false, "ipxe.efi"), 3_000);
        let record = &registry.snapshot(3_000)[0];
        assert_eq!(record.secure_boot_refusal, Some(SecureBootRefusal::Loader { file: "ipxe.efi".into() }));
        let refused = Diagnosis::SecureBoot(SecureBootRefusal::Loader { file: "ipxe.efi".into() });
        assert_eq!(record.diagnosis.as_ref(), Some(&refused));
        assert!(refused.to_string().starts_with("the firmware refused ipxe.efi: Secure Boot is probably on"));
        // OVMF's HTTP boot then fetches the same loader by URL and is refused again.
        registry.apply(&uefi(REQUEST, ACK, false, "http://10.77.0.1/ipxe.efi"), 3_500);
        registry.apply(&transfer(Protocol::Http, "/ipxe.efi", TransferPhase::Finished { bytes: 1000 }), 4_000);
        let record = &registry.snapshot(4_000)[0];
        assert_eq!(record.secure_boot_refusal, Some(SecureBootRefusal::Loader { file: "ipxe.efi".into() }));
        registry.apply(&uefi(DISCOVER, OFFER, false, "ipxe.efi"), 5_000);
        assert_eq!(registry.snapshot(5_000)[0].diagnosis, Some(refused));
    }

    #[test]
    fn a_loader_that_runs_is_no_refusal() {
        let mut registry = ClientRegistry::default();
        registry.apply(&uefi(REQUEST, ACK, false, "ipxe.efi"), 1_000);
        registry.apply(&transfer(Protocol::Tftp, "/ipxe.efi", TransferPhase::Finished { bytes: 1000 }), 2_000);
        registry.apply(&uefi(DISCOVER, OFFER, true, "boot.ipxe"), 3_000);
        registry.apply(&uefi(DISCOVER, OFFER, false, "ipxe.efi"), 30_000);
        assert_eq!(registry.snapshot(30_000)[0].secure_boot_refusal, None, "iPXE ran in between");
        // shim ran: it fetched GRUB. The machine boots from the network again the next day.
        registry.apply(&uefi(REQUEST, ACK, false, "shimx64.efi"), 40_000);
        registry.apply(&transfer(Protocol::Tftp, "shimx64.efi", TransferPhase::Finished { bytes: 10 }), 41_000);
        registry.apply(&transfer(Protocol::Tftp, "grubx64.efi", TransferPhase::Started { size: None }), 42_000);
        registry.apply(&uefi(DISCOVER, OFFER, false, "shimx64.efi"), 43_000);
        assert_eq!(registry.snapshot(43_000)[0].secure_boot_refusal, None, "shim fetched GRUB: it ran");
        registry.apply(&transfer(Protocol::Tftp, "shimx64.efi", TransferPhase::Finished { bytes: 10 }), 50_000);
        registry.apply(&uefi(DISCOVER, OFFER, false, "shimx64.efi"), 50_000 + LOADER_RESTART_MS + 1);
        assert_eq!(registry.snapshot(200_000)[0].secure_boot_refusal, None, "a restart much later is a new boot");
    }

    #[test]
    fn a_kernel_whose_initrd_never_follows_was_refused() {
        let kernel = ServedKernel {
            entry: "Linux".into(),
            initrds: vec!["initrd.img".into()],
            secure_boot_problem: Some(KernelRefusal::NotSigned),
        };
        let mut registry = ClientRegistry::default();
        registry.set_served_kernels([("vmlinuz".to_owned(), kernel)]);
        registry.apply(&uefi(REQUEST, ACK, false, "shimx64.efi"), 1_000);
        registry.apply(&transfer(Protocol::Tftp, "shimx64.efi", TransferPhase::Finished { bytes: 10 }), 2_000);
        registry.apply(&transfer(Protocol::Tftp, "grubx64.efi", TransferPhase::Finished { bytes: 10 }), 3_000);
        registry.apply(&transfer(Protocol::Tftp, "/vmlinuz", TransferPhase::Finished { bytes: 10 }), 4_000);
        assert!(registry.snapshot(4_000 + KERNEL_FOLLOW_UP_MS)[0].diagnosis.is_none(), "not silent long enough");
        let record = &registry.snapshot(4_001 + KERNEL_FOLLOW_UP_MS)[0];
        let diagnosis = record.diagnosis.clone().unwrap();
        assert_eq!(
            diagnosis,
            Diagnosis::SecureBoot(SecureBootRefusal::Kernel {
                file: "vmlinuz".into(),
                entry: "Linux".into(),
                problem: Some(KernelRefusal::NotSigned)
            })
        );
        assert!(diagnosis.to_string().contains("not signed"), "{diagnosis}");
        let json = serde_json::to_value(record).unwrap();
        assert_eq!(json["diagnosis"]["diagnosis"], "secure_boot");
        assert_eq!(json["diagnosis"]["refused"], "kernel");
        assert_eq!(json["diagnosis"]["text"], diagnosis.to_string());
        // The same kernel with its initrd after it: a boot that went on.
        registry.apply(&transfer(Protocol::Tftp, "/initrd.img", TransferPhase::Finished { bytes: 10 }), 4_500);
        assert!(registry.snapshot(60_000)[0].diagnosis.is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let mut registry = ClientRegistry::default();
        for n in 0..(MAX_CLIENTS as u32 + 10) {
            let mac = MacAddr([2, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8, 1]);
            let event = EngineEvent::Dhcp(DhcpEvent { mac, ..event(DISCOVER, None, None) });
            registry.apply(&event, u64::from(n));
        }
        assert_eq!(registry.len(), MAX_CLIENTS);
        for step in 0..(MAX_TIMELINE + 5) {
            registry.apply(&dhcp(DISCOVER, OFFER, Some([10, 77, 0, 100])), 5_000 + step as u64);
        }
        assert_eq!(registry.snapshot(6_000).iter().find(|r| r.mac == MAC).unwrap().timeline.len(), MAX_TIMELINE);
        registry.apply(&dhcp(DISCOVER, None, None), 5_000 + IDLE_FORGET_MS + 100_000);
        assert_eq!(registry.len(), 1, "idle clients are forgotten");
    }

    #[test]
    fn nic_vendor_comes_from_the_oui_table() {
        let mut registry = ClientRegistry::default();
        let intel = MacAddr([0x00, 0x1b, 0x21, 0, 0, 1]);
        registry.apply(&EngineEvent::Dhcp(DhcpEvent { mac: intel, ..event(DISCOVER, None, None) }), 0);
        assert!(registry.snapshot(0)[0].vendor.as_deref().unwrap_or_default().contains("Intel"));
    }
}
