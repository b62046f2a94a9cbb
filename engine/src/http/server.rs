//! Starting and stopping the HTTP service.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::{connection, router};
use crate::events::EventSink;
use crate::generated::GeneratedFiles;

/// How long [`HttpService::stop`] lets running responses finish before it cuts them.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Pause after an accept error that is not about one connection.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Most bytes one sendfile(2) call may move: on a cold page cache the call reads
/// them from disk while it holds a runtime worker (about 25 ms from a 20 MB/s stick).
#[cfg(target_os = "linux")]
const SENDFILE_PIECE: u64 = 512 * 1024;

/// Where to listen and what to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// The boot root; every URL path is looked up below it.
    pub root: PathBuf,
    /// Accept only connections that arrive on this interface (`None`: any).
    pub interface: Option<crate::socket::Interface>,
}

/// Why the HTTP service did not start. The message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum HttpStartError {
    #[error("cannot serve HTTP on {addr}: another web server holds port {port}; stop it or choose --http-port", port = .addr.port())]
    AddressInUse { addr: SocketAddr, source: io::Error },

    #[error(
        "cannot serve HTTP on {addr}: ports below 1024 need root or CAP_NET_BIND_SERVICE; run with those rights or choose --http-port 1024 or above"
    )]
    PermissionDenied { addr: SocketAddr, source: io::Error },

    #[error("cannot serve HTTP on {addr}: {ip} is not an address of this machine; choose one of its interface addresses", ip = .addr.ip())]
    AddressNotAvailable { addr: SocketAddr, source: io::Error },

    #[error("cannot serve HTTP on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },

    #[error("cannot serve the boot root {}: {source}; choose an existing, readable folder", .path.display())]
    Root { path: PathBuf, source: io::Error },
}

impl HttpStartError {
    pub(super) fn from_bind(addr: SocketAddr, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::AddrInUse => Self::AddressInUse { addr, source },
            io::ErrorKind::PermissionDenied if addr.port() < 1024 => Self::PermissionDenied { addr, source },
            io::ErrorKind::AddrNotAvailable => Self::AddressNotAvailable { addr, source },
            _ => Self::Bind { addr, source },
        }
    }
}

/// A running HTTP service. Dropping it stops it at once, cutting running
/// transfers; [`stop`](Self::stop) gives them a moment to finish first.
#[derive(Debug)]
pub struct HttpService {
    local_addr: SocketAddr,
    /// Send (or drop): stop accepting, close idle connections, finish responses.
    graceful: oneshot::Sender<()>,
    /// Send `true` (or drop): close every connection now.
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpService {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting at once, lets running responses finish for up to two
    /// seconds, then closes what is left. The port is free when this returns.
    pub async fn stop(self) {
        let Self { graceful, cut, mut task, .. } = self;
        let _ = graceful.send(());
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            tracing::info!("HTTP: closing transfers still running {STOP_GRACE:?} after stop");
            let _ = cut.send(true);
            if let Err(error) = task.await {
                tracing::warn!("HTTP: the server task ended badly: {error}");
            }
        }
    }
}

/// Checks the root, binds `settings.bind`, and serves in a background task.
pub async fn start(
    settings: HttpSettings,
    generated: GeneratedFiles,
    events: EventSink,
) -> Result<HttpService, HttpStartError> {
    let root = canonical_root(&settings.root)
        .await
        .map_err(|source| HttpStartError::Root { path: settings.root.clone(), source })?;
    let bind_error = |source| HttpStartError::from_bind(settings.bind, source);
    let listener = crate::socket::tcp_listener(settings.bind, settings.interface.as_ref())
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .and_then(TcpListener::from_std)
        .map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(|source| HttpStartError::Bind { addr: settings.bind, source })?;

    let (graceful, graceful_rx) = oneshot::channel();
    let (cut, cut_rx) = watch::channel(false);
    let files = router::files(root.clone(), generated);
    let site = Arc::new(Site {
        observed: router::observed(files.clone(), events.clone()),
        #[cfg(target_os = "linux")]
        files,
        #[cfg(target_os = "linux")]
        root: root.clone(),
        #[cfg(target_os = "linux")]
        events,
    });
    tracing::info!("HTTP: serving {} on {local_addr}", root.display());
    let task = tokio::spawn(async move {
        serve(listener, site, graceful_rx, cut_rx).await;
        tracing::info!("HTTP: stopped serving on {local_addr}");
    });

    Ok(HttpService { local_addr, graceful, cut, task })
}

