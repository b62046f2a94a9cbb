//! Pictures of the window's main states, kept in `tests/snapshots/` and compared at
//! every run (wgpu on lavapipe where there is no GPU; `UPDATE_SNAPSHOTS=1` rewrites
//! them after a deliberate change). Each state is a fixed snapshot with a fixed clock,
//! drawn by the real `PortaApp` over a detached handle (no engine thread), so the
//! pictures do not depend on this machine's network cards or the time of day.

use std::net::{Ipv4Addr, SocketAddr};

use egui_kittest::Harness;
use portapxe::event_text::Level;
use portapxe::gui::app::Tab;
use portapxe::gui::engine_handle::{
    ConflictEntry, FailedService, LogLine, RunState, ScanState, StartFailure, UiSnapshot, Validation,
};
use portapxe::gui::{EngineHandle, PortaApp};
use portapxe_engine::EngineStatus;
use portapxe_engine::clients::ClientRegistry;
use portapxe_engine::config::{BootEntry, Config, InterfaceFacts, Mode, PoolRange, validate};
use portapxe_engine::detect::{ServerRole, ServerSighting};
use portapxe_engine::events::{
    DhcpEvent, DhcpMessage, DhcpReason, DhcpRole, EngineEvent, MacAddr, Protocol, TransferEvent, TransferPhase,
    WireDhcp,
};
use portapxe_engine::net::{InterfaceInfo, InterfaceKind};
use portapxe_engine::pxe::ClientArch;

const SIZE: [f32; 2] = [960.0, 600.0];
const T0: u64 = 1_700_000_000_000;
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);
const NETWORK_DHCP_SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const NETWORK_DHCP_SERVER_MAC: MacAddr = MacAddr([0x00, 0x0c, 0x42, 0x10, 0x20, 0x30]);

fn interface(name: &str, kind: InterfaceKind, ipv4: Option<[u8; 4]>, mac: [u8; 6]) -> InterfaceInfo {
    InterfaceInfo {
        name: name.into(),
        friendly_name: None,
        index: 1,
        mac: Some(MacAddr(mac)),
        ipv4: ipv4.map(|ip| vec![(ip.into(), 24)]).unwrap_or_default(),
        up: true,
        kind,
    }
}

/// A laptop's cards: wired, Wi-Fi, Docker's bridge, loopback.
fn interfaces() -> Vec<InterfaceInfo> {
    vec![
        interface("eth0", InterfaceKind::Wired, Some([192, 168, 1, 20]), [0x00, 0x1b, 0x21, 0x3a, 0x4b, 0x5c]),
        interface("wlan0", InterfaceKind::Wireless, Some([10, 0, 0, 12]), [0x3c, 0x22, 0xfb, 0x01, 0x02, 0x03]),
        interface("docker0", InterfaceKind::Virtual, Some([172, 17, 0, 1]), [0x02, 0x42, 0xac, 0x11, 0, 1]),
        InterfaceInfo {
            mac: None,
            kind: InterfaceKind::Loopback,
            ..interface("lo", InterfaceKind::Loopback, Some([127, 0, 0, 1]), [0; 6])
        },
    ]
}

fn facts() -> InterfaceFacts {
    InterfaceFacts { address: SERVER, prefix: 24, loopback: false }
}

/// A config checked by the engine's own rules, as the handle would report it.
fn checked(config: &Config) -> Option<Validation> {
    let facts = (config.interface == "eth0").then(facts);
    Some(Validation { errors: validate(config, facts.as_ref()), ..Validation::passed(config.clone()) })
}

fn serving_config() -> Config {
    let mut config = Config { interface: "eth0".into(), mode: Mode::Proxy, root: "/".into(), ..Config::default() };
    config.boot.entries = vec![
        BootEntry::Linux {
            name: "Debian 13 installer".into(),
            kernel: "debian/linux".into(),
            initrd: vec!["debian/initrd.gz".into()],
            cmdline: String::new(),
        },
        BootEntry::LocalDisk { name: "Local disk".into() },
    ];
    config
}

