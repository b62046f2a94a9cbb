//! The desktop window driven through egui_kittest: the real app state, the real
//! engine thread, a real engine serving boot files on loopback. Only boot-files-only
//! mode (no DHCP) is ever started here: DHCP belongs in the lab's network namespaces.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable, by};
use portapxe::gui::app::ExportOutcome;
use portapxe::gui::dialogs::DialogSupport;
use portapxe::gui::engine_handle::{CaptureState, FailedService, RunState, StartFailure, UiSnapshot, Validation};
use portapxe::gui::imaging_state::CaptureProgress;
use portapxe::gui::{EngineHandle, PortaApp};
use portapxe_engine::clients::ClientRegistry;
use portapxe_engine::config::{BootEntry, Config, ConfigError, ConfigStore, IsoLoader, Mode};
use portapxe_engine::detect::{ServerRole, ServerSighting};
use portapxe_engine::events::{
    ConflictEvent, DhcpEvent, DhcpMessage, DhcpRole, EngineEvent, MacAddr, NextBoot, Protocol, TransferEvent,
    TransferPhase,
};
use portapxe_engine::net::{InterfaceInfo, InterfaceKind};
use portapxe_engine::pxe::ClientArch;
use portapxe_engine::rules::{ClientRule, MacPattern};

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

/// The window over a real engine thread; settings in `settings`, capture and
/// diagnostics in `settings/data` (never the real home folder).
/// The window over a real engine thread, once the engine's first answers (the
/// interface list, the check of the config) are on screen. Both change the layout:
/// a click aimed from an earlier frame would land beside its button (the top bar
/// grows when "before you can start" appears), which made tests flaky under load.
fn harness(config: Config, settings: &Path) -> Harness<'static, PortaApp> {
    let store = ConfigStore::at(settings);
    let data = settings.join("data");
    let mut harness = Harness::builder().with_size([1280.0, 860.0]).build_eframe(move |cc| {
        let handle = EngineHandle::spawn_in(Some(store), Some(data)).expect("engine thread");
        PortaApp::new(&cc.egui_ctx, handle, config)
    });
    wait_until(&mut harness, "the engine's first answers", |app| {
        app.handle().snapshot().interfaces.is_some() && validated(app)
    });
    harness
}

/// The window over a fixed snapshot (no engine thread): what a frame draws from it.
fn detached(config: Config, snapshot: UiSnapshot, size: [f32; 2]) -> Harness<'static, PortaApp> {
    Harness::builder()
        .with_size(size)
        .build_eframe(move |cc| PortaApp::new(&cc.egui_ctx, EngineHandle::detached(snapshot), config))
}

/// A stopped window whose config the engine found valid: Start is enabled.
fn ready_to_start() -> (Config, UiSnapshot) {
    let config = Config { interface: "lo".into(), mode: Mode::Off, ..Config::default() };
    let snapshot = UiSnapshot {
        interfaces: Some(vec![loopback()]),
        validation: Some(Validation::passed(config.clone())),
        ..UiSnapshot::default()
    };
    (config, snapshot)
}

