//! Settings: address pool, lease time, router and DNS, ports, TFTP limits and
//! client rules. Text that must parse (addresses, MAC patterns) keeps what was
//! typed and says what is wrong in the engine's words; everything else is checked
//! by the engine's own validation, shown under the field it names.

use std::net::Ipv4Addr;

use egui::Ui;
use portapxe_engine::config::{Config, PoolRange};
use portapxe_engine::rules::{ArchMatch, ClientRule, MacPattern};

use super::{Action, PanelCtx, field_errors};
use crate::gui::engine_handle::RunState;
use crate::gui::style::{self, SPACING, Tone};

/// The settings panel's view: what is typed into its fields, and the client rules being
/// written or edited.
pub struct SettingsView {
    pub texts: SettingsTexts,
    pub new_rule: RuleDraft,
    /// The per-client rule being edited in place, if any.
    pub editing_rule: Option<RuleEdit>,
}

impl SettingsView {
    pub fn from_config(config: &Config) -> Self {
        Self { texts: SettingsTexts::from_config(config), new_rule: RuleDraft::default(), editing_rule: None }
    }
}

/// What was typed into the fields that must parse, and why it does not.
#[derive(Debug, Clone, Default)]
pub struct SettingsTexts {
    pub pool: String,
    pub router: String,
    pub dns: String,
    pub allow: String,
    pub deny: String,
    pub pool_error: Option<String>,
    pub router_error: Option<String>,
    pub dns_error: Option<String>,
    pub allow_error: Option<String>,
    pub deny_error: Option<String>,
}

impl SettingsTexts {
    pub fn from_config(config: &Config) -> Self {
        let join = |items: Vec<String>| items.join(", ");
        Self {
            pool: config.dhcp.pool.map(|p| p.to_string()).unwrap_or_default(),
            router: config.dhcp.router.map(|r| r.to_string()).unwrap_or_default(),
            dns: join(config.dhcp.dns.iter().map(ToString::to_string).collect()),
            allow: join(config.rules.allow.iter().map(ToString::to_string).collect()),
            deny: join(config.rules.deny.iter().map(ToString::to_string).collect()),
            ..Self::default()
        }
    }
}

/// The per-client rule being composed.
#[derive(Debug, Clone, Default)]
pub struct RuleDraft {
    pub mac: String,
    pub arch: Option<ArchMatch>,
    pub vendor_class: String,
    pub action: RuleAction,
    pub value: String,
    pub error: Option<String>,
}

/// A per-client rule open for editing in place: the fields write straight into the
/// config (so the engine's validation speaks under the rule), except the MAC, which
/// changes the rule only once it parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEdit {
    pub index: usize,
    pub mac: String,
    pub mac_error: Option<String>,
}

impl RuleEdit {
    pub fn of(index: usize, rule: &ClientRule) -> Self {
        Self { index, mac: rule.mac.as_ref().map(ToString::to_string).unwrap_or_default(), mac_error: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleAction {
    #[default]
    Ignore,
    BootFile,
    Entry,
}

fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty())
}

fn parse_list<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, String>
where
    T::Err: ToString,
{
    items(text).map(|item| item.parse::<T>().map_err(|err| err.to_string())).collect()
}

fn parse_ip_list(text: &str) -> Result<Vec<Ipv4Addr>, String> {
    items(text).map(|item| item.parse().map_err(|_| format!("`{item}` is not an IPv4 address"))).collect()
}

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let editable = panel.snapshot.state == RunState::Stopped;
    egui::ScrollArea::vertical().id_salt("settings_scroll").show(ui, |ui| {
        ui.add_enabled_ui(editable, |ui| {
            dhcp(ui, panel);
            ui.add_space(SPACING);
            ports(ui, panel);
            ui.add_space(SPACING);
            rules(ui, panel);
        });
        if !editable {
            ui.label("Stop serving to change the settings.");
        }
        ui.add_space(SPACING);
        ui.horizontal(|ui| {
            if ui.button("Save settings").clicked() {
                panel.actions.push(Action::Save);
            }
            match &panel.snapshot.saved {
                Some(Ok(path)) => {
                    ui.label(format!("Saved to {} (also saved at every Start).", path.display()));
                }
                Some(Err(message)) => {
                    ui.label(style::toned(ui, Tone::Error, message));
                }
                None => {
                    ui.label("Settings are saved at every Start and when the window closes.");
                }
            }
        });
    });
}

