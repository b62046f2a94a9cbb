//! The desktop window driven through egui_kittest: the real app state, the real
//! engine thread, a real engine serving boot files on loopback. Only boot-files-only
//! mode (no DHCP) is ever started here: DHCP belongs in the lab's network namespaces.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use portapxe::gui::engine_handle::{FailedService, RunState, StartFailure, UiSnapshot};
use portapxe::gui::{EngineHandle, PortaApp};
use portapxe_engine::clients::ClientRegistry;
use portapxe_engine::config::{Config, ConfigStore, Mode};
use portapxe_engine::detect::{ServerRole, ServerSighting};
use portapxe_engine::events::{ConflictEvent, DhcpEvent, EngineEvent, MacAddr, Protocol, TransferEvent, TransferPhase};

const CLIENT: MacAddr = MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

/// A boot folder with a kernel and an initrd in it.
fn boot_folder() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("debian")).unwrap();
    std::fs::write(root.path().join("debian/vmlinuz"), b"kernel").unwrap();
    std::fs::write(root.path().join("debian/initrd.gz"), b"initrd").unwrap();
    root
}

/// Boot files only, on loopback, on ports the OS picks: nothing DHCP-ish.
fn loopback_config(root: &Path) -> Config {
    let mut config = Config { interface: "lo".into(), mode: Mode::Off, root: root.to_path_buf(), ..Config::default() };
    config.tftp.port = 0;
    config.http.port = 0;
    // The conflict watcher listens on dhcp.port + 1: keep it off the real client port.
    config.dhcp.port = 16767;
    config.state_dir = Some(root.join("state"));
    config
}

fn harness(config: Config, settings: &Path) -> Harness<'static, PortaApp> {
    let store = ConfigStore::at(settings);
    Harness::builder().with_size([1280.0, 860.0]).build_eframe(move |cc| {
        let handle = EngineHandle::spawn(Some(store)).expect("engine thread");
        PortaApp::new(&cc.egui_ctx, handle, config)
    })
}

