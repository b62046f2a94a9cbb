//! The log panel: the engine's events as lines, filterable by level and client.

use std::path::PathBuf;

use egui::Ui;

use super::{Action, PanelCtx};
use crate::event_text::Level;
use portapxe_engine::events::MacAddr;

use crate::gui::diagnostics::clock;
use crate::gui::engine_handle::LogLine;
use crate::gui::engine_handle::Pending;
use crate::gui::style::{self, Tone};

/// Whether `line` passes the filters: at least `level`, about `client` when one is chosen.
/// How "Export diagnostics" ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportOutcome {
    /// Written to `path`; `note` says why it is not where the person chose (no dialog).
    Written {
        path: PathBuf,
        note: Option<String>,
    },
    Cancelled,
    Failed(String),
}

/// The log panel's view: the level and machine it is narrowed to, and the diagnostics
/// export under way or how the last one ended.
pub struct LogView {
    pub level: Level,
    pub client: Option<MacAddr>,
    /// "Export diagnostics" under way.
    pub export: Option<Pending<ExportOutcome>>,
    /// How the last export ended.
    pub exported: Option<ExportOutcome>,
}

impl Default for LogView {
    fn default() -> Self {
        Self { level: Level::Info, client: None, export: None, exported: None }
    }
}

pub fn keep(
    line: &LogLine,
    level: Level,
    client: Option<(portapxe_engine::events::MacAddr, Option<std::net::Ipv4Addr>)>,
) -> bool {
    line.level >= level && client.is_none_or(|(mac, ip)| line.mac == Some(mac) || (ip.is_some() && line.ip == ip))
}

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.horizontal(|ui| {
        ui.strong("Log");
        // First on the row, so it stays in the window at any text scale.
        export(ui, panel);
        ui.separator();
        egui::ComboBox::from_label("Level").selected_text(panel.view.log.level.label()).show_ui(ui, |ui| {
            for level in Level::ALL {
                ui.selectable_value(&mut panel.view.log.level, level, level.label());
            }
        });
        let client_text = panel.view.log.client.map_or("all clients".to_string(), |mac| mac.to_string());
        egui::ComboBox::from_label("Client").selected_text(client_text).show_ui(ui, |ui| {
            ui.selectable_value(&mut panel.view.log.client, None, "all clients");
            for client in &panel.snapshot.clients {
                ui.selectable_value(&mut panel.view.log.client, Some(client.mac), client.mac.to_string());
            }
        });
        ui.label(format!("{} lines kept", panel.snapshot.log.len()));
    });
    match &panel.view.log.exported {
        Some(ExportOutcome::Written { path, note }) => {
            ui.label(style::toned(ui, Tone::Ok, format!("Diagnostics written to {}", path.display())));
            if let Some(note) = note {
                ui.label(style::toned(ui, Tone::Caution, note));
            }
        }
        Some(ExportOutcome::Failed(message)) => {
            ui.label(style::toned(ui, Tone::Error, format!("Export failed: {message}")));
        }
        Some(ExportOutcome::Cancelled) | None => {}
    }
    ui.separator();
    let client = panel.view.log.client.map(|mac| {
        let ip = panel.snapshot.clients.iter().find(|c| c.mac == mac).and_then(|c| c.address);
        (mac, ip)
    });
    let lines: Vec<&LogLine> =
        panel.snapshot.log.iter().filter(|line| keep(line, panel.view.log.level, client)).collect();
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace);
    egui::ScrollArea::vertical().auto_shrink(false).stick_to_bottom(true).show_rows(
        ui,
        row_height,
        lines.len(),
        |ui, range| {
            for line in &lines[range] {
                let tone = match line.level {
                    Level::Warn => Tone::Error,
                    Level::Info => Tone::Ok,
                    Level::Debug => Tone::Idle,
                };
                let text = format!("{} {}", clock(line.at_ms), line.text);
                let rich = egui::RichText::new(text).monospace();
                ui.label(if tone == Tone::Ok { rich } else { rich.color(style::tone_color(ui, tone)) });
            }
        },
    );
}

/// "Export diagnostics…", or a spinner while the zip is written.
fn export(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let exporting = panel.view.log.export.is_some();
    let button = ui
        .add_enabled(!exporting, egui::Button::new("Export diagnostics…"))
        .on_hover_text("One zip with the settings, this log, the clients and the session's packet capture");
    if button.clicked() {
        panel.actions.push(Action::Export);
    }
    if exporting {
        ui.add(egui::Spinner::new());
        ui.label("Exporting…");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portapxe_engine::events::MacAddr;

    #[test]
    fn filters_by_level_and_by_client_mac_or_address() {
        let mac = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
        let ip = Some(std::net::Ipv4Addr::new(10, 0, 0, 1));
        let line = |level, mac, ip| LogLine { at_ms: 0, level, mac, ip, text: String::new() };
        assert!(keep(&line(Level::Info, Some(mac), None), Level::Info, Some((mac, ip))));
        assert!(keep(&line(Level::Info, None, ip), Level::Info, Some((mac, ip))));
        assert!(!keep(&line(Level::Info, None, None), Level::Info, Some((mac, ip))));
        assert!(!keep(&line(Level::Debug, Some(mac), None), Level::Info, None));
        assert!(keep(&line(Level::Warn, None, None), Level::Info, None));
    }
}