/// A text field whose content must parse; the config changes only when it does.
fn parsed_field(
    ui: &mut Ui,
    label: &str,
    hint: &str,
    text: &mut String,
    error: &mut Option<String>,
    mut apply: impl FnMut(&str) -> Result<(), String>,
) {
    let response =
        style::labelled(ui, label, |ui| ui.add(egui::TextEdit::singleline(text).hint_text(hint).desired_width(260.0)));
    if response.changed() {
        *error = apply(text).err();
    }
}

fn dhcp(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.strong("DHCP (full DHCP mode)");
    let texts = &mut panel.view.settings.texts;
    let config = &mut *panel.config;
    egui::Grid::new("dhcp_settings").num_columns(2).show(ui, |ui| {
        parsed_field(
            ui,
            "Address pool",
            "automatic: upper half of the subnet",
            &mut texts.pool,
            &mut texts.pool_error,
            |t| {
                config.dhcp.pool = if t.trim().is_empty() { None } else { Some(t.trim().parse::<PoolRange>()?) };
                Ok(())
            },
        );
        ui.end_row();
        style::labelled(ui, "Lease time (s)", |ui| {
            ui.add(egui::DragValue::new(&mut config.dhcp.lease_time_secs).range(0..=604_800))
        });
        ui.end_row();
        parsed_field(ui, "Router", "none", &mut texts.router, &mut texts.router_error, |t| {
            config.dhcp.router = parse_ip_list(t)?.first().copied();
            Ok(())
        });
        ui.end_row();
        parsed_field(ui, "DNS servers", "none, or 1.1.1.1, 9.9.9.9", &mut texts.dns, &mut texts.dns_error, |t| {
            config.dhcp.dns = parse_ip_list(t)?;
            Ok(())
        });
        ui.end_row();
    });
    for error in [&texts.pool_error, &texts.router_error, &texts.dns_error].into_iter().flatten() {
        ui.label(style::toned(ui, Tone::Error, error));
    }
    field_errors(ui, &panel.errors_for("dhcp"));
    ui.checkbox(&mut panel.config.dhcp.answer_router_solicitations, "Tell iPXE there is no IPv6 router here")
        .on_hover_text(
            "Answers IPv6 router solicitations with \"no router here\" (no address, no route), so iPXE does not \
             wait about 13 s for IPv6 before it boots. Full DHCP mode only.",
        );
}

fn ports(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.strong("Ports and transfers");
    let config = &mut *panel.config;
    egui::Grid::new("port_settings").num_columns(2).show(ui, |ui| {
        style::labelled(ui, "DHCP port", |ui| ui.add(egui::DragValue::new(&mut config.dhcp.port)));
        ui.end_row();
        style::labelled(ui, "PXE boot server port (proxy)", |ui| {
            ui.add(egui::DragValue::new(&mut config.dhcp.boot_server_port))
        });
        ui.end_row();
        ui.checkbox(&mut config.tftp.enabled, "TFTP");
        style::labelled(ui, "TFTP port", |ui| ui.add(egui::DragValue::new(&mut config.tftp.port)));
        ui.end_row();
        ui.checkbox(&mut config.http.enabled, "HTTP");
        style::labelled(ui, "HTTP port", |ui| ui.add(egui::DragValue::new(&mut config.http.port)));
        ui.end_row();
        style::labelled(ui, "TFTP largest block (bytes)", |ui| {
            ui.add(egui::DragValue::new(&mut config.tftp.block_size_limit))
        });
        ui.end_row();
        style::labelled(ui, "TFTP largest window (blocks)", |ui| {
            ui.add(egui::DragValue::new(&mut config.tftp.window_size_limit))
        });
        ui.end_row();
    });
    field_errors(ui, &panel.errors_for("tftp"));
    field_errors(ui, &panel.errors_for("http"));
}

