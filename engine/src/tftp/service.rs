//! Starting and stopping the TFTP server, and the I/O of each transfer.
//!
//! [`start`] binds the socket itself, so a port that is taken or forbidden is
//! reported by `start` (with what to do about it), never later.
//!
//! Requests arrive on the listening socket in a tokio task. Each read request
//! gets a thread of its own with a new socket (its TID) for that client,
//! driving a [`ReadTransfer`] with blocking sends and receives: one wake-up per
//! ACK and no hop between threads per block, as tftpd-hpa and atftpd do. (The
//! async-tftp server this replaced cost 5.6 context switches and 44 µs of CPU
//! per block here, and one per-ACK timer and epoll re-arm even on its own
//! thread; BENCHMARKS.md has the figures.)

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::admission::Admission;
use super::handler::{Opened, Refusal, TftpHandler};
use super::packet::{self, ClientPacket, DATA_HEADER_LEN, ErrorCode, Mode, Request};
use super::transfer::{Action, Limits, MAX_BLOCK_SIZE, Negotiated, ReadTransfer, negotiate};
use crate::events::{EngineEvent, EventSink, Service, ServiceEvent};
use crate::served::Served;

/// Default window size cap. A window is held in memory (window × block size per
/// transfer), so an uncapped client could ask for 65535 × 65464 bytes; 64 keeps
/// that to 4 MiB and is where loopback throughput levels off.
pub const DEFAULT_WINDOW_SIZE_LIMIT: u16 = 64;

/// Default resends in a row without progress before a transfer is given up.
/// The waits double from the measured round trip up to the timeout.
pub const DEFAULT_MAX_SEND_RETRIES: u32 = 10;

/// Default longest wait for an acknowledgement before resending (clients may
/// ask for another with the `timeout` option).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// How often a transfer waiting for an ACK checks whether the service stopped.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Stack of a transfer thread: the loop holds its block buffer on the heap.
const TRANSFER_STACK: usize = 256 * 1024;

/// Receive buffer of the listening socket: a classroom's requests at once.
const LISTEN_BUFFER: usize = 256 * 1024;

/// Longest datagram a client sends (a request with options); longer is dropped.
const MAX_REQUEST_DATAGRAM: usize = 2048;

/// How to run the TFTP service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TftpSettings {
    /// Address to listen on. Bind one per interface address rather than
    /// 0.0.0.0: each transfer is sent from a new socket bound to this IP, and
    /// with 0.0.0.0 the kernel picks the source address.
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
    /// Answer only requests that arrive on this interface (`None`: any).
    pub interface: Option<crate::socket::Interface>,
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
            interface: None,
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
    listener: Option<tokio::task::JoinHandle<()>>,
    transfers: Arc<Transfers>,
    events: EventSink,
}

/// What the listener and the transfer threads share.
#[derive(Default)]
struct Transfers {
    stopping: AtomicBool,
    /// The transfers running, overall and per client address.
    admission: std::sync::Mutex<Admission>,
}

impl Transfers {
    fn admission(&self) -> std::sync::MutexGuard<'_, Admission> {
        self.admission.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for TftpService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TftpService")
            .field("local_addr", &self.local_addr)
            .field("running", &self.is_running())
            .field("transfers", &self.transfers.admission().active())
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
        self.listener.as_ref().is_some_and(|listener| !listener.is_finished())
    }

    /// Stop serving: every transfer in flight is cut off (each reports
    /// `Failed`), and when this returns the port is free again.
    pub async fn stop(mut self) {
        self.transfers.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(listener) = self.listener.take() {
            let _ = listener.await;
        }
        // Transfers notice within STOP_POLL; wait a little longer than that.
        let deadline = Instant::now() + STOP_POLL * 5;
        while self.transfers.admission().active() > 0 && Instant::now() < deadline {
            tokio::time::sleep(STOP_POLL / 10).await;
        }
        self.events.emit(EngineEvent::Service(ServiceEvent {
            service: Service::Tftp,
            message: format!("TFTP on {} stopped", self.local_addr),
            ok: true,
        }));
    }
}

