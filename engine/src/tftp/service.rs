//! Starting and stopping the TFTP server.
//!
//! [`start`] binds the socket itself, so a port that is taken or forbidden is
//! reported by `start` (with what to do about it), never later.
//!
//! The async-tftp server runs on a thread of its own under `async_io::block_on`,
//! not in a tokio task: its sockets and per-block timers live in async-io's
//! reactor, and a thread blocked in that reactor wakes once per packet, where a
//! tokio worker was woken through async-io's reactor thread (5.6 context switches
//! and 44 µs of CPU per block, measured; BENCHMARKS.md). async-tftp has no
//! shutdown call, so stopping drops the server future, its executor and every
//! transfer on it, which releases the port.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use async_tftp::server::TftpServerBuilder;
use tokio::sync::oneshot;

use super::handler::TftpHandler;
use crate::events::{EngineEvent, EventSink, ServiceEvent};
use crate::generated::GeneratedFiles;

/// Largest block size TFTP allows (RFC 2348) and async-tftp accepts.
pub const MAX_BLOCK_SIZE: u16 = 65464;

/// Default window size cap. A window is held in memory (window × block size per
/// transfer), so an uncapped client could ask for 65535 × 65464 bytes; 64 keeps
/// that to 4 MiB and is where loopback throughput levels off.
pub const DEFAULT_WINDOW_SIZE_LIMIT: u16 = 64;

/// Default resends of an unacknowledged block before a transfer is given up.
/// Low on purpose: async-tftp ignores a client's ERROR packet (its issue #18)
/// and keeps resending until this runs out.
pub const DEFAULT_MAX_SEND_RETRIES: u32 = 10;

/// Default wait for an acknowledgement before resending (clients may ask for
/// another with the `timeout` option).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

const SERVICE_NAME: &str = "tftp";

/// How to run the TFTP service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpSettings {
    /// Address to listen on. Bind one per interface address rather than
    /// 0.0.0.0: async-tftp sends each transfer from a new socket bound to this
    /// IP, and with 0.0.0.0 the kernel picks the source address.
    pub bind: SocketAddr,
    /// The boot root; every real file served lies inside it.
    pub root: PathBuf,
    /// Cap on the client's `blksize` (8..=65464); `None` allows up to 65464.
    pub block_size_limit: Option<u16>,
    /// Cap on the client's `windowsize` (RFC 7440, at least 1); `None` means
    /// no cap, which lets one client make the server buffer gigabytes.
    pub window_size_limit: Option<u16>,
    /// Resends of a block before the transfer is given up.
    pub max_send_retries: u32,
    /// Wait for an acknowledgement before resending.
    pub timeout: Duration,
}

impl TftpSettings {
    /// Defaults for everything but where to listen and what to serve.
    pub fn new(bind: SocketAddr, root: impl Into<PathBuf>) -> Self {
        Self {
            bind,
            root: root.into(),
            block_size_limit: None,
            window_size_limit: Some(DEFAULT_WINDOW_SIZE_LIMIT),
            max_send_retries: DEFAULT_MAX_SEND_RETRIES,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn validate(&self) -> Result<(), TftpStartError> {
        if let Some(limit) = self.block_size_limit
            && !(8..=MAX_BLOCK_SIZE).contains(&limit)
        {
            return Err(TftpStartError::InvalidSetting(format!(
                "block size limit {limit} is outside 8..={MAX_BLOCK_SIZE}"
            )));
        }
        if self.window_size_limit == Some(0) {
            return Err(TftpStartError::InvalidSetting("window size limit must be at least 1".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(TftpStartError::InvalidSetting("timeout must be longer than zero".to_owned()));
        }
        Ok(())
    }
}

/// Why the TFTP service did not start.
#[derive(Debug, thiserror::Error)]
pub enum TftpStartError {
    #[error(
        "cannot bind TFTP on {addr}: address in use — another TFTP server (tftpd-hpa, dnsmasq) is running; \
         stop it or choose --tftp-port"
    )]
    AddressInUse {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    #[error("cannot bind TFTP on {addr}: permission denied — {hint}")]
    PermissionDenied {
        addr: SocketAddr,
        hint: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(
        "cannot bind TFTP on {addr}: this computer has no such address — check that the interface is up \
         and has that IP"
    )]
    AddressNotAvailable {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    #[error("cannot bind TFTP on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },

    #[error("TFTP root {} is not a usable directory: {reason}", root.display())]
    Root { root: PathBuf, reason: String },

    #[error("invalid TFTP setting: {0}")]
    InvalidSetting(String),

    #[error("cannot start the TFTP server on {addr}: {source}")]
    Server {
        addr: SocketAddr,
        #[source]
        source: async_tftp::Error,
    },
}

/// Turn a bind failure into an error that says what to do.
pub fn bind_error(addr: SocketAddr, source: io::Error) -> TftpStartError {
    match source.kind() {
        io::ErrorKind::AddrInUse => TftpStartError::AddressInUse { addr, source },
        io::ErrorKind::PermissionDenied => {
            let hint = if addr.port() < 1024 {
                "ports below 1024 need root or CAP_NET_BIND_SERVICE \
                 (`sudo setcap cap_net_bind_service=+ep` on the binary), or choose a --tftp-port above 1023"
            } else {
                "the system refused this port (firewall, security policy or a reserved port range); \
                 choose another --tftp-port"
            };
            TftpStartError::PermissionDenied { addr, hint, source }
        }
        io::ErrorKind::AddrNotAvailable => TftpStartError::AddressNotAvailable { addr, source },
        _ => TftpStartError::Bind { addr, source },
    }
}

/// A running TFTP server. Stops on [`stop`](Self::stop) or when dropped.
pub struct TftpService {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    events: EventSink,
}

impl std::fmt::Debug for TftpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TftpService")
            .field("local_addr", &self.local_addr)
            .field("running", &self.is_running())
            .finish()
    }
}

impl TftpService {
    /// Where the server listens (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// False once the server has died on its own (a `Service` event with
    /// `ok: false` says why) or was stopped.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|thread| !thread.is_finished())
    }

    /// Stop serving: every transfer in flight is cut off (each reports
    /// `Failed`), and when this returns the port is free again.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The thread ends as soon as it has dropped the server and its sockets.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.events.emit(EngineEvent::Service(ServiceEvent {
            service: SERVICE_NAME.to_owned(),
            message: format!("TFTP on {} stopped", self.local_addr),
            ok: true,
        }));
    }
}

