//! The window: one [`PortaApp`] holding the config being edited, the view state,
//! and the [`EngineHandle`]. Each frame draws from the handle's snapshot; anything
//! slow (start, scan, file dialogs, validation, saving) is a command or a task.

use std::path::PathBuf;
use std::time::Duration;

use egui::{Context, Id, Modal, Ui, ViewportCommand};
use portapxe_engine::StartOptions;
use portapxe_engine::config::{Config, Mode};

use super::diagnostics::{self, Diagnostics};
use super::dialogs::{self, DialogSupport, Picked};
use super::engine_handle::{Command, EngineHandle, Pending, RunState, ScanState, UiSnapshot};
use super::images::add_files;
use super::panels;
pub use super::panels::clients::SortColumn;
pub use super::panels::log::ExportOutcome;
pub use super::panels::{Tab, ViewState};
use super::style::SPACING;

/// How long "Scan now" listens for answers.
pub const SCAN_TIME: Duration = Duration::from_secs(3);

pub struct PortaApp {
    handle: EngineHandle,
    config: Config,
    pub view: ViewState,
    /// The config last sent for validation, so it is checked once per change.
    validating: Option<Config>,
    title: String,
    dialogs: DialogSupport,
}

impl PortaApp {
    pub fn new(ctx: &Context, handle: EngineHandle, config: Config) -> Self {
        handle.set_repaint(ctx);
        super::style::install(ctx);
        let view = ViewState {
            tab: Tab::Clients,
            clients: panels::clients::ClientsView::default(),
            log: panels::log::LogView::default(),
            settings: panels::settings::SettingsView::from_config(&config),
            boot: panels::boot::BootView::default(),
            dismissed_gate: None,
            imaging: panels::imaging::ImagingDraft::default(),
        };
        Self { handle, config, view, validating: None, title: String::new(), dialogs: DialogSupport::detect() }
    }