impl Drop for TftpService {
    /// Tells the listener and every transfer to stop; the port is released as
    /// soon as the listener task has ended (use [`stop`](Self::stop) to wait).
    fn drop(&mut self) {
        self.transfers.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Bind, then serve read requests from `settings.root` (with `generated` files
/// shadowing real ones). Must be called within a tokio runtime.
pub async fn start(settings: TftpSettings, served: Served, events: EventSink) -> Result<TftpService, TftpStartError> {
    settings.validate()?;
    check_root(settings.root.clone()).await?;

    let addr = settings.bind;
    let socket = crate::socket::udp(addr, settings.interface.as_ref()).map_err(|e| bind_error(addr, e))?;
    let local_addr = socket.local_addr().map_err(|e| bind_error(addr, e))?;
    // A bigger buffer only helps; the system's default still works.
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(LISTEN_BUFFER);
    socket.set_nonblocking(true).map_err(|e| bind_error(addr, e))?;
    let socket = tokio::net::UdpSocket::from_std(socket).map_err(|e| bind_error(addr, e))?;

    let listener = Listener {
        handler: TftpHandler::new(settings.root.clone(), served, events.clone()),
        limits: Limits {
            block_size: settings.block_size_limit.unwrap_or(MAX_BLOCK_SIZE),
            window_size: settings.window_size_limit.unwrap_or(u16::MAX),
            timeout: settings.timeout,
            max_retries: settings.max_send_retries,
        },
        transfers: Arc::new(Transfers::default()),
        local_addr,
    };
    let transfers = Arc::clone(&listener.transfers);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task_events = events.clone();
    let task = tokio::spawn(async move {
        let Err(err) = listener.serve(&socket, stop_rx).await else { return };
        let message = format!("TFTP on {local_addr} stopped: {err}");
        tracing::error!("{message}");
        task_events.emit(EngineEvent::Service(ServiceEvent { service: Service::Tftp, message, ok: false }));
    });

    tracing::info!(addr = %local_addr, root = %settings.root.display(), "TFTP serving");
    events.emit(EngineEvent::Service(ServiceEvent {
        service: Service::Tftp,
        message: format!("TFTP serving {} on {local_addr}", settings.root.display()),
        ok: true,
    }));

    Ok(TftpService { local_addr, stop: Some(stop_tx), listener: Some(task), transfers, events })
}

/// Receives requests on the listening socket and hands each read to a thread.
struct Listener {
    handler: TftpHandler,
    limits: Limits,
    transfers: Arc<Transfers>,
    local_addr: SocketAddr,
}

impl Listener {
    /// Until `stop` fires (Ok) or the socket fails (Err).
    async fn serve(&self, socket: &tokio::net::UdpSocket, mut stop: oneshot::Receiver<()>) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_REQUEST_DATAGRAM];
        loop {
            let (len, client) = tokio::select! {
                _ = &mut stop => return Ok(()),
                received = socket.recv_from(&mut buf) => match received {
                    Ok(received) => received,
                    // An ICMP error from an earlier reply, on systems that report
                    // it here (Windows): not the listener's failure.
                    Err(err) if is_transient(&err) => continue,
                    Err(err) => return Err(err),
                },
            };
            if len == buf.len() {
                tracing::debug!(%client, "TFTP datagram on the listening port too long; dropped");
                continue;
            }
            match packet::parse(&buf[..len]) {
                Ok(ClientPacket::Read(request)) => self.read_request(socket, client, request).await,
                Ok(ClientPacket::Write(request)) => {
                    let refusal = self.handler.refuse_write(client, &request.filename);
                    reply_error(socket, client, &refusal).await;
                }
                Ok(other) => tracing::debug!(%client, "TFTP {other:?} on the listening port; ignored"),
                // A name that is not text cannot be a boot file; a reply would only
                // help a scanner. Dropped like any other malformed datagram.
                Err(err) => tracing::debug!(%client, "TFTP datagram dropped: {err}"),
            }
        }
    }

    async fn read_request(&self, socket: &tokio::net::UdpSocket, client: SocketAddr, request: Request) {
        if request.mode == Mode::Mail {
            let refusal = self.handler.refuse(client, &request.filename, &"mail mode is not supported");
            return reply_error(socket, client, &refusal).await;
        }
        let admitted = self.transfers.admission().admit(client.ip());
        if let Err(refused) = admitted {
            let refusal = if refused.first {
                self.handler.refuse(client, &request.filename, &refused.why)
            } else {
                Refusal { code: ErrorCode::Undefined, message: refused.why.to_string() }
            };
            return reply_error(socket, client, &refusal).await;
        }
        let transfer = TransferThread {
            handler: self.handler.clone(),
            limits: self.limits,
            transfers: Arc::clone(&self.transfers),
            bind: SocketAddr::new(self.local_addr.ip(), 0),
            client,
            request,
        };
        let spawned = std::thread::Builder::new()
            .name("tftp-transfer".to_owned())
            .stack_size(TRANSFER_STACK)
            .spawn(move || transfer.run());
        if let Err(err) = spawned {
            // The thread never ran, so its guard never releases the slot: do it here.
            drop(ActiveGuard { transfers: Arc::clone(&self.transfers), client: client.ip() });
            tracing::error!(%client, "cannot start a TFTP transfer thread: {err}");
        }
    }
}

async fn reply_error(socket: &tokio::net::UdpSocket, client: SocketAddr, refusal: &Refusal) {
    if let Err(err) = socket.send_to(&packet::error(refusal.code, &refusal.message), client).await {
        tracing::debug!(%client, "TFTP error reply not sent: {err}");
    }
}

fn is_transient(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted)
}

