//! What the run needs from the machine and what the report says about it: the tools
//! checked before starting, the portapxe binary (built or given), the machine, the
//! versions of every server and client.
//!
//! Owns: the report heading's facts and the pre-flight checks. Must not touch: the
//! repository beyond `cargo build` and read-only `git` queries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use portapxe_lab::process::{Guarded, run_bounded};

use crate::clock::log;

/// The repository this binary was built from (bench/ is one of its members).
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Every tool the suite runs, with the Debian package that provides it.
const TOOLS: [(&str, &str); 10] = [
    ("ip", "iproute2"),
    ("taskset", "util-linux"),
    ("curl", "curl"),
    ("atftp", "atftp"),
    ("in.tftpd", "tftpd-hpa"),
    ("dnsmasq", "dnsmasq-base"),
    ("nginx", "nginx"),
    ("kea-dhcp4", "kea-dhcp4-server"),
    ("perfdhcp", "kea-admin"),
    ("gcc", "gcc"),
];

/// `program` on `$PATH`, as the shell would find it.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// `Err` naming every missing package, and how to install them.
pub fn check_tools(atftpd: &str) -> Result<()> {
    let mut missing: Vec<String> =
        TOOLS.iter().filter(|(tool, _)| which(tool).is_none()).map(|(_, package)| (*package).to_owned()).collect();
    if !Path::new(atftpd).exists() {
        missing.push("atftpd (apt-get download atftpd; dpkg -x into /var/cache/portapxe-bench/atftpd)".to_owned());
    }
    if !missing.is_empty() {
        bail!("missing: {}\nrun once: sudo bench/install-deps.sh", missing.join(", "));
    }
    Ok(())
}

/// The binary to measure and where it came from: `--bin` as given, or built here.
pub fn portapxe_binary(given: Option<&str>) -> Result<(String, String)> {
    if let Some(given) = given {
        let path = std::path::absolute(given).unwrap_or_else(|_| PathBuf::from(given));
        let path = path.canonicalize().unwrap_or(path);
        if !is_executable(&path) {
            bail!("--bin {} is not an executable file", path.display());
        }
        let shown = path.display().to_string();
        let provenance = format!("given with --bin {shown}; repository at {} when the run started", git_state());
        return Ok((shown, provenance));
    }
    let cargo = which("cargo")
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin/cargo"));
    log!("building: cargo build --release -p portapxe");
    let mut command = Command::new(&cargo);
    command.args(["build", "--release", "-p", "portapxe"]).current_dir(REPO);
    let mut build = Guarded::spawn("cargo build", &mut command)?;
    let built = build.wait_timeout(Duration::from_secs(3600)).is_some_and(|status| status.success());
    if !built {
        bail!("cargo build --release -p portapxe failed; fix the build or pass --bin PATH");
    }
    let bin = Path::new(REPO).join("target/release/portapxe");
    let bin = bin.canonicalize().unwrap_or(bin).display().to_string();
    Ok((bin, format!("built by the suite with cargo build --release -p portapxe from {}", git_state())))
}

/// `abc1234`, with a remark when engine/, app/ or Cargo.lock have uncommitted changes.
fn git_state() -> String {
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command.arg("-C").arg(REPO).args(args);
        run_bounded("git", &mut command, Duration::from_secs(10)).map(|done| done.stdout.trim().to_owned())
    };
    let (Ok(head), Ok(dirty)) =
        (git(&["rev-parse", "--short", "HEAD"]), git(&["status", "--porcelain", "--", "engine", "app", "Cargo.lock"]))
    else {
        return "?".to_owned();
    };
    if dirty.is_empty() { head } else { format!("{head} with uncommitted changes in engine/app") }
}

/// The first line `argv` prints (stdout, then stderr), or "?".
fn first_line(argv: &[&str]) -> String {
    let mut command = Command::new(argv[0]);
    command.args(&argv[1..]);
    let Ok(done) = run_bounded(argv[0], &mut command, Duration::from_secs(10)) else { return "?".to_owned() };
    let text = done.stdout + &done.stderr;
    text.trim().lines().next().map(str::to_owned).unwrap_or_else(|| "?".to_owned())
}

/// One line about the machine: OS, kernel, CPUs, memory.
pub fn machine_line() -> String {
    let read = |path| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
        .unwrap_or_else(|| "?".to_owned());
    let cpus = cpuinfo.lines().filter(|line| line.split(':').next().is_some_and(|k| k.trim() == "processor")).count();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|line| line.starts_with("MemTotal"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| "?".to_owned());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let gib = (mem_kib * 1024) as f64 / f64::from(1u32 << 30);
    format!("{os}, kernel {kernel}, {cpus} vCPU ({cpu}), {gib:.0} GiB RAM")
}

/// The version line of `bin`, with where it came from.
pub fn portapxe_line(bin: &str, provenance: &str) -> String {
    format!("{} ({provenance})", first_line(&[bin, "--version"]))
}

pub fn peers_line(atftpd: &str) -> String {
    [
        first_line(&["in.tftpd", "-V"]),
        first_line(&[atftpd, "-V"]),
        first_line(&["dnsmasq", "-v"]),
        first_line(&["nginx", "-v"]),
        format!("kea-dhcp4 {}", first_line(&["kea-dhcp4", "-v"])),
    ]
    .join("; ")
}

pub fn clients_line() -> String {
    let curl = first_line(&["curl", "-V"]);
    let curl = curl.split(" (").next().unwrap_or_default().to_owned();
    let perfdhcp = first_line(&["perfdhcp", "-v"]).replace("VERSION: ", "");
    [curl, first_line(&["atftp", "-V"]), format!("perfdhcp {perfdhcp}")].join("; ")
}
