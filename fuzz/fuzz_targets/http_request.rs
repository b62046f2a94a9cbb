//! A request head from anyone, as far as the one HTTP decision reads it (method, Range,
//! If-None-Match, If-Modified-Since, If-Range), for a file, an empty file, a generated
//! file and a missing one. Beyond not panicking, it checks what a client relies on: a
//! body span lies inside the file and Content-Length is the body's length.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use portapxe_proto::http_plan::{Body, Found, plan};

fuzz_target!(|data: &[u8]| {
    let mut lines = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut lines);
    if !matches!(request.parse(data), Ok(httparse::Status::Complete(_))) {
        return;
    }
    let Some(method) = request.method.and_then(|name| Method::from_bytes(name.as_bytes()).ok()) else { return };
    let mut headers = HeaderMap::new();
    for line in request.headers.iter() {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(line.name.as_bytes()), HeaderValue::from_bytes(line.value)) {
            headers.append(name, value);
        }
    }
    let modified = Some(UNIX_EPOCH + Duration::from_secs(1_795_000_000));
    let generated = bytes::Bytes::from_static(b"#!ipxe\n");
    for (found, len) in [
        (Found::File { len: 1000, modified }, 1000),
        (Found::File { len: 0, modified: None }, 0),
        (Found::Generated(generated.clone()), generated.len() as u64),
        (Found::Missing, 0),
    ] {
        let plan = plan(&method, &headers, found);
        let announced = plan.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        match &plan.body {
            Body::File { offset, len: count } => {
                assert!(*count > 0 && offset + count <= len, "{offset}+{count} of {len}");
                assert_eq!(announced, Some(*count));
            }
            Body::Bytes(content) => assert_eq!(announced, Some(content.len() as u64)),
            Body::Empty => {
                assert!(method == Method::HEAD || announced.is_none_or(|n| n == 0), "{:?} {announced:?}", plan.status);
            }
        }
        if plan.status == StatusCode::NOT_MODIFIED {
            assert!(matches!(plan.body, Body::Empty));
        }
    }
});
