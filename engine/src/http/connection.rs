//! One client connection, from accept to close.
//!
//! On Linux the connection starts on the zero-copy file path ([`super::zero_copy`]),
//! which answers plain GET and HEAD requests itself and hands anything else to hyper,
//! with the bytes it has already read put back into the connection. Elsewhere hyper
//! serves it all.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tower::ServiceExt;

use super::observe::Peer;
use super::site::{CuttableStream, HEAD_TIMEOUT, MAX_HEAD, Site};

/// Serves `stream` until the client closes it, the service drains (after the
/// response in progress) or the service is cut.
pub(super) async fn serve(
    stream: CuttableStream,
    peer: SocketAddr,
    site: Arc<Site>,
    draining: watch::Receiver<bool>,
    _ticket: super::admission::Ticket,
) {
    #[cfg(target_os = "linux")]
    let (stream, draining) = match super::zero_copy::serve(stream, peer, &site, draining).await {
        super::zero_copy::Outcome::Closed => return,
        super::zero_copy::Outcome::ForHyper { mut stream, already_read, draining } => {
            stream.put_back(already_read);
            (stream, draining)
        }
    };

    serve_with_hyper(stream, peer, &site, draining).await;
}

async fn serve_with_hyper(io: CuttableStream, peer: SocketAddr, site: &Site, mut draining: watch::Receiver<bool>) {
    let observed = site.observed.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(Peer(peer)));
        observed.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // A head must arrive whole in time and stay small: a slow or endless head cannot hold
    // the connection and its buffer (hyper's own buffer grows to about 400 KB).
    builder.timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT).max_buf_size(MAX_HEAD);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(io), service));
    let mut drain_started = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, "HTTP: connection ended: {error}");
                }
                return;
            }
            // `Err`: the service is gone, which drains as well.
            _ = draining.wait_for(|&draining| draining), if !drain_started => {
                drain_started = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
