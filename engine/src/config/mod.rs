//! The one configuration model of the engine, its validation, and where it is kept.
//!
//! Owns: the typed [`Config`], every rule that makes a config servable (with a
//! message that says what to fix), and atomic TOML load/save. Must not start
//! anything or read the network beyond what validation is handed.

mod served_files;
mod store;
mod validate;

pub use portapxe_proto::config::{
    BootConfig, BootEntry, Config, DhcpConfig, HttpConfig, IsoLoader, Mode, PoolRange, TftpConfig, UefiLoader,
};
pub use served_files::ServedFiles;
pub use store::{ConfigStore, StoreError, create_private_dir, load_file, project_dirs, save_file, write_atomically};
pub use validate::{ConfigError, InterfaceFacts, validate};
