//! One client connection, from accept to close.
//!
//! On Linux the connection starts on the zero-copy file path ([`super::zero_copy`]),
//! which answers plain GET and HEAD requests itself and hands anything else to hyper,
//! together with the bytes it has already read. Elsewhere hyper serves it all.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::ConnectInfo;
use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tower::ServiceExt;

use super::observe::Peer;
use super::server::{CuttableStream, Site};

/// Serves `stream` until the client closes it, the service drains (after the
/// response in progress) or the service is cut.
pub(super) async fn serve(stream: CuttableStream, peer: SocketAddr, site: Arc<Site>, draining: watch::Receiver<bool>) {
    #[cfg(target_os = "linux")]
    let (stream, already_read, draining) = match super::zero_copy::serve(stream, peer, &site, draining).await {
        super::zero_copy::Outcome::Closed => return,
        super::zero_copy::Outcome::ForHyper { stream, already_read, draining } => (stream, already_read, draining),
    };
    #[cfg(not(target_os = "linux"))]
    let already_read = Bytes::new();

    serve_with_hyper(Rewind { already_read, stream }, peer, &site, draining).await;
}

async fn serve_with_hyper(io: Rewind, peer: SocketAddr, site: &Site, mut draining: watch::Receiver<bool>) {
    let observed = site.observed.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(Peer(peer)));
        observed.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut connection = pin!(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service));
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

/// A connection with some of its bytes already read: those are read again first.
struct Rewind {
    already_read: Bytes,
    stream: CuttableStream,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.already_read.has_remaining() {
            let count = self.already_read.len().min(buf.remaining());
            buf.put_slice(&self.already_read[..count]);
            self.already_read.advance(count);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
