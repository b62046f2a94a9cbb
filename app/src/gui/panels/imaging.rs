//! The imaging tab: the image folder's images; capture one machine's disk; restore an
//! image to a room of seats over multicast with one row per seat; wake the room.
//! Everything slow is an [`ImagingCommand`] for the engine thread.

use std::time::Duration;

use egui::Ui;
use portapxe_engine::events::MacAddr;

use super::{Action, PanelCtx};
use crate::gui::engine_handle::RunState;
use crate::gui::imaging_state::{CaptureProgress, ImagingCommand, RestoreSeats, SeatRow, megabytes};
use crate::gui::style::{SPACING, Tone, toned};

/// What the person is filling in on the tab.
#[derive(Debug, Clone)]
pub struct ImagingDraft {
    /// The machine to capture, as typed or picked.
    pub mac: String,
    pub name: String,
    /// The image to restore.
    pub image: String,
    /// Restore to the machines ticked in the list, instead of the next N that boot.
    pub by_mac: bool,
    pub count: usize,
    pub wait_s: u64,
    pub ticked: Vec<MacAddr>,
    /// The folder was asked for once since the tab opened.
    pub listed: bool,
}

impl Default for ImagingDraft {
    fn default() -> Self {
        Self {
            mac: String::new(),
            name: String::new(),
            image: String::new(),
            by_mac: false,
            count: 1,
            wait_s: 120,
            ticked: Vec::new(),
            listed: false,
        }
    }
}

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let running = panel.snapshot.state == RunState::Running;
    if !panel.view.imaging.listed || panel.snapshot.imaging.images_stale {
        panel.view.imaging.listed = true;
        panel.snapshot.imaging.images_stale = false;
        panel.actions.push(Action::Imaging(ImagingCommand::ListImages));
    }
    egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
        ui.horizontal(|ui| {
            match &panel.snapshot.imaging.folder {
                Some(folder) => ui.label(format!("Images are kept in {}", folder.display())),
                None => ui.label(toned(ui, Tone::Error, "This system names no data folder to keep images in.")),
            };
            if ui.button("Refresh").clicked() {
                panel.actions.push(Action::Imaging(ImagingCommand::ListImages));
            }
        });
        if !running {
            ui.label(toned(
                ui,
                Tone::Caution,
                "Start serving first: machines boot PortaPXE's imaging agent to be captured or restored.",
            ));
        }
        match &panel.snapshot.imaging.notice {
            Some(Ok(text)) => ui.label(toned(ui, Tone::Ok, text)),
            Some(Err(text)) => ui.label(toned(ui, Tone::Error, text)),
            None => ui.label(""),
        };
        ui.add_space(SPACING);
        images(ui, panel);
        ui.add_space(SPACING);
        ui.separator();
        capture(ui, panel, running);
        ui.add_space(SPACING);
        ui.separator();
        restore(ui, panel, running);
        ui.add_space(SPACING);
        ui.separator();
        wake(ui, panel);
    });
}

fn images(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.strong("Images");
    let rows = match &panel.snapshot.imaging.images {
        None => {
            ui.label("Reading the image folder…");
            return;
        }
        Some(Err(why)) => {
            ui.label(toned(ui, Tone::Error, format!("Cannot read the image folder: {why}")));
            return;
        }
        Some(Ok(rows)) if rows.is_empty() => {
            ui.label("No images yet: capture one below.");
            return;
        }
        Some(Ok(rows)) => rows,
    };
    egui::Grid::new("images").striped(true).num_columns(5).show(ui, |ui| {
        for title in ["Name", "Size", "Disk", "Partitions", "Captured from"] {
            ui.strong(title);
        }
        ui.end_row();
        for row in rows {
            ui.label(&row.name);
            match &row.unusable {
                Some(why) => {
                    ui.label(toned(ui, Tone::Error, format!("unusable: {why}")));
                    ui.label("");
                    ui.label("");
                    ui.label("");
                }
                None => {
                    ui.label(megabytes(row.bytes));
                    ui.label(megabytes(row.disk_bytes));
                    ui.label(&row.partitions);
                    ui.label(row.source.map_or("-".into(), |mac| mac.to_string()));
                }
            }
            ui.end_row();
        }
    });
}

