//! Wall-clock text for progress lines and the report heading, in local time.
//!
//! Owns: the local UTC offset, asked of `date` once (the workspace has no time-zone
//! library, and a run does not outlive a DST change in any way that matters), and the
//! `log!` macro that prefixes progress lines on stderr with `[HH:MM:SS]`.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portapxe_lab::process::run_bounded;

static UTC_OFFSET_SECONDS: OnceLock<i64> = OnceLock::new();

/// A progress line on stderr: `[HH:MM:SS] text`.
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("[{}] {}", $crate::clock::now_hms(), format_args!($($arg)*))
    };
}
pub(crate) use log;

/// What `date` prints for `format` now, or "?" when it cannot run.
pub fn date_text(format: &str) -> String {
    let mut command = std::process::Command::new("date");
    command.arg(format!("+{format}"));
    match run_bounded("date", &mut command, Duration::from_secs(10)) {
        Ok(done) if done.success() => done.stdout.trim().to_owned(),
        _ => "?".to_owned(),
    }
}

/// The local time of day, `HH:MM:SS`.
pub fn now_hms() -> String {
    let offset = *UTC_OFFSET_SECONDS.get_or_init(|| parse_utc_offset(&date_text("%z")).unwrap_or(0));
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    time_of_day(i64::try_from(unix).unwrap_or(0) + offset)
}

/// `+0130` / `-0500` as seconds east of UTC.
fn parse_utc_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.trim().as_bytes().first()? {
        b'+' => (1, &text.trim()[1..]),
        b'-' => (-1, &text.trim()[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

fn time_of_day(local_seconds: i64) -> String {
    let of_day = local_seconds.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_with_sign() {
        assert_eq!(parse_utc_offset("+0000\n"), Some(0));
        assert_eq!(parse_utc_offset("+0130"), Some(5400));
        assert_eq!(parse_utc_offset("-0500"), Some(-18_000));
        assert_eq!(parse_utc_offset("UTC"), None);
        assert_eq!(parse_utc_offset("+5"), None);
        assert_eq!(parse_utc_offset(""), None);
    }

    #[test]
    fn time_of_day_wraps_at_midnight() {
        assert_eq!(time_of_day(0), "00:00:00");
        assert_eq!(time_of_day(86_399), "23:59:59");
        assert_eq!(time_of_day(86_400 + 3_723), "01:02:03");
        assert_eq!(time_of_day(-1), "23:59:59");
    }
}
