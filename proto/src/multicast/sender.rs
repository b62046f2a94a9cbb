//! The multicast sender of a restore session as a state machine: who joined, when to
//! start, slices of the stream sent to the group, REQACK rounds, retransmissions of what
//! receivers report missing, the send rate, and seats dropped when they stop answering.
//! No sockets and no clock of its own: the driver feeds it datagrams, the stream's bytes
//! and the time, and sends what it asks for (as `tftp/transfer.rs` does for TFTP).
//!
//! It speaks udpcast's protocol (`wire`) to Debian's `udp-receiver`, with udpcast's
//! "switched network" pipelining (one slice in its first transmission while the one
//! before waits for its acknowledgements; the receiver accepts no more). Where it differs
//! from udpcast's own sender, on purpose:
//! - a seat that stops answering is dropped after `drop_after` of silence (udpcast waits
//!   200 REQACK rounds, about 190 s here, while the whole room stalls);
//! - the rate adapts to the slowest seat still answering (udpcast has no rate control by
//!   default and only shrinks its slices);
//! - a receiver that asks to join once the session has started, or beyond the seats
//!   asked for, is refused at once (udpcast ignores it and it waits forever).

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::wire::{self, ReadySet, ReceiverMessage};

/// When a session starts sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartWhen {
    /// Start as soon as this many seats joined (they are all the session takes).
    pub seats: Option<usize>,
    /// Start after this long with the seats that joined by then; with none, give up.
    pub wait: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SenderSettings {
    pub group: Ipv4Addr,
    pub block_size: u16,
    /// Blocks per slice (at most `wire::MAX_SLICE_BLOCKS`).
    pub slice_blocks: usize,
    pub start: StartWhen,
    /// A seat that has not answered for this long, while the session waits for it, is dropped.
    pub drop_after: Duration,
    /// Bytes per second at the start, and the most the rate may grow to.
    pub initial_rate: f64,
    pub max_rate: f64,
    /// How often "a sender is here" is broadcast while seats join.
    pub hello_every: Duration,
    /// Only these addresses may join (`None`: any). A Clonezilla feed's later partitions
    /// take only the seats that have the partitions before: a seat that fell behind
    /// must not take another's place (FOG issue 1742).
    pub admit: Option<Vec<Ipv4Addr>>,
}

/// The longest wait or silence a session accepts (a week): beyond it an `Instant` could overflow.
pub const LONGEST_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

impl SenderSettings {
    pub fn new(group: Ipv4Addr, start: StartWhen) -> Self {
        Self {
            group,
            block_size: wire::BLOCK_SIZE,
            slice_blocks: DEFAULT_SLICE_BLOCKS,
            start,
            drop_after: DEFAULT_DROP_AFTER,
            initial_rate: INITIAL_RATE,
            max_rate: MAX_RATE,
            hello_every: Duration::from_secs(1),
            admit: None,
        }
    }
}

/// 512 blocks of 1456 bytes (745 KB): two slices in flight fit the receiver's buffer
/// (udpcast reserves 1024 blocks per slice) with room to spare.
pub const DEFAULT_SLICE_BLOCKS: usize = 512;
/// Silence after which a seat is dropped. A healthy receiver answers every REQACK at
/// once from its network thread; only one whose disk is so slow that its 3 MB buffer
/// stays full for this long goes quiet, and such a seat would hold the room back anyway.
pub const DEFAULT_DROP_AFTER: Duration = Duration::from_secs(15);
/// 12.5 MB/s (100 Mbit/s) to start with: a clean slice raises it by a quarter.
pub const INITIAL_RATE: f64 = 12.5e6;
/// Above any wired link a laptop has (10 Gbit/s): in practice the link and the seats set it.
pub const MAX_RATE: f64 = 1.25e9;
/// The rate never falls below this (8 Mbit/s).
pub const MIN_RATE: f64 = 1e6;
/// Waiting for REQACK answers: the first wait, and its bounds once round trips are measured.
const INITIAL_ACK_WAIT: Duration = Duration::from_millis(200);
const MIN_ACK_WAIT: Duration = Duration::from_millis(20);
const MAX_ACK_WAIT: Duration = Duration::from_secs(1);

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// One receiver (a connect reply).
    Seat(SocketAddrV4),
    /// The data group (blocks and REQACKs).
    Group,
    /// The subnet's broadcast on the receivers' port (HELLO).
    Broadcast,
}

