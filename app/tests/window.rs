//! The real `portapxe` binary opens a real window: under a private Xvfb display,
//! with settings saved by an earlier run, a screenshot must show a drawn window
//! (not a blank screen) whose title says the engine's state ("PortaPXE — stopped"). Needs `Xvfb` and
//! `xwd` (Debian: xvfb, x11-apps); fails saying so when they are missing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portapxe_engine::config::{Config, ConfigStore, Mode};

/// Kills (by its own PID) and reaps a process this test started.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(tool: &str, package: &str) {
    let found =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(found, "`{tool}` is missing: install the Debian package {package} (.ci/install-deps.sh does)");
}

/// Starts Xvfb on a free display; it writes the display number once it is ready.
fn xvfb() -> (Started, String) {
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let stdout = child.stdout.take().expect("Xvfb stdout");
    let xvfb = Started(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("Xvfb display number");
    let display = format!(":{}", line.trim());
    assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
    (xvfb, display)
}

/// An XWD screenshot of the whole screen, as 32-bit pixels.
fn screenshot(display: &str) -> Vec<u32> {
    let output = Command::new("xwd").args(["-root", "-silent", "-display", display]).output().expect("run xwd");
    assert!(output.status.success(), "xwd: {}", String::from_utf8_lossy(&output.stderr));
    let data = output.stdout;
    let field = |index: usize| u32::from_be_bytes(data[index * 4..index * 4 + 4].try_into().unwrap()) as usize;
    let (header_size, bits_per_pixel, bytes_per_line, height, colors) =
        (field(0), field(11), field(12), field(5), field(19));
    assert_eq!(bits_per_pixel, 32, "a 24-bit Xvfb screen has 32-bit pixels");
    let start = header_size + colors * 12;
    let pixels = &data[start..(start + bytes_per_line * height).min(data.len())];
    pixels.chunks_exact(4).map(|p| u32::from_le_bytes(p.try_into().unwrap())).collect()
}

fn window_titles(display: &str) -> String {
    let output = Command::new("xwininfo").args(["-root", "-tree", "-display", display]).output();
    output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

#[test]
fn the_binary_opens_a_drawn_window_titled_with_its_state() {
    need("Xvfb", "xvfb");
    need("xwd", "x11-apps");
    need("xwininfo", "x11-utils");
    let (_xvfb, display) = xvfb();
    let settings = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    // What an earlier run saved: the window starts from it.
    let saved = Config { interface: "lo".into(), mode: Mode::Off, root: root.path().into(), ..Config::default() };
    ConfigStore::at(settings.path()).save(&saved).unwrap();

    let app = Started(
        Command::new(env!("CARGO_BIN_EXE_portapxe"))
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .env("PORTAPXE_CONFIG_DIR", settings.path())
            .env("XDG_RUNTIME_DIR", settings.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start portapxe"),
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let (colors, titles) = loop {
        std::thread::sleep(Duration::from_millis(500));
        let mut pixels = screenshot(&display);
        pixels.sort_unstable();
        pixels.dedup();
        let titles = window_titles(&display);
        if pixels.len() > 16 && titles.contains("\"PortaPXE — stopped\"") {
            break (pixels.len(), titles);
        }
        assert!(
            Instant::now() < deadline,
            "no drawn PortaPXE window after 60 s: {} colours; windows:\n{titles}",
            pixels.len()
        );
    };
    assert!(colors > 16, "{colors}");
    assert!(titles.contains("portapxe"), "the window's class names the app: {titles}");
    drop(app);
}
