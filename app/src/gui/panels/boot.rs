//! Boot images: the boot folder, files added by dialog or drop, the per-architecture
//! loaders, the menu entries (reorder, rename, remove) and the generated iPXE menu
//! as the clients will get it.

use std::path::PathBuf;

use egui::Ui;
use portapxe_engine::SignedChain;
use portapxe_engine::config::{BootEntry, Config, IsoLoader, UefiLoader};
use portapxe_engine::ipxe::generate_script;
use portapxe_engine::iso::IsoPlans;

use super::{Action, PanelCtx, field_errors};
use crate::gui::dialogs::Picked;
use crate::gui::engine_handle::Pending;
use crate::gui::engine_handle::RunState;
use crate::gui::images::{AddReport, move_entry};
use crate::gui::style::{self, SPACING, Tone};

/// The boot images panel's view: the path typed to add, file dialogs under way or why
/// they cannot open, and what the last addition did.
#[derive(Default)]
pub struct BootView {
    pub add_report: Option<AddReport>,
    pub pick_files: Option<Pending<Picked<Vec<PathBuf>>>>,
    pub pick_folder: Option<Pending<Picked<PathBuf>>>,
    /// Why the last file dialog could not open, with what to do instead.
    pub dialog_problem: Option<String>,
    /// A file or folder path typed in the boot images panel, to add without a dialog.
    pub add_path: String,
}

pub fn show(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    let editable = panel.snapshot.state == RunState::Stopped;
    egui::ScrollArea::vertical().id_salt("boot_scroll").show(ui, |ui| {
        ui.add_enabled_ui(editable, |ui| edit(ui, panel));
        if !editable {
            ui.label("Stop serving to change the boot images.");
        }
        ui.add_space(SPACING);
        egui::CollapsingHeader::new("Generated iPXE menu").default_open(true).show(ui, |ui| {
            let mut script = preview(panel.config, panel.snapshot);
            ui.add(
                egui::TextEdit::multiline(&mut script)
                    .code_editor()
                    .interactive(false)
                    .desired_width(f32::INFINITY)
                    .desired_rows(8),
            );
        });
    });
}

/// The script iPXE clients will get, with the server address as it is (or will be).
pub fn preview(config: &Config, snapshot: &crate::gui::engine_handle::UiSnapshot) -> String {
    if let Some(script) = &config.boot.ipxe_script {
        return format!("# iPXE clients get your script {script} instead of a generated menu.");
    }
    let server = snapshot
        .status
        .as_ref()
        .map(|s| s.server_ip.to_string())
        .or_else(|| {
            let interfaces = snapshot.interfaces.as_deref().unwrap_or_default();
            let found = interfaces.iter().find(|i| i.name == config.interface)?;
            found.ipv4.first().map(|(ip, _)| ip.to_string())
        })
        .unwrap_or_else(|| "SERVER".to_string());
    let base = match (config.http.enabled, config.http.port) {
        (true, 80) => format!("http://{server}"),
        (true, port) => format!("http://{server}:{port}"),
        (false, _) => format!("tftp://{server}"),
    };
    // What boots each ISO, from the images the last check read (an image not read yet is
    // previewed as `sanboot`).
    let mut isos = IsoPlans::default();
    if let Some(validation) = snapshot.validation.as_ref().filter(|v| v.config == *config) {
        for (entry, mounted) in config.boot.entries.iter().zip(&validation.iso_images) {
            if let (BootEntry::Iso { image, append, .. }, Some(Ok(mounted))) = (entry, mounted) {
                isos.insert(image.clone(), mounted.plan(&base, append));
            }
        }
    }
    generate_script(&config.boot.entries, &isos, &base, config.boot.menu_timeout_secs)
}