    /// Whether file dialogs can open (found at creation; tests set it).
    pub fn set_dialog_support(&mut self, support: DialogSupport) {
        self.dialogs = support;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    pub fn handle(&self) -> &EngineHandle {
        &self.handle
    }

    /// Files from the dialog or dropped on the window.
    pub fn add_files(&mut self, files: &[PathBuf]) {
        let report = add_files(&mut self.config, files);
        self.view.boot.add_report = Some(report);
        self.view.tab = Tab::BootImages;
    }

    /// The window title for the engine's state.
    pub fn title_for(snapshot: &UiSnapshot, config: &Config) -> String {
        match (snapshot.state, &snapshot.status) {
            (RunState::Running, Some(status)) => format!("PortaPXE — serving on {}", status.interface),
            (RunState::Starting, _) => format!("PortaPXE — starting on {}…", config.interface),
            (RunState::Stopping, _) => "PortaPXE — stopping…".to_string(),
            _ if snapshot.last_error.is_some() => "PortaPXE — could not start".to_string(),
            _ => "PortaPXE — stopped".to_string(),
        }
    }

    fn poll_tasks(&mut self, ctx: &Context) {
        if let Some(result) = self.view.boot.pick_files.as_ref().and_then(Pending::poll) {
            self.view.boot.pick_files = None;
            match result {
                Picked::Chosen(files) => self.add_files(&files),
                Picked::Cancelled => {}
                Picked::Unavailable(why) => {
                    self.view.boot.dialog_problem = Some(format!(
                        "{why}. Meanwhile, drop the files on this window, or type a file's path below and press Add."
                    ));
                }
            }
        }
        if let Some(result) = self.view.boot.pick_folder.as_ref().and_then(Pending::poll) {
            self.view.boot.pick_folder = None;
            match result {
                Picked::Chosen(folder) => self.config.root = folder,
                Picked::Cancelled => {}
                Picked::Unavailable(why) => {
                    self.view.boot.dialog_problem =
                        Some(format!("{why}. Meanwhile, type the boot folder's path in the Boot folder field."));
                }
            }
        }
        if let Some(outcome) = self.view.log.export.as_ref().and_then(Pending::poll) {
            self.view.log.export = None;
            self.view.log.exported = Some(outcome);
        }
        let dropped: Vec<PathBuf> =
            ctx.input(|input| input.raw.dropped_files.iter().map(|file| file.path().to_path_buf()).collect());
        if !dropped.is_empty() {
            self.add_files(&dropped);
        }
    }

    fn request_validation(&mut self) {
        if self.validating.as_ref() != Some(&self.config) {
            self.validating = Some(self.config.clone());
            self.handle.send(Command::Validate(Box::new(self.config.clone())));
        }
    }

    pub fn open_file_dialog(&mut self) {
        self.view.boot.dialog_problem = None;
        let mut dialog = rfd::AsyncFileDialog::new()
            .set_title("Add boot images")
            .add_filter("Boot images", &["iso", "ipxe", "efi", "kpxe", "pxe", "0", "img", "gz", "xz", "cpio", "lkrn"]);
        if self.config.root.is_absolute() {
            dialog = dialog.set_directory(&self.config.root);
        }
        let support = self.dialogs.clone();
        self.view.boot.pick_files = Some(self.handle.spawn_task(async move {
            let picked = dialogs::pick(&support, async move { dialog.pick_files().await }).await;
            match picked {
                Picked::Chosen(files) => Picked::Chosen(files.into_iter().map(|f| f.path().to_path_buf()).collect()),
                Picked::Cancelled => Picked::Cancelled,
                Picked::Unavailable(why) => Picked::Unavailable(why),
            }
        }));
    }

    pub fn open_folder_dialog(&mut self) {
        self.view.boot.dialog_problem = None;
        let dialog = rfd::AsyncFileDialog::new().set_title("Boot folder (served over TFTP and HTTP)");
        let support = self.dialogs.clone();
        self.view.boot.pick_folder = Some(self.handle.spawn_task(async move {
            match dialogs::pick(&support, async move { dialog.pick_folder().await }).await {
                Picked::Chosen(folder) => Picked::Chosen(folder.path().to_path_buf()),
                Picked::Cancelled => Picked::Cancelled,
                Picked::Unavailable(why) => Picked::Unavailable(why),
            }
        }));
    }

    /// The path typed in the boot images panel, added as if it had been picked.
    pub fn add_typed_path(&mut self) {
        let typed = self.view.boot.add_path.trim();
        if typed.is_empty() {
            return;
        }
        let path = PathBuf::from(typed);
        let path = if path.is_relative() { self.config.root.join(path) } else { path };
        self.add_files(&[path]);
        self.view.boot.add_path.clear();
    }

    /// "Export diagnostics": asks where (rfd's save dialog; without one, a dated file
    /// in the data folder), then writes the zip on the engine thread's runtime.
    pub fn export_diagnostics(&mut self) {
        if self.view.log.export.is_some() {
            return;
        }
        let diagnostics = Diagnostics::from_snapshot(&self.handle.snapshot(), &self.config);
        let file_name = format!("portapxe-diagnostics-{}.zip", diagnostics::stamp(diagnostics.taken_ms));
        let fallback = self.handle.data_dir().map(|dir| diagnostics::default_path(dir, diagnostics.taken_ms));
        let mut dialog = rfd::AsyncFileDialog::new()
            .set_title("Export diagnostics")
            .set_file_name(&file_name)
            .add_filter("Zip archive", &["zip"]);
        if let Some(dir) = self.handle.data_dir() {
            dialog = dialog.set_directory(dir);
        }
        let support = self.dialogs.clone();
        self.view.log.exported = None;
        self.view.log.export = Some(self.handle.spawn_task(async move {
            let (path, note) = match dialogs::pick(&support, async move { dialog.save_file().await }).await {
                Picked::Chosen(file) => (file.path().to_path_buf(), None),
                Picked::Cancelled => return ExportOutcome::Cancelled,
                Picked::Unavailable(why) => match fallback {
                    Some(path) => (path, Some(format!("{why}; written to the data folder instead"))),
                    None => return ExportOutcome::Failed(format!("{why}, and this system has no data folder")),
                },
            };
            let written = path.clone();
            match tokio::task::spawn_blocking(move || diagnostics.write_zip(&written)).await {
                Ok(Ok(())) => ExportOutcome::Written { path, note },
                Ok(Err(err)) => ExportOutcome::Failed(err.to_string()),
                Err(err) => ExportOutcome::Failed(format!("the export stopped: {err}")),
            }
        }));
    }

    /// Draws one frame. Reads the snapshot (locked for the frame) and sends commands.
    pub fn draw(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        self.poll_tasks(&ctx);
        self.request_validation();
        let mut actions = Vec::new();
        {
            let mut snapshot = self.handle.snapshot();
            let title = Self::title_for(&snapshot, &self.config);
            if title != self.title {
                ctx.send_viewport_cmd(ViewportCommand::Title(title.clone()));
                self.title = title;
            }
            let mut panel = panels::PanelCtx {
                snapshot: &mut snapshot,
                config: &mut self.config,
                view: &mut self.view,
                actions: &mut actions,
            };
            egui::Panel::top("top_bar").show(ui, |ui| {
                ui.add_space(SPACING / 2.0);
                panels::top_bar::show(ui, &mut panel);
                panels::conflicts::show(ui, &mut panel);
                ui.add_space(SPACING / 2.0);
            });
            egui::Panel::bottom("log").resizable(true).default_size(160.0).show(ui, |ui| {
                panels::log::show(ui, &mut panel);
            });
            egui::CentralPanel::default().show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut panel.view.tab, Tab::Clients, "Clients");
                    ui.selectable_value(&mut panel.view.tab, Tab::BootImages, "Boot images");
                    ui.selectable_value(&mut panel.view.tab, Tab::Imaging, "Imaging");
                    ui.selectable_value(&mut panel.view.tab, Tab::Settings, "Settings");
                });
                ui.separator();
                match panel.view.tab {
                    Tab::Clients => panels::clients::show(ui, &mut panel),
                    Tab::BootImages => panels::boot::show(ui, &mut panel),
                    Tab::Imaging => panels::imaging::show(ui, &mut panel),
                    Tab::Settings => panels::settings::show(ui, &mut panel),
                }
            });
            safety_gate(&ctx, &mut panel);
            drop_overlay(&ctx);
            let busy = matches!(snapshot.state, RunState::Starting | RunState::Stopping | RunState::Running)
                || matches!(snapshot.scan, ScanState::Running { .. })
                || self.view.log.export.is_some();
            if busy {
                // "Last seen" ages and spinners move on even without new events.
                ctx.request_repaint_after(Duration::from_millis(250));
            }
        }
        self.apply(actions);
    }

    fn apply(&mut self, actions: Vec<panels::Action>) {
        use panels::Action;
        for action in actions {
            match action {
                Action::Start => self.start(),
                Action::Stop => self.handle.send(Command::Stop),
                Action::Scan => {
                    self.handle.send(Command::Scan { interface: self.config.interface.clone(), listen: SCAN_TIME })
                }
                Action::Save => self.handle.send(Command::Save(Box::new(self.config.clone()))),
                Action::RefreshInterfaces => self.handle.send(Command::RefreshInterfaces),
                Action::PickFiles => self.open_file_dialog(),
                Action::PickFolder => self.open_folder_dialog(),
                Action::AddPath => self.add_typed_path(),
                Action::Export => self.export_diagnostics(),
                Action::Imaging(command) => self.handle.send(Command::Imaging(command)),
                Action::NextBoot { mac, boot } => self.handle.send(Command::NextBoot { mac, boot }),
            }
        }
    }

    /// Saves the config and starts the engine with it (off the UI thread).
    pub fn start(&mut self) {
        self.handle.snapshot().state = RunState::Starting;
        self.handle.send(Command::Save(Box::new(self.config.clone())));
        self.handle.send(Command::Start { config: Box::new(self.config.clone()), options: StartOptions::default() });
    }

    pub fn stop(&mut self) {
        self.handle.send(Command::Stop);
    }
}