fn known_machines(panel: &PanelCtx<'_>) -> Vec<(MacAddr, String)> {
    panel
        .snapshot
        .clients
        .iter()
        .map(|client| {
            let address = client.address.map_or(String::new(), |ip| format!(" ({ip})"));
            (client.mac, format!("{}{address}", client.mac))
        })
        .collect()
}

fn capture(ui: &mut Ui, panel: &mut PanelCtx<'_>, running: bool) {
    ui.strong("Capture a machine's disk into a new image");
    let machines = known_machines(panel);
    let draft = &mut panel.view.imaging;
    ui.horizontal(|ui| {
        let label = ui.label("Machine (MAC)");
        ui.add(egui::TextEdit::singleline(&mut draft.mac).hint_text("52:54:00:12:34:56").desired_width(150.0))
            .labelled_by(label.id);
        egui::ComboBox::from_id_salt("capture_known").selected_text("seen machines").show_ui(ui, |ui| {
            for (mac, text) in &machines {
                if ui.selectable_label(draft.mac == mac.to_string(), text).clicked() {
                    draft.mac = mac.to_string();
                }
            }
        });
        let label = ui.label("Image name");
        ui.add(egui::TextEdit::singleline(&mut draft.name).hint_text("lab-2026").desired_width(140.0))
            .labelled_by(label.id);
    });
    let mac = draft.mac.trim().parse::<MacAddr>();
    let name = draft.name.trim().to_string();
    if !draft.mac.trim().is_empty() && mac.is_err() {
        ui.label(toned(ui, Tone::Error, "Not a MAC address: write it like 52:54:00:12:34:56."));
    }
    let ready = running && !name.is_empty();
    let button = ui.add_enabled(ready && mac.is_ok(), egui::Button::new("Capture this machine's disk"));
    if button.clicked()
        && let Ok(mac) = mac
    {
        panel.actions.push(Action::Imaging(ImagingCommand::Capture { mac, name }));
    }
    for row in &panel.snapshot.imaging.captures {
        ui.horizontal(|ui| {
            ui.label(format!("{} → {:?}: {}", row.mac, row.name, row.state));
            let open = matches!(row.state, CaptureProgress::Waiting | CaptureProgress::Receiving(_));
            if open && ui.button("Cancel").on_hover_text("End this capture; what arrived is removed").clicked() {
                panel.actions.push(Action::Imaging(ImagingCommand::CancelCapture(row.mac)));
            }
        });
    }
}

