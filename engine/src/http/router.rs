//! Which bytes answer which URL: what the engine added if it has that path (a
//! generated file, a file inside a mounted ISO image), otherwise the file under the
//! boot root.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use tower::Layer;
use tower::util::MapResponseLayer;
use tower_http::services::ServeDir;

use super::confine::RootBackend;
use super::observe;
use crate::events::EventSink;
use crate::served::{ImageSpan, Served, ServedItem};

/// Bytes read from a file per trip to the blocking pool.
const HTTP_READ_CHUNK: usize = 256 * 1024;

/// Marks a response made by `ServeDir` from a file under the boot root, as opposed to
/// a generated file or an error: only those bodies may be sent straight from the file.
#[derive(Clone, Copy, Debug)]
pub(super) struct FromBootRoot;

/// Marks a response whose body is this span of an ISO image (the whole span: a range
/// of it is read from the response's `Content-Range`), for the zero-copy path.
#[cfg(target_os = "linux")]
#[derive(Clone, Debug)]
pub(super) struct FromImage(pub(super) ImageSpan);

/// Every URL's answer, without transfer events. `root` must be canonical. `routes`
/// (the engine's own, e.g. imaging) answer their paths before any file.
pub(super) fn files(root: Arc<Path>, generated: Served, routes: Option<Router>) -> Router {
    let loader_dir = generated.loader_dir().map(Arc::from);
    let boot_root = ServeDir::with_backend(&root, RootBackend::new(root.clone(), loader_dir))
        // No index.html, no directory redirects: a directory is simply not found.
        .append_index_html_on_directories(false)
        // ServeDir answers a multi-range request with 416; serving the whole file
        // instead is allowed by RFC 9110 and what a download client can use.
        .ignore_multi_range_requests(true)
        // Each chunk is one trip to the blocking pool; the default 64 KiB made a
        // single download 0.56× nginx, 256 KiB 0.93× (BENCHMARKS.md, case 4a).
        .with_buf_chunk_size(HTTP_READ_CHUNK);
    let boot_root = MapResponseLayer::new(mark_from_boot_root).layer(boot_root);

    let files =
        Router::new().fallback_service(boot_root).layer(middleware::from_fn_with_state(generated, serve_generated));
    match routes {
        Some(routes) => routes.merge(files),
        None => files,
    }
}

/// [`files`] with a transfer event story for every request, for the connections hyper serves.
pub(super) fn observed(files: Router, events: EventSink) -> Router {
    files.layer(middleware::from_fn_with_state(events, observe::report_transfer))
}

fn mark_from_boot_root<B>(mut response: Response<B>) -> Response<B> {
    if response.status().is_success() {
        response.extensions_mut().insert(FromBootRoot);
    }
    response
}

/// Answers GET/HEAD of a generated file or a file inside an image; everything else
/// goes on to the boot root.
async fn serve_generated(State(served): State<Served>, request: Request, next: Next) -> Response {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return next.run(request).await;
    }
    let content = match root_relative(request.uri().path()).and_then(|path| served.lookup(&path)) {
        None => return next.run(request).await,
        Some(ServedItem::InImage(span)) => {
            let is_head = method == Method::HEAD;
            return image_response(is_head, request.headers().get(header::RANGE).cloned(), span).await;
        }
        Some(ServedItem::Generated(content)) => content,
    };

    let length = HeaderValue::from(content.len());
    let body = if method == Method::HEAD { Body::empty() } else { Body::from(content) };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    // Generated files are scripts and menus; iPXE itself ignores the type.
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CONTENT_LENGTH, length);
    // The script can change between runs; never let a client reuse an old one.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The part of a body of `len` bytes a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAnswer {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=first-last`, `first-` or `-suffix` range (RFC 9110 §14.1.2). Anything
