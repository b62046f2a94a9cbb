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

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tower_http::services::fs::{Backend, TokioBackend, TokioFile};

/// `ServeDir`'s file system, limited to one canonical root folder.
#[derive(Clone, Debug)]
pub(super) struct RootBackend {
    root: Arc<Path>,
}

impl RootBackend {
    /// `root` must already be canonical (absolute, no symlinks), as
    /// `std::fs::canonicalize` returns it.
    pub(super) fn new(root: Arc<Path>) -> Self {
        Self { root }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl Backend for RootBackend {
    type File = TokioFile;
    type Metadata = std::fs::Metadata;
    type OpenFuture = BoxFuture<TokioFile>;
    type MetadataFuture = BoxFuture<std::fs::Metadata>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let root = self.root.clone();
        Box::pin(async move { TokioBackend.open(resolve_inside(&root, &path).await?).await })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let root = self.root.clone();
        Box::pin(async move { tokio::fs::metadata(resolve_inside(&root, &path).await?).await })
    }
}

/// The real location of `path`, if it lies inside `root`.
async fn resolve_inside(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let real = tokio::fs::canonicalize(path).await?;
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