/// What the proxy service reports for a firmware client: an offer with its loader, no address.
fn proxy_offer(mac: MacAddr, arch: ClientArch) -> EngineEvent {
    let (vendor_class, boot) = match arch {
        ClientArch::Bios => ("PXEClient:Arch:00000:UNDI:002001", "undionly.kpxe"),
        _ => ("PXEClient:Arch:00007:UNDI:003010", "ipxe.efi"),
    };
    EngineEvent::Dhcp(DhcpEvent {
        mac,
        role: DhcpRole::Proxy,
        received: DhcpMessage::DISCOVER,
        answered: Some(DhcpMessage::OFFER),
        address: None,
        arch: Some(arch),
        vendor_class: Some(vendor_class.into()),
        is_ipxe: false,
        boot: Some(boot.into()),
        reason: Some(DhcpReason::BootFileOffered),
        rule: None,
    })
}

/// The network's DHCP server acknowledging a client's address, as capture sees it.
fn network_ack(client: MacAddr, address: Ipv4Addr) -> EngineEvent {
    EngineEvent::Wire(WireDhcp {
        client,
        server: NETWORK_DHCP_SERVER,
        server_mac: NETWORK_DHCP_SERVER_MAC,
        message: DhcpMessage::ACK,
        address: Some(address),
    })
}

fn transfer(client: Ipv4Addr, file: &str, phase: TransferPhase) -> EngineEvent {
    EngineEvent::Transfer(TransferEvent {
        protocol: Protocol::Tftp,
        client: SocketAddr::new(client.into(), 2070),
        file: file.into(),
        phase,
    })
}

fn network_dhcp_server(expected: bool) -> ConflictEntry {
    let server = ServerSighting {
        server_id: NETWORK_DHCP_SERVER,
        source: NETWORK_DHCP_SERVER,
        mac: Some(NETWORK_DHCP_SERVER_MAC),
        role: ServerRole::AddressServer,
        message: DhcpMessage::OFFER,
        offered_address: Some([192, 168, 1, 150].into()),
        next_server: None,
        boot_file: None,
        pxe: false,
        boot_server_type: None,
        provenance: portapxe_engine::detect::Provenance::Unchecked,
    };
    let summary = if expected {
        format!("the network's DHCP server: {}", server.describe())
    } else {
        format!("another DHCP server is on this network: {}", server.describe())
    };
    ConflictEntry { server, summary, expected }
}

/// Two machines booting in proxy mode beside the network's DHCP server, with their log.
fn serving() -> (Config, UiSnapshot) {
    let config = serving_config();
    let mut registry = ClientRegistry::default();
    let uefi = MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
    let bios = MacAddr([0x00, 0x1b, 0x21, 0x99, 0x88, 0x77]);
    let (a, b) = (Ipv4Addr::new(192, 168, 1, 151), Ipv4Addr::new(192, 168, 1, 152));
    let mut log = Vec::new();
    for (at, event) in [
        (T0, proxy_offer(uefi, ClientArch::UefiX64)),
        (T0 + 400, network_ack(uefi, a)),
        (T0 + 600, transfer(a, "ipxe.efi", TransferPhase::Started { size: Some(1_030_000) })),
        (T0 + 1_400, transfer(a, "ipxe.efi", TransferPhase::Finished { bytes: 1_030_000 })),
        (T0 + 5_000, transfer(a, "debian/linux", TransferPhase::Started { size: Some(9_800_000) })),
        (T0 + 7_000, transfer(a, "debian/linux", TransferPhase::Progress { bytes: 6_100_000, size: Some(9_800_000) })),
        (T0 + 8_000, proxy_offer(bios, ClientArch::Bios)),
        (T0 + 8_500, network_ack(bios, b)),
    ] {
        registry.apply(&event, at);
        log.push((at, event));
    }
    let mut snapshot = UiSnapshot {
        state: RunState::Running,
        status: Some(EngineStatus {
            interface: "eth0".into(),
            server_ip: SERVER,
            mode: Mode::Proxy,
            pool: None,
            dhcp: Some(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 67)),
            boot_server: Some(SocketAddr::new(SERVER.into(), 4011)),
            tftp: Some(SocketAddr::new(SERVER.into(), 69)),
            http: Some(SocketAddr::new(SERVER.into(), 80)),
            ipxe_script: "boot.ipxe".into(),
            lease_file: None,
            capture: portapxe_engine::CaptureStatus::Running,
            signed_chain: portapxe_engine::SignedChain::Used,
        }),
        clients: registry.snapshot(T0 + 9_000),
        conflicts: vec![network_dhcp_server(true)],
        interfaces: Some(interfaces()),
        validation: checked(&config),
        now_ms: T0 + 9_000,
        ..UiSnapshot::default()
    };
    for (at, event) in log {
        snapshot.record(&event, at);
    }
    (config, snapshot)
}

