//! From a hostile name on the wire to a file inside the boot root: the one set of path
//! rules TFTP and HTTP share (the served namespace's rules).
//!
//! A TFTP filename or an HTTP path is whatever bytes a machine on the network chose to
//! send. [`normalise`] is the one place that turns it into a root-relative `a/b/c` name
//! (pure, no I/O; the same name keys [`Served`]), and [`resolve_request`] (with the
//! loader folder behind the root: [`resolve_normalised`]) is the one place that turns
//! that name into a real file that is provably inside the root. Nothing else builds a
//! path from a request.
//!
//! The rules, in the order they are checked:
//!
//! 1. The name must not be empty, nor longer than [`MAX_REQUEST_LEN`] bytes.
//! 2. It must not contain a NUL byte or any other control character.
//! 3. `\` is a separator, like `/` (`boot\x64.efi` is `boot/x64.efi`).
//! 4. Leading separators mean "from the root", as with `tftpd-hpa -s`:
//!    `/pxelinux.0` and `\boot\x64.efi` are served from the root, and
//!    `/etc/passwd` means `ROOT/etc/passwd`, never the system's.
//! 5. Empty and `.` components are dropped; a `..` component is refused
//!    outright (not resolved), as is any `:` (a drive letter such as `C:`, or a
//!    Windows stream name) and any component over [`MAX_COMPONENT_LEN`] bytes.
//! 6. What remains must name something (not just the root).
//! 7. The joined path is canonicalized and must still lie inside the
//!    canonicalized root: a symbolic link that stays inside the root is
//!    followed, one that leads out is refused.
//! 8. The result must be a regular file (not a directory, device or pipe).
//! 9. A name that does not exist in the root is looked up, by rules 7 and 8,
//!    in the loader folder behind the root, if there is one (`Served::loader_dir`:
//!    the iPXE loaders that came with the app). A file in the root always
//!    wins; what is refused in the root is not retried there.
//!
//! [`Served`]: crate::served::Served

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Longest request name accepted, in bytes. Real boot paths are far shorter;
/// anything longer is a probe, not a boot loader.
pub const MAX_REQUEST_LEN: usize = 512;

/// Longest single path component accepted, in bytes (`NAME_MAX` on Linux).
pub const MAX_COMPONENT_LEN: usize = 255;

/// A request name after [`normalise`]: root-relative, `/`-separated, no leading
/// slash, no empty, `.` or `..` components, never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelativePath(String);

impl RelativePath {
    /// The `a/b/c` form, as [`Served`](crate::served::Served) keys it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// `root` with each component pushed onto it.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut path = root.to_path_buf();
        for component in self.components() {
            path.push(component);
        }
        path
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request that passed every rule: a regular file inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPath {
    relative: RelativePath,
    path: PathBuf,
    size: u64,
}

impl ResolvedPath {
    /// The normalised request name.
    pub fn relative(&self) -> &RelativePath {
        &self.relative
    }

    /// The canonical path of the file (symbolic links resolved), inside the
    /// canonical root.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size when it was resolved.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Why a request name was refused, in words a person at the server can act on.
///
/// Names are shown with `{:?}` (quoted, escaped) so that whatever a client sent
/// cannot inject control sequences into a log or terminal.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("the requested file name is empty")]
    Empty,

    #[error("the requested name is {len} bytes long; names over {MAX_REQUEST_LEN} bytes are refused")]
    TooLong { len: usize },

    #[error("the requested name contains a NUL byte")]
    NulByte,

    #[error("{requested:?} contains a control character")]
    ControlCharacter { requested: String },

    #[error("{requested:?} names the boot root itself, not a file")]
    NoFileName { requested: String },

    #[error("{requested:?} contains a `..` component, which could climb out of the boot root")]
    ParentComponent { requested: String },

    #[error("{requested:?} starts with a drive letter; names are relative to the boot root")]
    DriveLetter { requested: String },

    #[error("{requested:?} contains `:`, which Windows reads as a drive or stream name")]
    Colon { requested: String },

    #[error("{requested:?} has a path component over {MAX_COMPONENT_LEN} bytes")]
    ComponentTooLong { requested: String },

