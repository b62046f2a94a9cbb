//! What each connection works with: the site it serves and the stream it reads, shared
//! by the hyper path (`connection`) and the zero-copy path (`zero_copy`) without either
//! importing the accepting loop (`server`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Most bytes one sendfile(2) call may move: on a cold page cache the call reads
/// them from disk while it holds a runtime worker (about 25 ms from a 20 MB/s stick).
#[cfg(target_os = "linux")]
const SENDFILE_PIECE: u64 = 512 * 1024;

/// A request head must be whole this long after its first byte (a slow head holds a
/// connection: slowloris), and a connection with no request under way is closed after
/// [`IDLE_TIMEOUT`].
pub(super) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
#[cfg(target_os = "linux")]
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that takes no byte for this long is gone (a full receive window held open).
pub(super) const WRITE_STALL: Duration = Duration::from_secs(30);
/// Longest request head read (boot clients send a few hundred bytes).
pub(super) const MAX_HEAD: usize = 16 * 1024;

/// What every connection serves.
pub(super) struct Site {
    /// Every URL's answer, with its transfer events: what hyper serves.
    pub(super) observed: Router,
    /// The same answers without events, for the zero-copy path that reports its own.
    #[cfg(target_os = "linux")]
    pub(super) files: Router,
    #[cfg(target_os = "linux")]
    pub(super) events: crate::events::EventSink,
}

/// A connection that fails every read and write once the service is cut: a
/// graceful stop waits for every response to finish, which for a stalled client
/// or a multi-gigabyte ISO can be forever.
pub(super) struct CuttableStream {
    stream: TcpStream,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    was_cut: bool,
    /// Armed while a write waits for the client: fires after [`WRITE_STALL`].
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes read off the socket and given back: reads return them first.
    put_back: Bytes,
}

impl CuttableStream {
    pub(super) fn new(stream: TcpStream, mut cut: watch::Receiver<bool>) -> Self {
        let cut = Box::pin(async move {
            // `Err` means the service was dropped: cut as well.
            let _ = cut.wait_for(|&cut| cut).await;
        });
        Self { stream, cut, was_cut: false, stall: None, put_back: Bytes::new() }
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

    /// After a write: `Pending` arms the stall timer (an error once it fires), anything
    /// else disarms it.
    fn check_stall<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stall = None;
            return poll;
        }
        let stall = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
        if stall.as_mut().poll(cx).is_ready() {
            self.stall = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took no data for {} s", WRITE_STALL.as_secs()),
            )));
        }
        Poll::Pending
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
                let ready = self.stream.poll_write_ready(cx);
                self.check_stall(cx, ready)
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
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.check_stall(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_cut(cx)?;
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.check_stall(cx, written)
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