/// While files are dragged over the window: say what dropping them does.
fn drop_overlay(ctx: &Context) {
    if ctx.input(|input| input.raw.hovered_files.is_empty()) {
        return;
    }
    let rect = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, Id::unique("drop_overlay")));
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(170));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop to add boot images (kernel + initrd, ISO, iPXE script, loaders)",
        egui::FontId::proportional(22.0),
        egui::Color32::WHITE,
    );
}

/// Full DHCP refused because another DHCP server answers: offer proxy mode.
fn safety_gate(ctx: &Context, panel: &mut panels::PanelCtx<'_>) {
    let Some(failure) = panel.snapshot.last_error.as_ref().filter(|f| !f.foreign_servers.is_empty()) else {
        return;
    };
    if panel.view.dismissed_gate.as_deref() == Some(failure.message.as_str()) {
        return;
    }
    let message = failure.message.clone();
    let servers: Vec<String> = failure.foreign_servers.iter().map(|s| s.describe()).collect();
    let mut close = false;
    Modal::new(Id::unique("safety_gate")).show(ctx, |ui| {
        ui.set_max_width(520.0);
        ui.heading("Another DHCP server is on this network");
        ui.add_space(SPACING);
        for server in &servers {
            ui.label(format!("• {server}"));
        }
        ui.add_space(SPACING);
        ui.label(
            "Starting a second DHCP server would break this network. In proxy mode PortaPXE leaves addresses \
             to that server and only tells booting machines where to find their boot files.",
        );
        ui.add_space(SPACING);
        ui.horizontal(|ui| {
            if ui.button("Use proxy mode").clicked() {
                panel.config.mode = Mode::Proxy;
                close = true;
            }
            if ui.button("Keep full DHCP (do not start)").clicked() {
                close = true;
            }
        });
    });
    if close {
        panel.view.dismissed_gate = Some(message);
    }
}

impl eframe::App for PortaApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.draw(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // Restored at the next launch.
        self.handle.send(Command::Save(Box::new(self.config.clone())));
    }
}
