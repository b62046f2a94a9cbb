//! One read transfer as a state machine: option negotiation, then blocks sent a
//! window at a time (RFC 7440), acknowledgements, resends. No sockets and no
//! clock of its own: the driver feeds it ACKs and timeouts with the time, and
//! it answers with what to send. The driver reads the bytes of each block.
//!
//! Blocks are numbered from 1 as `u64` here, so files of more than 65535 blocks
//! are counted exactly; on the wire the number wraps to 0 (as tftpd-hpa and
//! iPXE do).

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// The block size without a `blksize` option (RFC 1350).
pub const DEFAULT_BLOCK_SIZE: u16 = 512;
/// Largest block size TFTP allows (RFC 2348): a 65535-byte IPv4 UDP datagram.
pub const MAX_BLOCK_SIZE: u16 = 65464;
/// Smallest `blksize` a client may ask for (RFC 2348).
const MIN_BLOCK_SIZE: u16 = 8;

/// Payload bytes one window may hold, whatever windowsize the client asks.
/// A window goes out as a burst; a client's receive buffer (Linux's default
/// 212,992 bytes, counting per-datagram overhead) drops the tail of a bigger
/// burst, and a lost tail costs a timeout. 16 × 8192 bytes overflowed it here,
/// 64 × 1468 did not.
pub const WINDOW_BYTES: usize = 96 * 1024;

/// The longest resend timeout a client may ask for (RFC 2349 allows 255 s). One that
/// asks for more gets the server's own (the option is left out of the OACK): a
/// student's 512 requests with `timeout=255`, never acknowledged, held every transfer
/// slot for 17 minutes.
pub const MAX_CLIENT_TIMEOUT_SECS: u64 = 5;
/// A transfer that has not been answered for this long is given up, whatever its resends.
pub const MAX_STALL: Duration = Duration::from_secs(15);
/// The same before the client answered at all (the OACK or block 1): a real client
/// answers at once, a flood never does.
pub const MAX_UNANSWERED: Duration = Duration::from_secs(6);

/// The shortest wait for an ACK before resending. Above a LAN's round trip with
/// room for a slow client; a premature resend only costs a duplicate block.
pub const MIN_RESEND_TIMEOUT: Duration = Duration::from_millis(20);

/// The first wait, before any round trip was measured (capped by the limit).
const INITIAL_RESEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What the server allows; the client asks within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on `blksize` (8..=65464).
    pub block_size: u16,
    /// Cap on `windowsize` (at least 1).
    pub window_size: u16,
    /// Longest wait for an ACK before resending (a client's `timeout` replaces it).
    pub timeout: Duration,
    /// Resends in a row without progress before the transfer is given up.
    pub max_retries: u32,
}

/// The outcome of option negotiation for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub block_size: u16,
    pub window: u16,
    pub timeout: Duration,
    /// What the OACK carries; empty means no OACK (no option was understood),
    /// and the transfer starts with block 1.
    pub oack: Vec<(&'static str, String)>,
}

/// Answers a request's options (RFC 2347): each understood option is accepted,
/// capped where the server has a limit, and echoed; the others are left out.
pub fn negotiate(options: &[(String, String)], size: u64, limits: &Limits) -> Negotiated {
    let mut block_size = DEFAULT_BLOCK_SIZE;
    let mut block_size_accepted = false;
    let mut asked_window = None;
    let mut timeout = limits.timeout;
    let mut oack = Vec::new();
    for (name, value) in options {
        let number = value.trim().parse::<u64>().ok();
        match (name.as_str(), number) {
            ("blksize", Some(asked)) if asked >= u64::from(MIN_BLOCK_SIZE) => {
                block_size = asked.min(u64::from(limits.block_size.min(MAX_BLOCK_SIZE))) as u16;
                block_size_accepted = true;
            }
            ("tsize", Some(_)) => oack.push(("tsize", size.to_string())),
            ("timeout", Some(seconds @ 1..=MAX_CLIENT_TIMEOUT_SECS)) => {
                timeout = Duration::from_secs(seconds);
                oack.push(("timeout", seconds.to_string()));
            }
            ("windowsize", Some(asked @ 1..=65535)) => asked_window = Some(asked as u16),
            _ => {}
        }
    }
    // The OACK's order is free (RFC 2347); blksize first reads best in a capture.
    if block_size_accepted {
        oack.insert(0, ("blksize", block_size.to_string()));
    }
    let mut window = 1;
    if let Some(asked) = asked_window {
        let fits = (WINDOW_BYTES / usize::from(block_size)).clamp(1, usize::from(u16::MAX)) as u16;
        window = asked.min(limits.window_size.max(1)).min(fits);
        oack.push(("windowsize", window.to_string()));
    }
    Negotiated { block_size, window, timeout, oack }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the OACK (again), then wait.
    SendOack,
    /// Send these blocks in order, then wait.
    Send(RangeInclusive<u64>),
    /// Nothing to send; keep waiting until [`ReadTransfer::deadline`].
    Wait,
    /// The last block is acknowledged.
    Done,
    /// No progress after the allowed resends.
    GiveUp,
}

