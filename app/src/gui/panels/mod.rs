//! One module per part of the window. Each `show` draws from the snapshot and the
//! config, edits only the config and the view, and asks for anything slow through
//! [`Actions`], which the app carries out after the frame.

pub mod boot;
pub mod clients;
pub mod conflicts;
pub mod imaging;
pub mod log;
pub mod settings;
pub mod top_bar;

use portapxe_engine::config::Config;
use portapxe_engine::events::{MacAddr, NextBoot};

use super::app::ViewState;
use super::engine_handle::UiSnapshot;

/// What a panel asked for this frame.
#[derive(Debug, Default, Clone)]
pub struct Actions {
    pub start: bool,
    pub stop: bool,
    pub scan: bool,
    pub save: bool,
    pub refresh_interfaces: bool,
    pub pick_files: bool,
    pub pick_folder: bool,
    /// Add the path typed in the boot images panel.
    pub add_path: bool,
    /// Export diagnostics (config, log, status, capture) to a zip.
    pub export: bool,
    /// Imaging commands, in the order asked.
    pub imaging: Vec<crate::gui::imaging_state::ImagingCommand>,
    /// A machine's next network boot planned (`None`: as usual, its menu).
    pub next_boot: Option<(MacAddr, Option<NextBoot>)>,
}

/// What every panel works on during one frame.
pub struct PanelCtx<'a> {
    pub snapshot: &'a mut UiSnapshot,
    pub config: &'a mut Config,
    pub view: &'a mut ViewState,
    pub actions: &'a mut Actions,
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
