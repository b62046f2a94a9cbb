//! "Export diagnostics": one zip a technician can send, holding what was configured
//! (`config.toml`), what happened (`log.txt`), what the engine saw (`status.json`:
//! state, services, clients, conflicts) and the session's DHCP traffic
//! (`capture.pcapng`, or `capture.txt` saying why there is none).
//!
//! Owns: gathering that from a snapshot (cheap, on the UI thread) and writing the zip
//! (slow: reads the capture and writes the disk, so only ever off the UI thread).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use portapxe_engine::EngineStatus;
use portapxe_engine::clients::ClientRecord;
use portapxe_engine::config::Config;
use portapxe_engine::detect::ServerSighting;
use serde::Serialize;
use zip::write::SimpleFileOptions;

use super::engine_handle::{CaptureState, LogLine, RunState, UiSnapshot};

/// Entries of the zip, by name.
pub const CONFIG_ENTRY: &str = "config.toml";
pub const LOG_ENTRY: &str = "log.txt";
pub const STATUS_ENTRY: &str = "status.json";
pub const CAPTURE_ENTRY: &str = "capture.pcapng";
pub const NO_CAPTURE_ENTRY: &str = "capture.txt";
/// A capture larger than this stays out of the zip (its path is named instead).
pub const CAPTURE_LIMIT: u64 = 64 * 1024 * 1024;

/// Everything the zip will hold except the capture's bytes, taken from one snapshot.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub taken_ms: u64,
    pub config: Config,
    pub log: Vec<LogLine>,
    pub status: StatusReport,
    pub capture: CaptureState,
}

/// `status.json`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub state: &'static str,
    pub engine: Option<EngineStatus>,
    pub last_error: Option<String>,
    pub service_errors: Vec<(portapxe_engine::events::Service, String)>,
    pub conflicts: Vec<ConflictReport>,
    pub clients: Vec<ClientRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConflictReport {
    pub summary: String,
    pub expected: bool,
    pub server: ServerSighting,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot put the settings in the zip: {0}")]
    Config(String),
}

impl Diagnostics {
    pub fn from_snapshot(snapshot: &UiSnapshot, config: &Config) -> Self {
        let state = match snapshot.state {
            RunState::Stopped => "stopped",
            RunState::Starting => "starting",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
        };
        Self {
            taken_ms: snapshot.now_ms,
            config: config.clone(),
            log: snapshot.log.iter().cloned().collect(),
            status: StatusReport {
                state,
                engine: snapshot.status.clone(),
                last_error: snapshot.last_error.as_ref().map(|f| f.message.clone()),
                service_errors: snapshot.service_errors.clone(),
                conflicts: snapshot
                    .conflicts
                    .iter()
                    .map(|c| ConflictReport {
                        summary: c.summary.clone(),
                        expected: c.expected,
                        server: c.server.clone(),
                    })
                    .collect(),
                clients: snapshot.clients.clone(),
            },
            capture: snapshot.capture.clone(),
        }
    }

    /// `log.txt`: one line per event, oldest first, with its level.
    pub fn log_text(&self) -> String {
        let mut text = format!("PortaPXE {} log, {} lines\n", env!("CARGO_PKG_VERSION"), self.log.len());
        for line in &self.log {
            let mac = line.mac.map(|mac| format!(" [{mac}]")).unwrap_or_default();
            text.push_str(&format!("{} {:<7}{mac} {}\n", clock(line.at_ms), line.level.label(), line.text));
        }
        text
    }

