//! The top bar: network card, mode, Start/Stop, one light per service, and why
//! the last start failed.

use egui::Ui;
use portapxe_engine::config::{Config, Mode};
use portapxe_engine::net::{InterfaceInfo, InterfaceKind};

use super::{Action, PanelCtx, field_errors};
use crate::gui::engine_handle::{FailedService, RunState, UiSnapshot};
use crate::gui::style::{self, Tone};

pub fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Dhcp => "Full DHCP",
        Mode::Proxy => "proxyDHCP (beside a DHCP server)",
        Mode::Off => "Boot files only (TFTP/HTTP)",
    }
}

/// Real cards first (wired, then Wi-Fi), then virtual adapters, loopback last.
pub fn sorted_interfaces(interfaces: &[InterfaceInfo]) -> Vec<&InterfaceInfo> {
    let rank = |i: &InterfaceInfo| {
        let kind = match i.kind {
            InterfaceKind::Wired => 0,
            InterfaceKind::Wireless => 1,
            InterfaceKind::Other => 2,
            InterfaceKind::Virtual => 3,
            InterfaceKind::Loopback => 4,
        };
        (!i.up, kind)
    };
    let mut sorted: Vec<&InterfaceInfo> = interfaces.iter().collect();
    sorted.sort_by_key(|i| rank(i));
    sorted
}

/// "eth0 · 192.168.1.5/24 · 52:54:00:12:34:56 · wired", marked when virtual or down.
pub fn interface_label(interface: &InterfaceInfo) -> String {
    let ipv4 = interface.ipv4.first().map_or("no IPv4".to_string(), |(ip, prefix)| format!("{ip}/{prefix}"));
    let mac = interface.mac.map_or("no MAC".to_string(), |mac| mac.to_string());
    let kind = match interface.kind {
        InterfaceKind::Wired => "wired",
        InterfaceKind::Wireless => "Wi-Fi",
        InterfaceKind::Virtual => "virtual adapter",
        InterfaceKind::Loopback => "loopback",
        InterfaceKind::Other => "other",
    };
    let name = match &interface.friendly_name {
        Some(friendly) if friendly != &interface.name => format!("{friendly} ({})", interface.name),
        _ => interface.name.clone(),
    };
    let down = if interface.up { "" } else { " · DOWN" };
    format!("{name} · {ipv4} · {mac} · {kind}{down}")
}

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let state = panel.snapshot.state;
    let editable = state == RunState::Stopped;
    // One row when there is room; two when not (a disabled group does not wrap inside
    // a row, so at large text scales one row would run off the window).
    if ui.available_width() >= 900.0 {
        ui.horizontal(|ui| {
            card_row(ui, panel, editable, 620.0);
            mode_row(ui, panel, editable);
        });
    } else {
        ui.horizontal(|ui| card_row(ui, panel, editable, 200.0));
        ui.horizontal(|ui| mode_row(ui, panel, editable));
    }
    ui.horizontal_wrapped(|ui| service_lights(ui, panel.snapshot, panel.config));
    if let Some(failure) = &panel.snapshot.last_error {
        ui.add_space(style::SPACING / 2.0);
        style::banner(ui, Tone::Error, |ui| {
            ui.label(style::toned(ui, Tone::Error, "Could not start").strong());
            ui.label(&failure.message);
        });
    }
    for (service, message) in &panel.snapshot.service_errors {
        style::banner(ui, Tone::Caution, |ui| ui.label(format!("{service}: {message}")));
    }
    if let Some(warning) = elevation_warning(panel.snapshot) {
        ui.add_space(style::SPACING / 2.0);
        style::banner(ui, Tone::Caution, |ui| ui.label(warning));
    }
    if state == RunState::Stopped
        && let Some(warning) = privilege_warning(panel.snapshot, panel.config)
    {
        ui.add_space(style::SPACING / 2.0);
        style::banner(ui, Tone::Caution, |ui| ui.label(warning));
    }
    if state == RunState::Stopped
        && let Some(errors) = panel.all_errors().filter(|errors| !errors.is_empty())
    {
        ui.add_space(style::SPACING / 2.0);
        style::banner(ui, Tone::Caution, |ui| {
            ui.label("Before you can start:");
            field_errors(ui, &errors);
        });
    }
}