/// Why a seat is no longer in the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// It answered nothing for this long while the session waited for it.
    Silent(Duration),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Silent(time) => write!(
                f,
                "stopped answering for {} s (powered off, unplugged or hung); the others went on without it",
                time.as_secs()
            ),
        }
    }
}

/// Why a receiver was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session took the seats it was asked for.
    Full,
    /// The session had already started: the seat can join a later one.
    Started,
    /// The seat is not one this session takes (it did not finish the partition before).
    NotAdmitted,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "the session already has the seats it was started for",
            Self::Started => "the session had already started; it can join the next one",
            Self::NotAdmitted => "not a seat of this session: it did not receive the partitions before",
        })
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every seat still in the session has the whole stream.
    Completed,
    /// No seat joined before the wait ran out.
    NobodyJoined,
    /// Every seat left or was dropped before the end.
    NoSeatLeft,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Completed => "sent to every seat still in the session",
            Self::NobodyJoined => "no seat joined before the wait ran out",
            Self::NoSeatLeft => "every seat left or was dropped before the end",
        })
    }
}

/// What happened, for the driver to report.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Joined {
        seat: SocketAddrV4,
        number: u16,
    },
    Refused {
        seat: SocketAddrV4,
        why: Refusal,
    },
    Started {
        seats: usize,
    },
    /// Bytes of the stream every remaining seat has, and the current rate (bytes/s).
    Progress {
        bytes: u64,
        rate: f64,
    },
    Dropped {
        seat: SocketAddrV4,
        why: DropReason,
    },
    /// The receiver said goodbye before the end (stopped, or failed to write).
    Left {
        seat: SocketAddrV4,
    },
    /// The seat has the whole stream.
    Finished {
        seat: SocketAddrV4,
    },
    Ended(Ending),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeatState {
    Active,
    Finished,
    Gone,
}

#[derive(Debug)]
struct Seat {
    address: SocketAddrV4,
    number: u16,
    state: SeatState,
    last_heard: Instant,
}

/// One slice of the stream: sent once, then acknowledged round by round.
#[derive(Debug)]
struct Slice {
    number: u32,
    data: Vec<u8>,
    blocks: usize,
    /// First transmission: the next block to send.
    next_block: usize,
    /// Seats that have all of it (by number).
    ready: ReadySet,
    /// Seats that answered the current round.
    answered: Vec<u16>,
    round: u32,
    /// Blocks some seat lacks, to send again before the next round.
    missing: Vec<bool>,
    resend_from: usize,
    resending: bool,
    /// A REQACK is to be sent (the first, or the next round).
    reqack_due: bool,
    reqack_sent: Option<Instant>,
    first_reqack: Option<Instant>,
    /// For the rate: blocks sent again.
    resent: usize,
}

impl Slice {
    fn new(number: u32, data: Vec<u8>, block_size: usize) -> Self {
        let blocks = data.len().div_ceil(block_size);
        Self {
            number,
            data,
            blocks,
            next_block: 0,
            ready: ReadySet::default(),
            answered: Vec::new(),
            round: 0,
            missing: vec![false; blocks],
            resend_from: 0,
            resending: false,
            reqack_due: false,
            reqack_sent: None,
            first_reqack: None,
            resent: 0,
        }
    }

    fn bytes(&self) -> u32 {
        // A slice holds at most 1024 blocks of at most 65535 bytes.
        u32::try_from(self.data.len()).unwrap_or(u32::MAX)
    }

    fn transmitted(&self) -> bool {
        self.next_block >= self.blocks
    }

    fn block(&self, block: usize, block_size: usize) -> &[u8] {
        let start = (block * block_size).min(self.data.len());
        &self.data[start..(start + block_size).min(self.data.len())]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Joining { since: Instant },
    Sending,
    Ended(Ending),
}

/// Sends at a rate: a token bucket of bytes.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// Bursts of up to 2 ms at the rate (at least 32 blocks), so a timer that wakes
    /// once a millisecond still reaches the rate.
    fn burst(&self) -> f64 {
        (self.rate * 0.002).max(32.0 * f64::from(wire::BLOCK_SIZE))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst());
        self.last = now;
    }

    fn take(&mut self, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    fn ready_at(&self, bytes: usize) -> Instant {
        let lacking = (bytes as f64 - self.tokens).max(0.0);
        self.last + Duration::from_secs_f64(lacking / self.rate)
    }
}

