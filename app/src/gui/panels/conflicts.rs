//! The conflict banner: red when another DHCP or proxyDHCP server is seen (naming
//! it), amber for forged replies and ones relayed for another network, neutral for
//! the network's own DHCP server beside proxy mode; "Scan now"
//! asks the network who answers, off the UI thread.

use egui::Ui;

use super::{Action, PanelCtx};
use crate::gui::engine_handle::ScanState;
use crate::gui::style::{self, Tone};

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let conflicts = &panel.snapshot.conflicts;
    let serves = |c: &&crate::gui::engine_handle::ConflictEntry| c.server.provenance.serves_this_segment();
    let foreign: Vec<&str> =
        conflicts.iter().filter(|c| !c.expected && serves(c)).map(|c| c.summary.as_str()).collect();
    // Forged replies and ones relayed for another network: worth a look, not a fault.
    let doubtful: Vec<&str> = conflicts.iter().filter(|c| !serves(c)).map(|c| c.summary.as_str()).collect();
    let expected: Vec<&str> =
        conflicts.iter().filter(|c| c.expected && serves(c)).map(|c| c.summary.as_str()).collect();
    let tone = match (foreign.is_empty(), doubtful.is_empty()) {
        (false, _) => Tone::Error,
        (true, false) => Tone::Caution,
        (true, true) => Tone::Ok,
    };
    ui.add_space(style::SPACING / 2.0);
    let quiet = foreign.is_empty() && doubtful.is_empty() && expected.is_empty();
    style::banner(ui, if quiet { Tone::Idle } else { tone }, |ui| {
        ui.horizontal(|ui| {
            let scanning = matches!(panel.snapshot.scan, ScanState::Running { .. });
            let can_scan = !scanning && !panel.config.interface.is_empty();
            if ui
                .add_enabled(can_scan, egui::Button::new("Scan now"))
                .on_hover_text("Ask the network which DHCP and proxyDHCP servers answer (3 s)")
                .clicked()
            {
                panel.actions.push(Action::Scan);
            }
            if scanning {
                ui.add(egui::Spinner::new());
                ui.label("Scanning…");
            }
            if foreign.is_empty() {
                ui.label("No other DHCP or PXE server seen.");
            } else {
                ui.label(style::toned(ui, Tone::Error, "Another server is on this network").strong());
            }
        });
        for summary in foreign {
            ui.label(style::toned(ui, Tone::Error, summary));
        }
        for summary in doubtful {
            ui.label(style::toned(ui, Tone::Caution, summary));
        }
        for summary in expected {
            ui.label(summary);
        }
        match &panel.snapshot.scan {
            ScanState::Done { interface, servers } if servers.is_empty() => {
                ui.label(format!("Scan of {interface}: nobody answered DHCP."));
            }
            ScanState::Done { interface, servers } => {
                ui.label(format!("Scan of {interface}: {} server(s) answered:", servers.len()));
                for server in servers {
                    ui.label(format!("• {}", server.describe()));
                }
            }
            ScanState::Failed(message) => {
                ui.label(style::toned(ui, Tone::Error, format!("Scan failed: {message}")));
            }
            ScanState::Idle | ScanState::Running { .. } => {}
        }
    });
}