/// One read request, served on its own thread from its own socket.
struct TransferThread {
    handler: TftpHandler,
    limits: Limits,
    transfers: Arc<Transfers>,
    bind: SocketAddr,
    client: SocketAddr,
    request: Request,
}

impl TransferThread {
    fn run(self) {
        let _active = ActiveGuard { transfers: Arc::clone(&self.transfers), client: self.client.ip() };
        let socket = match UdpSocket::bind(self.bind) {
            Ok(socket) => socket,
            Err(err) => {
                tracing::warn!(client = %self.client, "no socket for a TFTP transfer: {err}");
                let refusal = self.handler.refuse(self.client, &self.request.filename, &err);
                let _ = UdpSocket::bind(self.bind)
                    .and_then(|s| s.send_to(&packet::error(refusal.code, &refusal.message), self.client));
                return;
            }
        };
        // Errors to a request come from the transfer's port too (RFC 1350).
        let Opened { source, mut report } =
            match self.handler.open_as(self.client, &self.request.filename, self.request.mode) {
                Ok(opened) => opened,
                Err(refusal) => {
                    let _ = socket.send_to(&packet::error(refusal.code, &refusal.message), self.client);
                    return;
                }
            };
        let negotiated = negotiate(&self.request.options, report.size(), &self.limits);
        let mut link = Link::new(socket, self.client, &negotiated, &self.transfers.stopping);
        let (mut transfer, mut action) =
            ReadTransfer::start(&negotiated, report.size(), self.limits.max_retries, Instant::now());
        loop {
            let sent = match &action {
                Action::SendOack => link.send(&packet::oack(&negotiated.oack)),
                Action::Send(blocks) => link.send_blocks(&transfer, blocks.clone(), &source),
                Action::Wait => Ok(()),
                Action::Done => return report.finished(),
                Action::GiveUp => {
                    let why = format!("no acknowledgement after {} resends", self.limits.max_retries);
                    let _ = link.send(&packet::error(ErrorCode::Undefined, "timed out"));
                    return report.failed(transfer.acknowledged_bytes(), &why);
                }
            };
            if let Err(why) = sent {
                return report.failed(transfer.acknowledged_bytes(), &why);
            }
            action = match link.receive(transfer.deadline()) {
                Ok(Some(ClientPacket::Ack(number))) => {
                    let now = Instant::now();
                    let next = transfer.on_ack(number, now);
                    report.progress(transfer.acknowledged_bytes(), now);
                    next
                }
                Ok(Some(ClientPacket::Error { code, message })) => {
                    let why = format!("the client sent error {code} ({message:?})");
                    return report.failed(transfer.acknowledged_bytes(), &why);
                }
                Ok(Some(_)) => Action::Wait,
                Ok(None) => transfer.on_timeout(Instant::now()),
                Err(why) => return report.failed(transfer.acknowledged_bytes(), &why),
            };
        }
    }
}

/// Counts a transfer as active (overall and for its client) for as long as it lives.
struct ActiveGuard {
    transfers: Arc<Transfers>,
    client: std::net::IpAddr,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.transfers.admission().release(self.client);
    }
}

/// A transfer's socket (its TID) and its client. The socket is not connected: a
/// datagram from any other address or port is answered with ERROR 5 and the transfer
/// goes on (RFC 1350, section 4), where a connected socket would drop it unseen.
struct Link<'a> {
    socket: UdpSocket,
    client: SocketAddr,
    packet: Vec<u8>,
    received: [u8; MAX_REQUEST_DATAGRAM],
    read_timeout: Option<Duration>,
    /// When a stray TID was last answered.
    stray_answered: Option<Instant>,
    stopping: &'a AtomicBool,
}

