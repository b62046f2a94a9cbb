//! The clients table: every machine the registry knows, sortable, with the current
//! transfer's progress; the selected row shows its timeline and diagnosis.

use std::cmp::Ordering;

use egui::Ui;
use egui_extras::{Column, TableBuilder};
use portapxe_engine::clients::{AddressSource, ClientPhase, ClientRecord};
use portapxe_engine::config::Config;
use portapxe_engine::events::NextBoot;

use super::{Action, PanelCtx};
use crate::gui::style::{self, ROW_HEIGHT, Tone};
use portapxe_engine::events::MacAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Mac,
    Address,
    Arch,
    Phase,
    Transfer,
    LastSeen,
}

/// The clients table's view: its sort and the selected machine.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientsView {
    pub sort: SortColumn,
    pub ascending: bool,
    pub selected_client: Option<MacAddr>,
}

impl Default for ClientsView {
    /// The machine seen last on top.
    fn default() -> Self {
        Self { sort: SortColumn::LastSeen, ascending: false, selected_client: None }
    }
}

pub fn phase_label(phase: ClientPhase) -> &'static str {
    match phase {
        ClientPhase::Discover => "discover",
        ClientPhase::Offer => "offered",
        ClientPhase::Request => "request",
        ClientPhase::Ack => "address acked",
        ClientPhase::BootFile => "loading boot file",
        ClientPhase::Http => "loading over HTTP",
        ClientPhase::HandedOff => "booted",
        ClientPhase::Ignored => "ignored",
    }
}

fn address_text(client: &ClientRecord) -> String {
    match (client.address, &client.address_from) {
        (Some(ip), Some(AddressSource::Other(server))) if !server.is_unspecified() => format!("{ip} (from {server})"),
        (Some(ip), _) => ip.to_string(),
        (None, _) => "-".into(),
    }
}

fn mac_text(client: &ClientRecord) -> String {
    match &client.vendor {
        Some(vendor) => format!("{} ({vendor})", client.mac),
        None => client.mac.to_string(),
    }
}

fn transfer_text(client: &ClientRecord) -> String {
    match &client.transfer {
        Some(t) => {
            let size = t.size.map(|s| format!("/{}", style::bytes(s))).unwrap_or_default();
            format!("{} {}{size} at {}/s", t.file, style::bytes(t.bytes), style::bytes_f(t.throughput))
        }
        None => "-".into(),
    }
}

fn arch_text(client: &ClientRecord) -> String {
    client.arch.map_or_else(|| "-".into(), |arch| arch.to_string())
}

/// The row as one line of tab-separated text, for the clipboard.
pub fn row_text(client: &ClientRecord, now_ms: u64) -> String {
    [
        mac_text(client),
        address_text(client),
        arch_text(client),
        phase_label(client.phase).to_string(),
        transfer_text(client),
        style::ago(now_ms, client.last_seen_ms),
        client.diagnosis.as_ref().map(ToString::to_string).unwrap_or_default(),
    ]
    .join("\t")
}