fn edit(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.horizontal(|ui| {
        // Typed or chosen: the dialog is a shortcut, never the only way.
        let mut root = panel.config.root.display().to_string();
        let typed = style::labelled(ui, "Boot folder", |ui| {
            ui.add(egui::TextEdit::singleline(&mut root).hint_text("type a folder's path").desired_width(360.0))
        });
        if typed.changed() {
            panel.config.root = std::path::PathBuf::from(root.trim());
        }
        let choosing = panel.view.boot.pick_folder.is_some();
        if ui.add_enabled(!choosing, egui::Button::new("Choose…")).clicked() {
            panel.actions.push(Action::PickFolder);
        }
        if choosing {
            ui.add(egui::Spinner::new());
        }
    });
    field_errors(ui, &panel.errors_for("root"));
    ui.horizontal(|ui| {
        let picking = panel.view.boot.pick_files.is_some();
        if ui.add_enabled(!picking, egui::Button::new("Add boot images…")).clicked() {
            panel.actions.push(Action::PickFiles);
        }
        if picking {
            ui.add(egui::Spinner::new());
            ui.label("Waiting for the file dialog…");
        } else {
            ui.label("or drop files on the window: kernel + initrd, ISO, iPXE script, .efi / .kpxe loaders");
        }
    });
    ui.horizontal(|ui| {
        let typed = style::labelled(ui, "File path", |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut panel.view.boot.add_path)
                    .hint_text("a file in the boot folder, e.g. debian/vmlinuz")
                    .desired_width(360.0),
            )
        });
        let entered = typed.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
        let can_add = !panel.view.boot.add_path.trim().is_empty();
        if ui.add_enabled(can_add, egui::Button::new("Add")).clicked() || (entered && can_add) {
            panel.actions.push(Action::AddPath);
        }
    });
    if let Some(problem) = &panel.view.boot.dialog_problem {
        style::banner(ui, Tone::Caution, |ui| ui.label(problem));
    }
    if let Some(report) = &panel.view.boot.add_report {
        if !report.added.is_empty() {
            ui.label(style::toned(ui, Tone::Ok, format!("Added: {}", report.added.join(", "))));
        }
        field_errors(ui, &report.problems);
    }
    ui.add_space(SPACING);
    ui.strong("Loaders per firmware");
    egui::Grid::new("loaders").num_columns(2).show(ui, |ui| {
        let boot = &mut panel.config.boot;
        for (label, slot) in [
            ("BIOS", &mut boot.bios_file),
            ("UEFI x64", &mut boot.uefi_x64_file),
            ("UEFI ARM64", &mut boot.uefi_arm64_file),
            ("UEFI IA32", &mut boot.uefi_ia32_file),
        ] {
            optional_text(ui, label, slot);
            ui.end_row();
        }
        optional_text(ui, "Own iPXE script", &mut boot.ipxe_script);
        ui.end_row();
    });
    field_errors(ui, &panel.errors_for("boot.bios_file"));
    field_errors(ui, &panel.errors_for("boot.uefi_x64_file"));
    field_errors(ui, &panel.errors_for("boot.uefi_arm64_file"));
    field_errors(ui, &panel.errors_for("boot.uefi_ia32_file"));
    field_errors(ui, &panel.errors_for("boot.ipxe_script"));
    uefi_loader(ui, panel);
    ui.add_space(SPACING);
    ui.horizontal(|ui| {
        ui.strong("Menu entries");
        style::labelled(ui, "menu waits (s)", |ui| {
            ui.add(egui::DragValue::new(&mut panel.config.boot.menu_timeout_secs).range(0..=600))
        });
    });
    entries(ui, panel);
}

/// Which signed chain boots an ISO entry that carries its own shim and GRUB.
fn own_loader_choice(ui: &mut Ui, loader: &mut IsoLoader) {
    let label = |choice: IsoLoader| match choice {
        IsoLoader::Auto => "PortaPXE's, or the image's own where PortaPXE's would refuse its kernel",
        IsoLoader::Own => "the image's own shim and GRUB (the machine restarts once into them)",
        IsoLoader::Portapxe => "PortaPXE's only (Secure Boot off where it refuses the kernel)",
    };
    egui::ComboBox::from_label("Secure Boot chain (x64 UEFI)").selected_text(label(*loader)).show_ui(ui, |ui| {
        for choice in [IsoLoader::Auto, IsoLoader::Own, IsoLoader::Portapxe] {
            ui.selectable_value(loader, choice, label(choice));
        }
    });
}

/// What x64 UEFI machines get first, and why the signed chain is the default.
fn uefi_loader(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    ui.horizontal(|ui| {
        let loader = &mut panel.config.boot.uefi_loader;
        egui::ComboBox::from_label("x64 UEFI machines get").selected_text(uefi_loader_label(*loader)).show_ui(
            ui,
            |ui| {
                for choice in [UefiLoader::Signed, UefiLoader::Ipxe] {
                    ui.selectable_value(loader, choice, uefi_loader_label(choice));
                }
            },
        );
    });
    ui.label(
        "Why the signed chain: most PCs run only programs signed with Microsoft's key while Secure Boot is on. \
         shim carries that signature, and GRUB and Debian's kernels are signed with keys shim trusts; iPXE is not \
         signed. BIOS machines always get iPXE.",
    );
    let Some(validation) = panel.validation() else { return };
    let chain = &validation.signed_chain;
    let tone = if *chain == SignedChain::Used { Tone::Ok } else { Tone::Caution };
    ui.label(style::toned(ui, tone, chain.to_string()));
    if validation.signed_arm64 {
        ui.label(style::toned(ui, Tone::Ok, "ARM64 UEFI machines get shimaa64.efi → grubaa64.efi (signed)"));
    }
}

fn uefi_loader_label(loader: UefiLoader) -> &'static str {
    match loader {
        UefiLoader::Signed => "the signed chain: shim → GRUB (works with Secure Boot)",
        UefiLoader::Ipxe => "the UEFI x64 loader above (iPXE: Secure Boot must be off)",
    }
}