impl Drop for TftpService {
    /// Tells the server thread to stop; the port is released as soon as it
    /// has (use [`stop`](Self::stop) to wait for it).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Bind, then serve read requests from `settings.root` (with `generated` files
/// shadowing real ones) in a tokio task. Must be called within a tokio runtime.
pub async fn start(
    settings: TftpSettings,
    generated: GeneratedFiles,
    events: EventSink,
) -> Result<TftpService, TftpStartError> {
    settings.validate()?;
    check_root(settings.root.clone()).await?;

    let addr = settings.bind;
    let socket = UdpSocket::bind(addr).map_err(|e| bind_error(addr, e))?;
    let local_addr = socket.local_addr().map_err(|e| bind_error(addr, e))?;

    let handler = TftpHandler::new(settings.root.clone(), generated, events.clone());
    let mut builder = TftpServerBuilder::with_handler(handler)
        .std_socket(socket)
        .map_err(|source| TftpStartError::Server { addr: local_addr, source })?
        .timeout(settings.timeout)
        .max_send_retries(settings.max_send_retries);
    if let Some(limit) = settings.block_size_limit {
        builder = builder.block_size_limit(limit);
    }
    if let Some(limit) = settings.window_size_limit {
        builder = builder.window_size_limit(limit);
    }
    let server = builder.build().await.map_err(|source| TftpStartError::Server { addr: local_addr, source })?;

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task_events = events.clone();
    let thread = std::thread::Builder::new()
        .name("tftp".to_owned())
        .spawn(move || {
            let stopped = async {
                let _ = stop_rx.await;
                None
            };
            // serve() only returns when receiving on the listening socket fails.
            let served = async { Some(server.serve().await) };
            let message = match async_io::block_on(futures_lite::future::or(served, stopped)) {
                None => return,
                Some(Ok(())) => format!("TFTP on {local_addr} stopped unexpectedly"),
                Some(Err(e)) => format!("TFTP on {local_addr} stopped: {e}"),
            };
            tracing::error!("{message}");
            task_events.emit(EngineEvent::Service(ServiceEvent {
                service: SERVICE_NAME.to_owned(),
                message,
                ok: false,
            }));
        })
        .map_err(|source| TftpStartError::Bind { addr: local_addr, source })?;

    tracing::info!(addr = %local_addr, root = %settings.root.display(), "TFTP serving");
    events.emit(EngineEvent::Service(ServiceEvent {
        service: SERVICE_NAME.to_owned(),
        message: format!("TFTP serving {} on {local_addr}", settings.root.display()),
        ok: true,
    }));

    Ok(TftpService { local_addr, stop: Some(stop_tx), thread: Some(thread), events })
}

async fn check_root(root: PathBuf) -> Result<(), TftpStartError> {
    blocking::unblock(move || match std::fs::metadata(&root) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(TftpStartError::Root { root, reason: "it is a file, not a directory".to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(TftpStartError::Root { root, reason: "it does not exist".to_owned() })
        }
        Err(e) => Err(TftpStartError::Root { root, reason: e.to_string() }),
    })
    .await
}
