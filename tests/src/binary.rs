//! Finding the `portapxe` binary under test.
//!
//! `cargo test` does not build another package's binary for us, so the first test
//! in a process runs `$CARGO build -p portapxe --bin portapxe` and takes the path
//! cargo reports; a plain `cargo test --workspace` thus always tests a fresh binary.
//! `PORTAPXE_BIN=/path/to/portapxe` skips the build (e.g. to test a release build).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::process::run_bounded;

/// Cold debug builds of the app take minutes on two cores.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

/// Path of the `portapxe` binary; builds it once per test process. Panics with the
/// build output when it cannot be built.
pub fn portapxe() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(|| locate().map_err(|error| format!("{error:#}"))) {
        Ok(path) => path,
        Err(error) => panic!("cannot get the portapxe binary to test: {error}"),
    }
}

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn locate() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PORTAPXE_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("PORTAPXE_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    built_binary("portapxe", "portapxe")
}

/// Builds `bin` of `package` (debug) with the `cargo` running the tests and returns the
/// executable's path as cargo reports it, so a `CARGO_TARGET_DIR` elsewhere (CI's cache)
/// is followed.
pub fn built_binary(package: &str, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(workspace_root()).args([
        "build",
        "-p",
        package,
        "--bin",
        bin,
        "--message-format=json-render-diagnostics",
    ]);
    eprintln!("[lab] building {bin}: {command:?}");
    let built = run_bounded(&format!("cargo build -p {package}"), &mut command, BUILD_TIMEOUT)?;
    if !built.success() {
        bail!("`cargo build -p {package} --bin {bin}` failed:\n{}", built.stderr);
    }
    executable_from_messages(&built.stdout, bin)
        .with_context(|| format!("cargo build succeeded but reported no `{bin}` executable"))
}

/// The `executable` of the bin target `bin` in cargo's JSON messages.
fn executable_from_messages(messages: &str, bin: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == bin)
        .filter(|message| message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "bin")))
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}
