//! The desktop window: one window from network card to booted machines.
//!
//! Owns: the [`app::PortaApp`] (config being edited, view state), the
//! [`engine_handle::EngineHandle`] (a background thread that starts, stops and scans,
//! and publishes a snapshot), the shared look ([`style`]) and one module per panel.
//! Must not touch a socket or a file, await or block in a frame: everything slow
//! goes through the handle.

pub mod app;
pub mod diagnostics;
pub mod dialogs;
pub mod engine_handle;
pub mod images;
pub mod panels;
pub mod style;

use std::path::PathBuf;
use std::process::ExitCode;

use portapxe_engine::config::{Config, ConfigStore};

pub use app::PortaApp;
pub use engine_handle::EngineHandle;

/// Overrides where settings are kept (tests, portable installs).
pub const CONFIG_DIR_ENV: &str = "PORTAPXE_CONFIG_DIR";

/// Where settings live and what they were at the last exit. A broken file is
/// reported and the defaults are used, so the window still opens. The iPXE loaders
/// installed with the app are served behind the chosen folder (never saved).
pub fn load_settings() -> (Option<ConfigStore>, Config, Option<String>) {
    let store = match std::env::var_os(CONFIG_DIR_ENV) {
        Some(dir) => Ok(ConfigStore::at(PathBuf::from(dir))),
        None => ConfigStore::platform_default(),
    };
    let (store, mut config, problem) = match store {
        Ok(store) => match store.load() {
            Ok(config) => (Some(store), config, None),
            Err(err) => (Some(store), Config::default(), Some(format!("{err}; starting from the defaults"))),
        },
        Err(err) => (None, Config::default(), Some(err.to_string())),
    };
    crate::boot_files::apply(&mut config);
    (store, config, problem)
}

/// Opens the window and runs until it is closed. Without a display it says what
/// is missing and exits with status 2.
pub fn run() -> anyhow::Result<ExitCode> {
    let (store, config, problem) = load_settings();
    if let Some(problem) = &problem {
        tracing::warn!("settings: {problem}");
    }
    let handle = EngineHandle::spawn(store)?;
    if let Some(problem) = problem {
        handle.snapshot().push_log(engine_handle::LogLine {
            at_ms: engine_handle::now_ms(),
            level: crate::event_text::Level::Warn,
            mac: None,
            ip: None,
            text: format!("settings: {problem}"),
        });
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("PortaPXE")
            .with_app_id("portapxe")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let mut handle = Some(handle);
    let result = eframe::run_native(
        "PortaPXE",
        options,
        Box::new(move |cc| {
            let handle = handle.take().ok_or("the window was created twice")?;
            Ok(Box::new(PortaApp::new(&cc.egui_ctx, handle, config)))
        }),
    );
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("portapxe: cannot open the window: {err}");
            eprintln!("{}", missing_display_hint());
            Ok(ExitCode::from(2))
        }
    }
}

fn missing_display_hint() -> &'static str {
    let has = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if cfg!(target_os = "linux") && !has("DISPLAY") && !has("WAYLAND_DISPLAY") {
        "No graphical display was found (DISPLAY and WAYLAND_DISPLAY are unset). Run PortaPXE on a desktop, \
         or serve from the command line: `portapxe serve --help`."
    } else {
        "The window could not be created (no usable graphics driver?). The command line works without one: \
         `portapxe serve --help`."
    }
}
