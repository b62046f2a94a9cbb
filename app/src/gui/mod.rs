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
pub mod imaging_state;
pub mod panels;
pub mod renderer;
pub mod style;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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

/// A renderer that fails this soon after it was tried is taken as unusable and the
/// next one is tried. Later (a driver reset an hour in) the window closes as before:
/// reopening it would also restart the engine thread.
const FIRST_FRAMES: Duration = Duration::from_secs(20);

/// Opens the window and runs until it is closed, trying each renderer of this
/// system in turn (see [`renderer`]). Without a display, or when every renderer
/// fails, it says what is missing and exits with status 2. `start`: serve at once with
/// the saved settings, as if Start were pressed.
pub fn run(start: bool) -> anyhow::Result<ExitCode> {
    let attempts = match renderer::attempts(renderer::forced_by_environment()) {
        Ok(attempts) => attempts,
        Err(unknown) => {
            eprintln!("portapxe: {unknown}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut failures = Vec::new();
    for (index, &renderer) in attempts.iter().enumerate() {
        let tried = Instant::now();
        let Err(err) = open_window(renderer, start) else { return Ok(ExitCode::SUCCESS) };
        if tried.elapsed() >= FIRST_FRAMES {
            // It drew, then lost its renderer: not a missing display.
            eprintln!("portapxe: the window closed: {renderer} failed after it had drawn ({err})");
            return Ok(ExitCode::from(2));
        }
        match attempts.get(index + 1) {
            Some(next) => tracing::warn!("window: {renderer} failed ({err}); trying {next}"),
            None => tracing::warn!("window: {renderer} failed ({err})"),
        }
        failures.push(format!("{renderer}: {err}"));
    }
    eprintln!("portapxe: cannot open the window: {}", failures.join("; "));
    eprintln!("{}", missing_display_hint());
    Ok(ExitCode::from(2))
}

/// One window with `renderer`, until it is closed. The engine thread starts once the
/// renderer works, so a failed try leaves nothing behind.
fn open_window(renderer: renderer::Renderer, start: bool) -> Result<(), eframe::Error> {
    let options = renderer.apply(eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("PortaPXE")
            .with_app_id("portapxe")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        ..Default::default()
    });
    eframe::run_native(
        "PortaPXE",
        options,
        Box::new(move |cc| {
            tracing::info!("window: drawn with {}", renderer::describe_started(renderer, cc));
            let (store, config, problem) = load_settings();
            if let Some(problem) = &problem {
                tracing::warn!("settings: {problem}");
            }
            let handle = EngineHandle::spawn(store)?;
            let log = |text: String| {
                handle.snapshot().push_log(engine_handle::LogLine {
                    at_ms: engine_handle::now_ms(),
                    level: crate::event_text::Level::Warn,
                    mac: None,
                    ip: None,
                    text,
                })
            };
            if let Some(problem) = &problem {
                log(format!("settings: {problem}"));
                if start {
                    // Starting would save the defaults over the settings that could not be read.
                    log("--start: not started, the saved settings could not be read (see above)".to_owned());
                }
            }
            let mut app = PortaApp::new(&cc.egui_ctx, handle, config);
            if start && problem.is_none() {
                app.start();
            }
            Ok(Box::new(app))
        }),
    )
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
