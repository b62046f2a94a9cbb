use std::io::Write;
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

use super::Config;

const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid PortaPXE config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot save {path}: {source} (the previous file is unchanged)")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("this system has no home folder to keep settings in; pass --config FILE")]
    NoHome,
}

/// Where settings live: the platform's config folder, or any folder (tests, portable installs).
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    pub fn platform_default() -> Result<Self, StoreError> {
        let dirs = project_dirs().ok_or(StoreError::NoHome)?;
        Ok(Self { dir: dirs.config_dir().to_path_buf() })
    }

    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The saved config, or the defaults when nothing was saved yet.
    pub fn load(&self) -> Result<Config, StoreError> {
        let path = self.path();
        if !path.exists() {
            return Ok(Config::default());
        }
        load_file(&path)
    }

    /// Saves into the settings folder, made private to this user when it is missing.
    pub fn save(&self, config: &Config) -> Result<(), StoreError> {
        create_private_dir(&self.dir).map_err(|source| StoreError::Write { path: self.path(), source })?;
        save_file(&self.path(), config)
    }
}

/// Platform folders (`~/.config/portapxe`, `%APPDATA%\PortaPXE`, `~/Library/Application Support/…`).
pub fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("org", "PortaPXE", "PortaPXE")
}

pub fn load_file(path: &Path) -> Result<Config, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|err| StoreError::Parse { path: path.into(), message: err.to_string() })
}

pub fn save_file(path: &Path, config: &Config) -> Result<(), StoreError> {
    let text = toml::to_string_pretty(config)
        .map_err(|err| StoreError::Write { path: path.into(), source: std::io::Error::other(err) })?;
    write_atomically(path, text.as_bytes()).map_err(|source| StoreError::Write { path: path.into(), source })
}

/// Makes `dir` and any missing parents, readable and writable by this user only
/// (0700, as the XDG base directory spec asks of folders an application creates:
/// leases and settings name the machines on a network). An existing folder keeps
/// its permissions.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Writes `contents` beside `path` and renames it over `path`, so a crash leaves
/// either the old file or the new one, never half of either. On Unix the folder is
/// synced too, so the rename itself survives a power cut before the caller goes on
/// (the lease journal is emptied only after its snapshot is durable).
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BootEntry, Mode};

    #[test]
    fn round_trip_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path());
        assert_eq!(store.load().unwrap(), Config::default());
        let mut config = Config { interface: "eth1".into(), mode: Mode::Off, ..Config::default() };
        config.dhcp.pool = Some("10.0.0.10-10.0.0.20".parse().unwrap());
        config.boot.entries.push(BootEntry::Linux {
            name: "Debian".into(),
            kernel: "debian/vmlinuz".into(),
            initrd: vec!["debian/initrd.gz".into()],
            cmdline: "console=ttyS0".into(),
        });
        store.save(&config).unwrap();
        assert_eq!(store.load().unwrap(), config);
    }

    #[test]
    fn saving_makes_a_missing_settings_folder_private_to_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("home/.config/portapxe");
        ConfigStore::at(&settings).save(&Config::default()).unwrap();
        assert_eq!(ConfigStore::at(&settings).load().unwrap(), Config::default());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for folder in [settings.as_path(), settings.parent().unwrap()] {
                let mode = std::fs::metadata(folder).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o700, "{}", folder.display());
            }
        }
    }

    #[test]
    fn broken_file_is_a_clear_error_and_save_keeps_old_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::at(dir.path());
        std::fs::write(store.path(), "interface = 3\n").unwrap();
        let message = store.load().unwrap_err().to_string();
        assert!(message.contains("config.toml") && message.contains("interface"), "{message}");

        let blocked = dir.path().join("file-not-dir");
        std::fs::write(&blocked, "x").unwrap();
        let err = save_file(&blocked.join("config.toml"), &Config::default()).unwrap_err();
        assert!(matches!(err, StoreError::Write { .. }));
        assert_eq!(std::fs::read_to_string(store.path()).unwrap(), "interface = 3\n");
    }
}
