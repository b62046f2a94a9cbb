//! The look every panel shares: colours (for light and dark), spacing, and the few
//! custom widgets (status light, banner, progress cell). Panels ask here instead
//! of picking their own colours, so the window reads as one thing.

use egui::{Color32, RichText, Ui, Vec2};
use portapxe_engine::clients::TransferProgress;

pub const SPACING: f32 = 8.0;
pub const ROW_HEIGHT: f32 = 22.0;
pub const LIGHT_RADIUS: f32 = 5.0;

/// Fonts and theme for the whole window: light or dark as the system says, and
/// the monospace font (Hack) as a fallback for the arrows and symbols the engine's
/// messages use, which the proportional font lacks.
pub fn install(ctx: &egui::Context) {
    ctx.options_mut(|options| options.theme_preference = egui::ThemePreference::System);
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack") {
        fonts.families.entry(egui::FontFamily::Proportional).or_default().push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

/// What a status light, a banner or a line of text says about its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Running, fine.
    Ok,
    /// Needs a look: starting, expected neighbour, stale.
    Caution,
    /// Broken or dangerous.
    Error,
    /// Off, not configured.
    Idle,
}

pub fn tone_color(ui: &Ui, tone: Tone) -> Color32 {
    let dark = ui.visuals().dark_mode;
    match (tone, dark) {
        (Tone::Ok, true) => Color32::from_rgb(80, 200, 120),
        (Tone::Ok, false) => Color32::from_rgb(20, 140, 60),
        (Tone::Caution, true) => Color32::from_rgb(240, 190, 60),
        (Tone::Caution, false) => Color32::from_rgb(180, 120, 0),
        (Tone::Error, true) => Color32::from_rgb(255, 100, 90),
        (Tone::Error, false) => Color32::from_rgb(200, 30, 30),
        (Tone::Idle, _) => ui.visuals().weak_text_color(),
    }
}

/// A filled circle and a label: one light per service.
pub fn status_light(ui: &mut Ui, tone: Tone, label: &str, hover: &str) -> egui::Response {
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 4.0;
        let (rect, _) = ui.allocate_exact_size(Vec2::splat(LIGHT_RADIUS * 2.0 + 2.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), LIGHT_RADIUS, tone_color(ui, tone));
        ui.label(label)
    })
    .inner
    .on_hover_text(hover)
}

/// A full-width coloured box with a message, for errors and conflicts.
pub fn banner<R>(ui: &mut Ui, tone: Tone, add_contents: impl FnOnce(&mut Ui) -> R) -> R {
    let color = tone_color(ui, tone);
    egui::Frame::new()
        .fill(color.gamma_multiply(0.18))
        .stroke(egui::Stroke::new(1.0, color))
        .corner_radius(4.0)
        .inner_margin(SPACING)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            add_contents(ui)
        })
        .inner
}

/// Text in a tone's colour.
pub fn toned(ui: &Ui, tone: Tone, text: impl Into<String>) -> RichText {
    RichText::new(text).color(tone_color(ui, tone))
}

/// The current file with a progress bar and its throughput.
pub fn progress_cell(ui: &mut Ui, transfer: &TransferProgress) {
    let fraction = match transfer.size {
        _ if transfer.done => 1.0,
        Some(size) if size > 0 => (transfer.bytes as f32 / size as f32).clamp(0.0, 1.0),
        _ => 0.0,
    };
    let size = transfer.size.map(|size| format!(" of {}", bytes(size))).unwrap_or_default();
    let text =
        format!("{} {}{size} · {}/s", short_name(&transfer.file), bytes(transfer.bytes), bytes_f(transfer.throughput));
    ui.add(egui::ProgressBar::new(fraction).text(text).desired_height(ROW_HEIGHT - 4.0));
}

fn short_name(file: &str) -> &str {
    file.rsplit(['/', '\\']).next().unwrap_or(file)
}

pub fn bytes(n: u64) -> String {
    bytes_f(n as f64)
}

pub fn bytes_f(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} {}", UNITS[unit]) } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// "3 s ago", "5 min ago", "2 h ago".
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

/// A label tied to the input after it, so screen readers (and tests) find the input by it.
pub fn labelled(ui: &mut Ui, label: &str, add: impl FnOnce(&mut Ui) -> egui::Response) -> egui::Response {
    let label = ui.label(label);
    add(ui).labelled_by(label.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ages_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8_400_000), "8.4 MB");
        assert_eq!(ago(10_000, 7_000), "3 s ago");
        assert_eq!(ago(400_000, 100_000), "5 min ago");
        assert_eq!(short_name("debian/vmlinuz"), "vmlinuz");
    }
}