/// Sorts clients for the table.
pub fn sort_clients(clients: &mut [&ClientRecord], column: SortColumn, ascending: bool) {
    clients.sort_by(|a, b| {
        let order = match column {
            SortColumn::Mac => a.mac.cmp(&b.mac),
            SortColumn::Address => a.address.cmp(&b.address),
            SortColumn::Arch => arch_text(a).cmp(&arch_text(b)),
            SortColumn::Phase => a.phase.cmp(&b.phase),
            SortColumn::Transfer => {
                let bytes = |c: &ClientRecord| c.transfer.as_ref().map(|t| t.bytes);
                bytes(a).cmp(&bytes(b))
            }
            SortColumn::LastSeen => a.last_seen_ms.cmp(&b.last_seen_ms),
        };
        let order = if ascending { order } else { order.reverse() };
        order.then_with(|| a.mac.cmp(&b.mac)).then(Ordering::Equal)
    });
}

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let now = panel.snapshot.now_ms;
    if panel.snapshot.clients.is_empty() {
        ui.label("No machine has asked yet. Start serving, then switch on a machine set to boot from the network.");
        return;
    }
    let mut clients: Vec<&ClientRecord> = panel.snapshot.clients.iter().collect();
    sort_clients(&mut clients, panel.view.clients.sort, panel.view.clients.ascending);
    let selected = panel.view.clients.selected_client.and_then(|mac| clients.iter().find(|c| c.mac == mac).copied());
    let details_height = if selected.is_some() { 200.0 } else { 0.0 };
    let table_height = (ui.available_height() - details_height).max(120.0);
    let view = &mut panel.view.clients;
    ui.push_id("clients_table", |ui| {
        ui.set_max_height(table_height);
        // A click anywhere on a row selects it, text included.
        ui.style_mut().interaction.selectable_labels = false;
        table(ui, view, &clients, now);
    });
    if let Some(client) = selected {
        ui.separator();
        details(ui, client, now);
        let planned = panel.snapshot.next_boots.iter().find(|(mac, _)| *mac == client.mac).map(|(_, boot)| boot);
        if let Some(asked) = next_boot(ui, panel.config, planned) {
            panel.actions.push(Action::NextBoot { mac: client.mac, boot: asked });
        }
    }
}

/// "Next network boot": as usual (the menu), one entry once, or its own disk once.
/// Returns what was picked, when it changed.
fn next_boot(ui: &mut Ui, config: &Config, planned: Option<&NextBoot>) -> Option<Option<NextBoot>> {
    const USUAL: &str = "its menu, as usual";
    let mut picked = None;
    ui.horizontal(|ui| {
        if config.boot.ipxe_script.is_some() {
            ui.label(
                "Next network boot: one-off boots need PortaPXE's own menu (Boot images: no iPXE script of your own)",
            );
            return;
        }
        let shown = planned.map_or_else(|| USUAL.to_owned(), ToString::to_string);
        egui::ComboBox::from_label("Next network boot").selected_text(shown).show_ui(ui, |ui| {
            if ui.selectable_label(planned.is_none(), USUAL).clicked() && planned.is_some() {
                picked = Some(None);
            }
            let choices = config.boot.entries.iter().map(|entry| NextBoot::Entry(entry.name().to_owned()));
            for choice in choices.chain([NextBoot::LocalDisk]) {
                let chosen = planned == Some(&choice);
                if ui.selectable_label(chosen, choice.to_string()).clicked() && !chosen {
                    picked = Some(Some(choice));
                }
            }
        });
    });
    picked
}

fn table(ui: &mut Ui, view: &mut ClientsView, clients: &[&ClientRecord], now: u64) {
    let headers = [
        (SortColumn::Mac, "MAC (vendor)"),
        (SortColumn::Address, "IP"),
        (SortColumn::Arch, "Arch"),
        (SortColumn::Phase, "Phase"),
        (SortColumn::LastSeen, "Last seen"),
        (SortColumn::Transfer, "Current file"),
    ];
    TableBuilder::new(ui)
        .striped(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::auto().at_least(190.0).resizable(true))
        .column(Column::auto().at_least(110.0).resizable(true))
        .column(Column::auto().at_least(70.0))
        .column(Column::auto().at_least(110.0))
        .column(Column::auto().at_least(80.0))
        .column(Column::remainder().at_least(220.0))
        .header(ROW_HEIGHT, |mut header| {
            for (column, title) in headers {
                header.col(|ui| {
                    let arrow = match (view.sort == column, view.ascending) {
                        (true, true) => " ↑",
                        (true, false) => " ↓",
                        (false, _) => "",
                    };
                    if ui.button(format!("{title}{arrow}")).on_hover_text("Sort by this column").clicked() {
                        if view.sort == column {
                            view.ascending = !view.ascending;
                        } else {
                            view.sort = column;
                            view.ascending = true;
                        }
                    }
                });
            }
        })
        .body(|body| {
            body.rows(ROW_HEIGHT, clients.len(), |mut row| {
                let client = clients[row.index()];
                row.set_selected(view.selected_client == Some(client.mac));
                row.col(|ui| {
                    ui.label(mac_text(client));
                });
                row.col(|ui| {
                    ui.label(address_text(client));
                });
                row.col(|ui| {
                    ui.label(arch_text(client));
                });
                row.col(|ui| {
                    let tone = match client.phase {
                        ClientPhase::HandedOff => Tone::Ok,
                        ClientPhase::Ignored => Tone::Idle,
                        _ if client.diagnosis.is_some() => Tone::Error,
                        _ => Tone::Caution,
                    };
                    ui.label(style::toned(ui, tone, phase_label(client.phase)));
                });
                row.col(|ui| {
                    ui.label(style::ago(now, client.last_seen_ms));
                });
                row.col(|ui| match &client.transfer {
                    Some(transfer) => style::progress_cell(ui, transfer),
                    None => {
                        ui.label("-");
                    }
                });
                if row.response().clicked() {
                    view.selected_client =
                        if view.selected_client == Some(client.mac) { None } else { Some(client.mac) };
                }
            });
        });
}

