//! Keeps `ServeDir` inside the boot root.
//!
//! `ServeDir` already refuses `..`, absolute paths and drive prefixes in the URL,
//! but then opens the joined path with plain `File::open`, which follows symlinks
//! wherever they point. [`RootBackend`] resolves every path it is asked for and
//! refuses one that ends up outside the root. `ServeDir` answers the refusal (a
//! `PermissionDenied` error) with 404, the same as a missing file.
//!
//! Symlinks that stay inside the root keep working. What is opened is the resolved
//! path, so swapping the final symlink between check and open changes nothing; a
//! local user who can rewrite directories inside the root could still race it, but
//! such a user can put any file there anyway.
//!
//! A path that does not exist in the root is then looked up in the root's loader folder,
//! if there is one (`Served::loader_dir`), by the TFTP path rules
//! ([`crate::paths`]): the same names are served over both, and a symlink out of
//! the loader folder is refused like one out of the root.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tower_http::services::fs::{Backend, TokioBackend, TokioFile};

use crate::paths::{self, PathError};

/// `ServeDir`'s file system, limited to one canonical root folder.
#[derive(Clone, Debug)]
pub(super) struct RootBackend {
    root: Arc<Path>,
    loader_dir: Option<Arc<Path>>,
}

impl RootBackend {
    /// `root` (and `loader_dir`) must already be canonical (absolute, no symlinks), as
    /// `std::fs::canonicalize` returns it.
    pub(super) fn new(root: Arc<Path>, loader_dir: Option<Arc<Path>>) -> Self {
        Self { root, loader_dir }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl Backend for RootBackend {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = BoxFuture<TokioFile>;
    type MetadataFuture = BoxFuture<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let (root, loaders) = (self.root.clone(), self.loader_dir.clone());
        Box::pin(async move { TokioBackend.open(resolve_inside(&root, loaders.as_deref(), &path).await?).await })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let (root, loaders) = (self.root.clone(), self.loader_dir.clone());
        Box::pin(async move { tokio::fs::metadata(resolve_inside(&root, loaders.as_deref(), &path).await?).await })
    }
}

/// The real location of `path`, if it lies inside `root` (or, missing there, in the
/// loader folder behind it).
pub(super) async fn resolve_inside(root: &Path, loader_dir: Option<&Path>, path: &Path) -> io::Result<PathBuf> {
    let real = match tokio::fs::canonicalize(path).await {
        Ok(real) => real,
        Err(missing) if missing.kind() == io::ErrorKind::NotFound => {
            return match loader_dir {
                Some(loader_dir) => from_loader_dir(root, path, loader_dir.to_path_buf(), missing).await,
                None => Err(missing),
            };
        }
        // A name longer than the file system allows (ENAMETOOLONG) names no file: 404,
        // not the 500 `ServeDir` answers for an error it does not know.
        Err(err) if err.kind() == io::ErrorKind::InvalidFilename => {
            return Err(io::Error::new(io::ErrorKind::NotFound, err));
        }
        Err(err) => return Err(err),
    };
    if real.starts_with(root) {
        Ok(real)
    } else {
        tracing::warn!(
            requested = %path.display(),
            target = %real.display(),
            "HTTP: refused a symlink that leads out of the boot root"
        );
        Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{} leads out of the boot root", path.display())))
    }
}

/// `path` (under `root`, missing there) looked up in `loader_dir` by the TFTP rules.
async fn from_loader_dir(root: &Path, path: &Path, loader_dir: PathBuf, missing: io::Error) -> io::Result<PathBuf> {
    let Some(relative) = path.strip_prefix(root).ok().and_then(Path::to_str).map(str::to_owned) else {
        return Err(missing);
    };
    let found = tokio::task::spawn_blocking(move || paths::resolve_request(&loader_dir, &relative))
        .await
        .map_err(io::Error::other)?;
    match found {
        Ok(resolved) => Ok(resolved.path().to_path_buf()),
        Err(PathError::NotFound { .. } | PathError::RootUnavailable { .. }) => Err(missing),
        Err(refused) => {
            tracing::warn!(requested = %path.display(), "HTTP: refused in the loader folder: {refused}");
            Err(io::Error::new(io::ErrorKind::PermissionDenied, refused.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canonical boot root and a loader folder behind it.
    struct Folders {
        /// Kept so the folder lives as long as the test.
        _root: tempfile::TempDir,
        loaders: tempfile::TempDir,
        canonical_root: PathBuf,
    }

    impl Folders {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            let loaders = tempfile::tempdir().unwrap();
            std::fs::write(root.path().join("undionly.kpxe"), b"root copy").unwrap();
            std::fs::write(loaders.path().join("undionly.kpxe"), b"packaged copy").unwrap();
            std::fs::write(loaders.path().join("ipxe.efi"), b"packaged ipxe").unwrap();
            let canonical_root = root.path().canonicalize().unwrap();
            Folders { _root: root, loaders, canonical_root }
        }

        /// `name` as HTTP finds it, with the loader folder behind the root or without.
        async fn read_with(&self, name: &str, loaders: bool) -> io::Result<Vec<u8>> {
            let loader_dir = self.loaders.path().canonicalize().unwrap();
            let loader_dir = loaders.then_some(loader_dir.as_path());
            let real = resolve_inside(&self.canonical_root, loader_dir, &self.canonical_root.join(name)).await?;
            std::fs::read(real)
        }

        async fn read(&self, name: &str) -> io::Result<Vec<u8>> {
            self.read_with(name, true).await
        }
    }

    #[tokio::test]
    async fn missing_files_come_from_the_loader_folder_behind_the_root() {
        let folders = Folders::new();
        assert_eq!(folders.read_with("ipxe.efi", false).await.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(folders.read("ipxe.efi").await.unwrap(), b"packaged ipxe");
        assert_eq!(folders.read("undionly.kpxe").await.unwrap(), b"root copy", "the root wins");
        assert_eq!(folders.read("nope.efi").await.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlink_out_of_the_loader_folder_is_refused() {
        let folders = Folders::new();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), folders.loaders.path().join("secret")).unwrap();
        assert_eq!(folders.read("secret").await.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }
}
