//! The real `portapxe` binary opens a real window: under a private Xvfb display,
//! with settings saved by an earlier run, a screenshot must show a drawn window
//! (not a blank screen) whose title says the engine's state ("PortaPXE — stopped"), drawn by
//! the next renderer when the first fails. Needs `Xvfb` and
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

/// An XWD screenshot of the whole screen, one `u32` per pixel.
fn screenshot(display: &str) -> Vec<u32> {
    let output = Command::new("xwd").args(["-root", "-silent", "-display", display]).output().expect("run xwd");
    assert!(output.status.success(), "xwd: {}", String::from_utf8_lossy(&output.stderr));
    let data = output.stdout;
    let field = |index: usize| u32::from_be_bytes(data[index * 4..index * 4 + 4].try_into().unwrap()) as usize;
    let (header_size, bits_per_pixel, bytes_per_line, height, colors) =
        (field(0), field(11), field(12), field(5), field(19));
    // A 24-bit Xvfb screen mostly has 32-bit pixels; with a GLX client on it (glow),
    // xwd has also been seen writing packed 24-bit ones.
    assert!(matches!(bits_per_pixel, 24 | 32), "{bits_per_pixel} bits per pixel");
    let start = header_size + colors * 12;
    let pixels = &data[start..(start + bytes_per_line * height).min(data.len())];
    let width = bits_per_pixel / 8;
    pixels.chunks_exact(width).map(|p| p.iter().rev().fold(0u32, |pixel, &byte| pixel << 8 | u32::from(byte))).collect()
}

fn window_titles(display: &str) -> String {
    let output = Command::new("xwininfo").args(["-root", "-tree", "-display", display]).output();
    output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
}

/// What one run of the window showed.
struct Shown {
    colors: usize,
    titles: String,
    /// Its standard error (the log).
    log: String,
    /// The settings file once it was closed.
    settings_file: String,
}

/// How the binary is launched for one window.
#[derive(Default)]
struct Launch<'a> {
    env: &'a [(&'a str, &'a str)],
    args: &'a [&'a str],
    /// In a private network namespace of its own (holding only loopback), for a run
    /// that serves.
    private_net: bool,
    /// The title to wait for (default "PortaPXE — stopped").
    title: Option<&'a str>,
    /// Checked while the window is shown, with the binary's PID.
    while_shown: Option<&'a dyn Fn(u32)>,
    /// The settings file's text instead of settings saved by an earlier run.
    settings_file: Option<&'a str>,
}