/// The network card picker and Refresh.
/// `beside`: room to leave for what follows on the row.
fn card_row(ui: &mut Ui, panel: &mut PanelCtx<'_>, editable: bool, beside: f32) {
    let width = (ui.available_width() - beside).clamp(160.0, 420.0);
    ui.add_enabled_ui(editable, |ui| interface_picker(ui, panel, width));
    if ui.add_enabled(editable, egui::Button::new("Refresh")).on_hover_text("List network cards again").clicked() {
        panel.actions.push(Action::RefreshInterfaces);
    }
}

/// The mode and Start/Stop.
fn mode_row(ui: &mut Ui, panel: &mut PanelCtx<'_>, editable: bool) {
    let state = panel.snapshot.state;
    ui.add_enabled_ui(editable, |ui| {
        egui::ComboBox::from_label("Mode").selected_text(mode_label(panel.config.mode)).show_ui(ui, |ui| {
            for mode in [Mode::Dhcp, Mode::Proxy, Mode::Off] {
                ui.selectable_value(&mut panel.config.mode, mode, mode_label(mode));
            }
        });
    });
    ui.separator();
    match state {
        RunState::Stopped => {
            let errors = panel.all_errors();
            let ready = errors.as_ref().is_some_and(Vec::is_empty);
            let start = ui.add_enabled(ready, egui::Button::new("Start"));
            let start = match &errors {
                None => start.on_disabled_hover_text("Checking the settings…"),
                Some(errors) => start.on_disabled_hover_text(format!("Fix first:\n{}", errors.join("\n"))),
            };
            if start.clicked() {
                panel.actions.push(Action::Start);
            }
        }
        RunState::Running => {
            if ui.button("Stop").clicked() {
                panel.actions.push(Action::Stop);
            }
        }
        RunState::Starting => {
            ui.add(egui::Spinner::new());
            ui.label("Starting…");
            // Full DHCP looks for other servers for 4.5 s first; Stop cancels that.
            if ui.button("Stop").on_hover_text("Cancel the start").clicked() {
                panel.actions.push(Action::Stop);
            }
        }
        RunState::Stopping => {
            ui.add(egui::Spinner::new());
            ui.label("Stopping…");
        }
    }
}

fn interface_picker(ui: &mut Ui, panel: &mut PanelCtx<'_>, width: f32) {
    let interfaces = panel.snapshot.interfaces.as_deref().unwrap_or_default();
    let selected =
        interfaces.iter().find(|i| i.name == panel.config.interface).map(interface_label).unwrap_or_else(|| {
            match (&panel.snapshot.interfaces, panel.config.interface.is_empty()) {
                (None, _) => "Listing network cards…".to_string(),
                (Some(_), true) => "Choose a network card".to_string(),
                (Some(_), false) => format!("{} (not found)", panel.config.interface),
            }
        });
    egui::ComboBox::from_label("Network card").selected_text(selected).width(width).show_ui(ui, |ui| {
        for interface in sorted_interfaces(interfaces) {
            let label = interface_label(interface);
            let text = if matches!(interface.kind, InterfaceKind::Virtual | InterfaceKind::Loopback) || !interface.up {
                style::toned(ui, Tone::Idle, label)
            } else {
                egui::RichText::new(label)
            };
            ui.selectable_value(&mut panel.config.interface, interface.name.clone(), text);
        }
    });
}

/// One light per service: green serving, grey off, amber starting, red failed.
pub fn service_lights(ui: &mut Ui, snapshot: &UiSnapshot, config: &Config) {
    for light in lights(snapshot, config) {
        style::status_light(ui, light.tone, &light.label, &light.hover);
    }
}

pub struct Light {
    pub tone: Tone,
    pub label: String,
    pub hover: String,
}