/// A text field for an optional file: empty means none.
fn optional_text(ui: &mut Ui, label: &str, slot: &mut Option<String>) {
    let mut text = slot.clone().unwrap_or_default();
    let response = style::labelled(ui, label, |ui| ui.add(egui::TextEdit::singleline(&mut text).desired_width(260.0)));
    if response.changed() {
        *slot = (!text.trim().is_empty()).then(|| text.trim().to_string());
    }
}

fn entries(ui: &mut Ui, panel: &mut PanelCtx<'_>) {
    if panel.config.boot.entries.is_empty() {
        ui.label("No entries yet: add a kernel and initrd, or an ISO.");
        return;
    }
    let count = panel.config.boot.entries.len();
    let mut moved: Option<(usize, bool)> = None;
    let mut removed = None;
    for index in 0..count {
        let errors = panel.errors_for(&format!("boot.entries[{index}]"));
        let secure_boot = panel
            .validation()
            .and_then(|v| v.secure_boot_problems.get(index).cloned().flatten())
            .filter(|_| panel.config.boot.uefi_loader == UefiLoader::Signed);
        let iso_image = panel.validation().and_then(|v| v.iso_images.get(index).cloned().flatten());
        let iso_plan = panel.validation().and_then(|v| v.iso_plans.get(index).cloned().flatten());
        let entry = &mut panel.config.boot.entries[index];
        ui.push_id(index, |ui| {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.horizontal(|ui| {
                    if ui.add_enabled(index > 0, egui::Button::new("Up")).on_hover_text("Move up").clicked() {
                        moved = Some((index, true));
                    }
                    if ui.add_enabled(index + 1 < count, egui::Button::new("Down")).on_hover_text("Move down").clicked()
                    {
                        moved = Some((index, false));
                    }
                    let kind = match entry {
                        BootEntry::Linux { .. } => "Linux",
                        BootEntry::Iso { .. } => "ISO",
                        BootEntry::Chain { .. } => "Chain",
                        BootEntry::LocalDisk { .. } => "Local disk",
                        BootEntry::Imaging { .. } => "Imaging",
                    };
                    ui.label(kind);
                    let name = match entry {
                        BootEntry::Linux { name, .. }
                        | BootEntry::Iso { name, .. }
                        | BootEntry::Chain { name, .. }
                        | BootEntry::LocalDisk { name }
                        | BootEntry::Imaging { name } => name,
                    };
                    style::labelled(ui, "Name", |ui| ui.add(egui::TextEdit::singleline(name).desired_width(200.0)));
                    if ui.button("Remove").on_hover_text("Remove this entry from the menu").clicked() {
                        removed = Some(index);
                    }
                });
                match entry {
                    BootEntry::Linux { kernel, initrd, cmdline, .. } => {
                        ui.label(format!(
                            "kernel {kernel}, initrd {}",
                            if initrd.is_empty() { "-".to_string() } else { initrd.join(", ") }
                        ));
                        style::labelled(ui, "Kernel command line", |ui| {
                            ui.add(egui::TextEdit::singleline(cmdline).desired_width(f32::INFINITY))
                        });
                    }
                    BootEntry::Iso { image, append, loader, .. } => {
                        ui.label(format!("image {image}, served where it lies"));
                        match &iso_image {
                            Some(Ok(mounted)) => {
                                let found = mounted.plan("http://server", append);
                                // Only an image that carries its own shim and GRUB has a choice.
                                if found.own_loader.is_some() {
                                    own_loader_choice(ui, loader);
                                }
                                ui.label(iso_plan.unwrap_or(found).to_string());
                            }
                            Some(Err(error)) => {
                                ui.label(style::toned(ui, Tone::Caution, error));
                            }
                            None => {}
                        }
                        style::labelled(ui, "Extra kernel arguments", |ui| {
                            ui.add(egui::TextEdit::singleline(append).desired_width(f32::INFINITY))
                        });
                    }
                    BootEntry::Chain { url, .. } => {
                        style::labelled(ui, "URL", |ui| {
                            ui.add(egui::TextEdit::singleline(url).desired_width(f32::INFINITY))
                        });
                    }
                    BootEntry::LocalDisk { .. } => {
                        ui.label("continues with the next boot device");
                    }
                    BootEntry::Imaging { .. } => {
                        ui.label("each machine asks the imaging hub: the agent while it has a task, else its disk");
                    }
                }
                if let Some(problem) = &secure_boot {
                    ui.label(style::toned(ui, Tone::Caution, problem.to_string()));
                }
                field_errors(ui, &errors);
            });
        });
    }
    if let Some((index, up)) = moved {
        move_entry(&mut panel.config.boot.entries, index, up);
    }
    if let Some(index) = removed {
        panel.config.boot.entries.remove(index);
    }
    ui.horizontal(|ui| {
        if ui.button("Add \"boot from local disk\"").clicked() {
            panel.config.boot.entries.push(BootEntry::LocalDisk { name: "Local disk".into() });
        }
    });
}