    #[error("{relative:?} does not exist in the boot root {}", root.display())]
    NotFound { relative: String, root: PathBuf },

    #[error(
        "{relative:?} leads to {} through a symbolic link, outside the boot root {}; refused",
        target.display(),
        root.display()
    )]
    OutsideRoot { relative: String, root: PathBuf, target: PathBuf },

    #[error("{relative:?} in the boot root {} is {kind}, not a regular file", root.display())]
    NotAFile { relative: String, root: PathBuf, kind: &'static str },

    #[error(
        "{relative:?} in the boot root {} cannot be read: permission denied (check the file's owner and mode)",
        root.display()
    )]
    PermissionDenied { relative: String, root: PathBuf },

    #[error("the boot root {} cannot be opened: {source}", root.display())]
    RootUnavailable {
        root: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{relative:?} in the boot root {} cannot be opened: {source}", root.display())]
    Io {
        relative: String,
        root: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PathError {
    /// True when the file simply is not there (as opposed to a refused name).
    pub fn is_not_found(&self) -> bool {
        matches!(self, PathError::NotFound { .. } | PathError::NotAFile { .. } | PathError::RootUnavailable { .. })
    }

    /// True when the name broke a rule (could never be served from any root).
    pub fn is_bad_name(&self) -> bool {
        matches!(
            self,
            PathError::Empty
                | PathError::TooLong { .. }
                | PathError::NulByte
                | PathError::ControlCharacter { .. }
                | PathError::NoFileName { .. }
                | PathError::ParentComponent { .. }
                | PathError::DriveLetter { .. }
                | PathError::Colon { .. }
                | PathError::ComponentTooLong { .. }
        )
    }
}

/// Apply the name rules (1–6 above) to a wire filename, without touching the
/// file system.
pub fn normalise(requested: &str) -> Result<RelativePath, PathError> {
    if requested.is_empty() {
        return Err(PathError::Empty);
    }
    if requested.len() > MAX_REQUEST_LEN {
        return Err(PathError::TooLong { len: requested.len() });
    }
    if requested.contains('\0') {
        return Err(PathError::NulByte);
    }
    if requested.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter { requested: requested.to_owned() });
    }

    let mut parts: Vec<&str> = Vec::new();
    for component in requested.split(['/', '\\']) {
        match component {
            "" | "." => continue,
            ".." => return Err(PathError::ParentComponent { requested: requested.to_owned() }),
            _ => {}
        }
        if component.contains(':') {
            let mut chars = component.chars();
            let is_drive =
                parts.is_empty() && chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.next() == Some(':');
            return Err(if is_drive {
                PathError::DriveLetter { requested: requested.to_owned() }
            } else {
                PathError::Colon { requested: requested.to_owned() }
            });
        }
        if component.len() > MAX_COMPONENT_LEN {
            return Err(PathError::ComponentTooLong { requested: requested.to_owned() });
        }
        parts.push(component);
    }

    if parts.is_empty() {
        return Err(PathError::NoFileName { requested: requested.to_owned() });
    }
    Ok(RelativePath(parts.join("/")))
}

/// Apply every rule: normalise `requested`, then find it under `root` and make
/// sure what was found is a regular file inside the root.
///
/// Blocking (it canonicalizes and stats); call it off the async executor.
pub fn resolve_request(root: &Path, requested: &str) -> Result<ResolvedPath, PathError> {
    let relative = normalise(requested)?;
    resolve_in(root, relative)
}

/// [`resolve_request`] for a name that is already normalised: in `root`, then in the
/// app's loader folder behind it (`Served::loader_dir`).
pub fn resolve_normalised(
    root: &Path,
    loader_dir: Option<&Path>,
    relative: RelativePath,
) -> Result<ResolvedPath, PathError> {
    resolve_with_loaders(root, || loader_dir.map(Path::to_path_buf), relative)
}