fn loopback() -> InterfaceInfo {
    InterfaceInfo {
        name: "lo".into(),
        friendly_name: None,
        index: 1,
        mac: None,
        ipv4: vec![(Ipv4Addr::LOCALHOST, 8)],
        up: true,
        kind: InterfaceKind::Loopback,
    }
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

fn dhcp(received: DhcpMessage, answered: DhcpMessage, address: Option<Ipv4Addr>) -> EngineEvent {
    EngineEvent::Dhcp(DhcpEvent {
        mac: CLIENT,
        role: DhcpRole::Server,
        received,
        answered: Some(answered),
        address,
        arch: Some(ClientArch::UefiX64),
        vendor_class: Some("PXEClient:Arch:00007:UNDI:003010".into()),
        is_ipxe: false,
        boot: Some("ipxe.efi".into()),
        reason: None,
        rule: None,
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
        message: DhcpMessage::OFFER,
        offered_address: Some([192, 168, 77, 150].into()),
        next_server: None,
        boot_file: None,
        pxe: false,
        boot_server_type: None,
        provenance: portapxe_engine::detect::Provenance::Unchecked,
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

    // Rename through the entry's name field, once the engine's check of the new entry
    // has arrived (it adds lines to the page, which must not land mid-typing).
    wait_until(&mut harness, "the settings check", validated);
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
    emit(app, dhcp(DhcpMessage::DISCOVER, DhcpMessage::OFFER, Some(address)));
    emit(app, dhcp(DhcpMessage::REQUEST, DhcpMessage::ACK, Some(address)));
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

/// "Next network boot" on a selected machine: picking an entry plans it once; the menu
/// (asked per MAC over our HTTP, on loopback) gives that entry alone the next time, and
/// the plan is used up.
#[test]
fn a_machine_is_sent_to_one_entry_once_from_its_row() {
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.boot.entries = vec![
        BootEntry::Linux {
            name: "Debian".into(),
            kernel: "debian/vmlinuz".into(),
            initrd: vec!["debian/initrd.gz".into()],
            cmdline: String::new(),
        },
        BootEntry::LocalDisk { name: "Disk".into() },
    ];
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Start").click();
    wait_until(&mut harness, "the engine to run", |app| app.handle().snapshot().state == RunState::Running);
    let http = harness.state().handle().snapshot().status.as_ref().and_then(|s| s.http).expect("HTTP serving");
    let address = Ipv4Addr::new(10, 99, 0, 8);
    emit(harness.state(), dhcp(DhcpMessage::DISCOVER, DhcpMessage::OFFER, Some(address)));
    emit(harness.state(), dhcp(DhcpMessage::REQUEST, DhcpMessage::ACK, Some(address)));
    wait_until(&mut harness, "the client row", |app| {
        app.handle().snapshot().clients.iter().any(|c| c.address == Some(address))
    });
    harness.get_by_label("Clients").click();
    harness.run_steps(2);
    harness.get_by_label("10.99.0.8").click();
    harness.run_steps(2);
    harness.get_by_label("Next network boot").click();
    harness.run_steps(2);
    harness.get_by_label("its menu, as usual"); // the choice as it is
    harness.get_by_label("boot its own disk once");
    harness.get_by_label("boot \"Debian\" once").click();
    wait_until(&mut harness, "the plan", |app| !app.handle().snapshot().next_boots.is_empty());
    assert_eq!(harness.state().handle().snapshot().next_boots, vec![(CLIENT, NextBoot::Entry("Debian".into()))]);

    let path = "/portapxe/next/52-54-00-ab-cd-ef.ipxe";
    let first = http_text(http, path);
    assert!(first.contains("kernel http://") && first.contains("debian/vmlinuz"), "the entry alone:\n{first}");
    let again = http_text(http, path);
    assert!(again.contains("debian/vmlinuz"), "asked again at once (a retry): the same answer:\n{again}");
    wait_until(&mut harness, "the plan used up", |app| app.handle().snapshot().next_boots.is_empty());
    harness.get_by_label_contains("network-booted and was told to boot \"Debian\" once, as planned");
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
    harness.get_by_label("Lease time: a lease must last at least 60 seconds");
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
    // Full DHCP on loopback is refused too: no machine could get an address there.
    harness.get_by_label_contains("Network card: lo is the loopback interface");
    assert!(harness.get_by_label("Start").accesskit_node().is_disabled());
    harness.state_mut().config_mut().mode = Mode::Proxy;
    wait_until(&mut harness, "the check of proxy mode", validated);
    assert_eq!(harness.query_all_by_label_contains("loopback interface").count(), 0);
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
    let t0 = 1_700_000_000_000;
    let registry = registry_with_one_client(t0);
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

fn focused_label(harness: &Harness<'_, PortaApp>) -> Option<String> {
    harness
        .query(by().predicate(|node| node.is_focused()))
        .map(|node| node.accesskit_node().label().unwrap_or_default())
}

/// Replaces the focused text field's content with `text`, as a person selecting all and typing would.
fn retype(harness: &mut Harness<'_, PortaApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(1);
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run_steps(1);
    harness.get_by_label(label).type_text(text);
    harness.run_steps(2);
}

#[test]
fn export_diagnostics_writes_one_zip_with_config_log_status_and_capture() {
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let config = loopback_config(root.path());
    let mut harness = harness(config.clone(), settings.path());
    // No file dialog here: the export goes to the data folder and says so.
    harness.state_mut().set_dialog_support(DialogSupport::Missing("no file dialog in this test".into()));
    wait_until(&mut harness, "the settings check", validated);
    harness.get_by_label("Start").click();
    wait_until(&mut harness, "the engine to run", |app| app.handle().snapshot().state == RunState::Running);

    // One datagram to the PXE port on loopback (nothing listens, nothing is broadcast):
    // the capture, when it runs, records it.
    let capture = harness.state().handle().snapshot().capture.clone();
    let marker = b"portapxe diagnostics marker";
    if let CaptureState::Recording(file) = &capture {
        assert!(file.starts_with(settings.path().join("data")), "{file:?}");
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read(file).unwrap_or_default().windows(marker.len()).any(|w| w == marker) {
            assert!(Instant::now() < deadline, "the capture never recorded the datagram");
            socket.send_to(marker, "127.0.0.1:4011").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let address = Ipv4Addr::new(10, 99, 0, 8);
    emit(harness.state(), dhcp(DhcpMessage::DISCOVER, DhcpMessage::OFFER, Some(address)));
    emit(harness.state(), dhcp(DhcpMessage::REQUEST, DhcpMessage::ACK, Some(address)));
    wait_until(&mut harness, "the client row", |app| {
        app.handle().snapshot().clients.iter().any(|c| c.address == Some(address))
    });

    harness.get_by_label("Export diagnostics…").click();
    harness.step();
    assert!(harness.state().view.log.export.is_some(), "the export runs as a task, not in the frame");
    wait_until(&mut harness, "the export", |app| app.view.log.exported.is_some());
    let Some(ExportOutcome::Written { path, note }) = harness.state().view.log.exported.clone() else {
        panic!("export failed: {:?}", harness.state().view.log.exported);
    };
    assert!(path.starts_with(settings.path().join("data")), "{path:?}");
    assert!(note.as_deref().is_some_and(|n| n.contains("no file dialog in this test")), "{note:?}");
    harness.get_by_label(&format!("Diagnostics written to {}", path.display()));
    harness.get_by_label_contains("written to the data folder instead");

    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let read = |zip: &mut zip::ZipArchive<std::fs::File>, name: &str| {
        let mut bytes = Vec::new();
        zip.by_name(name).unwrap_or_else(|err| panic!("{name}: {err}")).read_to_end(&mut bytes).unwrap();
        bytes
    };
    let saved: Config = toml::from_str(&String::from_utf8(read(&mut zip, "config.toml")).unwrap()).unwrap();
    assert_eq!(saved, config);
    let log = String::from_utf8(read(&mut zip, "log.txt")).unwrap();
    assert!(log.contains("engine: ready on lo (127.0.0.1)"), "{log}");
    assert!(log.contains("[52:54:00:ab:cd:ef] DHCP DISCOVER"), "{log}");
    let status: serde_json::Value = serde_json::from_slice(&read(&mut zip, "status.json")).unwrap();
    assert_eq!(status["state"], "running");
    assert_eq!(status["engine"]["interface"], "lo");
    assert_eq!(status["clients"][0]["mac"], "52:54:00:ab:cd:ef");
    assert_eq!(status["clients"][0]["address"], "10.99.0.8");
    match capture {
        CaptureState::Recording(_) => {
            let pcapng = read(&mut zip, "capture.pcapng");
            assert_eq!(&pcapng[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "a pcapng section header");
            assert!(pcapng.windows(marker.len()).any(|w| w == marker), "the captured datagram is in the zip");
            assert!(zip.by_name("capture.txt").is_err());
        }
        CaptureState::Unavailable(why) => {
            let text = String::from_utf8(read(&mut zip, "capture.txt")).unwrap();
            assert!(text.contains(&why), "{text}");
        }
        CaptureState::NotStarted => panic!("the engine ran, so capture was tried"),
    }
}

#[test]
fn a_client_rule_is_edited_in_place_and_checked_by_the_engine() {
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.boot.entries.push(BootEntry::LocalDisk { name: "Local disk".into() });
    config.rules.clients.push(ClientRule {
        mac: Some(CLIENT.to_string().parse().unwrap()),
        ignore: true,
        ..Default::default()
    });
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Settings").click();
    wait_until(&mut harness, "the settings check", validated);
    harness.get_by_label("Edit").click();
    harness.run_steps(2);

    // A MAC that does not parse: the engine's words, and the rule keeps its old MAC.
    retype(&mut harness, "Rule MAC", "zz:00");
    harness.get_by_label("`zz:00` is not a MAC address or prefix (e.g. 52:54:00:12:34:56 or the OUI 52:54:00)");
    assert_eq!(harness.state().config().rules.clients[0].mac, Some(CLIENT.to_string().parse().unwrap()));
    retype(&mut harness, "Rule MAC", "52:54:00");
    let oui: MacPattern = "52:54:00".parse().unwrap();
    assert_eq!(harness.state().config().rules.clients[0].mac, Some(oui.clone()));

    // No longer ignoring, and nothing else to do: the engine says so under the rule.
    harness.get_by_label("Ignore matching clients (no answer at all)").click();
    wait_until(&mut harness, "the new check", validated);
    harness.get_by_label("says nothing to do: set `ignore = true`, `boot_file` or `entry`");
    assert!(harness.get_by_label("Start").accesskit_node().is_disabled());

    retype(&mut harness, "Rule menu entry", "Rescue");
    wait_until(&mut harness, "the new check", validated);
    harness.get_by_label("no boot entry is named `Rescue` (entries: Local disk)");

    retype(&mut harness, "Rule menu entry", "Local disk");
    wait_until(&mut harness, "the new check", validated);
    assert_eq!(harness.query_all_by_label_contains("no boot entry").count(), 0);
    assert!(!harness.get_by_label("Start").accesskit_node().is_disabled(), "the edited rule is valid");
    let expected = ClientRule { mac: Some(oui), entry: Some("Local disk".into()), ..Default::default() };
    assert_eq!(harness.state().config().rules.clients, vec![expected]);
    harness.get_by_label_contains("1. ");
    harness.get_by_label("Done").click();
    harness.run_steps(2);
    assert!(harness.query_by_label("Rule MAC").is_none(), "the rule's fields close");
    harness.check_accessibility();
}

#[test]
fn without_a_file_dialog_the_window_says_why_and_takes_typed_paths() {
    let root = boot_folder();
    let other = tempfile::tempdir().unwrap();
    let settings = tempfile::tempdir().unwrap();
    let config = Config { interface: "lo".into(), mode: Mode::Off, root: root.path().into(), ..Config::default() };
    let mut harness = harness(config, settings.path());
    harness.state_mut().set_dialog_support(DialogSupport::Missing("no desktop portal and no zenity here".into()));
    harness.get_by_label("Boot images").click();
    harness.run_steps(2);

    harness.get_by_label("Add boot images…").click();
    wait_until(&mut harness, "the dialog's answer", |app| app.view.boot.dialog_problem.is_some());
    harness.get_by_label_contains("no desktop portal and no zenity here");
    harness.get_by_label_contains("drop the files on this window, or type a file's path below and press Add");

    harness.get_by_label("File path").focus();
    harness.run_steps(1);
    harness.get_by_label("File path").type_text("debian/vmlinuz");
    harness.run_steps(1);
    harness.get_by_label("Add").click();
    harness.run_steps(2);
    harness.get_by_label_contains("Added: kernel debian/vmlinuz");
    assert_eq!(harness.state().config().boot.entries.len(), 1);

    harness.get_by_label("Choose…").click();
    wait_until(&mut harness, "the dialog's answer", |app| {
        app.view.boot.dialog_problem.as_deref().is_some_and(|p| p.contains("Boot folder field"))
    });
    retype(&mut harness, "Boot folder", &other.path().display().to_string());
    assert_eq!(harness.state().config().root, other.path());
    harness.check_accessibility();
}

#[test]
fn tab_walks_the_top_bar_and_enter_or_space_press_start() {
    let (config, snapshot) = ready_to_start();
    let mut harness = detached(config, snapshot, [1280.0, 860.0]);
    harness.run_steps(2);
    let mut order = Vec::new();
    for _ in 0..8 {
        harness.key_press(egui::Key::Tab);
        harness.run_steps(1);
        let label = focused_label(&harness).unwrap_or_default();
        order.push(label.clone());
        if label == "Start" {
            break;
        }
    }
    assert_eq!(order, ["Network card", "Refresh", "Mode", "Start"]);
    harness.key_press(egui::Key::Enter);
    harness.run_steps(1);
    assert_eq!(harness.state().handle().snapshot().state, RunState::Starting, "Enter pressed Start");

    harness.state().handle().snapshot().state = RunState::Stopped;
    harness.run_steps(2);
    harness.get_by_label("Start").focus();
    harness.run_steps(1);
    assert_eq!(focused_label(&harness).as_deref(), Some("Start"));
    harness.key_press(egui::Key::Space);
    harness.run_steps(1);
    assert_eq!(harness.state().handle().snapshot().state, RunState::Starting, "Space pressed Start");
}

#[test]
fn the_window_still_lays_out_at_text_scale_1_5_and_2() {
    for zoom in [1.5, 2.0] {
        let (config, mut snapshot) = ready_to_start();
        let t0 = 1_700_000_000_000;
        snapshot.clients = registry_with_one_client(t0).snapshot(t0 + 3_000);
        snapshot.now_ms = t0 + 3_000;
        let size = egui::vec2(1100.0, 720.0);
        let mut harness = detached(config, snapshot, size.into());
        harness.ctx.set_zoom_factor(zoom);
        harness.run_steps(3);
        let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, size / zoom);
        for label in
            ["Network card", "Refresh", "Mode", "Start", "Scan now", "Clients", "Settings", "Export diagnostics…"]
        {
            let rect = harness.get_by_label(label).rect();
            assert!(screen.contains_rect(rect), "at zoom {zoom}, {label} at {rect:?} is outside {screen:?}");
        }
        harness.get_by_label("10.99.0.7");
        harness.get_by_label("Start").click();
        harness.run_steps(1);
        assert_eq!(harness.state().handle().snapshot().state, RunState::Starting, "zoom {zoom}: Start clicks");
        harness.get_by_label("Settings").click();
        harness.run_steps(2);
        harness.get_by_label("Address pool");
        harness.get_by_label("Boot images").click();
        harness.run_steps(2);
        harness.get_by_label("Boot folder");
    }
}

#[test]
fn light_and_dark_follow_the_system() {
    let (config, snapshot) = ready_to_start();
    // What the window installs at creation (kittest then fixes a theme of its own; undo that).
    let ctx = egui::Context::default();
    ctx.set_theme(egui::Theme::Light);
    portapxe::gui::style::install(&ctx);
    assert_eq!(ctx.options(|o| o.theme_preference), egui::ThemePreference::System);
    let mut harness = detached(config, snapshot, [800.0, 600.0]);
    harness.ctx.set_theme(egui::ThemePreference::System);
    for (system, dark) in [(egui::Theme::Light, false), (egui::Theme::Dark, true), (egui::Theme::Light, false)] {
        harness.input_mut().system_theme = Some(system);
        harness.run_steps(2);
        assert_eq!(harness.ctx.global_style().visuals.dark_mode, dark, "the system says {system:?}");
    }
}

#[test]
fn windows_without_elevation_says_how_to_run_as_administrator() {
    let (config, mut snapshot) = ready_to_start();
    snapshot.elevated = Some(false);
    let mut harness = detached(config.clone(), snapshot, [1100.0, 720.0]);
    harness.run_steps(2);
    harness.get_by_label_contains("right-click it and choose \"Run as administrator\"");
    let (_, mut elevated) = ready_to_start();
    elevated.elevated = Some(true);
    let mut harness = detached(config, elevated, [1100.0, 720.0]);
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Run as administrator").is_none());
}

/// The Boot images tab says which loader x64 UEFI machines get and marks an entry
/// whose kernel cannot boot with Secure Boot on, from the engine's own reading of it.
#[test]
fn boot_images_mark_what_cannot_boot_with_secure_boot_on() {
    let root = boot_folder(); // its "kernel" is a few bytes, not an EFI program
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.boot.entries.push(BootEntry::Linux {
        name: "Debian".into(),
        kernel: "debian/vmlinuz".into(),
        initrd: vec!["debian/initrd.gz".into()],
        cmdline: String::new(),
    });
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Boot images").click();
    wait_until(&mut harness, "the settings check", validated);
    harness.get_by_label("x64 UEFI machines get"); // the choice
    harness.get_by_label_contains("Why the signed chain");
    harness.get_by_label("needs Secure Boot off: the kernel is not an EFI program");
    harness.get_by_label_contains("the signed loaders (shimx64.efi, grubx64.efi) are not in the boot folder");

    // With the signed loaders in the boot folder the chain is used.
    std::fs::write(root.path().join("shimx64.efi"), b"shim").unwrap();
    std::fs::write(root.path().join("grubx64.efi"), b"grub").unwrap();
    harness.state_mut().config_mut().boot.menu_timeout_secs = 11; // a change, so the engine checks again
    wait_until(&mut harness, "the new check", validated);
    harness.get_by_label_contains("x64 UEFI machines get shimx64.efi → grubx64.efi");

    // iPXE for UEFI: the entry is no longer marked (the whole choice says Secure Boot must be off).
    harness.state_mut().config_mut().boot.uefi_loader = portapxe_engine::config::UefiLoader::Ipxe;
    wait_until(&mut harness, "the new check", validated);
    assert!(harness.query_by_label("needs Secure Boot off: the kernel is not an EFI program").is_none());
    harness.get_by_label_contains("x64 UEFI machines get the iPXE loader");
}

#[test]
fn before_you_can_start_names_settings_in_words() {
    let (config, mut snapshot) = ready_to_start();
    let error = |field: &str, message: &str| ConfigError { field: field.into(), message: message.into() };
    snapshot.validation = Some(Validation {
        errors: vec![error("interface", "no network card chosen"), error("root", "no boot folder chosen")],
        ..Validation::passed(config.clone())
    });
    let mut harness = detached(config, snapshot, [1100.0, 720.0]);
    harness.run_steps(2);
    harness.get_by_label_contains("Before you can start");
    harness.get_by_label("Network card: no network card chosen");
    harness.get_by_label("Boot folder: no boot folder chosen");
    assert!(harness.query_by_label_contains("interface:").is_none(), "a config key in front of a message");
    assert!(harness.query_by_label_contains("root:").is_none(), "a config key in front of a message");
}

fn registry_with_one_client(t0: u64) -> ClientRegistry {
    let mut registry = ClientRegistry::default();
    let address = Ipv4Addr::new(10, 99, 0, 7);
    for (at, event) in [
        (t0, dhcp(DhcpMessage::DISCOVER, DhcpMessage::OFFER, Some(address))),
        (t0 + 100, dhcp(DhcpMessage::REQUEST, DhcpMessage::ACK, Some(address))),
        (t0 + 200, transfer(address, TransferPhase::Started { size: Some(1_000_000) })),
        (t0 + 1200, transfer(address, TransferPhase::Progress { bytes: 600_000, size: Some(1_000_000) })),
    ] {
        registry.apply(&event, at);
    }
    registry
}

/// Runs the calling test again in a private network namespace of its own (`unshare
/// --net`, gone when the process ends), with `env` set, and returns `None`; inside
/// that namespace it returns `Some(())`. Full DHCP probes by broadcasting, so every
/// test that starts it runs this way.
fn inside_private_netns(test: &str, env: &[(&str, &Path)], fresh_account: bool) -> Option<()> {
    const INSIDE: &str = "PORTAPXE_TEST_PRIVATE_NETNS";
    let here = std::fs::read_link("/proc/self/ns/net").expect("network namespace").display().to_string();
    let Some(outside) = std::env::var_os(INSIDE) else {
        let mut command = std::process::Command::new("unshare");
        command.args(["--net", "--"]).arg(std::env::current_exe().unwrap()).args([
            "--exact",
            test,
            "--nocapture",
            "--test-threads=1",
        ]);
        if fresh_account {
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name.starts_with("XDG_") || name.starts_with("PORTAPXE_") {
                    command.env_remove(&*name);
                }
            }
        }
        command.envs(env.iter().copied()).env(INSIDE, &here);
        let output = command.output().expect("run unshare (util-linux); it needs root or user namespaces");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "inside a private network namespace:\n{text}");
        assert!(text.contains("1 passed"), "the test ran inside: {text}");
        eprintln!("inside a private network namespace:\n{text}");
        return None;
    };
    // Never in the namespace that holds real interfaces.
    assert_ne!(outside.to_string_lossy(), here, "not in a private network namespace");
    run(&["ip", "link", "set", "lo", "up"]);
    Some(())
}

fn run(command: &[&str]) -> String {
    let output = std::process::Command::new(command[0]).args(&command[1..]).output().expect("run a command");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{command:?} failed: {text}");
    text
}

/// Full DHCP looks for other servers for 2 s before it answers; Stop during that look
/// cancels the start and frees every port.
#[test]
fn stop_during_the_safety_probe_cancels_the_start() {
    if inside_private_netns("stop_during_the_safety_probe_cancels_the_start", &[], false).is_none() {
        return;
    }
    let names: Vec<String> = portapxe_engine::net::list_interfaces().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["lo"], "a private namespace holds only loopback");
    // Full DHCP is refused on loopback: one end of a veth pair with nobody on the other
    // stands in for a card (this kernel has no dummy interfaces).
    run(&["ip", "link", "add", "bench0", "type", "veth", "peer", "name", "bench1"]);
    run(&["ip", "addr", "add", "10.98.0.1/24", "dev", "bench0"]);
    run(&["ip", "link", "set", "bench0", "up"]);
    run(&["ip", "link", "set", "bench1", "up"]);

    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.interface = "bench0".into();
    config.mode = Mode::Dhcp;
    config.dhcp.pool = Some("10.98.0.100-10.98.0.120".parse().unwrap());
    config.dhcp.boot_server_port = 14011;
    config.tftp.port = 16969;
    config.http.port = 18080;
    std::fs::create_dir_all(root.path().join("state")).unwrap();
    let mut harness = harness(config, settings.path());
    wait_until(&mut harness, "the settings check", validated);
    harness.get_by_label("Start").click();
    let clicked = Instant::now();
    // HTTP starts just before DHCP binds and the probe begins.
    wait_until(&mut harness, "HTTP to start", |app| {
        app.handle().snapshot().log.iter().any(|line| line.text.starts_with("http: HTTP serving"))
    });
    {
        let snapshot = harness.state().handle().snapshot();
        assert_eq!(snapshot.state, RunState::Starting, "{:?} {:?}", snapshot.last_error, snapshot.log);
    }
    harness.get_by_label("Starting…");
    harness.get_by_label("Stop").click();
    wait_until(&mut harness, "the start to end", |app| app.handle().snapshot().state == RunState::Stopped);
    let took = clicked.elapsed();
    assert!(took < Duration::from_millis(1900), "Stop waited for the probe: {took:?}");
    {
        let snapshot = harness.state().handle().snapshot();
        assert!(snapshot.status.is_none() && snapshot.last_error.is_none(), "{:?}", snapshot.last_error);
        assert!(snapshot.log.iter().any(|line| line.text == "start cancelled: nothing is served"));
    }
    harness.get_by_label("Start");
    // Every port the start had taken is free again.
    UdpSocket::bind("10.98.0.1:16969").expect("TFTP port freed");
    std::net::TcpListener::bind("10.98.0.1:18080").expect("HTTP port freed");
    UdpSocket::bind("0.0.0.0:16767").expect("DHCP port freed");
}

/// Where a DHCP lease came from, as busybox udhcpc prints it ("lease of A obtained").
fn udhcpc_lease(interface: &str, mac: &str) -> Ipv4Addr {
    run(&["ip", "link", "set", interface, "address", mac]);
    let text = run(&["udhcpc", "-i", interface, "-f", "-q", "-n", "-t", "4", "-T", "2", "-s", "/bin/true"]);
    let address = text
        .split("lease of ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("udhcpc got no lease: {text}"));
    address.parse().unwrap_or_else(|_| panic!("udhcpc printed {address:?}: {text}"))
}

fn start_and_wait_until_serving(harness: &mut Harness<'_, PortaApp>) {
    wait_until(harness, "the settings check", validated);
    harness.get_by_label("Start").click();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        harness.step();
        let snapshot = harness.state().handle().snapshot();
        assert!(snapshot.last_error.is_none(), "Start failed: {:?}\n{:?}", snapshot.last_error, snapshot.log);
        if snapshot.state == RunState::Running {
            break;
        }
        assert!(Instant::now() < deadline, "not serving after 20 s: {:?}", snapshot.log);
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.step();
    let app = harness.state();
    let snapshot = app.handle().snapshot().clone();
    let lights = portapxe::gui::panels::top_bar::lights(&snapshot, app.config());
    let names: Vec<&str> = lights.iter().map(|light| light.label.as_str()).collect();
    assert_eq!(names.len(), 4, "DHCP, TFTP, HTTP and Capture: {names:?}");
    for light in &lights {
        assert_eq!(light.tone, portapxe::gui::style::Tone::Ok, "{}: {}", light.label, light.hover);
    }
    harness.get_by_label("Stop");
}

/// A new user's first Start in the default mode: a fresh home folder (no settings, no
/// data folder, no `XDG_*`), a network card and a boot folder picked, Start pressed.
/// Serving with every light green, a real client gets a lease, and the second start
/// still knows it.
#[test]
fn a_newcomer_starts_full_dhcp_from_a_fresh_home() {
    let home = tempfile::tempdir().unwrap();
    let fresh = home.path().join("newcomer");
    if inside_private_netns("a_newcomer_starts_full_dhcp_from_a_fresh_home", &[("HOME", &fresh)], true).is_none() {
        return;
    }
    // A network card with a cable in: one end of a veth pair; a DHCP client on the other.
    run(&["ip", "link", "add", "bench0", "type", "veth", "peer", "name", "seat0"]);
    run(&["ip", "addr", "add", "10.88.0.1/24", "dev", "bench0"]);
    run(&["ip", "link", "set", "bench0", "up"]);
    run(&["ip", "link", "set", "seat0", "up"]);
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).expect("HOME");
    assert!(!home.exists(), "the home folder starts empty");
    std::fs::create_dir_all(&home).unwrap();

    let root = boot_folder();
    let (store, mut config, problem) = portapxe::gui::load_settings();
    assert!(problem.is_none(), "{problem:?}");
    assert_eq!(config.mode, Mode::Dhcp, "full DHCP is the default mode");
    config.interface = "bench0".into();
    config.root = root.path().to_path_buf();
    let open = |config: Config| {
        let store = store.clone();
        Harness::builder().with_size([1280.0, 860.0]).build_eframe(move |cc| {
            PortaApp::new(&cc.egui_ctx, EngineHandle::spawn(store).expect("engine thread"), config)
        })
    };
    let mut harness = open(config.clone());
    start_and_wait_until_serving(&mut harness);
    let first = udhcpc_lease("seat0", "52:54:00:f2:00:01");
    eprintln!("first start: 52:54:00:f2:00:01 got {first}");
    harness.get_by_label("Stop").click();
    wait_until(&mut harness, "the engine to stop", |app| app.handle().snapshot().state == RunState::Stopped);
    drop(harness);
    let leases = home.join(".local/share/portapxe");
    assert!(leases.join("leases.json").exists() || leases.join("leases.json.journal").exists(), "no lease file");

    let mut harness = open(config);
    start_and_wait_until_serving(&mut harness);
    let second = udhcpc_lease("seat0", "52:54:00:f2:00:02");
    eprintln!("second start: 52:54:00:f2:00:02 got {second}");
    assert_ne!(second, first, "the first client's lease was forgotten");
    assert_eq!(udhcpc_lease("seat0", "52:54:00:f2:00:01"), first, "the first client got another address");
    harness.get_by_label("Stop").click();
    wait_until(&mut harness, "the engine to stop", |app| app.handle().snapshot().state == RunState::Stopped);
}

/// An ISO picked from outside the boot folder stays where it lies; its row says which
/// family the engine found and what boots, and the iPXE preview boots its kernel from
/// inside the image instead of `sanboot`.
#[test]
fn an_iso_row_says_what_boots_from_inside_the_image() {
    let root = boot_folder();
    let elsewhere = tempfile::tempdir().unwrap();
    let tree = elsewhere.path().join("tree");
    std::fs::create_dir_all(tree.join("live")).unwrap();
    for (name, content) in [("vmlinuz", &b"kernel"[..]), ("initrd.img", b"initrd"), ("filesystem.squashfs", b"root")] {
        std::fs::write(tree.join("live").join(name), content).unwrap();
    }
    // A shim and a GRUB of its own (stand-ins: not signed, so PortaPXE's chain stays the default).
    std::fs::create_dir_all(tree.join("EFI/BOOT")).unwrap();
    for name in ["BOOTX64.EFI", "grubx64.efi"] {
        std::fs::write(tree.join("EFI/BOOT").join(name), b"not signed").unwrap();
    }
    let iso = elsewhere.path().join("rescue live.iso");
    let made = std::process::Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-o"])
        .arg(&iso)
        .arg(&tree)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("xorriso (apt-get install xorriso)");
    assert!(made.success());
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.boot.entries.push(BootEntry::Iso {
        name: "Rescue".into(),
        image: iso.display().to_string(),
        append: "nomodeset".into(),
        loader: Default::default(),
    });
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Boot images").click();
    wait_until(&mut harness, "the settings check", validated);
    harness.run();
    harness.get_by_label("Debian live (live-boot) → live/vmlinuz + live/initrd.img + fetch squashfs");
    let script = portapxe::gui::panels::boot::preview(harness.state().config(), &harness.state().handle().snapshot());
    assert!(script.contains("/iso/rescue%20live.iso/live/vmlinuz"), "{script}");
    assert!(script.contains("fetch=http://127.0.0.1"), "{script}");
    assert!(script.contains("nomodeset"), "{script}");
    assert!(!script.contains("sanboot"), "{script}");
    assert!(
        std::fs::read_dir(root.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".iso"))
    );

    // The image carries its own shim and GRUB: the row offers them, and says so once chosen.
    harness.get_by_label("Secure Boot chain (x64 UEFI)").click();
    harness.run_steps(2);
    harness.get_by_label("the image's own shim and GRUB (the machine restarts once into them)").click();
    let own = |app: &PortaApp| {
        matches!(app.config().boot.entries.last(), Some(BootEntry::Iso { loader: IsoLoader::Own, .. }))
            && validated(app)
    };
    wait_until(&mut harness, "the check of the new choice", own);
    harness.run();
    harness.get_by_label(
        "Debian live (live-boot) → live/vmlinuz + live/initrd.img + fetch squashfs; \
         x64 UEFI through its own EFI/BOOT/BOOTX64.EFI and GRUB (restarts once)",
    );
}

/// An image folder by hand, as a capture leaves it: a partition table and one raw partition.
fn write_image(images: &Path, name: &str) {
    let dir = images.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let table = b"label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=8192, type=83\n".to_vec();
    let part: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let entry = |file: &str, bytes: &[u8]| {
        std::fs::write(dir.join(file), bytes).unwrap();
        let sha = portapxe_engine::imaging::image::sha256_hex(bytes).unwrap();
        format!("file = \"{file}\"\nbytes = {}\nsha256 = \"{sha}\"\n", bytes.len())
    };
    let manifest = format!(
        "format = 1\nname = \"{name}\"\nid = \"gui-{name}-0001\"\ncreated = 1796000000\nsource_mac = \"52:54:00:aa:00:01\"\n\
         disk_bytes = 8388608\n\n[table]\n{}\n[[partitions]]\nnumber = 1\nfilesystem = \"vfat\"\nmethod = \"raw\"\n\
         partition_bytes = 4194304\n{}",
        entry("table.sfdisk", &table),
        entry("part1.img.zst", &part)
    );
    std::fs::write(dir.join("image.toml"), manifest).unwrap();
}

/// GET `path` from `address`, the body as text (any status).
fn http_text(address: SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The imaging tab end to end on a veth card in a private namespace (the restore's
/// multicast and the wake packets never leave it): the image folder is listed; a
/// capture without the agent says where the agent belongs; with it, the seat's MAC gets
/// the agent (asked by the menu per MAC, serving goes on) and its capture task;
/// a restore offers the image to the next seat that boots and, with nobody joining,
/// ends and says so; "Wake every machine seen" sends the packets.
#[test]
fn the_imaging_tab_captures_restores_and_wakes() {
    if inside_private_netns("the_imaging_tab_captures_restores_and_wakes", &[], false).is_none() {
        return;
    }
    run(&["ip", "link", "add", "bench0", "type", "veth", "peer", "name", "seat0"]);
    run(&["ip", "addr", "add", "10.97.0.1/24", "brd", "+", "dev", "bench0"]);
    run(&["ip", "link", "set", "bench0", "up"]);
    run(&["ip", "link", "set", "seat0", "up"]);
    let root = boot_folder();
    let settings = tempfile::tempdir().unwrap();
    write_image(&settings.path().join("data/images"), "lab-ref");
    let mut config = loopback_config(root.path());
    config.interface = "bench0".into();
    config.http.port = 18081;
    let http: SocketAddr = "10.97.0.1:18081".parse().unwrap();
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Start").click();
    wait_until(&mut harness, "the engine to run", |app| app.handle().snapshot().state == RunState::Running);

    harness.get_by_label("Imaging").click();
    wait_until(&mut harness, "the image folder's listing", |app| {
        app.handle()
            .snapshot()
            .imaging
            .images
            .as_ref()
            .is_some_and(|listed| listed.as_ref().is_ok_and(|rows| !rows.is_empty()))
    });
    harness.get_by_label("lab-ref");
    harness.get_by_label("1:vfat (4.2 MB)");

    // Without the agent in the boot folder, nothing changes and the window says why.
    const SEAT: &str = "52:54:00:12:34:56";
    retype(&mut harness, "Machine (MAC)", SEAT);
    retype(&mut harness, "Image name", "golden");
    harness.get_by_label("Capture this machine's disk").click();
    wait_until(&mut harness, "the refusal", |app| app.handle().snapshot().imaging.notice.is_some());
    harness.get_by_label_contains("installers/agent/build.sh");
    assert!(harness.state().handle().snapshot().imaging.captures.is_empty());

    std::fs::create_dir_all(root.path().join("agent")).unwrap();
    std::fs::write(root.path().join("agent/vmlinuz"), b"agent kernel").unwrap();
    std::fs::write(root.path().join("agent/initrd.img"), b"agent initrd").unwrap();
    let before = http_starts(&harness);
    harness.get_by_label("Capture this machine's disk").click();
    wait_until(&mut harness, "the capture row", |app| !app.handle().snapshot().imaging.captures.is_empty());
    harness.get_by_label_contains("waiting: network-boot this machine now");
    // The menu asks per MAC what to boot first: serving goes on, nothing restarts.
    let script = http_text(http, "/boot.ipxe");
    assert!(script.contains("/portapxe/next/${netX/mac:hexhyp}.ipxe"), "the menu asks first:\n{script}");
    let seat_boot = http_text(http, "/portapxe/next/52-54-00-12-34-56.ipxe");
    assert!(
        seat_boot.contains("agent/vmlinuz") && seat_boot.contains("portapxe.server=10.97.0.1:18081"),
        "{seat_boot}"
    );
    let other = http_text(http, "/portapxe/next/52-54-00-12-34-57.ipxe");
    assert!(other.ends_with("\r\n\r\n#!ipxe\n"), "a machine with no task gets its menu:\n{other}");
    assert_eq!(http_starts(&harness), before, "serving did not start again");

    // Restore to the next machine that boots; nobody joins within the wait.
    harness.state_mut().view.imaging.wait_s = 5;
    let before = http_starts(&harness);
    harness.get_by_label("Restore to seats").click();
    harness.run_steps(1);
    wait_until(&mut harness, "the restore session", |app| {
        let snapshot = app.handle().snapshot();
        assert!(!matches!(snapshot.imaging.notice, Some(Err(_))), "refused: {:?}", snapshot.imaging.notice);
        snapshot.imaging.session.is_some()
    });
    harness.get_by_label_contains("waiting for seats to boot and join");
    assert_eq!(http_starts(&harness), before, "serving did not start again");
    let seat_boot = http_text(http, "/portapxe/next/52-54-00-12-34-57.ipxe");
    assert!(seat_boot.contains("agent/vmlinuz"), "any seat that boots gets the agent now:\n{seat_boot}");
    let task = http_text(http, "/imaging/task?mac=52:54:00:12:34:57");
    assert!(task.contains("restore gui-lab-ref-0001 9000 lab-ref"), "{task}");
    let task = http_text(http, &format!("/imaging/task?mac={SEAT}"));
    assert!(task.contains("capture ") && task.trim_end().ends_with(" golden"), "the capture still waits: {task}");
    let deadline = Instant::now() + Duration::from_secs(150);
    while harness.state().handle().snapshot().imaging.session.as_ref().is_some_and(|s| s.ending.is_none()) {
        assert!(Instant::now() < deadline, "the session did not end");
        harness.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    harness.step();
    harness.get_by_label_contains("Restore of \"lab-ref\" ended: ");
    assert_eq!(
        harness.state().handle().snapshot().imaging.session.as_ref().and_then(|s| s.ending.clone()),
        Some(Ok(portapxe_engine::imaging::multicast::Ending::NobodyJoined))
    );

    // Wake every machine the window has seen.
    emit(harness.state(), dhcp(DhcpMessage::DISCOVER, DhcpMessage::OFFER, Some(Ipv4Addr::new(10, 97, 0, 50))));
    wait_until(&mut harness, "a known machine", |app| !app.handle().snapshot().clients.is_empty());
    harness.get_by_label("Wake every machine seen (1)").click();
    wait_until(&mut harness, "the wake packets", |app| {
        app.handle().snapshot().imaging.notice.as_ref().is_some_and(|n| n.as_ref().is_ok_and(|t| t.starts_with("wake")))
    });
    harness.get_by_label_contains("wake packets sent for 1 machines to 10.97.0.255:9");

    // A second capture is cancelled from its row; Stop ends the first (what had arrived is removed).
    retype(&mut harness, "Machine (MAC)", "52:54:00:12:34:58");
    retype(&mut harness, "Image name", "second");
    harness.get_by_label("Capture this machine's disk").click();
    wait_until(&mut harness, "the second capture row", |app| app.handle().snapshot().imaging.captures.len() == 2);
    let cancels: Vec<_> = harness.query_all_by_label("Cancel").collect();
    assert_eq!(cancels.len(), 2, "one Cancel per waiting capture");
    cancels[1].click();
    wait_until(&mut harness, "the cancellation", |app| {
        matches!(app.handle().snapshot().imaging.captures[1].state, CaptureProgress::Failed(_))
    });
    harness.get_by_label("52:54:00:12:34:58 → \"second\": failed: cancelled from the window");
    harness.get_by_label("Stop").click();
    wait_until(&mut harness, "the capture to end", |app| {
        let snapshot = app.handle().snapshot();
        snapshot.state == RunState::Stopped
            && snapshot.imaging.captures.iter().all(|c| matches!(c.state, CaptureProgress::Failed(_)))
    });
    harness.get_by_label("52:54:00:12:34:56 → \"golden\": failed: serving was stopped: start the capture again");
}

/// With the user's own iPXE script the menu does not ask per MAC: a capture serves again
/// with the imaging entry added and the seat pinned to it (loopback, HTTP only: nothing
/// is broadcast).
#[test]
fn imaging_with_an_own_ipxe_script_serves_again_with_the_imaging_entry() {
    let root = boot_folder();
    std::fs::write(root.path().join("mine.ipxe"), b"#!ipxe\necho mine\n").unwrap();
    std::fs::create_dir_all(root.path().join("agent")).unwrap();
    std::fs::write(root.path().join("agent/vmlinuz"), b"agent kernel").unwrap();
    std::fs::write(root.path().join("agent/initrd.img"), b"agent initrd").unwrap();
    let settings = tempfile::tempdir().unwrap();
    let mut config = loopback_config(root.path());
    config.http.port = 18083;
    config.boot.ipxe_script = Some("mine.ipxe".into());
    let http: SocketAddr = "127.0.0.1:18083".parse().unwrap();
    let mut harness = harness(config, settings.path());
    harness.get_by_label("Start").click();
    wait_until(&mut harness, "the engine to run", |app| app.handle().snapshot().state == RunState::Running);
    harness.get_by_label("Imaging").click();
    harness.run_steps(2);
    retype(&mut harness, "Machine (MAC)", "52:54:00:12:34:56");
    retype(&mut harness, "Image name", "golden");
    let before = http_starts(&harness);
    harness.get_by_label("Capture this machine's disk").click();
    wait_until(&mut harness, "the capture row", |app| !app.handle().snapshot().imaging.captures.is_empty());
    wait_until_serving_again(&mut harness, before);
    let script = http_text(http, "/boot.ipxe");
    assert!(script.contains("PortaPXE imaging"), "the menu has the imaging entry:\n{script}");
    let seat_boot = http_text(http, "/imaging/boot.ipxe?mac=52:54:00:12:34:56");
    assert!(seat_boot.contains("agent/vmlinuz"), "{seat_boot}");
    harness.get_by_label("Stop").click();
    wait_until(&mut harness, "stopped", |app| app.handle().snapshot().state == RunState::Stopped);
}

/// How many times HTTP started serving, by the log.
fn http_starts(harness: &Harness<'_, PortaApp>) -> usize {
    harness.state().handle().snapshot().log.iter().filter(|line| line.text.starts_with("http: HTTP serving")).count()
}

/// After an imaging action the engine serves again (HTTP had started `before` times):
/// wait until it runs.
fn wait_until_serving_again(harness: &mut Harness<'_, PortaApp>, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        harness.step();
        let again = http_starts(harness) > before;
        let snapshot = harness.state().handle().snapshot();
        if snapshot.state == RunState::Running && again {
            break;
        }
        assert!(Instant::now() < deadline, "not serving again after 20 s: {:?}", snapshot.log);
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.step();
}

/// The restore grid: one row per seat with its number, MAC, phase, the session's rate and
/// time left while it receives, and what became of it.
#[test]
fn the_restore_grid_shows_each_seat() {
    use portapxe_engine::events::{ImagingEvent, ImagingWhat, SeatPhase, TaskGiven};
    use portapxe_engine::imaging::multicast::{DropReason, SessionEvent};
    let seat = |last: u8| std::net::SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), 9000);
    let mut snapshot = UiSnapshot { interfaces: Some(Vec::new()), state: RunState::Running, ..UiSnapshot::default() };
    let imaging = &mut snapshot.imaging;
    imaging.images = Some(Ok(Vec::new()));
    imaging.begin_restore("lab-ref".into(), 200_000_000);
    for (last, number) in [(21, 0), (22, 1), (23, 2)] {
        imaging.on_imaging(&ImagingEvent {
            mac: Some(MacAddr([0x52, 0x54, 0, 0, 0, last])),
            seat: Some(*seat(last).ip()),
            what: ImagingWhat::Task { task: TaskGiven::Restore("lab-ref".into()) },
        });
        imaging.on_session(&SessionEvent::Joined { seat: seat(last), number });
    }
    imaging.on_session(&SessionEvent::Started { seats: 3 });
    imaging.on_session(&SessionEvent::Progress { bytes: 50_000_000, rate: 25e6 });
    imaging.on_session(&SessionEvent::Dropped { seat: seat(23), why: DropReason::Silent(Duration::from_secs(15)) });
    imaging.on_imaging(&ImagingEvent {
        mac: Some(MacAddr([0x52, 0x54, 0, 0, 0, 22])),
        seat: Some(*seat(22).ip()),
        what: ImagingWhat::Seat { phase: SeatPhase::Failed, detail: "partition 1: checksum differs".into() },
    });
    let mut harness = detached(Config::default(), snapshot, [1280.0, 1000.0]);
    harness.get_by_label("Imaging").click();
    harness.run_steps(2);
    harness.get_by_label("Restore of \"lab-ref\": 50.0 MB of 200.0 MB (25%) at 25.0 MB/s, about 6 s left");
    harness.get_by_label("10.0.0.21");
    harness.get_by_label("52:54:00:00:00:15");
    harness.get_by_label("receiving");
    assert_eq!(harness.query_all_by_label("25.0").count(), 2, "the two seats still receiving");
    assert_eq!(harness.query_all_by_label("6 s").count(), 2);
    harness.get_by_label("failed: partition 1: checksum differs");
    harness.get_by_label_contains("dropped: ");
    if let Ok(path) = std::env::var("PORTAPXE_SCREENSHOT") {
        harness.render().expect("render").save(path).expect("save");
    }
}