fn restore(ui: &mut Ui, panel: &mut PanelCtx<'_>, running: bool) {
    ui.strong("Restore an image to seats (multicast, every seat at once)");
    let names: Vec<String> = match &panel.snapshot.imaging.images {
        Some(Ok(rows)) => rows.iter().filter(|row| row.unusable.is_none()).map(|row| row.name.clone()).collect(),
        _ => Vec::new(),
    };
    let machines = known_machines(panel);
    let draft = &mut panel.view.imaging;
    if draft.image.is_empty()
        && let Some(first) = names.first()
    {
        draft.image = first.clone();
    }
    ui.horizontal(|ui| {
        ui.label("Image");
        egui::ComboBox::from_id_salt("restore_image").selected_text(draft.image.as_str()).show_ui(ui, |ui| {
            for name in &names {
                ui.selectable_value(&mut draft.image, name.clone(), name);
            }
        });
        ui.label("Start after at most");
        ui.add(egui::DragValue::new(&mut draft.wait_s).range(5..=3600).suffix(" s"));
    });
    ui.horizontal(|ui| {
        ui.radio_value(&mut draft.by_mac, false, "the next");
        ui.add(egui::DragValue::new(&mut draft.count).range(1..=250));
        ui.label("machines that network-boot");
        ui.radio_value(&mut draft.by_mac, true, "the machines ticked below");
    });
    if draft.by_mac {
        if machines.is_empty() {
            ui.label("No machine seen yet: let them network-boot once, or restore to the next N that boot.");
        }
        for (mac, text) in &machines {
            let mut ticked = draft.ticked.contains(mac);
            if ui.checkbox(&mut ticked, text).changed() {
                draft.ticked.retain(|m| m != mac);
                if ticked {
                    draft.ticked.push(*mac);
                }
            }
        }
    }
    let seats =
        if draft.by_mac { RestoreSeats::Only(draft.ticked.clone()) } else { RestoreSeats::NextThatBoot(draft.count) };
    let session = panel.snapshot.imaging.session.as_ref();
    let sending = session.is_some_and(|s| s.ending.is_none());
    let chosen = !(draft.image.is_empty() || draft.by_mac && draft.ticked.is_empty());
    ui.horizontal(|ui| {
        if ui.add_enabled(running && chosen && !sending, egui::Button::new("Restore to seats")).clicked() {
            panel.actions.push(Action::Imaging(ImagingCommand::Restore {
                image: draft.image.clone(),
                seats,
                wait: Duration::from_secs(draft.wait_s),
            }));
        }
        if sending && ui.button("Stop the session").clicked() {
            panel.actions.push(Action::Imaging(ImagingCommand::StopRestore));
        }
    });
    let Some(session) = session else { return };
    let tone = match &session.ending {
        Some(Ok(portapxe_engine::imaging::multicast::Ending::Completed)) => Tone::Ok,
        Some(_) => Tone::Error,
        None => Tone::Caution,
    };
    ui.label(toned(ui, tone, session.to_string()));
    if session.started && session.ending.is_none() {
        ui.add(egui::ProgressBar::new((session.bytes as f32 / session.total.max(1) as f32).clamp(0.0, 1.0)));
    }
    seat_grid(ui, &panel.snapshot.imaging.seats, session.rate, session.eta());
}

fn seat_grid(ui: &mut Ui, seats: &[SeatRow], rate: f64, eta: Option<Duration>) {
    if seats.is_empty() {
        ui.label("No seat yet.");
        return;
    }
    egui::Grid::new("seats").striped(true).num_columns(7).show(ui, |ui| {
        for title in ["Seat", "#", "MAC", "Phase", "MB/s", "ETA", "Result"] {
            ui.strong(title);
        }
        ui.end_row();
        for seat in seats {
            ui.label(seat.ip.to_string());
            ui.label(seat.number().map_or("-".into(), |n| n.to_string()));
            ui.label(seat.mac.map_or("-".into(), |mac| mac.to_string()));
            ui.label(seat.phase());
            if seat.receiving() {
                ui.label(format!("{:.1}", rate / 1e6));
                ui.label(eta.map_or("-".into(), |left| format!("{} s", left.as_secs())));
            } else {
                ui.label("-");
                ui.label("-");
            }
            let tone = match &seat.agent {
                Some((portapxe_engine::events::SeatPhase::Done, _)) => Tone::Ok,
                _ => Tone::Error,
            };
            ui.label(toned(ui, tone, seat.result()));
            ui.end_row();
        }
    });
}

fn wake(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.strong("Wake-on-LAN");
    let known: Vec<MacAddr> = panel.snapshot.clients.iter().map(|client| client.mac).collect();
    // The card being served on; before a start, the one chosen.
    let interface =
        panel.snapshot.status.as_ref().map_or_else(|| panel.config.interface.clone(), |s| s.interface.clone());
    ui.horizontal(|ui| {
        let all = format!("Wake every machine seen ({})", known.len());
        if ui.add_enabled(!known.is_empty() && !interface.is_empty(), egui::Button::new(all)).clicked() {
            panel
                .actions
                .push(Action::Imaging(ImagingCommand::Wake { interface: interface.clone(), macs: known.clone() }));
        }
        let ticked = panel.view.imaging.ticked.clone();
        let some = format!("Wake the ticked machines ({})", ticked.len());
        if ui.add_enabled(!ticked.is_empty() && !interface.is_empty(), egui::Button::new(some)).clicked() {
            panel.actions.push(Action::Imaging(ImagingCommand::Wake { interface, macs: ticked }));
        }
    });
    ui.label("A machine wakes only if Wake-on-LAN is on in its firmware and it still has power.");
}