    /// Writes the zip to `path` (replacing it). Blocking: call it off the UI thread.
    pub fn write_zip(&self, path: &Path) -> Result<(), ExportError> {
        let write_error = |source: io::Error| ExportError::Write { path: path.to_path_buf(), source };
        let config = toml::to_string_pretty(&self.config).map_err(|err| ExportError::Config(err.to_string()))?;
        let status = serde_json::to_string_pretty(&self.status).map_err(|err| write_error(err.into()))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        let file = std::fs::File::create(path).map_err(write_error)?;
        let mut zip = zip::ZipWriter::new(io::BufWriter::new(file));
        let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut entry = |name: &str, bytes: &[u8]| -> io::Result<()> {
            zip.start_file(name, options).map_err(io::Error::other)?;
            zip.write_all(bytes)
        };
        entry(CONFIG_ENTRY, config.as_bytes()).map_err(write_error)?;
        entry(LOG_ENTRY, self.log_text().as_bytes()).map_err(write_error)?;
        entry(STATUS_ENTRY, status.as_bytes()).map_err(write_error)?;
        match self.capture_bytes() {
            Ok(bytes) => entry(CAPTURE_ENTRY, &bytes),
            Err(why) => entry(NO_CAPTURE_ENTRY, format!("No packet capture in this export: {why}\n").as_bytes()),
        }
        .map_err(write_error)?;
        zip.finish().map_err(|err| write_error(io::Error::other(err)))?.flush().map_err(write_error)?;
        Ok(())
    }

    /// The session's pcapng, or why it is not included.
    fn capture_bytes(&self) -> Result<Vec<u8>, String> {
        match &self.capture {
            CaptureState::NotStarted => Err("the engine was not started in this session".into()),
            CaptureState::Unavailable(why) => Err(why.clone()),
            CaptureState::Recording(file) => {
                let size = std::fs::metadata(file).map_err(|err| format!("cannot read {}: {err}", file.display()))?;
                if size.len() > CAPTURE_LIMIT {
                    return Err(format!(
                        "{} is {} bytes, more than the {CAPTURE_LIMIT} a zip takes; send that file on its own",
                        file.display(),
                        size.len()
                    ));
                }
                std::fs::read(file).map_err(|err| format!("cannot read {}: {err}", file.display()))
            }
        }
    }
}

/// `portapxe-diagnostics-20250102-030405.zip` in `dir`.
pub fn default_path(dir: &Path, taken_ms: u64) -> PathBuf {
    dir.join(format!("portapxe-diagnostics-{}.zip", stamp(taken_ms)))
}

/// "20250102-030405" (UTC) for a file name.
pub fn stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil_date(secs / 86_400);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", (secs / 3600) % 24, (secs / 60) % 60, secs % 60)
}

/// Time of day (UTC) as hh:mm:ss.
pub fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{:02}:{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60, secs % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_date(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_carry_the_utc_date() {
        assert_eq!(stamp(0), "19700101-000000");
        // 2023-11-14 22:13:20 UTC
        assert_eq!(stamp(1_700_000_000_000), "20231114-221320");
        assert_eq!(stamp(951_782_400_000), "20000229-000000");
        assert_eq!(
            default_path(Path::new("/data"), 0),
            PathBuf::from("/data/portapxe-diagnostics-19700101-000000.zip")
        );
    }

    #[test]
    fn a_zip_without_capture_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let mut snapshot = UiSnapshot {
            capture: CaptureState::Unavailable("packet capture is unavailable on lo: no rights".into()),
            ..UiSnapshot::default()
        };
        snapshot.push_log(LogLine {
            at_ms: 3_600_000,
            level: crate::event_text::Level::Warn,
            mac: None,
            ip: None,
            text: "hello".into(),
        });
        let diagnostics = Diagnostics::from_snapshot(&snapshot, &Config::default());
        let path = dir.path().join("sub/d.zip");
        diagnostics.write_zip(&path).unwrap();
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut names: Vec<&str> = zip.file_names().collect();
        names.sort_unstable();
        assert_eq!(names, ["capture.txt", "config.toml", "log.txt", "status.json"]);
        let text = io::read_to_string(zip.by_name(NO_CAPTURE_ENTRY).unwrap()).unwrap();
        assert!(text.contains("no rights"), "{text}");
        let log = io::read_to_string(zip.by_name(LOG_ENTRY).unwrap()).unwrap();
        assert!(log.contains("01:00:00 warning hello"), "{log}");
    }
}