/// Rule 9: `relative` in `root`, and only if it does not exist there, in the folder
/// `loader_dir` returns (asked only then). The root's "not found" is what a name missing
/// from both reports; a refusal in the loader folder (a symbolic link out of it, not a
/// regular file) is reported as such.
pub fn resolve_with_loaders(
    root: &Path,
    loader_dir: impl FnOnce() -> Option<PathBuf>,
    relative: RelativePath,
) -> Result<ResolvedPath, PathError> {
    let missing = match resolve_in(root, relative.clone()) {
        Err(missing @ PathError::NotFound { .. }) => missing,
        other => return other,
    };
    let Some(loader_dir) = loader_dir() else { return Err(missing) };
    match resolve_in(&loader_dir, relative) {
        Err(PathError::NotFound { .. } | PathError::RootUnavailable { .. }) => Err(missing),
        other => other,
    }
}

/// Rules 7 and 8 for one folder.
pub fn resolve_in(root: &Path, relative: RelativePath) -> Result<ResolvedPath, PathError> {
    let canonical_root =
        root.canonicalize().map_err(|source| PathError::RootUnavailable { root: root.to_path_buf(), source })?;

    let joined = relative.under(&canonical_root);
    let path = joined.canonicalize().map_err(|source| open_error(&relative, root, source))?;

    if !path.starts_with(&canonical_root) {
        return Err(PathError::OutsideRoot { relative: relative.0, root: root.to_path_buf(), target: path });
    }

    let metadata = std::fs::metadata(&path).map_err(|source| open_error(&relative, root, source))?;
    if !metadata.is_file() {
        let kind = if metadata.is_dir() { "a directory" } else { "a special file" };
        return Err(PathError::NotAFile { relative: relative.0, root: root.to_path_buf(), kind });
    }

    Ok(ResolvedPath { relative, path, size: metadata.len() })
}