/// A read transfer after negotiation.
#[derive(Debug, Clone)]
pub struct ReadTransfer {
    block_size: u64,
    window: u64,
    size: u64,
    last_block: u64,
    /// Until the client ACKs block 0, the OACK is what is outstanding.
    awaiting_oack_ack: bool,
    /// Highest block acknowledged (0 before any).
    acked: u64,
    /// Next block not yet sent in the current pass.
    next: u64,
    failures: u32,
    max_retries: u32,
    max_timeout: Duration,
    resend_timeout: Duration,
    smoothed_rtt: Option<Duration>,
    rtt_variance: Duration,
    sent_at: Instant,
    /// Karn's rule: no round-trip sample from a burst that was a resend.
    resent: bool,
    /// The start, or the last ACK that moved the transfer on.
    progressed_at: Instant,
    /// Whether the client has answered anything yet.
    answered: bool,
}

impl ReadTransfer {
    /// Starts the transfer of `size` bytes; the first action is the OACK or block 1.
    pub fn start(negotiated: &Negotiated, size: u64, max_retries: u32, now: Instant) -> (Self, Action) {
        let block_size = u64::from(negotiated.block_size.max(1));
        let mut transfer = Self {
            block_size,
            window: u64::from(negotiated.window.max(1)),
            size,
            // A file that fills its last block exactly still ends with an empty one.
            last_block: size / block_size + 1,
            awaiting_oack_ack: !negotiated.oack.is_empty(),
            acked: 0,
            next: 1,
            failures: 0,
            max_retries,
            max_timeout: negotiated.timeout,
            resend_timeout: negotiated.timeout.min(INITIAL_RESEND_TIMEOUT),
            smoothed_rtt: None,
            rtt_variance: Duration::ZERO,
            sent_at: now,
            resent: false,
            progressed_at: now,
            answered: false,
        };
        let action = if transfer.awaiting_oack_ack { Action::SendOack } else { transfer.send_window(now, false) };
        (transfer, action)
    }

    /// Where block `block` lies in the file: (offset, length).
    pub fn block_span(&self, block: u64) -> (u64, usize) {
        let offset = (block - 1) * self.block_size;
        let len = self.size.saturating_sub(offset).min(self.block_size);
        (offset, len as usize)
    }

    /// The block number on the wire.
    pub fn wire_number(block: u64) -> u16 {
        block as u16
    }

