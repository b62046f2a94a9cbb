//! One [`TransferEvent`] story per request: `Refused` for a 4xx, or `Started`, some
//! `Progress`, then `Finished` or `Failed` as the response body is sent.
//!
//! [`begin`] reports how a response starts; its [`BodyProgress`] then counts the body
//! bytes handed to the connection, either inside an [`ObservedBody`] that hyper polls
//! or directly by the zero-copy path. The body is dropped when the response is
//! done or the connection is gone, so a drop before the last byte means the client
//! went away. "Sent" means handed to the connection: the last socket-buffer's worth
//! may still be in flight when `Finished` is reported.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use percent_encoding::percent_decode_str;

use crate::events::{EngineEvent, EventSink, Protocol, TransferEvent, TransferPhase};

/// At most one `Progress` event per transfer in this interval.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The client's address, put into each request as axum's `ConnectInfo`.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Middleware: reports what happened to the request as transfer events.
pub(super) async fn report_transfer(State(events): State<EventSink>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |info| info.0.0);
    let file = requested_file(request.uri());
    let is_head = request.method() == Method::HEAD;

    let response = next.run(request).await;

    match begin(&events, client, file, is_head, &response) {
        Some(progress) => response.map(|body| Body::new(ObservedBody::new(body, progress))),
        None => response,
    }
}

/// The file a request names, as events show it.
pub(super) fn requested_file(uri: &Uri) -> String {
    percent_decode_str(uri.path()).decode_utf8_lossy().into_owned()
}

/// Reports how `response` begins: `Refused` for a 4xx, `Failed` for a 5xx, `Started`
/// when file bytes are about to flow, in which case the returned [`BodyProgress`]
/// reports the rest as those bytes go out.
pub(super) fn begin(
    events: &EventSink,
    client: SocketAddr,
    file: String,
    is_head: bool,
    response: &Response,
) -> Option<BodyProgress> {
    let transfer = Transfer { events: events.clone(), client, file };
    let status = response.status();
    if status.is_client_error() {
        let not_found = status == StatusCode::NOT_FOUND;
        transfer.report(TransferPhase::Refused { reason: refusal_reason(status), not_found });
        return None;
    }
    if status.is_server_error() {
        transfer.report(TransferPhase::Failed { bytes: 0, reason: status.to_string() });
        return None;
    }
    // A HEAD moves no file bytes, and 304 or redirects are not transfers.
    if is_head || !status.is_success() {
        return None;
    }

    let size = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .or_else(|| http_body::Body::size_hint(response.body()).exact());
    transfer.report(TransferPhase::Started { size });
    Some(BodyProgress { transfer, size, sent: 0, last_progress: Instant::now(), ended: false })
}

fn refusal_reason(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "404 not found in the boot root".into(),
        StatusCode::METHOD_NOT_ALLOWED => "405 only GET and HEAD are served".into(),
        StatusCode::RANGE_NOT_SATISFIABLE => "416 requested range lies outside the file".into(),
        other => other.to_string(),
    }
}

/// Who asked for what; emits events about it.
struct Transfer {
    events: EventSink,
    client: SocketAddr,
    file: String,
}

impl Transfer {
    fn report(&self, phase: TransferPhase) {
        self.events.emit(EngineEvent::Transfer(TransferEvent {
            protocol: Protocol::Http,
            client: self.client,
            file: self.file.clone(),
            phase,
        }));
    }
}

/// The bytes of one response body on their way out: `Progress` at most every
/// [`PROGRESS_INTERVAL`], then `Finished` or `Failed`. Dropped before
/// [`finished`](Self::finished) or [`failed`](Self::failed), it judges by the count:
/// all of the announced size is a finished transfer, less is a client that went away.
pub(super) struct BodyProgress {
    transfer: Transfer,
    size: Option<u64>,
    sent: u64,
    last_progress: Instant,
    ended: bool,
}

impl BodyProgress {
    /// `count` more bytes were handed to the connection.
    pub(super) fn sent(&mut self, count: u64) {
        self.sent += count;
        if self.last_progress.elapsed() >= PROGRESS_INTERVAL {
            self.last_progress = Instant::now();
            let (bytes, size) = (self.sent, self.size);
            self.transfer.report(TransferPhase::Progress { bytes, size });
        }
    }

    /// How sending the body ended. A fault of the file (it shrank, it could not be
    /// read) fails the transfer with that reason; a fault of the connection is left
    /// to the drop, which says how far the bytes got.
    #[cfg(target_os = "linux")]
    pub(super) fn ended(&mut self, outcome: &std::io::Result<()>) {
        match outcome {
            Ok(()) => self.finished(),
            Err(error) if matches!(error.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::Other) => {
                self.failed(error.to_string());
            }
            Err(_) => {}
        }
    }

    pub(super) fn finished(&mut self) {
        let bytes = self.sent;
        self.end(TransferPhase::Finished { bytes });
    }

    pub(super) fn failed(&mut self, reason: String) {
        let bytes = self.sent;
        self.end(TransferPhase::Failed { bytes, reason });
    }

    fn end(&mut self, phase: TransferPhase) {
        if !self.ended {
            self.ended = true;
            self.transfer.report(phase);
        }
    }
}

impl Drop for BodyProgress {
    fn drop(&mut self) {
        let bytes = self.sent;
        // Hyper may stop polling once Content-Length bytes are out, without asking
        // for the end of the stream; that is a complete transfer.
        let phase = match self.size {
            Some(size) if bytes == size => TransferPhase::Finished { bytes },
            Some(size) => {
                TransferPhase::Failed { bytes, reason: format!("connection closed after {bytes} of {size} bytes") }
            }
            None => TransferPhase::Failed { bytes, reason: format!("connection closed after {bytes} bytes") },
        };
        self.end(phase);
    }
}

/// A response body that counts what passes through and reports how it ended.
struct ObservedBody {
    inner: Body,
    progress: BodyProgress,
}

impl ObservedBody {
    fn new(inner: Body, progress: BodyProgress) -> Self {
        Self { inner, progress }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => this.progress.sent(frame.data_ref().map_or(0, |data| data.len() as u64)),
            Poll::Ready(Some(Err(error))) => this.progress.failed(format!("reading the file failed: {error}")),
            Poll::Ready(None) => this.progress.finished(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