fn details(ui: &mut Ui, client: &ClientRecord, now: u64) {
    ui.horizontal(|ui| {
        ui.strong(mac_text(client));
        if ui.button("Copy row").on_hover_text("Copy this client as text").clicked() {
            ui.ctx().copy_text(row_text(client, now));
        }
    });
    if let Some(class) = &client.vendor_class {
        ui.label(format!("Vendor class: {class}{}", if client.is_ipxe { " (iPXE)" } else { "" }));
    }
    match &client.diagnosis {
        Some(diagnosis) => {
            ui.label(style::toned(ui, Tone::Error, format!("Diagnosis: {diagnosis}")));
        }
        None => {
            ui.label(format!("Diagnosis: nothing wrong seen ({})", phase_label(client.phase)));
        }
    }
    if !client.completed.is_empty() {
        let files: Vec<String> =
            client.completed.iter().map(|(file, bytes)| format!("{file} ({})", style::bytes(*bytes))).collect();
        ui.label(format!("Sent: {}", files.join(", ")));
    }
    egui::ScrollArea::vertical().id_salt("timeline").max_height(120.0).show(ui, |ui| {
        for entry in client.timeline.iter().rev() {
            ui.label(format!("{:>10}  {}", style::ago(now, entry.at_ms), entry.text));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use portapxe_engine::clients::ClientRegistry;
    use portapxe_engine::events::{DhcpEvent, DhcpMessage, DhcpRole, EngineEvent, MacAddr};
    use portapxe_engine::pxe::ClientArch;

    fn client(last: u8, at: u64) -> ClientRecord {
        let mut registry = ClientRegistry::default();
        registry.apply(
            &EngineEvent::Dhcp(DhcpEvent {
                mac: MacAddr([0x52, 0x54, 0, 0, 0, last]),
                role: DhcpRole::Server,
                received: DhcpMessage::DISCOVER,
                answered: Some(DhcpMessage::OFFER),
                address: Some([10, 0, 0, last].into()),
                arch: Some(ClientArch::Bios),
                vendor_class: None,
                is_ipxe: false,
                boot: Some("undionly.kpxe".into()),
                reason: None,
                rule: None,
            }),
            at,
        );
        registry.snapshot(at).remove(0)
    }

    #[test]
    fn sorting_and_copy_text() {
        let (a, b) = (client(2, 1_000), client(1, 5_000));
        let mut rows = vec![&a, &b];
        sort_clients(&mut rows, SortColumn::Mac, true);
        assert_eq!(rows[0].mac, b.mac);
        sort_clients(&mut rows, SortColumn::LastSeen, true);
        assert_eq!(rows[0].mac, a.mac);
        let text = row_text(&a, 4_000);
        assert!(text.starts_with("52:54:00:00:00:02"), "{text}");
        assert!(text.contains("\tBIOS\toffered\t-\t3 s ago"), "{text}");
    }
}