/// Steps the window until `done` holds (the engine thread works on its own time).
fn wait_until(harness: &mut Harness<'_, PortaApp>, what: &str, done: impl Fn(&PortaApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        harness.step();
        if done(harness.state()) {
            harness.step();
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn validated(app: &PortaApp) -> bool {
    app.handle().snapshot().validation.as_ref().is_some_and(|v| &v.config == app.config())
}

fn emit(app: &PortaApp, event: EngineEvent) {
    app.handle().events().emit(event);
}

fn dhcp(received: &str, answered: &str, address: Option<Ipv4Addr>) -> EngineEvent {
    EngineEvent::Dhcp(DhcpEvent {
        mac: CLIENT,
        received: received.into(),
        answered: Some(answered.into()),
        address,
        arch: Some("UEFI x64".into()),
        vendor_class: Some("PXEClient:Arch:00007:UNDI:003010".into()),
        is_ipxe: false,
        boot: Some("ipxe.efi".into()),
        note: String::new(),
    })
}

fn transfer(client: Ipv4Addr, phase: TransferPhase) -> EngineEvent {
    EngineEvent::Transfer(TransferEvent {
        protocol: Protocol::Tftp,
        client: SocketAddr::new(client.into(), 2070),
        file: "ipxe.efi".into(),
        phase,
    })
}

fn sighting(server: [u8; 4]) -> ServerSighting {
    ServerSighting {
        server_id: server.into(),
        source: server.into(),
        mac: None,
        role: ServerRole::AddressServer,
        message: "OFFER".into(),
        offered_address: Some([192, 168, 77, 150].into()),
        next_server: None,
        boot_file: None,
        pxe: false,
        boot_server_type: None,
    }
}

#[test]
fn pick_loopback_and_add_a_kernel_with_its_initrd() {
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let config = Config { root: root.path().to_path_buf(), ..Config::default() };
    let mut harness = harness(config, settings.path());
    wait_until(&mut harness, "the interface list", |app| app.handle().snapshot().interfaces.is_some());

    harness.get_by_label("Network card").click();
    harness.run_steps(2);
    harness.get_by_label_contains("lo · 127.0.0.1/8").click();
    harness.run_steps(2);
    assert_eq!(harness.state().config().interface, "lo");

    // What the file dialog would hand back (rfd has no dialog without a desktop).
    let files = [root.path().join("debian/vmlinuz"), root.path().join("debian/initrd.gz")];
    harness.state_mut().add_files(&files);
    harness.run_steps(2);
    harness.get_by_label_contains("Added: kernel debian/vmlinuz, initrd debian/initrd.gz");
    let preview = portapxe::gui::panels::boot::preview(harness.state().config(), &harness.state().handle().snapshot());
    assert!(preview.contains("kernel http://127.0.0.1/debian/vmlinuz initrd=initrd.gz"), "{preview}");
    assert!(preview.contains("initrd --name initrd.gz http://127.0.0.1/debian/initrd.gz"), "{preview}");

    // Rename through the entry's name field.
    harness.get_by_label("Name").focus();
    harness.run_steps(1);
    harness.get_by_label("Name").type_text(" stable");
    harness.run_steps(2);
    assert_eq!(harness.state().config().boot.entries[0].name(), "Linux (debian) stable");
    // Every input on the page has a name a screen reader (and a test) can find it by.
    harness.check_accessibility();
}

#[test]
fn serve_boot_files_on_loopback_and_watch_a_client_boot() {
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let config = loopback_config(root.path());
    let mut harness = harness(config.clone(), settings.path());
    wait_until(&mut harness, "the settings check", validated);

    harness.get_by_label("Start").click();
    wait_until(&mut harness, "the engine to run", |app| app.handle().snapshot().state == RunState::Running);
    {
        let app = harness.state();
        let snapshot = app.handle().snapshot();
        assert_eq!(PortaApp::title_for(&snapshot, app.config()), "PortaPXE — serving on lo");
        let status = snapshot.status.as_ref().expect("status");
        assert!(status.tftp.is_some_and(|a| a.port() != 0) && status.http.is_some(), "{status:?}");
        assert!(status.dhcp.is_none(), "no DHCP in boot-files-only mode: {status:?}");
    }
    harness.get_by_label_contains("TFTP :");
    harness.get_by_label("Stop");
    // Start saved the settings: the next launch gets them back.
    assert_eq!(ConfigStore::at(settings.path()).load().unwrap(), config);

    // A client boots: the engine's registry (inside the running engine) hears it.
    let app = harness.state();
    let address = Ipv4Addr::new(10, 99, 0, 7);
    emit(app, dhcp("DISCOVER", "OFFER", Some(address)));
    emit(app, dhcp("REQUEST", "ACK", Some(address)));
    emit(app, transfer(address, TransferPhase::Started { size: Some(1_000_000) }));
    emit(app, transfer(address, TransferPhase::Progress { bytes: 400_000, size: Some(1_000_000) }));
    wait_until(&mut harness, "the client row", |app| {
        app.handle().snapshot().clients.iter().any(|c| c.transfer.as_ref().is_some_and(|t| t.bytes == 400_000))
    });
    assert!(harness.query_all_by_label_contains("52:54:00:ab:cd:ef").count() >= 2, "a row and log lines");
    harness.get_by_label("loading boot file");
    harness.get_by_label_contains("ipxe.efi 400.0 KB");

    harness.get_by_label("10.99.0.7").click();
    harness.run_steps(2);
    harness.get_by_label_contains("Diagnosis: nothing wrong seen");
    harness.get_by_label_contains("TFTP ipxe.efi started");
    harness.get_by_label("Copy row").click();
    harness.run_steps(1);
    let copied = harness.output().platform_output.commands.iter().any(|command| {
        matches!(command, egui::OutputCommand::CopyText(text) if text.starts_with("52:54:00:ab:cd:ef") && text.contains("10.99.0.7"))
    });
    assert!(copied, "{:?}", harness.output().platform_output.commands);

    // The log names the client and can be narrowed to it.
    harness.get_by_label_contains("DHCP REQUEST from 52:54:00:ab:cd:ef");

    harness.get_by_label("Stop").click();
    wait_until(&mut harness, "the engine to stop", |app| app.handle().snapshot().state == RunState::Stopped);
    harness.get_by_label("Start");
    // The last boots stay readable after a stop.
    harness.get_by_label("10.99.0.7");
}

#[test]
fn another_dhcp_server_turns_the_banner_red_and_names_it() {
    let settings = tempfile::tempdir().unwrap();
    let mut harness = harness(Config::default(), settings.path());
    harness.get_by_label("No other DHCP or PXE server seen.");
    let server = sighting([192, 168, 77, 1]);
    let summary = format!("another DHCP server is on this network: {}", server.describe());
    emit(harness.state(), EngineEvent::Conflict(ConflictEvent { summary: summary.clone(), server, expected: false }));
    wait_until(&mut harness, "the conflict", |app| !app.handle().snapshot().conflicts.is_empty());
    harness.get_by_label("Another server is on this network");
    assert!(summary.contains("DHCP server 192.168.77.1 offers 192.168.77.150"), "{summary}");
    harness.get_by_label(&summary);
    // The log says it too.
    harness.get_by_label_contains("CONFLICT: another DHCP server");
}

#[test]
fn settings_show_the_engines_validation_messages() {
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.mode = Mode::Dhcp; // only validated here, never started
    config.dhcp.lease_time_secs = 5;
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Settings").click();
    wait_until(&mut harness, "the settings check", validated);
    // Under the field and in the list of what to fix before starting.
    harness.get_by_label("a lease must last at least 60 seconds");
    harness.get_by_label("dhcp.lease_time_secs: a lease must last at least 60 seconds");
    harness.check_accessibility();
    assert!(harness.get_by_label("Start").accesskit_node().is_disabled(), "Start must wait for a valid config");

    // Text that does not parse says why, in the engine's words, and leaves the config alone.
    harness.get_by_label("Address pool").focus();
    harness.run_steps(1);
    harness.get_by_label("Address pool").type_text("10.0.0.10-ten");
    harness.run_steps(2);
    harness.get_by_label("`ten` in pool `10.0.0.10-ten` is not an IPv4 address");
    assert_eq!(harness.state().config().dhcp.pool, None);

    harness.state_mut().config_mut().dhcp.lease_time_secs = 600;
    wait_until(&mut harness, "the new check", validated);
    assert_eq!(harness.query_all_by_label_contains("a lease must last").count(), 0);
    assert!(!harness.get_by_label("Start").accesskit_node().is_disabled());
}

#[test]
fn safety_gate_offers_proxy_mode_and_starts_nothing() {
    let settings = tempfile::tempdir().unwrap();
    let mut harness = harness(Config { interface: "lo".into(), ..Config::default() }, settings.path());
    let servers = vec![sighting([192, 168, 77, 1])];
    harness.state().handle().snapshot().last_error = Some(StartFailure {
        message: "another DHCP server already answers on lo: …".into(),
        service: FailedService::Dhcp,
        foreign_servers: servers,
    });
    harness.run_steps(2);
    harness.get_by_label("Another DHCP server is on this network");
    harness.get_by_label("Use proxy mode").click();
    harness.run_steps(2);
    assert_eq!(harness.state().config().mode, Mode::Proxy);
    assert!(harness.query_by_label("Use proxy mode").is_none());
    assert_eq!(harness.state().handle().snapshot().state, RunState::Stopped);
}

/// A fixed state drawn with a fixed clock: the clients table with a transfer in
/// progress, as a picture (rendered with wgpu on lavapipe where there is no GPU).
#[test]
fn clients_table_snapshot() {
    let mut registry = ClientRegistry::default();
    let address = Ipv4Addr::new(10, 99, 0, 7);
    let t0 = 1_700_000_000_000;
    for (at, event) in [
        (t0, dhcp("DISCOVER", "OFFER", Some(address))),
        (t0 + 100, dhcp("REQUEST", "ACK", Some(address))),
        (t0 + 200, transfer(address, TransferPhase::Started { size: Some(1_000_000) })),
        (t0 + 1200, transfer(address, TransferPhase::Progress { bytes: 600_000, size: Some(1_000_000) })),
    ] {
        registry.apply(&event, at);
    }
    let snapshot = UiSnapshot {
        clients: registry.snapshot(t0 + 3_000),
        interfaces: Some(Vec::new()),
        now_ms: t0 + 3_000,
        ..UiSnapshot::default()
    };
    let mut harness = Harness::builder()
        .with_size([1100.0, 520.0])
        .build_eframe(move |cc| PortaApp::new(&cc.egui_ctx, EngineHandle::detached(snapshot), Config::default()));
    harness.run_steps(3);
    harness.snapshot("clients_table");
}
