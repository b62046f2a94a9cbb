//! URLs of served files, for the boot menus and the kernel arguments that point back
//! at this server. A leaf: every module may use it.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters kept as they are in a URL path segment (RFC 3986 unreserved).
pub const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The URL of root-relative `path` (`/` or `\\` separators) under `base_url` (no
/// trailing slash), each segment percent-encoded.
pub fn url(base_url: &str, path: &str) -> String {
    let encoded: Vec<String> = path
        .split(['/', '\\'])
        .filter(|segment| !segment.is_empty())
        .map(|segment| utf8_percent_encode(segment, PATH_SEGMENT).to_string())
        .collect();
    format!("{base_url}/{}", encoded.join("/"))
}