fn rules(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.strong("Which machines boot");
    let texts = &mut panel.view.settings.texts;
    let config = &mut *panel.config;
    egui::Grid::new("mac_rules").num_columns(2).show(ui, |ui| {
        parsed_field(
            ui,
            "Only these MACs (or OUI prefixes)",
            "empty: every machine",
            &mut texts.allow,
            &mut texts.allow_error,
            |t| {
                config.rules.allow = parse_list::<MacPattern>(t)?;
                Ok(())
            },
        );
        ui.end_row();
        parsed_field(ui, "Never these MACs", "none", &mut texts.deny, &mut texts.deny_error, |t| {
            config.rules.deny = parse_list::<MacPattern>(t)?;
            Ok(())
        });
        ui.end_row();
    });
    for error in [&texts.allow_error, &texts.deny_error].into_iter().flatten() {
        ui.label(style::toned(ui, Tone::Error, error));
    }
    ui.add_space(SPACING / 2.0);
    ui.label("Per-client rules (the first that matches wins):");
    if panel.view.settings.editing_rule.as_ref().is_some_and(|edit| edit.index >= panel.config.rules.clients.len()) {
        panel.view.settings.editing_rule = None;
    }
    let mut removed = None;
    for index in 0..panel.config.rules.clients.len() {
        let errors = panel.errors_for(&format!("rules.client[{index}]"));
        ui.push_id(("client_rule", index), |ui| {
            let editing = panel.view.settings.editing_rule.as_ref().is_some_and(|edit| edit.index == index);
            let rule = &panel.config.rules.clients[index];
            ui.horizontal(|ui| {
                ui.label(format!("{}. {}{}", index + 1, rule.describe(), if rule.ignore { " → ignore" } else { "" }));
                if editing {
                    if ui.button("Done").on_hover_text("Close the rule's fields").clicked() {
                        panel.view.settings.editing_rule = None;
                    }
                } else if ui.button("Edit").on_hover_text("Change this rule in place").clicked() {
                    panel.view.settings.editing_rule = Some(RuleEdit::of(index, rule));
                }
                if ui.button("Remove").clicked() {
                    removed = Some(index);
                }
            });
            if let Some(edit) = panel.view.settings.editing_rule.as_mut().filter(|edit| edit.index == index) {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    rule_editor(ui, edit, &mut panel.config.rules.clients[index]);
                });
            }
            field_errors(ui, &errors);
        });
    }
    if let Some(index) = removed {
        panel.config.rules.clients.remove(index);
        panel.view.settings.editing_rule = None;
    }
    rule_draft(ui, panel);
}

/// The fields of one rule, written into it as they change.
fn rule_editor(ui: &mut Ui, edit: &mut RuleEdit, rule: &mut ClientRule) {
    egui::Grid::new("rule_editor").num_columns(2).show(ui, |ui| {
        let mac = style::labelled(ui, "Rule MAC", |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut edit.mac).hint_text("any, or 52:54:00 for an OUI").desired_width(180.0),
            )
        });
        if mac.changed() {
            match edit.mac.trim() {
                "" => {
                    rule.mac = None;
                    edit.mac_error = None;
                }
                text => match text.parse::<MacPattern>() {
                    Ok(pattern) => {
                        rule.mac = Some(pattern);
                        edit.mac_error = None;
                    }
                    Err(err) => edit.mac_error = Some(err.to_string()),
                },
            }
        }
        ui.end_row();
        ui.label("Rule firmware");
        egui::ComboBox::from_id_salt("rule_firmware").selected_text(arch_label(rule.arch)).show_ui(ui, |ui| {
            for arch in ARCHES {
                ui.selectable_value(&mut rule.arch, arch, arch_label(arch));
            }
        });
        ui.end_row();
        optional_field(ui, "Rule vendor class starts with", "any", &mut rule.vendor_class);
        ui.end_row();
        ui.label("");
        ui.checkbox(&mut rule.ignore, "Ignore matching clients (no answer at all)");
        ui.end_row();
        optional_field(ui, "Rule boot file", "per-firmware default", &mut rule.boot_file);
        ui.end_row();
        optional_field(ui, "Rule menu entry", "the menu", &mut rule.entry);
        ui.end_row();
    });
    if let Some(error) = &edit.mac_error {
        ui.label(style::toned(ui, Tone::Error, error));
    }
}

