//! The one HTTP decision: from a request head and what the served namespace holds at
//! its path, the status, the headers and which bytes form the body. Pure: the engine's
//! lookup happened before (`http::router::find`, by the path rules of `paths`), and the
//! bytes are sent after, by whichever path carries the connection (hyper streams the
//! span, the Linux zero-copy path sends it with sendfile(2)). Both send what this
//! function decided, so they cannot disagree.
//!
//! Written here rather than left to tower-http's `ServeDir` because the zero-copy path
//! needs the decision itself (which file, which bytes), not a response to read it back
//! from; boot clients ask for little: GET and HEAD, one range, a validator.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// What the namespace holds at a path, as far as the decision needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A file the engine made (the iPXE script, a GRUB config): its bytes.
    Generated(Bytes),
    /// A regular file (under the boot root, in the loader folder, or inside an ISO image).
    File { len: u64, modified: Option<SystemTime> },
    /// Nothing servable: missing, a directory, outside the root.
    Missing,
    /// There, but it could not be opened or read.
    Unreadable,
}

/// Which bytes the response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of the found file from `offset` (relative to the file's first byte).
    File {
        offset: u64,
        len: u64,
    },
}

/// The response to send.
#[derive(Debug)]
pub struct Plan {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Plan {
    /// A response with no body (and says so: `Content-Length: 0`).
    fn empty(status: StatusCode) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        Self { status, headers, body: Body::Empty }
    }
}

/// The answer to `method` with `request` headers for what was `found`.
pub fn plan(method: &Method, request: &HeaderMap, found: Found) -> Plan {
    if method != Method::GET && method != Method::HEAD {
        let mut plan = Plan::empty(StatusCode::METHOD_NOT_ALLOWED);
        plan.headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return plan;
    }
    let is_head = method == Method::HEAD;
    let (len, modified) = match found {
        Found::Missing => return Plan::empty(StatusCode::NOT_FOUND),
        Found::Unreadable => return Plan::empty(StatusCode::INTERNAL_SERVER_ERROR),
        Found::Generated(content) => return generated(is_head, content),
        Found::File { len, modified } => (len, modified),
    };

    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let etag = entity_tag(len, modified);
    headers.insert(header::ETAG, etag.clone());
    let last_modified = modified.filter(|time| http_date_can_hold(*time)).map(httpdate::fmt_http_date);
    if let Some(value) = last_modified.as_deref().and_then(|text| HeaderValue::from_str(text).ok()) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    if not_modified(request, &etag, modified) {
        return Plan { status: StatusCode::NOT_MODIFIED, headers, body: Body::Empty };
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));

    let range = request.get(header::RANGE).filter(|_| range_still_applies(request, &etag, last_modified.as_deref()));
    let (status, offset, count) = match requested_range(range, len) {
        RangeAnswer::Whole => (StatusCode::OK, 0, len),
        RangeAnswer::Part(first, last) => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        RangeAnswer::Unsatisfiable => {
            let mut plan = Plan::empty(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                plan.headers.insert(header::CONTENT_RANGE, value);
            }
            return plan;
        }
    };
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {offset}-{}/{len}", offset + count - 1))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    let body = if is_head || count == 0 { Body::Empty } else { Body::File { offset, len: count } };
    Plan { status, headers, body }
}

fn generated(is_head: bool, content: Bytes) -> Plan {
    let mut headers = HeaderMap::new();
    // Generated files are scripts and menus; iPXE itself ignores the type.
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.len()));
    // The script can change between runs (and a machine's next-boot answer between two
    // asks); never let a client reuse an old one.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = if is_head { Body::Empty } else { Body::Bytes(content) };
    Plan { status: StatusCode::OK, headers, body }
}

/// Whether an HTTP date can say `time` (`httpdate` panics on a time before 1970 or after
/// 9999; a file can carry either, e.g. from a bad clock or an archive).
fn http_date_can_hold(time: SystemTime) -> bool {
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    time.duration_since(UNIX_EPOCH).is_ok_and(|since| since < YEAR_10000)
}