/// One restore session's sender.
#[derive(Debug)]
pub struct Sender {
    settings: SenderSettings,
    phase: Phase,
    seats: Vec<Seat>,
    control: VecDeque<(Destination, Vec<u8>)>,
    events: VecDeque<SessionEvent>,
    next_hello: Instant,
    /// The slice in its first transmission, and the one waiting for acknowledgements.
    sending: Option<Slice>,
    waiting: Option<Slice>,
    next_slice: u32,
    stream_ended: bool,
    final_slice_made: bool,
    bytes_done: u64,
    pacer: Pacer,
    /// The lowest rate: `MIN_RATE`, or the user's limit when it is lower.
    floor: f64,
    ack_wait: Duration,
}

impl Sender {
    pub fn new(mut settings: SenderSettings, now: Instant) -> Self {
        settings.start.wait = settings.start.wait.min(LONGEST_WAIT);
        settings.drop_after = settings.drop_after.min(LONGEST_WAIT);
        // A limit below the usual floor is the user's: it is kept.
        let floor = MIN_RATE.min(settings.max_rate).max(1.0);
        settings.max_rate = settings.max_rate.max(floor);
        let rate = settings.initial_rate.clamp(floor, settings.max_rate);
        Self {
            phase: Phase::Joining { since: now },
            seats: Vec::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            next_hello: now,
            sending: None,
            waiting: None,
            next_slice: 0,
            stream_ended: false,
            final_slice_made: false,
            bytes_done: 0,
            pacer: Pacer { rate, tokens: 0.0, last: now },
            floor,
            ack_wait: INITIAL_ACK_WAIT,
            settings,
        }
    }

    fn block_size(&self) -> usize {
        usize::from(self.settings.block_size)
    }

    fn active(&self) -> impl Iterator<Item = &Seat> {
        self.seats.iter().filter(|seat| seat.state == SeatState::Active)
    }

    pub fn ended(&self) -> Option<Ending> {
        match self.phase {
            Phase::Ended(ending) => Some(ending),
            _ => None,
        }
    }

    pub fn started(&self) -> bool {
        !matches!(self.phase, Phase::Joining { .. })
    }

    /// Bytes every remaining seat has.
    pub fn bytes_done(&self) -> u64 {
        self.bytes_done
    }