/// The lights for the current state: ports from the running engine, else from the config.
pub fn lights(snapshot: &UiSnapshot, config: &Config) -> Vec<Light> {
    let status = snapshot.status.as_ref();
    let failed = snapshot.last_error.as_ref().map(|f| f.service);
    let starting = snapshot.state == RunState::Starting;
    let light = |name: &str, wanted: bool, bound: Option<u16>, port: u16, service: FailedService| {
        let (tone, what) = if let Some(port) = bound {
            (Tone::Ok, format!("serving on port {port}"))
        } else if !wanted {
            (Tone::Idle, "off in this mode".to_string())
        } else if failed == Some(service) {
            (Tone::Error, "failed to start (see the message)".to_string())
        } else if starting {
            (Tone::Caution, "starting".to_string())
        } else {
            (Tone::Idle, "stopped".to_string())
        };
        let label = match bound {
            Some(port) => format!("{name} :{port}"),
            None if !wanted => format!("{name} off"),
            None => format!("{name} :{port}"),
        };
        Light { tone, label, hover: format!("{name}: {what}") }
    };
    let dhcp_name = if config.mode == Mode::Proxy { "proxyDHCP" } else { "DHCP" };
    let mut lights = vec![light(
        dhcp_name,
        config.mode != Mode::Off,
        status.and_then(|s| s.dhcp).map(|a| a.port()),
        config.dhcp.port,
        FailedService::Dhcp,
    )];
    if config.mode == Mode::Proxy {
        lights.push(light(
            "PXE",
            true,
            status.and_then(|s| s.boot_server).map(|a| a.port()),
            config.dhcp.boot_server_port,
            FailedService::Dhcp,
        ));
    }
    lights.push(light(
        "TFTP",
        config.tftp.enabled,
        status.and_then(|s| s.tftp).map(|a| a.port()),
        config.tftp.port,
        FailedService::Tftp,
    ));
    lights.push(light(
        "HTTP",
        config.http.enabled,
        status.and_then(|s| s.http).map(|a| a.port()),
        config.http.port,
        FailedService::Http,
    ));
    if let Some(status) = status {
        let (tone, hover) = if status.capture == portapxe_engine::CaptureStatus::Running {
            (Tone::Ok, "capturing DHCP traffic".to_string())
        } else {
            (Tone::Caution, format!("capture {}", status.capture))
        };
        lights.push(Light { tone, label: "Capture".into(), hover });
    }
    lights
}

/// Said before Start when the config needs ports below 1024 and the process may not
/// bind them (Linux capabilities; root has them all).
pub fn privilege_warning(snapshot: &UiSnapshot, config: &Config) -> Option<String> {
    let privileges = snapshot.privileges?;
    let mut low: Vec<String> = Vec::new();
    if config.mode != Mode::Off && config.dhcp.port < 1024 {
        low.push(format!("DHCP {}", config.dhcp.port));
    }
    if config.mode == Mode::Proxy && config.dhcp.boot_server_port < 1024 {
        low.push(format!("PXE {}", config.dhcp.boot_server_port));
    }
    if config.tftp.enabled && config.tftp.port < 1024 {
        low.push(format!("TFTP {}", config.tftp.port));
    }
    if config.http.enabled && config.http.port < 1024 {
        low.push(format!("HTTP {}", config.http.port));
    }
    if privileges.bind_low_ports || low.is_empty() {
        return None;
    }
    Some(format!(
        "PortaPXE may not open ports below 1024 ({}): run it as root, or grant it once with \
         `sudo setcap cap_net_bind_service,cap_net_raw+ep $(which portapxe)`, or move TFTP and HTTP to ports \
         above 1024 in Settings (DHCP clients always use 67).",
        low.join(", ")
    ))
}

/// Windows, not elevated: what will not work and how to run as administrator.
pub fn elevation_warning(snapshot: &UiSnapshot) -> Option<&'static str> {
    match snapshot.elevated {
        Some(false) => Some(
            "PortaPXE is not running as administrator: Windows may refuse the DHCP port (67) and packet capture, \
             and the firewall cannot be asked to let clients in. Close PortaPXE, then right-click it and choose \
             \"Run as administrator\" (or start it from an administrator terminal).",
        ),
        Some(true) | None => None,
    }
}
