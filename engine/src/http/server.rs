//! Starting and stopping the HTTP service.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::admission::{self, Admission};
use super::site::{CuttableStream, Site};
use super::{connection, router};
use crate::events::EventSink;
use crate::served::Served;

/// How long [`HttpService::stop`] lets running responses finish before it cuts them.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Pause after an accept error that is not about one connection.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// Where to listen and what to serve.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// The boot root; every URL path is looked up below it.
    pub root: PathBuf,
    /// Accept only connections that arrive on this interface (`None`: any).
    pub interface: Option<crate::socket::Interface>,
    /// Routes the engine adds beside the boot files (imaging's), tried first.
    pub routes: Option<axum::Router>,
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
    generated: Served,
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
    let files = router::files(root.clone(), generated, settings.routes);
    let admission = Admission::new(admission::connection_cap(crate::limits::open_file_soft_limit()));
    let site = Arc::new(Site {
        observed: router::observed(files.clone(), events.clone()),
        #[cfg(target_os = "linux")]
        files,
        #[cfg(target_os = "linux")]
        events,
    });
    tracing::info!("HTTP: serving {} on {local_addr}", root.display());
    let task = tokio::spawn(async move {
        serve(listener, site, admission, graceful_rx, cut_rx).await;
        tracing::info!("HTTP: stopped serving on {local_addr}");
    });

    Ok(HttpService { local_addr, graceful, cut, task })
}

/// Accepts until `graceful` fires (or its sender is gone), then lets the open
/// connections finish their responses and close.
async fn serve(
    listener: TcpListener,
    site: Arc<Site>,
    admission: Admission,
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
                    let ticket = match admission.admit(peer.ip()) {
                        Ok(ticket) => ticket,
                        Err((refused, report)) => {
                            // Closed at once: an over-eager client costs one accept, not a task.
                            if report {
                                tracing::warn!(%peer, "HTTP: closing new connections from {}: {refused}", peer.ip());
                            }
                            continue;
                        }
                    };
                    // Heads and bodies may go out in separate writes: no Nagle delay between them.
                    let _ = stream.set_nodelay(true);
                    let stream = CuttableStream::new(stream, cut.clone());
                    connections.spawn(connection::serve(stream, peer, site.clone(), draining.clone(), ticket));
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