/// Strays are answered at most this often per transfer.
const STRAY_ANSWER_INTERVAL: Duration = Duration::from_secs(1);

impl<'a> Link<'a> {
    fn new(socket: UdpSocket, client: SocketAddr, negotiated: &Negotiated, stopping: &'a AtomicBool) -> Self {
        let packet = vec![0u8; DATA_HEADER_LEN + usize::from(negotiated.block_size)];
        let received = [0; MAX_REQUEST_DATAGRAM];
        Self { socket, client, packet, received, read_timeout: None, stray_answered: None, stopping }
    }

    fn send(&self, datagram: &[u8]) -> Result<(), String> {
        self.socket.send_to(datagram, self.client).map(|_| ()).map_err(|err| describe(&err))
    }

    fn send_blocks(
        &mut self,
        transfer: &ReadTransfer,
        blocks: std::ops::RangeInclusive<u64>,
        source: &super::handler::BlockSource,
    ) -> Result<(), String> {
        for block in blocks {
            let (offset, len) = transfer.block_span(block);
            let payload = &mut self.packet[DATA_HEADER_LEN..DATA_HEADER_LEN + len];
            let read = source.read_at(offset, payload).map_err(|err| format!("reading the file failed: {err}"))?;
            if read < len {
                return Err(format!("the file shrank while it was served (block {block} short by {})", len - read));
            }
            packet::write_data_header(&mut self.packet, ReadTransfer::wire_number(block));
            self.send(&self.packet[..DATA_HEADER_LEN + len])?;
        }
        Ok(())
    }

    /// ERROR 5 to a datagram from another TID, at most once a second, and never to an
    /// ERROR: two transfer sockets that answer strays must not bounce errors forever.
    fn answer_stray(&mut self, len: usize, from: SocketAddr) {
        tracing::debug!(%from, client = %self.client, "TFTP transfer: datagram from another TID");
        let is_error = matches!(packet::parse(&self.received[..len]), Ok(ClientPacket::Error { .. }));
        let now = Instant::now();
        if is_error || self.stray_answered.is_some_and(|at| now.duration_since(at) < STRAY_ANSWER_INTERVAL) {
            return;
        }
        self.stray_answered = Some(now);
        let _ = self.socket.send_to(&packet::error(ErrorCode::UnknownTransferId, "unknown transfer ID"), from);
    }

    /// The next packet from the client, or `None` once `deadline` has passed.
    fn receive(&mut self, deadline: Instant) -> Result<Option<ClientPacket>, String> {
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                return Err("the TFTP service was stopped".to_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Rounded up to whole milliseconds so the timeout changes rarely (one
            // setsockopt per change, not per block).
            let wanted = (deadline - now).min(STOP_POLL);
            let wanted = Duration::from_millis(wanted.as_millis() as u64 + 1);
            if self.read_timeout != Some(wanted) {
                self.socket.set_read_timeout(Some(wanted)).map_err(|err| describe(&err))?;
                self.read_timeout = Some(wanted);
            }
            match self.socket.recv_from(&mut self.received) {
                Ok((len, from)) if from != self.client => self.answer_stray(len, from),
                Ok((len, _)) => match packet::parse(&self.received[..len]) {
                    Ok(packet) => return Ok(Some(packet)),
                    Err(err) => tracing::debug!("TFTP transfer: datagram dropped: {err}"),
                },
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                // Windows reports an ICMP "port unreachable" on the next receive of an
                // unconnected socket; it may concern any address we wrote to (a stray
                // sender), not the client, so it does not end the transfer.
                Err(err) if matches!(err.kind(), io::ErrorKind::Interrupted | io::ErrorKind::ConnectionReset) => {}
                Err(err) => return Err(describe(&err)),
            }
        }
    }
}

/// An unconnected socket hears no ICMP "port unreachable" on Linux: a client that
/// gave up or restarted is noticed by its silence (the transfer's timeouts).
fn describe(err: &io::Error) -> String {
    format!("network error: {err}")
}

async fn check_root(root: PathBuf) -> Result<(), TftpStartError> {
    let reported = root.clone();
    let checked = tokio::task::spawn_blocking(move || match std::fs::metadata(&root) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(TftpStartError::Root { root, reason: "it is a file, not a directory".to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(TftpStartError::Root { root, reason: "it does not exist".to_owned() })
        }
        Err(e) => Err(TftpStartError::Root { root, reason: e.to_string() }),
    })
    .await;
    checked.unwrap_or_else(|join| Err(TftpStartError::Root { root: reported, reason: join.to_string() }))
}
