//! The loader folder: boot programs that come with the app (the iPXE loaders a package
//! installs beside the binary), served for any name the boot root lacks.
//!
//! Owns only the link from a boot root to its loader folder while an engine serves that
//! root ([`Config::loader_dir`](crate::config::Config::loader_dir)). The TFTP resolver
//! ([`crate::tftp::paths`]) and the HTTP confinement (`http::confine`) ask [`loader_dir_for`]
//! after a name was not found in the root, and then apply the root's rules inside the
//! loader folder (no `..`, no symbolic link out of it, regular files only). Must not
//! decide what is served: a file in the root always wins over a loader of the same name.
//!
//! The link is process-wide, keyed by the canonical root, because the TFTP and HTTP
//! services are handed one root path each; a [`LoaderFallback`] removes it when dropped.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

struct Link {
    id: u64,
    root: PathBuf,
    loader_dir: PathBuf,
}

static LINKS: Mutex<Vec<Link>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// While this lives, names missing from `root` are looked up in `loader_dir`.
#[derive(Debug)]
pub struct LoaderFallback {
    id: u64,
}

/// Serve `loader_dir` behind `root` until the returned value is dropped. When two are
/// registered for one root, the newer one answers. Blocking (it canonicalizes both).
pub fn register(root: &Path, loader_dir: &Path) -> io::Result<LoaderFallback> {
    let root = root.canonicalize()?;
    let loader_dir = loader_dir.canonicalize()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    links().push(Link { id, root, loader_dir });
    Ok(LoaderFallback { id })
}

/// The loader folder behind `canonical_root`, if one is registered.
pub fn loader_dir_for(canonical_root: &Path) -> Option<PathBuf> {
    links().iter().rev().find(|link| link.root == canonical_root).map(|link| link.loader_dir.clone())
}

impl Drop for LoaderFallback {
    fn drop(&mut self) {
        links().retain(|link| link.id != self.id);
    }
}

fn links() -> std::sync::MutexGuard<'static, Vec<Link>> {
    // The list stays consistent even if a holder panicked: every change is one push or retain.
    LINKS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_lasts_as_long_as_its_value() {
        let root = tempfile::tempdir().unwrap();
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let canonical = root.path().canonicalize().unwrap();
        assert_eq!(loader_dir_for(&canonical), None);

        let outer = register(root.path(), first.path()).unwrap();
        assert_eq!(loader_dir_for(&canonical), Some(first.path().canonicalize().unwrap()));
        let inner = register(root.path(), second.path()).unwrap();
        assert_eq!(loader_dir_for(&canonical), Some(second.path().canonicalize().unwrap()), "newest answers");
        drop(inner);
        assert_eq!(loader_dir_for(&canonical), Some(first.path().canonicalize().unwrap()));
        drop(outer);
        assert_eq!(loader_dir_for(&canonical), None);
    }

    #[test]
    fn a_missing_folder_cannot_be_registered() {
        let root = tempfile::tempdir().unwrap();
        assert!(register(root.path(), &root.path().join("not-here")).is_err());
    }
}