/// A strong validator from size and modification time (to the nanosecond: a file
/// rewritten within a second with the same size still gets a new tag).
fn entity_tag(len: u64, modified: Option<SystemTime>) -> HeaderValue {
    let since = modified.and_then(|time| time.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    let text = format!("\"{:x}.{:x}-{len:x}\"", since.as_secs(), since.subsec_nanos());
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// `If-None-Match` (any listed tag, or `*`), else `If-Modified-Since` (RFC 9110 §13.2.2).
fn not_modified(request: &HeaderMap, etag: &HeaderValue, modified: Option<SystemTime>) -> bool {
    let tags: Vec<&str> =
        request.get_all(header::IF_NONE_MATCH).iter().filter_map(|value| value.to_str().ok()).collect();
    if !tags.is_empty() {
        let ours = etag.to_str().unwrap_or_default();
        // Weak comparison: `W/"x"` matches `"x"`. The list may span several header lines.
        return tags
            .iter()
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours);
    }
    let since =
        request.get(header::IF_MODIFIED_SINCE).and_then(|value| httpdate::parse_http_date(value.to_str().ok()?).ok());
    match (since, modified) {
        // HTTP dates have whole seconds; a file modified within the second is not newer.
        (Some(since), Some(modified)) => modified < since + Duration::from_secs(1),
        _ => false,
    }
}

/// `If-Range`: the range applies only while the file is the one the client has
/// (the same strong tag, or exactly that date); else the whole file is sent.
fn range_still_applies(request: &HeaderMap, etag: &HeaderValue, last_modified: Option<&str>) -> bool {
    match request.get(header::IF_RANGE).and_then(|value| value.to_str().ok()) {
        None => true,
        Some(validator) if validator.starts_with('"') => Some(validator) == etag.to_str().ok(),
        Some(date) => Some(date) == last_modified,
    }
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
/// else, several ranges included, is answered with the whole body: allowed by RFC 9110,
/// and what a download client can use.
fn requested_range(range: Option<&HeaderValue>, len: u64) -> RangeAnswer {
    // The unit is case-insensitive (RFC 9110 §14.1).
    let spec = range
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .and_then(|text| text.get(..6).filter(|unit| unit.eq_ignore_ascii_case("bytes=")).map(|_| &text[6..]));
    let Some(spec) = spec else {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MODIFIED: Duration = Duration::from_secs(1_795_000_000);

    fn file() -> Found {
        Found::File { len: 1000, modified: Some(UNIX_EPOCH + MODIFIED + Duration::from_millis(250)) }
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap())).collect()
    }

    fn get(request: &[(header::HeaderName, &str)], found: Found) -> Plan {
        plan(&Method::GET, &headers(request), found)
    }

    fn range(text: &str, len: u64) -> RangeAnswer {
        requested_range(Some(&HeaderValue::from_str(text).unwrap()), len)
    }

    #[test]
    fn one_range_of_a_file() {
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
        assert_eq!(range("Bytes=0-9", 100), Part(0, 9), "the unit is case-insensitive");
        assert_eq!(range("bytes", 100), Whole);
    }

    #[test]
    fn a_file_is_the_whole_of_it_or_one_range_with_validators() {
        let whole = get(&[], file());
        assert_eq!((whole.status, &whole.body), (StatusCode::OK, &Body::File { offset: 0, len: 1000 }));
        assert_eq!(whole.headers[header::CONTENT_LENGTH], "1000");
        assert_eq!(whole.headers[header::ACCEPT_RANGES], "bytes");
        assert_eq!(whole.headers[header::LAST_MODIFIED], "Wed, 18 Nov 2026 11:06:40 GMT");
        assert_eq!(whole.headers[header::ETAG], "\"6afd86c0.ee6b280-3e8\"");

        let part = get(&[(header::RANGE, "bytes=10-19")], file());
        assert_eq!((part.status, &part.body), (StatusCode::PARTIAL_CONTENT, &Body::File { offset: 10, len: 10 }));
        assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 10-19/1000");
        assert_eq!(part.headers[header::CONTENT_LENGTH], "10");

        let beyond = get(&[(header::RANGE, "bytes=1000-")], file());
        assert_eq!((beyond.status, &beyond.body), (StatusCode::RANGE_NOT_SATISFIABLE, &Body::Empty));
        assert_eq!(beyond.headers[header::CONTENT_RANGE], "bytes */1000");

        let head = plan(&Method::HEAD, &headers(&[(header::RANGE, "bytes=10-19")]), file());
        assert_eq!((head.status, &head.body), (StatusCode::PARTIAL_CONTENT, &Body::Empty));
        assert_eq!(head.headers[header::CONTENT_LENGTH], "10", "a HEAD announces what a GET would send");

        // A date an HTTP date cannot say (before 1970) is left out, not a panic.
        let old = get(&[], Found::File { len: 10, modified: Some(UNIX_EPOCH - Duration::from_secs(1)) });
        assert_eq!(old.status, StatusCode::OK);
        assert!(!old.headers.contains_key(header::LAST_MODIFIED));

        let empty = get(&[], Found::File { len: 0, modified: None });
        assert_eq!((empty.status, &empty.body), (StatusCode::OK, &Body::Empty));
        assert_eq!(empty.headers[header::CONTENT_LENGTH], "0");
    }

    #[test]
    fn a_client_that_has_the_file_gets_304_and_a_changed_file_is_sent_whole() {
        let etag = get(&[], file()).headers[header::ETAG].to_str().unwrap().to_owned();
        for request in [
            vec![(header::IF_NONE_MATCH, etag.as_str())],
            vec![(header::IF_NONE_MATCH, "\"other\", *")],
            vec![(header::IF_MODIFIED_SINCE, "Wed, 18 Nov 2026 11:06:40 GMT")],
            vec![(header::IF_MODIFIED_SINCE, "Thu, 19 Nov 2026 00:00:00 GMT")],
        ] {
            let plan = get(&request, file());
            assert_eq!((plan.status, &plan.body), (StatusCode::NOT_MODIFIED, &Body::Empty), "{request:?}");
            assert!(plan.headers.contains_key(header::ETAG));
        }
        for request in [
            vec![(header::IF_NONE_MATCH, "\"other\"")],
            vec![(header::IF_MODIFIED_SINCE, "Wed, 18 Nov 2026 11:06:39 GMT")],
            vec![(header::IF_MODIFIED_SINCE, "not a date")],
            // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
            vec![(header::IF_NONE_MATCH, "\"other\""), (header::IF_MODIFIED_SINCE, "Thu, 19 Nov 2026 00:00:00 GMT")],
        ] {
            assert_eq!(get(&request, file()).status, StatusCode::OK, "{request:?}");
        }
        let same = get(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, etag.as_str())], file());
        assert_eq!(same.status, StatusCode::PARTIAL_CONTENT);
        let dated = get(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "Wed, 18 Nov 2026 11:06:40 GMT")], file());
        assert_eq!(dated.status, StatusCode::PARTIAL_CONTENT);
        let changed = get(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"old\"")], file());
        assert_eq!((changed.status, &changed.body), (StatusCode::OK, &Body::File { offset: 0, len: 1000 }));
    }

    #[test]
    fn generated_files_are_never_cached_and_other_answers_carry_no_body() {
        let script = Bytes::from_static(b"#!ipxe\n");
        let whole = get(&[(header::RANGE, "bytes=0-1")], Found::Generated(script.clone()));
        assert_eq!((whole.status, &whole.body), (StatusCode::OK, &Body::Bytes(script.clone())));
        assert_eq!(whole.headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(whole.headers[header::CONTENT_LENGTH], "7");
        assert!(whole.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
        let head = super::plan(&Method::HEAD, &HeaderMap::new(), Found::Generated(script));
        assert_eq!((head.body, &head.headers[header::CONTENT_LENGTH]), (Body::Empty, &HeaderValue::from(7)));

        assert_eq!(get(&[], Found::Missing).status, StatusCode::NOT_FOUND);
        assert_eq!(get(&[], Found::Unreadable).status, StatusCode::INTERNAL_SERVER_ERROR);
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let refused = plan(&method, &HeaderMap::new(), file());
            assert_eq!((refused.status, &refused.body), (StatusCode::METHOD_NOT_ALLOWED, &Body::Empty));
            assert_eq!(refused.headers[header::ALLOW], "GET, HEAD");
        }
    }
}