/// else, several ranges included, is answered with the whole body, as `ServeDir` is
/// told to do for the boot root.
fn requested_range(range: Option<&HeaderValue>, len: u64) -> RangeAnswer {
    let Some(spec) = range.and_then(|value| value.to_str().ok()).and_then(|text| text.trim().strip_prefix("bytes="))
    else {
        return RangeAnswer::Whole;
    };
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAnswer::Whole };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let parse = |text: &str| text.trim().parse::<u64>().ok();
    let (first, last) = match (first.trim().is_empty(), parse(first), parse(last)) {
        (true, _, Some(0)) => return RangeAnswer::Unsatisfiable,
        (true, _, Some(suffix)) => (len.saturating_sub(suffix), len.saturating_sub(1)),
        (false, Some(first), None) if last.trim().is_empty() => (first, len.saturating_sub(1)),
        (false, Some(first), Some(last)) if first <= last => (first, last.min(len.saturating_sub(1))),
        _ => return RangeAnswer::Whole,
    };
    if len == 0 || first >= len { RangeAnswer::Unsatisfiable } else { RangeAnswer::Part(first, last) }
}

/// A file inside an ISO image (or the image itself), whole or one range of it.
async fn image_response(is_head: bool, range: Option<HeaderValue>, span: ImageSpan) -> Response {
    let opened = tokio::task::spawn_blocking({
        let span = span.clone();
        move || span.open()
    })
    .await;
    let file = match opened {
        Ok(Ok(file)) => file,
        Ok(Err(error)) => {
            tracing::warn!("HTTP: {error}");
            return status_only(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(_) => return status_only(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let (status, first, count) = match requested_range(range.as_ref(), span.len) {
        RangeAnswer::Whole => (StatusCode::OK, 0, span.len),
        RangeAnswer::Part(first, last) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        RangeAnswer::Unsatisfiable => {
            let mut response = status_only(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", span.len)) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let body = if is_head {
        Body::empty()
    } else {
        let mut file = tokio::fs::File::from_std(file);
        match file.seek(std::io::SeekFrom::Start(span.offset + first)).await {
            Ok(_) => Body::from_stream(ReaderStream::with_capacity(file.take(count), HTTP_READ_CHUNK)),
            Err(_) => return status_only(StatusCode::INTERNAL_SERVER_ERROR),
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if let Some(modified) = span.stamp.modified
        && let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
    {
        headers.insert(header::LAST_MODIFIED, value);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{}/{}", first + count - 1, span.len))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    #[cfg(target_os = "linux")]
    response.extensions_mut().insert(FromImage(span));
    response
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// A URL path as a root-relative file path (`/` separators, no leading slash), read
/// the way `ServeDir` reads it: percent-decoded, empty and `.` segments dropped.
/// `None` for anything that is not plainly inside the root (`..`, invalid UTF-8).
pub(super) fn root_relative(url_path: &str) -> Option<String> {
    let decoded = percent_decode_str(url_path).decode_utf8().ok()?;
    let mut segments = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            _ => segments.push(segment),
        }
    }
    Some(segments.join("/"))
}

#[cfg(test)]
mod range_tests {
    use super::*;

    fn range(text: &str, len: u64) -> RangeAnswer {
        requested_range(Some(&HeaderValue::from_str(text).unwrap()), len)
    }

    #[test]
    fn one_range_of_a_file_inside_an_image() {
        use RangeAnswer::*;
        assert_eq!(requested_range(None, 100), Whole);
        assert_eq!(range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(range("bytes=90-", 100), Part(90, 99));
        assert_eq!(range("bytes=90-500", 100), Part(90, 99), "a last byte past the end is the end");
        assert_eq!(range("bytes=-10", 100), Part(90, 99));
        assert_eq!(range("bytes=-500", 100), Part(0, 99));
        assert_eq!(range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(range("bytes=5-1", 100), Whole, "an invalid range is ignored (RFC 9110)");
        assert_eq!(range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(range("items=0-1", 100), Whole);
        assert_eq!(range("bytes=18446744073709551615-", 100), Unsatisfiable);
        assert_eq!(range("bytes=x-y", 100), Whole);
    }
}