/// Starts the binary under a private Xvfb as `launch` says, waits for a drawn window
/// with the expected title, and closes it.
fn show_window(launch: Launch<'_>) -> Shown {
    need("Xvfb", "xvfb");
    need("xwd", "x11-apps");
    need("xwininfo", "x11-utils");
    let (_xvfb, display) = xvfb();
    let settings = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), b"served from the window").unwrap();
    // What an earlier run saved: the window starts from it.
    let mut saved = Config { interface: "lo".into(), mode: Mode::Off, root: root.path().into(), ..Config::default() };
    saved.tftp.port = 16969;
    saved.http.port = 18080;
    saved.state_dir = Some(settings.path().join("state"));
    ConfigStore::at(settings.path()).save(&saved).unwrap();
    if let Some(text) = launch.settings_file {
        std::fs::write(settings.path().join("config.toml"), text).unwrap();
    }
    let log_path = settings.path().join("stderr.log");

    let binary = env!("CARGO_BIN_EXE_portapxe");
    let mut command = if launch.private_net {
        let mut command = Command::new("unshare");
        command.args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"", binary]);
        command
    } else {
        Command::new(binary)
    };
    let app = Started(
        command
            .args(launch.args)
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("PORTAPXE_RENDERER")
            .env_remove("WGPU_BACKEND")
            .env("PORTAPXE_CONFIG_DIR", settings.path())
            .env("XDG_RUNTIME_DIR", settings.path())
            .envs(launch.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("start portapxe"),
    );

    let title = format!("\"{}\"", launch.title.unwrap_or("PortaPXE — stopped"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (colors, titles) = loop {
        std::thread::sleep(Duration::from_millis(500));
        let mut pixels = screenshot(&display);
        pixels.sort_unstable();
        pixels.dedup();
        let titles = window_titles(&display);
        if pixels.len() > 16 && titles.contains(&title) {
            break (pixels.len(), titles);
        }
        assert!(
            Instant::now() < deadline,
            "no drawn window titled {title} after 60 s: {} colours; windows:\n{titles}\nlog:\n{}",
            pixels.len(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    };
    if let Some(check) = launch.while_shown {
        check(app.0.id());
    }
    drop(app);
    let settings_file = std::fs::read_to_string(settings.path().join("config.toml")).unwrap_or_default();
    Shown { colors, titles, log: std::fs::read_to_string(&log_path).unwrap_or_default(), settings_file }
}

#[test]
fn the_binary_opens_a_drawn_window_titled_with_its_state() {
    let shown = show_window(Launch::default());
    assert!(shown.colors > 16, "{}", shown.colors);
    assert!(shown.titles.contains("portapxe"), "the window's class names the app: {}", shown.titles);
    assert!(shown.log.contains("window: drawn with Vulkan"), "the renderer is logged once:\n{}", shown.log);
}

/// A machine whose first renderer fails (here: no Vulkan driver at all) still gets
/// its window, drawn by the next one, and the log says which failed and which drew.
#[test]
fn the_window_opens_with_the_next_renderer_when_the_first_fails() {
    let nowhere = "/nonexistent/vulkan-icd.json";
    let shown = show_window(Launch {
        env: &[("VK_ICD_FILENAMES", nowhere), ("VK_DRIVER_FILES", nowhere)],
        ..Launch::default()
    });
    assert!(shown.colors > 16, "{}", shown.colors);
    assert!(shown.log.contains("window: Vulkan failed ("), "{}", shown.log);
    assert!(shown.log.contains("; trying OpenGL (wgpu)"), "{}", shown.log);
    assert!(shown.log.contains("window: drawn with OpenGL (wgpu)"), "{}", shown.log);
}

/// A renderer forced by name is the only one tried.
#[test]
fn a_forced_renderer_draws_the_window() {
    let shown = show_window(Launch { env: &[("PORTAPXE_RENDERER", "glow")], ..Launch::default() });
    assert!(shown.colors > 16, "{}", shown.colors);
    assert!(shown.log.contains("window: drawn with OpenGL (glow)"), "{}", shown.log);
}

/// `portapxe --start` opens the window and serves at once with the saved settings
/// (boot files only, on loopback, in a private network namespace): the title says so
/// and the boot folder answers over HTTP there.
#[test]
fn start_opens_the_window_serving() {
    let fetched = std::cell::RefCell::new(String::new());
    let fetch = |pid: u32| {
        let output = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["curl", "-sf", "--max-time", "10", "http://127.0.0.1:18080/hello.txt"])
            .output()
            .expect("nsenter (util-linux) and curl");
        *fetched.borrow_mut() = String::from_utf8_lossy(&output.stdout).into_owned();
    };
    let shown = show_window(Launch {
        args: &["--start"],
        private_net: true,
        title: Some("PortaPXE — serving on lo"),
        while_shown: Some(&fetch),
        ..Launch::default()
    });
    assert!(shown.colors > 16, "{}", shown.colors);
    assert_eq!(fetched.borrow().as_str(), "served from the window", "log:\n{}", shown.log);
}

/// `--start` with settings that cannot be read does not start: starting would save
/// the defaults over the file, which the user may still mend.
#[test]
fn start_with_unreadable_settings_starts_nothing_and_keeps_the_file() {
    const BROKEN: &str = "interface = \"eth0\"\nmode = [this is not toml\n";
    let shown = show_window(Launch { args: &["--start"], settings_file: Some(BROKEN), ..Launch::default() });
    assert!(shown.colors > 16, "{}", shown.colors);
    assert!(shown.titles.contains("\"PortaPXE — stopped\""), "{}", shown.titles);
    assert!(shown.log.contains("settings:"), "the problem is logged:\n{}", shown.log);
    assert_eq!(shown.settings_file, BROKEN, "the file was rewritten");
}
