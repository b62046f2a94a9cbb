//! File dialogs that may not exist. rfd asks the desktop for its dialog (on Linux
//! the xdg desktop portal over D-Bus, then zenity); on a bare X server or a kiosk
//! there is none, and rfd just answers "nothing chosen" at once. This module tells
//! that apart from a person pressing Cancel, so the window can say what to do instead
//! (drop files, type a path).
//!
//! Owns: knowing whether a dialog can open, and timing the answer. Must not draw.

use std::future::Future;
use std::time::{Duration, Instant};

/// An answer faster than this, with nothing chosen, came from no dialog at all:
/// nobody closes a real one that quickly.
pub const AT_ONCE: Duration = Duration::from_millis(300);

/// Whether a native file dialog can be shown here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogSupport {
    /// Ask rfd (it may still turn out to have no backend: see [`pick`]).
    Native,
    /// Known beforehand that no dialog can open, and why.
    Missing(String),
}

impl DialogSupport {
    /// Looks once (at window creation) for what rfd needs on this system.
    pub fn detect() -> Self {
        if !cfg!(target_os = "linux") {
            return Self::Native;
        }
        let has_env = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let session_bus = has_env("DBUS_SESSION_BUS_ADDRESS")
            || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists());
        let zenity = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("zenity").is_file()));
        if session_bus || zenity { Self::Native } else { Self::Missing(no_backend(false)) }
    }
}

/// What a dialog gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked<T> {
    Chosen(T),
    /// The person closed the dialog without choosing.
    Cancelled,
    /// No dialog could be shown; the text says why.
    Unavailable(String),
}

fn no_backend(closed_at_once: bool) -> String {
    let what = if closed_at_once { "The file dialog closed at once" } else { "No file dialog can open here" };
    if cfg!(target_os = "linux") {
        format!(
            "{what}: this desktop has no file dialog service (xdg-desktop-portal over D-Bus, or zenity). \
             Install xdg-desktop-portal-gtk (or zenity) to get one"
        )
    } else {
        format!("{what}: the system gave no file dialog")
    }
}

/// Runs `dialog` (an rfd future) unless dialogs are known to be missing, and tells a
/// dialog that never appeared from a cancelled one.
pub async fn pick<T>(support: &DialogSupport, dialog: impl Future<Output = Option<T>>) -> Picked<T> {
    if let DialogSupport::Missing(why) = support {
        return Picked::Unavailable(why.clone());
    }
    let opened = Instant::now();
    let answer = dialog.await;
    judge(answer, opened.elapsed())
}

/// The pure part of [`pick`]: `None` after `elapsed` is a cancel, or no dialog at all.
pub fn judge<T>(answer: Option<T>, elapsed: Duration) -> Picked<T> {
    match answer {
        Some(chosen) => Picked::Chosen(chosen),
        None if elapsed < AT_ONCE => Picked::Unavailable(no_backend(true)),
        None => Picked::Cancelled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_chosen_at_once_means_no_dialog() {
        assert_eq!(judge(Some(1), Duration::ZERO), Picked::Chosen(1));
        assert!(
            matches!(judge::<u8>(None, Duration::from_millis(5)), Picked::Unavailable(why) if why.contains("closed at once"))
        );
        assert_eq!(judge::<u8>(None, Duration::from_secs(4)), Picked::Cancelled);
    }

    #[test]
    fn a_missing_backend_never_calls_the_dialog() {
        let support = DialogSupport::Missing("no portal".into());
        let answer = futures_block_on(pick::<u8>(&support, async { unreachable!("the dialog must not be asked") }));
        assert_eq!(answer, Picked::Unavailable("no portal".into()));
        let answer = futures_block_on(pick(&DialogSupport::Native, async { None::<u8> }));
        assert!(matches!(answer, Picked::Unavailable(_)), "{answer:?}");
    }

    fn futures_block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(future)
    }
}