/// Classify an I/O error met while looking up or opening `relative`.
pub(crate) fn open_error(relative: &RelativePath, root: &Path, source: io::Error) -> PathError {
    let relative = relative.0.clone();
    let root = root.to_path_buf();
    match source.kind() {
        // A missing file, a dangling link, or a file used as a directory
        // (`pxelinux.0/x`): to the client all the same thing.
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => PathError::NotFound { relative, root },
        io::ErrorKind::PermissionDenied => PathError::PermissionDenied { relative, root },
        _ => PathError::Io { relative, root, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(name: &str) -> String {
        match normalise(name) {
            Ok(path) => path.as_str().to_owned(),
            Err(e) => panic!("{name:?} should normalise, got: {e}"),
        }
    }

    fn refused(name: &str) -> PathError {
        match normalise(name) {
            Ok(path) => panic!("{name:?} should be refused, got {path}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_names_pass_unchanged() {
        assert_eq!(norm("pxelinux.0"), "pxelinux.0");
        assert_eq!(norm("boot/x64.efi"), "boot/x64.efi");
        assert_eq!(norm("pxelinux.cfg/01-52-54-00-12-34-56"), "pxelinux.cfg/01-52-54-00-12-34-56");
        assert_eq!(norm("...hidden"), "...hidden");
        assert_eq!(norm("a..b/c.."), "a..b/c..");
    }

    #[test]
    fn backslashes_are_separators() {
        assert_eq!(norm("boot\\x64.efi"), "boot/x64.efi");
        assert_eq!(norm("\\boot\\x64.efi"), "boot/x64.efi");
        assert_eq!(norm("EFI\\BOOT/bootx64.efi"), "EFI/BOOT/bootx64.efi");
    }

    #[test]
    fn leading_slash_means_root_relative() {
        assert_eq!(norm("/pxelinux.0"), "pxelinux.0");
        assert_eq!(norm("/etc/passwd"), "etc/passwd");
        assert_eq!(norm("//etc//passwd"), "etc/passwd");
        // A UNC-looking name is just a name under the root.
        assert_eq!(norm("\\\\server\\share\\x"), "server/share/x");
    }

    #[test]
    fn dot_and_empty_components_are_dropped() {
        assert_eq!(norm("./boot/./x64.efi"), "boot/x64.efi");
        assert_eq!(norm("boot//x64.efi/"), "boot/x64.efi");
    }

    #[test]
    fn parent_components_are_refused() {
        for name in ["../../etc/passwd", "..\\..\\x", "a/../../b", "a/../b", "..", "/..", "boot/..", "a\\..\\b"] {
            assert!(matches!(refused(name), PathError::ParentComponent { .. }), "{name:?}");
        }
    }

    #[test]
    fn drive_letters_and_colons_are_refused() {
        for name in ["C:\\x", "c:/x", "C:", "C:x", "/C:/x"] {
            assert!(matches!(refused(name), PathError::DriveLetter { .. }), "{name:?}");
        }
        for name in ["boot/x64.efi:stream", "a/C:/b", "1:x", "host:file"] {
            assert!(matches!(refused(name), PathError::Colon { .. }), "{name:?}");
        }
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        assert!(matches!(refused("pxelinux.0\0../../etc/passwd"), PathError::NulByte));
        assert!(matches!(refused("\0"), PathError::NulByte));
        assert!(matches!(refused("boot\n.efi"), PathError::ControlCharacter { .. }));
        assert!(matches!(refused("\u{1b}[31mred"), PathError::ControlCharacter { .. }));
        // The message escapes what it quotes.
        let message = refused("\u{1b}[31mred").to_string();
        assert!(!message.contains('\u{1b}'), "{message}");
    }

    #[test]
    fn empty_and_root_only_names_are_refused() {
        assert!(matches!(refused(""), PathError::Empty));
        for name in ["/", "\\", ".", "./", "//.//"] {
            assert!(matches!(refused(name), PathError::NoFileName { .. }), "{name:?}");
        }
    }

    #[test]
    fn overlong_names_are_refused() {
        let ok = "a".repeat(MAX_COMPONENT_LEN);
        assert_eq!(norm(&ok), ok);
        assert!(matches!(refused(&"a".repeat(MAX_COMPONENT_LEN + 1)), PathError::ComponentTooLong { .. }));
        let long = "a/".repeat(MAX_REQUEST_LEN / 2 + 1);
        assert!(matches!(refused(&long), PathError::TooLong { len } if len == long.len()));
    }

    #[test]
    fn unicode_names_pass() {
        assert_eq!(norm("/boot/ünïcode.efi"), "boot/ünïcode.efi");
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            refused("../../etc/passwd").to_string(),
            "\"../../etc/passwd\" contains a `..` component, which could climb out of the boot root"
        );
        assert!(refused("C:\\x").to_string().contains("drive letter"));
        assert!(refused("").to_string().contains("empty"));
    }

    struct Root {
        dir: tempfile::TempDir,
    }

    impl Root {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::create_dir_all(dir.path().join("boot")).expect("mkdir");
            std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
            std::fs::write(dir.path().join("pxelinux.0"), b"pxelinux").expect("write");
            std::fs::write(dir.path().join("boot/x64.efi"), b"efi!").expect("write");
            std::fs::write(dir.path().join("etc/passwd"), b"not the real one").expect("write");
            Root { dir }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        fn resolve(&self, name: &str) -> Result<ResolvedPath, PathError> {
            resolve_request(self.path(), name)
        }

        fn resolve_ok(&self, name: &str) -> ResolvedPath {
            match self.resolve(name) {
                Ok(resolved) => resolved,
                Err(e) => panic!("{name:?} should resolve: {e}"),
            }
        }
    }

    #[test]
    fn resolves_real_files_inside_the_root() {
        let root = Root::new();
        let canonical_root = root.path().canonicalize().unwrap();

        let resolved = root.resolve_ok("\\boot\\x64.efi");
        assert_eq!(resolved.relative().as_str(), "boot/x64.efi");
        assert_eq!(resolved.path(), canonical_root.join("boot").join("x64.efi"));
        assert_eq!(resolved.size(), 4);

        let resolved = root.resolve_ok("/pxelinux.0");
        assert_eq!(resolved.path(), canonical_root.join("pxelinux.0"));
    }

    #[test]
    fn absolute_system_paths_stay_in_the_root() {
        let root = Root::new();
        let resolved = root.resolve_ok("/etc/passwd");
        assert!(resolved.path().starts_with(root.path().canonicalize().unwrap()));
        assert_eq!(std::fs::read(resolved.path()).unwrap(), b"not the real one");
    }

    #[test]
    fn traversal_is_refused_even_when_the_target_exists() {
        let root = Root::new();
        // ROOT/boot/../pxelinux.0 exists, but `..` is refused, not resolved.
        assert!(matches!(root.resolve("boot/../pxelinux.0"), Err(PathError::ParentComponent { .. })));
        assert!(matches!(root.resolve("../../etc/passwd"), Err(PathError::ParentComponent { .. })));
    }

    #[test]
    fn missing_files_are_not_found() {
        let root = Root::new();
        let err = root.resolve("nope.efi").unwrap_err();
        assert!(matches!(err, PathError::NotFound { .. }), "{err}");
        assert!(err.is_not_found());
        assert!(err.to_string().contains("does not exist"), "{err}");
        // A file used as a directory.
        assert!(matches!(root.resolve("pxelinux.0/x"), Err(PathError::NotFound { .. })));
    }

    #[test]
    fn directories_are_not_files() {
        let root = Root::new();
        let err = root.resolve("boot").unwrap_err();
        assert!(matches!(err, PathError::NotAFile { kind: "a directory", .. }), "{err}");
    }

    #[test]
    fn missing_root_is_reported_as_such() {
        let root = Root::new();
        let gone = root.path().join("not-here");
        assert!(matches!(resolve_request(&gone, "pxelinux.0"), Err(PathError::RootUnavailable { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_inside_the_root_is_followed() {
        let root = Root::new();
        std::os::unix::fs::symlink("boot/x64.efi", root.path().join("bootx64.efi")).unwrap();
        std::os::unix::fs::symlink(root.path().join("boot"), root.path().join("efi")).unwrap();

        let resolved = root.resolve_ok("bootx64.efi");
        assert_eq!(resolved.relative().as_str(), "bootx64.efi");
        assert_eq!(resolved.path(), root.path().canonicalize().unwrap().join("boot/x64.efi"));
        assert_eq!(root.resolve_ok("efi/x64.efi").size(), 4);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_leaving_the_root_is_refused() {
        let root = Root::new();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("secret")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("outdir")).unwrap();

        for name in ["secret", "outdir/secret", "/outdir/secret", "\\outdir\\secret"] {
            let err = root.resolve(name).unwrap_err();
            assert!(matches!(err, PathError::OutsideRoot { .. }), "{name:?}: {err}");
            assert!(err.to_string().contains("outside the boot root"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_root_is_fine() {
        let root = Root::new();
        let holder = tempfile::tempdir().unwrap();
        let link = holder.path().join("tftproot");
        std::os::unix::fs::symlink(root.path(), &link).unwrap();
        assert_eq!(resolve_request(&link, "boot/x64.efi").unwrap().size(), 4);
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused() {
        let root = Root::new();
        let _listener = std::os::unix::net::UnixListener::bind(root.path().join("socket")).unwrap();
        let err = root.resolve("socket").unwrap_err();
        assert!(matches!(err, PathError::NotAFile { kind: "a special file", .. }), "{err}");
        // A link to a device outside the root is refused for leaving the root.
        std::os::unix::fs::symlink("/dev/null", root.path().join("null")).unwrap();
        assert!(matches!(root.resolve("null"), Err(PathError::OutsideRoot { .. })));
    }

    /// A boot root with a loader folder behind it (rule 9).
    struct WithLoaders {
        root: Root,
        loaders: tempfile::TempDir,
    }

    impl WithLoaders {
        fn new() -> Self {
            let loaders = tempfile::tempdir().expect("temp dir");
            std::fs::write(loaders.path().join("ipxe.efi"), b"packaged ipxe").expect("write");
            std::fs::write(loaders.path().join("pxelinux.0"), b"packaged pxelinux").expect("write");
            std::fs::create_dir(loaders.path().join("efi")).expect("mkdir");
            std::fs::write(loaders.path().join("efi/snponly.efi"), b"snp").expect("write");
            WithLoaders { root: Root::new(), loaders }
        }

        fn resolve(&self, name: &str) -> Result<ResolvedPath, PathError> {
            let relative = normalise(name)?;
            resolve_with_loaders(self.root.path(), || Some(self.loaders.path().to_path_buf()), relative)
        }

        fn content(&self, name: &str) -> Vec<u8> {
            match self.resolve(name) {
                Ok(resolved) => std::fs::read(resolved.path()).unwrap(),
                Err(e) => panic!("{name:?} should resolve: {e}"),
            }
        }
    }

    #[test]
    fn names_missing_from_the_root_come_from_the_loader_folder() {
        let both = WithLoaders::new();
        assert_eq!(both.content("ipxe.efi"), b"packaged ipxe");
        assert_eq!(both.content("/ipxe.efi"), b"packaged ipxe");
        assert_eq!(both.content("\\efi\\snponly.efi"), b"snp");
        let resolved = both.resolve("ipxe.efi").unwrap();
        assert_eq!(resolved.relative().as_str(), "ipxe.efi");
        assert!(resolved.path().starts_with(both.loaders.path().canonicalize().unwrap()));
    }

    #[test]
    fn the_root_wins_over_the_loader_folder() {
        let both = WithLoaders::new();
        assert_eq!(both.content("pxelinux.0"), b"pxelinux");
    }

    #[test]
    fn a_name_missing_from_both_reports_the_root() {
        let both = WithLoaders::new();
        let err = both.resolve("nope.efi").unwrap_err();
        assert!(matches!(&err, PathError::NotFound { root, .. } if root == both.root.path()), "{err}");
        // A loader folder that vanished is the same as one without the file.
        let gone = both.root.path().join("not-here");
        let relative = normalise("nope.efi").unwrap();
        let err = resolve_with_loaders(both.root.path(), || Some(gone), relative).unwrap_err();
        assert!(matches!(err, PathError::NotFound { .. }), "{err}");
    }

    #[test]
    fn the_loader_folder_is_asked_only_for_missing_names() {
        let root = Root::new();
        let ask = |name: &str| {
            let mut asked = false;
            let _ = resolve_with_loaders(
                root.path(),
                || {
                    asked = true;
                    None
                },
                normalise(name).unwrap(),
            );
            asked
        };
        assert!(!ask("pxelinux.0"), "found in the root");
        assert!(!ask("boot"), "a directory in the root is refused, not retried");
        assert!(ask("nope.efi"));
    }

    #[test]
    fn escapes_are_refused_in_the_loader_folder_too() {
        let both = WithLoaders::new();
        // Refused by name before any folder is looked at.
        for name in ["../ipxe.efi", "efi/../../etc/passwd", "C:\\ipxe.efi", "ipxe.efi:stream"] {
            assert!(both.resolve(name).unwrap_err().is_bad_name(), "{name:?}");
        }
        // The loader folder's own directory is not a file.
        assert!(matches!(both.resolve("efi"), Err(PathError::NotAFile { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_out_of_the_loader_folder_is_refused() {
        let both = WithLoaders::new();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), both.loaders.path().join("secret")).unwrap();
        std::os::unix::fs::symlink(outside.path(), both.loaders.path().join("out")).unwrap();
        for name in ["secret", "out/secret"] {
            let err = both.resolve(name).unwrap_err();
            assert!(matches!(err, PathError::OutsideRoot { .. }), "{name:?}: {err}");
        }
        // A link from the root into the loader folder leads out of the root: refused, not
        // served as a loader.
        std::os::unix::fs::symlink(both.loaders.path().join("ipxe.efi"), both.root.path().join("linked.efi")).unwrap();
        assert!(matches!(both.resolve("linked.efi"), Err(PathError::OutsideRoot { .. })));
    }

    #[test]
    fn the_loader_folder_given_is_behind_the_root_and_only_then() {
        let both = WithLoaders::new();
        let relative = || normalise("ipxe.efi").unwrap();
        assert!(matches!(resolve_normalised(both.root.path(), None, relative()), Err(PathError::NotFound { .. })));
        let resolved = resolve_normalised(both.root.path(), Some(both.loaders.path()), relative()).unwrap();
        assert_eq!(std::fs::read(resolved.path()).unwrap(), b"packaged ipxe");
        assert!(matches!(resolve_request(both.root.path(), "ipxe.efi"), Err(PathError::NotFound { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn dangling_symlink_is_not_found() {
        let root = Root::new();
        std::os::unix::fs::symlink("/nonexistent/portapxe-test", root.path().join("dangling")).unwrap();
        assert!(matches!(root.resolve("dangling"), Err(PathError::NotFound { .. })));
    }
}