    /// The current send rate, bytes per second.
    pub fn rate(&self) -> f64 {
        self.pacer.rate
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// A datagram that reached the sender's port. Anything not from a receiver, or
    /// from a receiver not in the session, changes nothing (but a join request).
    pub fn on_datagram(&mut self, from: SocketAddrV4, bytes: &[u8], now: Instant) -> Result<(), wire::WireError> {
        let message = wire::parse_receiver_message(bytes)?;
        if let ReceiverMessage::ConnectRequest { .. } = message {
            self.on_join(from, now);
            return Ok(());
        }
        // udpcast knows a receiver by its address (one receiver per machine).
        let Some(index) = self.seats.iter().position(|seat| seat.address.ip() == from.ip()) else {
            return Ok(());
        };
        let seat = &mut self.seats[index];
        if seat.state != SeatState::Active {
            return Ok(());
        }
        seat.last_heard = now;
        let number = seat.number;
        match message {
            ReceiverMessage::Ok { slice } => self.on_ok(index, slice, now),
            ReceiverMessage::Retransmit { slice, round, received } => {
                if let Some(waiting) = self.waiting.as_mut().filter(|w| w.number == slice && round >= w.round) {
                    for (block, missing) in waiting.missing.iter_mut().enumerate() {
                        if !wire::map_has(&received, block) {
                            *missing = true;
                        }
                    }
                    if !waiting.answered.contains(&number) {
                        waiting.answered.push(number);
                    }
                    self.note_round_trip(now);
                }
            }
            // A receiver started without --nokbd sends GO as soon as it joined: the
            // technician's start policy decides, not the first seat to boot.
            ReceiverMessage::Go => {}
            ReceiverMessage::Disconnect => {
                // Once only the end-of-stream slice is waiting, every data slice is
                // acknowledged: a receiver leaving then has it all (its last OK was lost).
                let has_all = self.waiting.as_ref().is_some_and(|w| w.blocks == 0);
                if has_all {
                    self.seats[index].state = SeatState::Finished;
                    self.events.push_back(SessionEvent::Finished { seat: from });
                } else {
                    self.seats[index].state = SeatState::Gone;
                    self.events.push_back(SessionEvent::Left { seat: from });
                }
            }
            ReceiverMessage::ConnectRequest { .. } => {}
        }
        Ok(())
    }

    fn on_join(&mut self, from: SocketAddrV4, now: Instant) {
        let block_size = self.settings.block_size;
        let group = self.settings.group;
        let joining = !self.started();
        // One seat per address, as udpcast has it. One that asks again (its reply was
        // lost, or its receiver restarted) keeps its number while seats join; once the
        // session started its receiver cannot catch up: it is refused and counts as gone.
        if let Some(seat) = self.seats.iter_mut().find(|seat| seat.address.ip() == from.ip()) {
            if joining {
                let rejoined = seat.state != SeatState::Active;
                seat.state = SeatState::Active;
                seat.address = from;
                seat.last_heard = now;
                let number = seat.number;
                let reply = wire::connect_reply(Some(number), block_size, group);
                self.control.push_back((Destination::Seat(from), reply.to_vec()));
                if rejoined {
                    self.events.push_back(SessionEvent::Joined { seat: from, number });
                    self.start_if_all_joined();
                }
                return;
            }
            if seat.state == SeatState::Active {
                seat.state = SeatState::Gone;
                self.events.push_back(SessionEvent::Left { seat: from });
            }
        }
        let active = self.active().count();
        let admitted = self.settings.admit.as_ref().is_none_or(|admit| admit.contains(from.ip()));
        let why = match self.phase {
            Phase::Joining { .. } if !admitted => Some(Refusal::NotAdmitted),
            Phase::Joining { .. } if self.settings.start.seats.is_some_and(|seats| active >= seats) => {
                Some(Refusal::Full)
            }
            Phase::Joining { .. } if self.seats.len() >= wire::MAX_RECEIVERS => Some(Refusal::Full),
            Phase::Joining { .. } => None,
            _ => Some(Refusal::Started),
        };
        if let Some(why) = why {
            let reply = wire::connect_reply(None, block_size, group);
            self.control.push_back((Destination::Seat(from), reply.to_vec()));
            self.events.push_back(SessionEvent::Refused { seat: from, why });
            return;
        }
        let number = u16::try_from(self.seats.len()).unwrap_or(u16::MAX);
        self.seats.push(Seat { address: from, number, state: SeatState::Active, last_heard: now });
        let reply = wire::connect_reply(Some(number), block_size, group);
        self.control.push_back((Destination::Seat(from), reply.to_vec()));
        self.events.push_back(SessionEvent::Joined { seat: from, number });
        self.start_if_all_joined();
    }

    fn start_if_all_joined(&mut self) {
        if self.settings.start.seats.is_some_and(|seats| self.active().count() >= seats) {
            self.start();
        }
    }

    fn on_ok(&mut self, index: usize, slice: u32, now: Instant) {
        let number = self.seats[index].number;
        let Some(waiting) = self.waiting.as_mut().filter(|w| w.number == slice) else {
            return;
        };
        if waiting.ready.contains(number) {
            return;
        }
        waiting.ready.insert(number);
        if !waiting.answered.contains(&number) {
            waiting.answered.push(number);
        }
        if waiting.blocks == 0 {
            self.seats[index].state = SeatState::Finished;
            self.events.push_back(SessionEvent::Finished { seat: self.seats[index].address });
        }
        self.note_round_trip(now);
    }

    /// The time from a REQACK to an answer, folded into how long a round waits.
    fn note_round_trip(&mut self, now: Instant) {
        if let Some(sent) = self.waiting.as_ref().and_then(|w| w.reqack_sent) {
            let sample = now.saturating_duration_since(sent);
            // Four round trips of margin, averaged over the last few answers.
            let wait = (self.ack_wait * 7 + sample * 4) / 8;
            self.ack_wait = wait.clamp(MIN_ACK_WAIT, MAX_ACK_WAIT);
        }
    }

    fn start(&mut self) {
        let seats = self.active().count();
        self.phase = Phase::Sending;
        self.events.push_back(SessionEvent::Started { seats });
    }

    /// How many bytes of the stream the next slice wants, if it wants any now. The
    /// driver answers with `feed`: exactly that many, or fewer only at the stream's end.
    pub fn wants_data(&self) -> Option<usize> {
        let free = self.sending.is_none() && !self.stream_ended && self.ended().is_none();
        free.then(|| self.settings.slice_blocks.clamp(1, wire::MAX_SLICE_BLOCKS) * self.block_size())
    }

    /// The next bytes of the stream; `at_end` when nothing follows them.
    pub fn feed(&mut self, bytes: Vec<u8>, at_end: bool) {
        if self.sending.is_some() || self.stream_ended {
            return;
        }
        self.stream_ended = at_end;
        if !bytes.is_empty() {
            self.sending = Some(Slice::new(self.next_slice, bytes, self.block_size()));
            self.next_slice += 1;
        }
    }

    /// When the sender next wants to run (to send, to time out a round, to start).
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Ended(_) => None,
            Phase::Joining { since } => Some(self.next_hello.min(since + self.settings.start.wait)),
            Phase::Sending => {
                let mut times = Vec::new();
                if let Some(waiting) = &self.waiting {
                    if let Some(sent) = waiting.reqack_sent {
                        times.push(sent + self.ack_wait);
                    }
                    if let Some(first) = waiting.first_reqack {
                        let owing = self.active().filter(|seat| !waiting.ready.contains(seat.number));
                        times.extend(owing.map(|seat| seat.last_heard.max(first) + self.settings.drop_after));
                    }
                }
                if self.sending.as_ref().is_some_and(|s| !s.transmitted())
                    || self.waiting.as_ref().is_some_and(|w| w.resending)
                {
                    times.push(self.pacer.ready_at(self.block_size() + wire::DATA_HEADER));
                }
                times.into_iter().min()
            }
        }
    }

    /// The next datagram to send, written into `out`, and where it goes; `None` when
    /// nothing is to be sent before `deadline()` or a datagram arrives.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Destination> {
        out.clear();
        if let Some((to, bytes)) = self.control.pop_front() {
            out.extend_from_slice(&bytes);
            return Some(to);
        }
        match self.phase {
            Phase::Ended(_) => None,
            Phase::Joining { since } => {
                if now >= since + self.settings.start.wait {
                    if self.active().next().is_some() {
                        self.start();
                        return self.poll_sending(now, out);
                    }
                    self.end(Ending::NobodyJoined);
                    return None;
                }
                if now >= self.next_hello {
                    self.next_hello = now + self.settings.hello_every;
                    out.extend_from_slice(&wire::hello(self.settings.group, self.settings.block_size));
                    return Some(Destination::Broadcast);
                }
                None
            }
            Phase::Sending => self.poll_sending(now, out),
        }
    }

    fn end(&mut self, ending: Ending) {
        self.phase = Phase::Ended(ending);
        self.events.push_back(SessionEvent::Ended(ending));
    }

    fn poll_sending(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Destination> {
        self.drop_silent(now);
        if self.active().next().is_none() {
            let finished = self.seats.iter().any(|seat| seat.state == SeatState::Finished);
            self.end(if finished { Ending::Completed } else { Ending::NoSeatLeft });
            return None;
        }
        self.complete_waiting();
        if self.ended().is_some() {
            return None;
        }
        // The stream's end is a slice of 0 bytes, acknowledged like any other.
        if self.stream_ended && self.sending.is_none() && !self.final_slice_made {
            self.sending = Some(Slice::new(self.next_slice, Vec::new(), self.block_size()));
            self.final_slice_made = true;
        }
        if self.waiting.is_none() && self.sending.as_ref().is_some_and(Slice::transmitted) {
            let mut slice = self.sending.take()?;
            slice.reqack_due = true;
            self.waiting = Some(slice);
        }
        if let Some(to) = self.poll_waiting(now, out) {
            return Some(to);
        }
        let block_size = self.block_size();
        let sending = self.sending.as_mut().filter(|s| !s.transmitted())?;
        if !self.pacer.take(block_size + wire::DATA_HEADER, now) {
            return None;
        }
        let block = sending.next_block;
        sending.next_block += 1;
        write_block(out, sending, block, block_size);
        Some(Destination::Group)
    }

    /// REQACK rounds and retransmissions of the slice waiting for acknowledgements.
    fn poll_waiting(&mut self, now: Instant, out: &mut Vec<u8>) -> Option<Destination> {
        let active: Vec<u16> = self.active().map(|seat| seat.number).collect();
        let block_size = self.block_size();
        let waiting = self.waiting.as_mut()?;
        if waiting.resending {
            let next = (waiting.resend_from..waiting.blocks).find(|&block| waiting.missing[block]);
            match next {
                Some(block) => {
                    if !self.pacer.take(block_size + wire::DATA_HEADER, now) {
                        return None;
                    }
                    waiting.missing[block] = false;
                    waiting.resend_from = block + 1;
                    waiting.resent += 1;
                    write_block(out, waiting, block, block_size);
                    return Some(Destination::Group);
                }
                None => {
                    waiting.resending = false;
                    waiting.round += 1;
                    waiting.reqack_due = true;
                }
            }
        }
        let everyone_answered = active.iter().all(|number| waiting.answered.contains(number));
        if !waiting.reqack_due && waiting.reqack_sent.is_some() {
            if everyone_answered {
                // Some seat lacks blocks (or it would be complete): send them, then ask again.
                waiting.resending = true;
                waiting.resend_from = 0;
                return self.poll_waiting(now, out);
            }
            if waiting.reqack_sent.is_some_and(|sent| now >= sent + self.ack_wait) {
                self.ack_wait = (self.ack_wait * 2).min(MAX_ACK_WAIT);
                waiting.round += 1;
                waiting.reqack_due = true;
            }
        }
        if waiting.reqack_due {
            waiting.reqack_due = false;
            waiting.reqack_sent = Some(now);
            waiting.first_reqack.get_or_insert(now);
            // Those already complete are not asked again.
            waiting.answered = active.iter().copied().filter(|&number| waiting.ready.contains(number)).collect();
            out.extend_from_slice(&wire::reqack(waiting.number, waiting.bytes(), waiting.round, &waiting.ready));
            return Some(Destination::Group);
        }
        None
    }

    /// A slice every active seat has is done: progress, and the rate learns from it.
    fn complete_waiting(&mut self) {
        let Some(waiting) = &self.waiting else { return };
        if !self.active().all(|seat| waiting.ready.contains(seat.number)) {
            return;
        }
        let Some(done) = self.waiting.take() else { return };
        if done.blocks == 0 {
            self.end(Ending::Completed);
            return;
        }
        self.bytes_done += done.data.len() as u64;
        let rate = &mut self.pacer.rate;
        // More than 1 block in 100 sent again: the slowest seat could not keep up. A
        // slice without loss: a quarter more. A round answered late is no loss (a seat
        // busy writing answers late but has every block): it makes rounds wait longer.
        if done.resent * 100 > done.blocks {
            *rate = (*rate * 0.7).max(self.floor);
        } else if done.resent == 0 {
            *rate = (*rate * 1.25).min(self.settings.max_rate);
        }
        self.events.push_back(SessionEvent::Progress { bytes: self.bytes_done, rate: *rate });
    }

    /// Seats the waiting slice still needs that have been silent for `drop_after`.
    fn drop_silent(&mut self, now: Instant) {
        let Some(waiting) = &self.waiting else { return };
        let Some(first) = waiting.first_reqack else { return };
        let drop_after = self.settings.drop_after;
        for seat in self.seats.iter_mut().filter(|seat| seat.state == SeatState::Active) {
            if waiting.ready.contains(seat.number) {
                continue;
            }
            let waited_since = seat.last_heard.max(first);
            if now.saturating_duration_since(waited_since) >= drop_after {
                seat.state = SeatState::Gone;
                let silent = now.saturating_duration_since(seat.last_heard);
                self.events.push_back(SessionEvent::Dropped { seat: seat.address, why: DropReason::Silent(silent) });
            }
        }
    }
}

fn write_block(out: &mut Vec<u8>, slice: &Slice, block: usize, block_size: usize) {
    // At most 1024 blocks a slice.
    let number = u16::try_from(block).unwrap_or(u16::MAX);
    out.extend_from_slice(&wire::data_header(slice.number, number, slice.bytes()));
    out.extend_from_slice(slice.block(block, block_size));
}
