//! One [`TransferEvent`] story per request: `Refused` for a 4xx, or `Started`, some
//! `Progress`, then `Finished` or `Failed` as the response body is sent.
//!
//! The response body is wrapped in [`ObservedBody`], which counts the bytes handed
//! to hyper. Hyper drops the body when the response is done or the connection is
//! gone, so a drop before the last byte means the client went away.
//! "Sent" means handed to the connection: the last socket-buffer's worth may still
//! be in flight when `Finished` is reported.

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use percent_encoding::percent_decode_str;

use super::server::CuttableListener;
use crate::events::{EngineEvent, EventSink, Protocol, TransferEvent, TransferPhase};

/// At most one `Progress` event per transfer in this interval.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The client's address, put into each request by axum's `ConnectInfo`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, CuttableListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Middleware: reports what happened to the request as transfer events.
pub(super) async fn report_transfer(State(events): State<EventSink>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |info| info.0.0);
    let file = percent_decode_str(request.uri().path()).decode_utf8_lossy().into_owned();
    let is_head = request.method() == Method::HEAD;

    let response = next.run(request).await;

    let transfer = Transfer { events, client, file };
    let status = response.status();
    if status.is_client_error() {
        transfer.report(TransferPhase::Refused { reason: refusal_reason(status) });
        return response;
    }
    if status.is_server_error() {
        transfer.report(TransferPhase::Failed { bytes: 0, reason: status.to_string() });
        return response;
    }
    // A HEAD moves no file bytes, and 304 or redirects are not transfers.
    if is_head || !status.is_success() {
        return response;
    }

    let size = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .or_else(|| http_body::Body::size_hint(response.body()).exact());
    transfer.report(TransferPhase::Started { size });
    response.map(|body| Body::new(ObservedBody::new(body, transfer, size)))
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

/// A response body that counts what passes through and reports how it ended.
struct ObservedBody {
    inner: Body,
    transfer: Transfer,
    size: Option<u64>,
    sent: u64,
    last_progress: Instant,
    ended: bool,
}

impl ObservedBody {
    fn new(inner: Body, transfer: Transfer, size: Option<u64>) -> Self {
        Self { inner, transfer, size, sent: 0, last_progress: Instant::now(), ended: false }
    }

    fn end(&mut self, phase: TransferPhase) {
        if !self.ended {
            self.ended = true;
            self.transfer.report(phase);
        }
    }
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                this.sent += frame.data_ref().map_or(0, |data| data.len() as u64);
                if this.last_progress.elapsed() >= PROGRESS_INTERVAL {
                    this.last_progress = Instant::now();
                    let (bytes, size) = (this.sent, this.size);
                    this.transfer.report(TransferPhase::Progress { bytes, size });
                }
            }
            Poll::Ready(Some(Err(error))) => {
                let reason = format!("reading the file failed: {error}");
                let bytes = this.sent;
                this.end(TransferPhase::Failed { bytes, reason });
            }
            Poll::Ready(None) => {
                let bytes = this.sent;
                this.end(TransferPhase::Finished { bytes });
            }
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

impl Drop for ObservedBody {
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
