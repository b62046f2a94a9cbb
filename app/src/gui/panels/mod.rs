//! One module per part of the window. Each `show` draws from the snapshot and the
//! config, edits only the config and the view, and asks for anything slow through
//! [`Action`]s, which the app carries out after the frame.

pub mod boot;
pub mod clients;
pub mod conflicts;
pub mod imaging;
pub mod log;
pub mod settings;
pub mod top_bar;

use portapxe_engine::config::Config;
use portapxe_engine::events::{MacAddr, NextBoot};

use super::engine_handle::UiSnapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Clients,
    BootImages,
    Imaging,
    Settings,
}

/// What the person chose to look at, each panel's own part in its own struct; none of
/// it is engine state.
pub struct ViewState {
    pub tab: Tab,
    pub clients: clients::ClientsView,
    pub log: log::LogView,
    pub settings: settings::SettingsView,
    pub boot: boot::BootView,
    /// The start failure whose safety-gate dialog was closed (so it does not come back).
    pub dismissed_gate: Option<String>,
    /// The imaging tab's fields.
    pub imaging: imaging::ImagingDraft,
}

/// What a panel asked for this frame, carried out by the app after the frame in the
/// order asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Start,
    Stop,
    Scan,
    Save,
    RefreshInterfaces,
    PickFiles,
    PickFolder,
    /// Add the path typed in the boot images panel.
    AddPath,
    /// Export diagnostics (config, log, status, capture) to a zip.
    Export,
    Imaging(crate::gui::imaging_state::ImagingCommand),
    /// Plan a machine's next network boot (`None`: as usual, its menu).
    NextBoot {
        mac: MacAddr,
        boot: Option<NextBoot>,
    },
}

/// What every panel works on during one frame.
pub struct PanelCtx<'a> {
    pub snapshot: &'a mut UiSnapshot,
    pub config: &'a mut Config,
    pub view: &'a mut ViewState,
    pub actions: &'a mut Vec<Action>,
}

impl PanelCtx<'_> {
    /// The engine's validation messages for `field` (and its sub-fields), if they are
    /// about the config as it is now.
    pub fn errors_for(&self, field: &str) -> Vec<String> {
        let Some(validation) = &self.snapshot.validation else { return Vec::new() };
        if &validation.config != self.config {
            return Vec::new();
        }
        validation
            .errors
            .iter()
            .filter(|e| {
                e.field == field
                    || e.field.starts_with(&format!("{field}."))
                    || e.field.starts_with(&format!("{field}["))
            })
            .map(|e| e.message.clone())
            .collect()
    }

    /// The engine's check of the config as it is now (`None`: not checked yet).
    pub fn validation(&self) -> Option<&crate::gui::engine_handle::Validation> {
        self.snapshot.validation.as_ref().filter(|v| &v.config == self.config)
    }

    /// Every validation error for the current config (`None`: not checked yet).
    pub fn all_errors(&self) -> Option<Vec<String>> {
        let validation = self.snapshot.validation.as_ref().filter(|v| &v.config == self.config)?;
        Some(validation.errors.iter().map(|e| format!("{}: {}", e.setting(), e.message)).collect())
    }
}

/// Red lines under a field, one per message.
pub fn field_errors(ui: &mut egui::Ui, messages: &[String]) {
    for message in messages {
        ui.label(super::style::toned(ui, super::style::Tone::Error, message));
    }
}
