//! Which bytes answer which URL. The engine's own routes (imaging's) answer their paths
//! first; every other URL is looked up in the served namespace ([`find`]: a generated
//! file, a file inside a mounted ISO image, then the boot root and the loader folder
//! behind it, by the one set of path rules in `crate::paths`), answered by the one
//! decision (`portapxe_proto::http_plan::plan`) and turned into a response. A file body is
//! the span of the file opened by the lookup: hyper streams it, and on Linux the
//! response also carries that span ([`SendFile`]) for the zero-copy path, which sends
//! it with sendfile(2) instead. Both send the bytes of the same open file.

use std::fs::File;
use std::io::{self, Seek as _, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware;
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::observe;
use crate::events::EventSink;
use crate::paths::{self, PathError, RelativePath};
use crate::served::{ImageSpan, Served, ServedItem};
use portapxe_proto::http_plan::{self as plan, Found, Plan};

/// Bytes read from a file per trip to the blocking pool. The default 64 KiB made a
/// single download 0.56× nginx, 256 KiB 0.93× (BENCHMARKS.md, case 4a).
const HTTP_READ_CHUNK: usize = 256 * 1024;

/// The bytes a response's body is: `len` bytes of `file` from `offset`. Set on every
/// response whose body is a file, for the zero-copy path.
#[cfg(target_os = "linux")]
#[derive(Clone, Debug)]
pub(super) struct SendFile {
    pub(super) file: Arc<File>,
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// What every URL is looked up in.
#[derive(Clone)]
pub(super) struct Namespace {
    /// The boot root, canonical.
    root: Arc<Path>,
    served: Served,
}

/// A file the lookup opened: its bytes start at `base` in `file` (0, or where a file
/// inside an ISO image lies in the image).
pub(super) struct Opened {
    file: File,
    base: u64,
}

/// Every URL's answer, without transfer events. `root` must be canonical. `routes`
/// (the engine's own, e.g. imaging) answer their paths before any file.
pub(super) fn files(root: Arc<Path>, served: Served, routes: Option<Router>) -> Router {
    let files = Router::new().fallback(serve).with_state(Namespace { root, served });
    match routes {
        Some(routes) => routes.merge(files),
        None => files,
    }
}

/// [`files`] with a transfer event story for every request, for the connections hyper serves.
pub(super) fn observed(files: Router, events: EventSink) -> Router {
    files.layer(middleware::from_fn_with_state(events, observe::report_transfer))
}

async fn serve(State(namespace): State<Namespace>, request: Request) -> Response {
    let method = request.method();
    let (found, opened) = if method == Method::GET || method == Method::HEAD {
        find(&namespace, request.uri().path()).await
    } else {
        (Found::Missing, None)
    };
    respond(plan::plan(method, request.headers(), found), opened)
}

/// A URL path as the name the path rules check: percent-decoded, then normalised
/// (`paths::normalise`: `..`, `:`, control characters and overlong names refused).
pub(super) fn url_name(url_path: &str) -> Option<RelativePath> {
    let decoded = percent_decode_str(url_path).decode_utf8().ok()?;
    paths::normalise(&decoded).ok()
}

/// What the namespace holds at `url_path`, opened if it is a file (off the runtime: the
/// look at the disk blocks).
async fn find(namespace: &Namespace, url_path: &str) -> (Found, Option<Opened>) {
    let Some(name) = url_name(url_path) else { return (Found::Missing, None) };
    let looked_up = match namespace.served.lookup(name.as_str()) {
        Some(ServedItem::Generated(content)) => return (Found::Generated(content), None),
        Some(ServedItem::InImage(span)) => tokio::task::spawn_blocking(move || open_in_image(&span)).await,
        None => {
            let (root, loader_dir) = (namespace.root.clone(), namespace.served.loader_dir().map(Path::to_path_buf));
            tokio::task::spawn_blocking(move || open_in_root(&root, loader_dir.as_deref(), name)).await
        }
    };
    looked_up.unwrap_or((Found::Unreadable, None))
}

fn open_in_image(span: &ImageSpan) -> (Found, Option<Opened>) {
    match span.open() {
        Ok(file) => {
            read_sequentially(&file);
            (Found::File { len: span.len, modified: span.stamp.modified }, Some(Opened { file, base: span.offset }))
        }
        Err(error) => {
            tracing::warn!("HTTP: {error}");
            (Found::Unreadable, None)
        }
    }
}

/// `name` in the boot root, or missing there in the loader folder, by the path rules.
fn open_in_root(root: &Path, loader_dir: Option<&Path>, name: RelativePath) -> (Found, Option<Opened>) {
    let opened = match paths::resolve_normalised(root, loader_dir, name) {
        Ok(resolved) => open_regular(resolved.path()),
        Err(PathError::Io { source, .. }) => Err(source),
        Err(refused @ PathError::OutsideRoot { .. }) => {
            tracing::warn!("HTTP: refused: {refused}");
            return (Found::Missing, None);
        }
        // Missing, a directory, not readable by us: the client is told "not found".
        Err(_) => return (Found::Missing, None),
    };
    match opened {
        Ok((file, metadata)) => {
            read_sequentially(&file);
            (Found::File { len: metadata.len(), modified: metadata.modified().ok() }, Some(Opened { file, base: 0 }))
        }
        Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) => {
            (Found::Missing, None)
        }
        Err(_) => (Found::Unreadable, None),
    }
}

/// Twice the read-ahead for a cold cache, whichever path sends the file; only a hint.
fn read_sequentially(file: &File) {
    #[cfg(target_os = "linux")]
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Sequential);
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Opens the file the path rules found, and makes sure what was opened is still a regular
/// file: between their check and this open a local user who can write inside the root
/// could swap it. On Unix the open does not wait (a FIFO put there would block a thread
/// for ever) and does not follow a final symbolic link (the rules gave the real path).
fn open_regular(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(|error| {
        // ELOOP: the final name became a symbolic link since the rules looked.
        #[cfg(unix)]
        if error.raw_os_error() == Some(nix::libc::ELOOP) {
            return io::Error::from(io::ErrorKind::NotFound);
        }
        error
    })?;
    let metadata = file.metadata()?;
    if metadata.is_file() { Ok((file, metadata)) } else { Err(io::ErrorKind::NotFound.into()) }
}

/// The response `plan` decided, its file body read from `opened`.
fn respond(plan: Plan, opened: Option<Opened>) -> Response {
    let Plan { status, headers, body } = plan;
    let mut response = Response::new(Body::empty());
    match body {
        plan::Body::Empty => {}
        plan::Body::Bytes(content) => *response.body_mut() = Body::from(content),
        plan::Body::File { offset, len } => {
            // A file body always comes with the file `find` opened; a handle that cannot
            // be cloned is a 500.
            let streamed = opened.and_then(|Opened { file, base }| {
                let start = base + offset;
                Some((file_stream(&file, start, len).ok()?, file, start))
            });
            let Some((stream, file, start)) = streamed else {
                return respond(plan::plan(&Method::GET, &HeaderMap::new(), Found::Unreadable), None);
            };
            *response.body_mut() = stream;
            #[cfg(target_os = "linux")]
            response.extensions_mut().insert(SendFile { file: Arc::new(file), offset: start, len });
            #[cfg(not(target_os = "linux"))]
            let _ = (file, start);
        }
    }
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `len` bytes of `file` from `offset`, read as the body is polled (and not at all by
/// a zero-copy send, which drops it). Its own handle: the file position it moves is
/// not the one sendfile(2) is given. (So a file being sent holds two descriptors.)
fn file_stream(file: &File, offset: u64, len: u64) -> io::Result<Body> {
    let mut own = file.try_clone()?;
    own.seek(SeekFrom::Start(offset))?;
    let reader = tokio::fs::File::from_std(own).take(len);
    Ok(Body::from_stream(ReaderStream::with_capacity(reader, HTTP_READ_CHUNK)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(url: &str) -> Option<String> {
        url_name(url).map(|name| name.as_str().to_owned())
    }

    /// What `open_regular` gives for `path`, within 5 s (a FIFO opened without
    /// `O_NONBLOCK` would wait for a writer for ever).
    #[cfg(unix)]
    fn opened_within_seconds(path: std::path::PathBuf) -> io::Result<()> {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(open_regular(&path).map(|_| ())));
        result.recv_timeout(std::time::Duration::from_secs(5)).expect("the open returned at once")
    }

    #[cfg(unix)]
    #[test]
    fn what_is_opened_must_still_be_a_regular_file_at_its_real_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ipxe.efi"), b"loader").unwrap();
        assert!(opened_within_seconds(dir.path().join("ipxe.efi")).is_ok());
        // Swapped in after the path rules looked: a FIFO, a directory, a final link.
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("ipxe.efi"), dir.path().join("link")).unwrap();
        for name in ["fifo", "folder", "link"] {
            let error = opened_within_seconds(dir.path().join(name)).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::NotFound, "{name}: {error}");
        }
    }

    #[test]
    fn url_paths_are_checked_by_the_shared_path_rules() {
        assert_eq!(name("/boot.ipxe").as_deref(), Some("boot.ipxe"));
        assert_eq!(name("//a/./b//c").as_deref(), Some("a/b/c"));
        assert_eq!(name("/boot%2Eipxe").as_deref(), Some("boot.ipxe"));
        assert_eq!(name("/a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(name("/a%5Cb").as_deref(), Some("a/b"), "a backslash separates, as over TFTP");
        for refused in ["/", "/../x", "/a/%2e%2e/x", "/%ff", "/C:/x", "/a%00b", "/a%0Ab"] {
            assert_eq!(name(refused), None, "{refused}");
        }
    }
}