/// What every connection serves.
pub(super) struct Site {
    /// Every URL's answer, with its transfer events: what hyper serves.
    pub(super) observed: Router,
    /// The same answers without events, for the zero-copy path that reports its own.
    #[cfg(target_os = "linux")]
    pub(super) files: Router,
    /// Canonical.
    #[cfg(target_os = "linux")]
    pub(super) root: Arc<Path>,
    #[cfg(target_os = "linux")]
    pub(super) events: EventSink,
}

/// Accepts until `graceful` fires (or its sender is gone), then lets the open
/// connections finish their responses and close.
async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    mut graceful: oneshot::Receiver<()>,
    cut: watch::Receiver<bool>,
) {
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut graceful => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Heads and bodies may go out in separate writes: no Nagle delay between them.
                    let _ = stream.set_nodelay(true);
                    let stream = CuttableStream::new(stream, cut.clone());
                    connections.spawn(connection::serve(stream, peer, site.clone(), draining.clone()));
                }
                Err(error) => accept_failed(&error).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = drain.send(true);
    while connections.join_next().await.is_some() {}
}

/// Errors about one connection are the client's; anything else (out of file
/// descriptors, say) gets a pause so the loop does not spin on it.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if !matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted) {
        tracing::warn!("HTTP: accepting a connection failed: {error}");
        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
    }
}

async fn canonical_root(root: &Path) -> io::Result<Arc<Path>> {
    let canonical = tokio::fs::canonicalize(root).await?;
    if !tokio::fs::metadata(&canonical).await?.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotADirectory, "it is not a folder"));
    }
    Ok(canonical.into())
}

/// A connection that fails every read and write once the service is cut: a
/// graceful stop waits for every response to finish, which for a stalled client
/// or a multi-gigabyte ISO can be forever.
pub(super) struct CuttableStream {
    stream: TcpStream,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    was_cut: bool,
    /// Bytes read off the socket and given back: reads return them first.
    put_back: Bytes,
}

impl CuttableStream {
    pub(super) fn new(stream: TcpStream, mut cut: watch::Receiver<bool>) -> Self {
        let cut = Box::pin(async move {
            // `Err` means the service was dropped: cut as well.
            let _ = cut.wait_for(|&cut| cut).await;
        });
        Self { stream, cut, was_cut: false, put_back: Bytes::new() }
    }

    /// Gives back bytes read from this connection but not used, for the next reader.
    #[cfg(target_os = "linux")]
    pub(super) fn put_back(&mut self, bytes: Bytes) {
        self.put_back = bytes;
    }

    /// Also registers the task to be woken when the cut comes.
    fn check_cut(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.was_cut && self.cut.as_mut().poll(cx).is_ready() {
            self.was_cut = true;
        }
        if self.was_cut {
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the HTTP service was stopped"))
        } else {
            Ok(())
        }
    }

    /// Sends `len` bytes of `file` from `offset` with sendfile(2): no byte passes
    /// through user space. `sent` hears of every piece handed to the socket. An
    /// `Unsupported` error means the file system refused sendfile before any byte
    /// went out, so the caller can still send the bytes another way.
    #[cfg(target_os = "linux")]
    pub(super) async fn send_file(
        &mut self,
        file: &std::fs::File,
        mut offset: u64,
        len: u64,
        mut sent: impl FnMut(u64),
    ) -> io::Result<()> {
        use rustix::io::Errno;
        let end = offset + len;
        let mut sent_any = false;
        while offset < end {
            std::future::poll_fn(|cx| {
                self.check_cut(cx)?;
                self.stream.poll_write_ready(cx)
            })
            .await?;
            // A read from a cold page cache blocks this worker: small pieces keep that short.
            let count = usize::try_from((end - offset).min(SENDFILE_PIECE)).unwrap_or(usize::MAX);
            let result = self.stream.try_io(tokio::io::Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.stream, file, Some(&mut offset), count).map_err(io::Error::from)
            });
            match result {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was served"));
                }
                Ok(count) => {
                    sent_any = true;
                    sent(count as u64);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error)
                    if !sent_any
                        && [Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP]
                            .iter()
                            .any(|errno| error.raw_os_error() == Some(errno.raw_os_error())) =>
                {
                    return Err(io::Error::new(io::ErrorKind::Unsupported, error));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check_cut(cx)?;
        if !self.put_back.is_empty() {
            let count = self.put_back.len().min(buf.remaining());
            buf.put_slice(&self.put_back.split_to(count));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_cut(cx)?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
