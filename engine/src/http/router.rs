//! Which bytes answer which URL: a generated file if one has that path, otherwise
//! the file under the boot root.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tower::Layer;
use tower::util::MapResponseLayer;
use tower_http::services::ServeDir;

use super::confine::RootBackend;
use super::observe;
use crate::events::EventSink;
use crate::generated::GeneratedFiles;

/// Bytes read from a file per trip to the blocking pool.
const HTTP_READ_CHUNK: usize = 256 * 1024;

/// Marks a response made by `ServeDir` from a file under the boot root, as opposed to
/// a generated file or an error: only those bodies may be sent straight from the file.
#[derive(Clone, Copy, Debug)]
pub(super) struct FromBootRoot;

/// Every URL's answer, without transfer events. `root` must be canonical.
pub(super) fn files(root: Arc<Path>, generated: GeneratedFiles) -> Router {
    let boot_root = ServeDir::with_backend(&root, RootBackend::new(root.clone()))
        // No index.html, no directory redirects: a directory is simply not found.
        .append_index_html_on_directories(false)
        // ServeDir answers a multi-range request with 416; serving the whole file
        // instead is allowed by RFC 9110 and what a download client can use.
        .ignore_multi_range_requests(true)
        // Each chunk is one trip to the blocking pool; the default 64 KiB made a
        // single download 0.56× nginx, 256 KiB 0.93× (BENCHMARKS.md, case 4a).
        .with_buf_chunk_size(HTTP_READ_CHUNK);
    let boot_root = MapResponseLayer::new(mark_from_boot_root).layer(boot_root);

    Router::new().fallback_service(boot_root).layer(middleware::from_fn_with_state(generated, serve_generated))
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

/// Answers GET/HEAD of a generated file; everything else goes on to the boot root.
async fn serve_generated(State(generated): State<GeneratedFiles>, request: Request, next: Next) -> Response {
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return next.run(request).await;
    }
    let Some(content) = root_relative(request.uri().path()).and_then(|path| generated.get(&path)) else {
        return next.run(request).await;
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