/// A text field for an optional value: empty means none.
fn optional_field(ui: &mut Ui, label: &str, hint: &str, slot: &mut Option<String>) {
    let mut text = slot.clone().unwrap_or_default();
    let response = style::labelled(ui, label, |ui| {
        ui.add(egui::TextEdit::singleline(&mut text).hint_text(hint).desired_width(180.0))
    });
    if response.changed() {
        *slot = (!text.trim().is_empty()).then(|| text.trim().to_string());
    }
}

const ARCHES: [Option<ArchMatch>; 7] = [
    None,
    Some(ArchMatch::Bios),
    Some(ArchMatch::UefiX64),
    Some(ArchMatch::UefiArm64),
    Some(ArchMatch::UefiIa32),
    Some(ArchMatch::UefiArm32),
    Some(ArchMatch::UefiHttp),
];

fn arch_label(arch: Option<ArchMatch>) -> &'static str {
    match arch {
        None => "any firmware",
        Some(ArchMatch::Bios) => "BIOS",
        Some(ArchMatch::UefiIa32) => "UEFI IA32",
        Some(ArchMatch::UefiX64) => "UEFI x64",
        Some(ArchMatch::UefiArm32) => "UEFI ARM32",
        Some(ArchMatch::UefiArm64) => "UEFI ARM64",
        Some(ArchMatch::UefiHttp) => "UEFI HTTP boot",
    }
}

/// Builds a rule from the draft, or says what is wrong with it.
pub fn build_rule(draft: &RuleDraft) -> Result<ClientRule, String> {
    let mac = match draft.mac.trim() {
        "" => None,
        text => Some(text.parse::<MacPattern>().map_err(|err| err.to_string())?),
    };
    let value = draft.value.trim();
    let mut rule = ClientRule {
        mac,
        arch: draft.arch,
        vendor_class: (!draft.vendor_class.trim().is_empty()).then(|| draft.vendor_class.trim().to_string()),
        ..ClientRule::default()
    };
    match draft.action {
        RuleAction::Ignore => rule.ignore = true,
        RuleAction::BootFile if value.is_empty() => return Err("name the boot file this rule hands out".into()),
        RuleAction::BootFile => rule.boot_file = Some(value.to_string()),
        RuleAction::Entry if value.is_empty() => return Err("name the menu entry this rule boots".into()),
        RuleAction::Entry => rule.entry = Some(value.to_string()),
    }
    Ok(rule)
}

fn rule_draft(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let draft = &mut panel.view.settings.new_rule;
    ui.horizontal_wrapped(|ui| {
        style::labelled(ui, "MAC", |ui| {
            ui.add(egui::TextEdit::singleline(&mut draft.mac).hint_text("any").desired_width(140.0))
        });
        egui::ComboBox::from_label("Firmware").selected_text(arch_label(draft.arch)).show_ui(ui, |ui| {
            for arch in ARCHES {
                ui.selectable_value(&mut draft.arch, arch, arch_label(arch));
            }
        });
        style::labelled(ui, "Vendor class starts with", |ui| {
            ui.add(egui::TextEdit::singleline(&mut draft.vendor_class).hint_text("any").desired_width(120.0))
        });
        let action_label = |a: RuleAction| match a {
            RuleAction::Ignore => "ignore",
            RuleAction::BootFile => "boot file",
            RuleAction::Entry => "menu entry",
        };
        egui::ComboBox::from_label("Then").selected_text(action_label(draft.action)).show_ui(ui, |ui| {
            for action in [RuleAction::Ignore, RuleAction::BootFile, RuleAction::Entry] {
                ui.selectable_value(&mut draft.action, action, action_label(action));
            }
        });
        if draft.action != RuleAction::Ignore {
            style::labelled(ui, "Value", |ui| {
                ui.add(egui::TextEdit::singleline(&mut draft.value).desired_width(140.0))
            });
        }
        if ui.button("Add rule").clicked() {
            match build_rule(draft) {
                Ok(rule) => {
                    panel.config.rules.clients.push(rule);
                    *draft = RuleDraft::default();
                }
                Err(message) => draft.error = Some(message),
            }
        }
    });
    if let Some(error) = &panel.view.settings.new_rule.error {
        ui.label(style::toned(ui, Tone::Error, error));
    }
}