    /// Bytes the client has acknowledged.
    pub fn acknowledged_bytes(&self) -> u64 {
        (self.acked * self.block_size).min(self.size)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// When to call [`on_timeout`](Self::on_timeout) if no ACK arrives.
    pub fn deadline(&self) -> Instant {
        self.sent_at + self.resend_timeout
    }

    /// An ACK arrived. Duplicates and stale ACKs change nothing (a resend on a
    /// duplicate ACK is the Sorcerer's Apprentice bug); an ACK short of the last
    /// block sent means the client missed the next one, so sending resumes there.
    pub fn on_ack(&mut self, number: u16, now: Instant) -> Action {
        if self.awaiting_oack_ack {
            if number != 0 {
                return Action::Wait;
            }
            self.awaiting_oack_ack = false;
            self.progress(now);
            return self.send_window(now, false);
        }
        let ahead = u64::from(number.wrapping_sub(Self::wire_number(self.acked)));
        let block = self.acked + ahead;
        if ahead == 0 || block >= self.next {
            return Action::Wait;
        }
        self.acked = block;
        self.progress(now);
        if block == self.last_block {
            return Action::Done;
        }
        let resumed = block + 1 < self.next;
        self.next = block + 1;
        self.send_window(now, resumed)
    }

    /// No ACK by the deadline: resend what is outstanding, waiting longer each time.
    pub fn on_timeout(&mut self, now: Instant) -> Action {
        if now < self.deadline() {
            return Action::Wait;
        }
        self.failures += 1;
        let stalled = now.saturating_duration_since(self.progressed_at);
        let stall_limit = if self.answered { MAX_STALL } else { MAX_UNANSWERED };
        if self.failures > self.max_retries || stalled >= stall_limit {
            return Action::GiveUp;
        }
        self.resend_timeout = (self.resend_timeout * 2).min(self.max_timeout);
        if self.awaiting_oack_ack {
            self.sent_at = now;
            self.resent = true;
            return Action::SendOack;
        }
        self.next = self.acked + 1;
        self.send_window(now, true)
    }

    fn send_window(&mut self, now: Instant, resend: bool) -> Action {
        let last = (self.acked + self.window).min(self.last_block);
        let first = self.next;
        if first > last {
            return Action::Wait;
        }
        self.next = last + 1;
        self.sent_at = now;
        self.resent = resend;
        Action::Send(first..=last)
    }

    /// Something was acknowledged: the resend count starts over and, unless the
    /// burst was a resend, the round trip updates the timeout (RFC 6298's estimator).
    fn progress(&mut self, now: Instant) {
        self.failures = 0;
        self.progressed_at = now;
        self.answered = true;
        if self.resent {
            return;
        }
        let sample = now.saturating_duration_since(self.sent_at);
        let smoothed = match self.smoothed_rtt {
            None => {
                self.rtt_variance = sample / 2;
                sample
            }
            Some(smoothed) => {
                let deviation = smoothed.abs_diff(sample);
                self.rtt_variance = (self.rtt_variance * 3 + deviation) / 4;
                (smoothed * 7 + sample) / 8
            }
        };
        self.smoothed_rtt = Some(smoothed);
        self.resend_timeout = (smoothed + self.rtt_variance * 4).clamp(MIN_RESEND_TIMEOUT, self.max_timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits =
        Limits { block_size: MAX_BLOCK_SIZE, window_size: 64, timeout: Duration::from_secs(3), max_retries: 5 };

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    fn plain(block_size: u16, window: u16) -> Negotiated {
        Negotiated { block_size, window, timeout: Duration::from_secs(3), oack: Vec::new() }
    }

    #[test]
    fn options_are_capped_and_echoed() {
        let asked = options(&[("tsize", "0"), ("blksize", "70000"), ("windowsize", "16"), ("foo", "bar")]);
        let got = negotiate(&asked, 1234, &Limits { block_size: 1468, ..LIMITS });
        assert_eq!((got.block_size, got.window), (1468, 16));
        assert_eq!(
            got.oack,
            vec![("blksize", "1468".to_owned()), ("tsize", "1234".to_owned()), ("windowsize", "16".to_owned())]
        );
    }

    #[test]
    fn without_understood_options_there_is_no_oack() {
        let got = negotiate(&options(&[("blksize", "4"), ("windowsize", "0"), ("multicast", "")]), 10, &LIMITS);
        assert_eq!((got.block_size, got.window, got.oack.len()), (512, 1, 0));
    }

    #[test]
    fn a_window_never_holds_more_than_the_byte_budget() {
        for (block, asked, expected) in [(1468, 64, 64), (8192, 64, 12), (8192, 16, 12), (65464, 16, 1), (512, 4, 4)] {
            let asked = options(&[("blksize", &block.to_string()), ("windowsize", &asked.to_string())]);
            let got = negotiate(&asked, 0, &LIMITS);
            assert_eq!(got.window, expected, "blksize {block}");
        }
        let capped = negotiate(&options(&[("windowsize", "16")]), 0, &Limits { window_size: 4, ..LIMITS });
        assert_eq!(capped.window, 4);
    }

    #[test]
    fn a_client_timeout_up_to_the_cap_is_honoured() {
        let got = negotiate(&options(&[("timeout", "5")]), 0, &LIMITS);
        assert_eq!(got.timeout, Duration::from_secs(5));
        assert_eq!(got.oack, vec![("timeout", "5".to_owned())]);
        assert_eq!(negotiate(&options(&[("timeout", "0")]), 0, &LIMITS).timeout, LIMITS.timeout);
        // Longer is not granted: left out of the OACK (RFC 2349 has no counter-offer), the server's own used.
        for asked in ["6", "255"] {
            let got = negotiate(&options(&[("timeout", asked), ("tsize", "0")]), 9, &LIMITS);
            assert_eq!(got.timeout, LIMITS.timeout, "timeout={asked}");
            assert_eq!(got.oack, vec![("tsize", "9".to_owned())], "timeout={asked}");
        }
    }

    #[test]
    fn a_client_that_never_answers_is_given_up_within_the_unanswered_limit() {
        // The flood: an OACK for `timeout=5` that nobody acknowledges, with many resends allowed.
        let start = Instant::now();
        let negotiated = Negotiated { timeout: Duration::from_secs(5), ..plain(512, 1) };
        let negotiated = Negotiated { oack: vec![("timeout", "5".to_owned())], ..negotiated };
        let (mut transfer, _) = ReadTransfer::start(&negotiated, 1000, 100, start);
        let gave_up = loop {
            let now = transfer.deadline();
            match transfer.on_timeout(now) {
                Action::GiveUp => break now,
                Action::SendOack => {}
                other => panic!("{other:?}"),
            }
        };
        let held = gave_up - start;
        assert!(held >= MAX_UNANSWERED && held < MAX_UNANSWERED + Duration::from_secs(5), "held {held:?}");
    }

    #[test]
    fn a_client_that_stops_answering_is_given_up_within_the_stall_limit() {
        let start = Instant::now();
        let negotiated = Negotiated { timeout: Duration::from_secs(5), ..plain(512, 1) };
        let (mut transfer, _) = ReadTransfer::start(&negotiated, 100_000, 100, start);
        let answered = start + Duration::from_millis(10);
        assert_eq!(transfer.on_ack(1, answered), Action::Send(2..=2));
        let gave_up = loop {
            let now = transfer.deadline();
            match transfer.on_timeout(now) {
                Action::GiveUp => break now,
                Action::Send(_) => {}
                other => panic!("{other:?}"),
            }
        };
        let held = gave_up - answered;
        assert!(held >= MAX_STALL && held < MAX_STALL + Duration::from_secs(5), "held {held:?}");
    }

    #[test]
    fn lock_step_sends_each_block_after_the_ack_of_the_one_before() {
        let now = Instant::now();
        let (mut transfer, action) = ReadTransfer::start(&plain(512, 1), 1024, 3, now);
        assert_eq!(action, Action::Send(1..=1));
        assert_eq!(transfer.on_ack(1, now), Action::Send(2..=2));
        // A duplicate ACK sends nothing.
        assert_eq!(transfer.on_ack(1, now), Action::Wait);
        assert_eq!(transfer.on_ack(2, now), Action::Send(3..=3));
        assert_eq!(transfer.block_span(3), (1024, 0), "a file of whole blocks ends with an empty one");
        assert_eq!(transfer.on_ack(3, now), Action::Done);
        assert_eq!(transfer.acknowledged_bytes(), 1024);
    }

    #[test]
    fn the_oack_is_acknowledged_with_block_zero() {
        let now = Instant::now();
        let negotiated = Negotiated { oack: vec![("tsize", "600".to_owned())], ..plain(512, 1) };
        let (mut transfer, action) = ReadTransfer::start(&negotiated, 600, 3, now);
        assert_eq!(action, Action::SendOack);
        assert_eq!(transfer.on_ack(1, now), Action::Wait);
        assert_eq!(transfer.on_ack(0, now), Action::Send(1..=1));
        assert_eq!(transfer.block_span(2), (512, 88));
    }

    #[test]
    fn windows_slide_and_a_gap_resumes_after_the_last_block_in_order() {
        let now = Instant::now();
        let (mut transfer, action) = ReadTransfer::start(&plain(100, 4), 1000, 3, now);
        assert_eq!(action, Action::Send(1..=4));
        assert_eq!(transfer.on_ack(4, now), Action::Send(5..=8));
        // Block 7 was lost: the client acknowledges 6.
        assert_eq!(transfer.on_ack(6, now), Action::Send(7..=10));
        assert_eq!(transfer.on_ack(10, now), Action::Send(11..=11));
        assert_eq!(transfer.on_ack(11, now), Action::Done);
    }

    #[test]
    fn block_numbers_wrap_to_zero_on_the_wire() {
        let now = Instant::now();
        let size = 70_000 * 8;
        let (mut transfer, _) = ReadTransfer::start(&plain(8, 1), size, 3, now);
        for block in 1..=65_536u64 {
            let action = transfer.on_ack(ReadTransfer::wire_number(block), now);
            assert_eq!(action, Action::Send(block + 1..=block + 1), "block {block}");
        }
        assert_eq!(ReadTransfer::wire_number(65_536), 0);
        assert_eq!(transfer.acknowledged_bytes(), 65_536 * 8);
    }

    #[test]
    fn timeouts_resend_the_window_then_give_up() {
        let start = Instant::now();
        let (mut transfer, _) = ReadTransfer::start(&plain(100, 4), 1000, 2, start);
        assert_eq!(transfer.on_timeout(start), Action::Wait, "not yet due");
        let first = transfer.deadline();
        assert_eq!(first - start, Duration::from_secs(1), "no round trip measured yet");
        assert_eq!(transfer.on_timeout(first), Action::Send(1..=4));
        let second = transfer.deadline();
        assert_eq!(second - first, Duration::from_secs(2), "each resend waits twice as long");
        assert_eq!(transfer.on_timeout(second), Action::Send(1..=4));
        assert_eq!(transfer.on_timeout(transfer.deadline()), Action::GiveUp);
    }

    #[test]
    fn the_resend_timeout_follows_the_round_trip() {
        let start = Instant::now();
        let (mut transfer, _) = ReadTransfer::start(&plain(100, 1), 100_000, 3, start);
        let mut now = start;
        for block in 1..=50u16 {
            now += Duration::from_millis(2);
            transfer.on_ack(block, now);
        }
        assert_eq!(transfer.deadline() - now, MIN_RESEND_TIMEOUT, "a 2 ms round trip resends after the minimum");
        for block in 51..=100u16 {
            now += Duration::from_millis(200);
            transfer.on_ack(block, now);
        }
        let wait = transfer.deadline() - now;
        assert!(wait > Duration::from_millis(200) && wait < Duration::from_secs(1), "{wait:?}");
    }

    #[test]
    fn any_ack_sequence_keeps_the_transfer_consistent() {
        // Hostile or confused clients: random ACK numbers never panic, never send
        // a block past the end, and never go backwards past an acknowledged block.
        let now = Instant::now();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200 {
            let size = rng.u64(0..20_000);
            let (mut transfer, _) = ReadTransfer::start(&plain(rng.u16(8..600), rng.u16(1..9)), size, 3, now);
            for _ in 0..500 {
                let before = transfer.acked;
                match transfer.on_ack(rng.u16(..), now) {
                    Action::Send(range) => {
                        assert!(*range.start() > before && *range.end() <= transfer.last_block);
                    }
                    Action::Done => break,
                    Action::Wait => {}
                    other => panic!("{other:?}"),
                }
                assert!(transfer.acked >= before && transfer.acked <= transfer.last_block);
            }
        }
    }
}