fn picture(name: &str, theme: egui::Theme, config: Config, snapshot: UiSnapshot, view: impl FnOnce(&mut PortaApp)) {
    let mut harness = Harness::builder()
        .with_size(SIZE)
        .with_theme(theme)
        .build_eframe(move |cc| PortaApp::new(&cc.egui_ctx, EngineHandle::detached(snapshot), config));
    view(harness.state_mut());
    harness.run_steps(3);
    harness.snapshot(name);
}

#[test]
fn first_launch() {
    // No card chosen yet; the boot folder is one that exists everywhere, so the picture
    // does not hang on how an unset folder is worded.
    let config = Config { root: "/".into(), ..Config::default() };
    let snapshot = UiSnapshot {
        interfaces: Some(interfaces()),
        validation: checked(&config),
        now_ms: T0,
        ..UiSnapshot::default()
    };
    picture("first_launch", egui::Theme::Light, config, snapshot, |_| {});
}

#[test]
fn serving_with_clients() {
    let (config, snapshot) = serving();
    picture("serving_with_clients", egui::Theme::Light, config, snapshot, |_| {});
}

#[test]
fn serving_with_clients_dark() {
    let (config, snapshot) = serving();
    picture("serving_with_clients_dark", egui::Theme::Dark, config, snapshot, |_| {});
}

#[test]
fn conflict_banner_red() {
    let config = Config { interface: "eth0".into(), mode: Mode::Dhcp, root: "/".into(), ..Config::default() };
    let rogue = network_dhcp_server(false);
    let mut snapshot = UiSnapshot {
        interfaces: Some(interfaces()),
        validation: checked(&config),
        scan: ScanState::Done { interface: "eth0".into(), servers: vec![rogue.server.clone()] },
        conflicts: vec![rogue],
        now_ms: T0,
        ..UiSnapshot::default()
    };
    snapshot.push_log(LogLine {
        at_ms: T0,
        level: Level::Warn,
        mac: None,
        ip: None,
        text: format!("CONFLICT: {}", snapshot.conflicts[0].summary),
    });
    picture("conflict_banner_red", egui::Theme::Light, config, snapshot, |_| {});
}

#[test]
fn settings_with_a_validation_error() {
    let mut config = Config { interface: "eth0".into(), mode: Mode::Dhcp, root: "/".into(), ..Config::default() };
    config.dhcp.lease_time_secs = 5;
    let snapshot = UiSnapshot {
        interfaces: Some(interfaces()),
        validation: checked(&config),
        now_ms: T0,
        ..UiSnapshot::default()
    };
    let typed = "192.168.1.100-ten";
    let error = typed.parse::<PoolRange>().expect_err("not a pool").to_string();
    picture("settings_validation_error", egui::Theme::Light, config, snapshot, move |app| {
        app.view.tab = Tab::Settings;
        app.view.settings.texts.pool = typed.into();
        app.view.settings.texts.pool_error = Some(error);
    });
}

#[test]
fn safety_gate_dialog() {
    let config = Config { interface: "eth0".into(), mode: Mode::Dhcp, root: "/".into(), ..Config::default() };
    let rogue = network_dhcp_server(false);
    let snapshot = UiSnapshot {
        interfaces: Some(interfaces()),
        validation: checked(&config),
        last_error: Some(StartFailure {
            message: format!(
                "another DHCP server already answers on eth0: {}. Starting a second one would break this network.",
                rogue.server.describe()
            ),
            service: FailedService::Dhcp,
            foreign_servers: vec![rogue.server.clone()],
        }),
        conflicts: vec![rogue],
        now_ms: T0,
        ..UiSnapshot::default()
    };
    picture("safety_gate", egui::Theme::Light, config, snapshot, |_| {});
}
