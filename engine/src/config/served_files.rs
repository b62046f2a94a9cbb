//! Which configured files are there to be served: a look at the disk, so it is the
//! engine's (the `Config` model itself is pure, in `portapxe_proto::config`).

use std::path::{Path, PathBuf};

use super::Config;

/// Files the configuration serves, as found on disk.
pub trait ServedFiles {
    /// Whether `file` (root-relative) is a file that is served: in the serving root, or
    /// else in the app's loader folder.
    fn serves_file(&self, file: &str) -> bool {
        self.served_file_path(file).is_some()
    }

    /// Where `file` (root-relative) is read from when served: the serving root, or else
    /// the app's loader folder.
    fn served_file_path(&self, file: &str) -> Option<PathBuf>;
}

impl ServedFiles for Config {
    fn served_file_path(&self, file: &str) -> Option<PathBuf> {
        let holds = |folder: &Path| !folder.as_os_str().is_empty() && folder.join(file).is_file();
        [Some(self.serving_root()), self.fallback_loader_dir()]
            .into_iter()
            .flatten()
            .find(|folder| holds(folder))
            .map(|folder| folder.join(file))
    }
}
