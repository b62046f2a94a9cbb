//! The sender against receivers that behave as udpcast's `udp-receiver` does
//! (`receivedata.c`): they store the blocks they get, and answer a REQACK not addressed
//! to them as done with OK (slice complete, or an old one) or RETRANSMIT (a map of what
//! they have, quoting the round), and leave with DISCONNECT after the end.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::sender::{Destination, DropReason, Ending, Refusal, Sender, SenderSettings, SessionEvent, StartWhen};
use super::wire::{self, SenderMessage, receiver};

const GROUP: Ipv4Addr = Ipv4Addr::new(234, 77, 0, 1);

fn seat(host: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, host), 9000)
}

fn settings(seats: Option<usize>) -> SenderSettings {
    let mut settings = SenderSettings::new(GROUP, StartWhen { seats, wait: Duration::from_secs(30) });
    settings.slice_blocks = 8;
    settings.block_size = 100;
    settings
}

/// A model of udp-receiver: what it stores and what it answers.
#[derive(Debug)]
struct Receiver {
    address: SocketAddrV4,
    number: Option<u16>,
    /// Blocks of the slice being received (the receiver's retransmit map).
    slice: u32,
    blocks: Vec<Option<Vec<u8>>>,
    /// Blocks of the next slice, which the sender pipelines (udp-receiver keeps them too).
    next: Vec<Option<Vec<u8>>>,
    written: Vec<u8>,
    done: bool,
    /// Blocks of the current slice this receiver will not hear the first time.
    lose_first: Vec<u16>,
    deaf: bool,
}

impl Receiver {
    fn new(host: u8) -> Self {
        Self {
            address: seat(host),
            number: None,
            slice: 0,
            blocks: Vec::new(),
            next: Vec::new(),
            written: Vec::new(),
            done: false,
            lose_first: Vec::new(),
            deaf: false,
        }
    }

    /// What it answers to one datagram of the sender's.
    fn hear(&mut self, bytes: &[u8], block_size: usize) -> Option<Vec<u8>> {
        if self.deaf {
            return None;
        }
        match wire::parse_sender_message(bytes)? {
            SenderMessage::ConnectReply { number, .. } => {
                self.number = u16::try_from(number).ok();
                None
            }
            SenderMessage::Hello { .. } => None,
            SenderMessage::Data { slice, block, slice_bytes, .. } => {
                assert!(slice <= self.slice + 1, "a receiver exits when the sender runs 2 slices ahead");
                if slice < self.slice {
                    return None;
                }
                if let Some(at) = self.lose_first.iter().position(|&lost| lost == block) {
                    self.lose_first.remove(at);
                    return None;
                }
                let count = (slice_bytes as usize).div_ceil(block_size);
                let blocks = if slice == self.slice { &mut self.blocks } else { &mut self.next };
                blocks.resize(count, None);
                blocks[usize::from(block)] = Some(bytes[wire::DATA_HEADER..].to_vec());
                None
            }
            SenderMessage::Reqack { slice, slice_bytes, round, ready } => {
                let number = self.number?;
                if ready.contains(number) {
                    return None;
                }
                if slice < self.slice || self.done {
                    return Some(receiver::ok(slice));
                }
                let count = (slice_bytes as usize).div_ceil(block_size);
                self.blocks.resize(count, None);
                if self.blocks.iter().all(Option::is_some) {
                    for block in self.blocks.drain(..) {
                        self.written.extend(block.unwrap_or_default());
                    }
                    self.blocks = std::mem::take(&mut self.next);
                    self.slice += 1;
                    self.done = slice_bytes == 0;
                    return Some(receiver::ok(slice));
                }
                let have = self.blocks.iter().enumerate().filter(|(_, b)| b.is_some()).map(|(i, _)| i);
                Some(receiver::retransmit(slice, round, have))
            }
        }
    }
}

/// A segment where every datagram reaches its receivers at once, and a clock that
/// jumps to the sender's deadline when nothing is to be sent.
struct Room {
    sender: Sender,
    receivers: Vec<Receiver>,
    stream: Vec<u8>,
    fed: usize,
    now: Instant,
    events: Vec<SessionEvent>,
    block_size: usize,
    sent_blocks: usize,
}

impl Room {
    fn new(settings: SenderSettings, receivers: Vec<Receiver>, stream: Vec<u8>) -> Self {
        let now = Instant::now();
        let block_size = usize::from(settings.block_size);
        Self {
            sender: Sender::new(settings, now),
            receivers,
            stream,
            fed: 0,
            now,
            events: Vec::new(),
            block_size,
            sent_blocks: 0,
        }
    }

    fn join_all(&mut self) {
        for index in 0..self.receivers.len() {
            self.join(index);
        }
    }

    fn join(&mut self, index: usize) {
        let from = self.receivers[index].address;
        self.sender.on_datagram(from, &receiver::connect_request(), self.now).unwrap();
    }

    fn step(&mut self) -> bool {
        if let Some(want) = self.sender.wants_data() {
            let end = (self.fed + want).min(self.stream.len());
            let bytes = self.stream[self.fed..end].to_vec();
            self.fed = end;
            self.sender.feed(bytes, end == self.stream.len());
        }
        let mut out = Vec::new();
        let mut answers = Vec::new();
        let mut sent = false;
        while let Some(to) = self.sender.poll_transmit(self.now, &mut out) {
            sent = true;
            if wire::parse_sender_message(&out).is_some_and(|m| matches!(m, SenderMessage::Data { .. })) {
                self.sent_blocks += 1;
            }
            for receiver in &mut self.receivers {
                let hears = match to {
                    Destination::Seat(address) => address == receiver.address,
                    Destination::Group | Destination::Broadcast => true,
                };
                if hears && let Some(answer) = receiver.hear(&out, self.block_size) {
                    answers.push((receiver.address, answer));
                }
            }
        }
        for (from, answer) in answers {
            self.sender.on_datagram(from, &answer, self.now).unwrap();
        }
        self.events.extend(std::iter::from_fn(|| self.sender.poll_event()));
        if !sent {
            match self.sender.deadline() {
                Some(deadline) if deadline > self.now => self.now = deadline,
                Some(_) => self.now += Duration::from_micros(100),
                None => return false,
            }
        }
        self.sender.ended().is_none()
    }

    fn run(&mut self) -> Ending {
        for _ in 0..200_000 {
            if !self.step() {
                break;
            }
        }
        self.sender.ended().expect("the session ends")
    }
}

fn stream(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn seats_join_get_their_numbers_and_the_session_starts_when_all_are_in() {
    let mut sender = Sender::new(settings(Some(2)), Instant::now());
    let now = Instant::now();
    let mut out = Vec::new();
    assert_eq!(sender.poll_transmit(now, &mut out), Some(Destination::Broadcast), "HELLO first");
    assert!(matches!(wire::parse_sender_message(&out), Some(SenderMessage::Hello { group: GROUP, block_size: 100 })));

    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    assert_eq!(sender.poll_transmit(now, &mut out), Some(Destination::Seat(seat(10))));
    assert_eq!(
        wire::parse_sender_message(&out),
        Some(SenderMessage::ConnectReply { number: 0, block_size: 100, group: GROUP })
    );
    assert!(!sender.started());
    // Its reply was lost: it asks again after the next HELLO and keeps its number.
    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    sender.poll_transmit(now, &mut out);
    assert!(matches!(wire::parse_sender_message(&out), Some(SenderMessage::ConnectReply { number: 0, .. })));

    sender.on_datagram(seat(11), &receiver::connect_request(), now).unwrap();
    assert!(sender.started(), "two seats asked for, two joined");
    let events: Vec<_> = std::iter::from_fn(|| sender.poll_event()).collect();
    assert_eq!(
        events,
        vec![
            SessionEvent::Joined { seat: seat(10), number: 0 },
            SessionEvent::Joined { seat: seat(11), number: 1 },
            SessionEvent::Started { seats: 2 },
        ]
    );

    // A third is refused with client number -1 (udp-receiver exits, naming it).
    sender.on_datagram(seat(12), &receiver::connect_request(), now).unwrap();
    sender.poll_transmit(now, &mut out);
    sender.poll_transmit(now, &mut out);
    assert!(matches!(wire::parse_sender_message(&out), Some(SenderMessage::ConnectReply { number: -1, .. })));
    assert_eq!(sender.poll_event(), Some(SessionEvent::Refused { seat: seat(12), why: Refusal::Started }));
}

#[test]
fn a_session_for_some_seats_refuses_any_other() {
    let now = Instant::now();
    let mut settings = settings(Some(2));
    settings.admit = Some(vec![*seat(10).ip(), *seat(11).ip()]);
    let mut sender = Sender::new(settings, now);
    let mut out = Vec::new();
    // A seat that did not finish the partition before comes first: it must not take a place.
    sender.on_datagram(seat(12), &receiver::connect_request(), now).unwrap();
    while sender.poll_transmit(now, &mut out).is_some() {
        if matches!(wire::parse_sender_message(&out), Some(SenderMessage::ConnectReply { .. })) {
            break;
        }
    }
    assert!(matches!(wire::parse_sender_message(&out), Some(SenderMessage::ConnectReply { number: -1, .. })));
    assert_eq!(sender.poll_event(), Some(SessionEvent::Refused { seat: seat(12), why: Refusal::NotAdmitted }));
    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    assert!(!sender.started(), "one of the two it takes");
    sender.on_datagram(seat(11), &receiver::connect_request(), now).unwrap();
    assert!(sender.started());
}

#[test]
fn a_go_from_a_seat_does_not_start_the_session() {
    let now = Instant::now();
    let mut sender = Sender::new(settings(Some(3)), now);
    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    sender.on_datagram(seat(10), &receiver::go(), now).unwrap();
    assert!(!sender.started(), "udp-receiver without --nokbd sends GO at once; the technician's policy decides");
}

#[test]
fn the_wait_starts_with_whoever_joined_or_ends_with_nobody() {
    let start = Instant::now();
    let mut sender = Sender::new(settings(None), start);
    let mut out = Vec::new();
    sender.on_datagram(seat(10), &receiver::connect_request(), start).unwrap();
    let later = start + Duration::from_secs(30);
    while sender.poll_transmit(later, &mut out).is_some() && !sender.started() {}
    assert!(sender.started());

    let mut empty = Sender::new(settings(None), start);
    while empty.poll_transmit(later, &mut out).is_some() {}
    assert_eq!(empty.ended(), Some(Ending::NobodyJoined));
}

#[test]
fn three_seats_get_the_whole_stream_and_finish() {
    let receivers = (10..13).map(Receiver::new).collect();
    let data = stream(8 * 100 * 3 + 250);
    let mut room = Room::new(settings(Some(3)), receivers, data.clone());
    room.join_all();
    assert_eq!(room.run(), Ending::Completed);
    for receiver in &room.receivers {
        assert!(
            receiver.written == data,
            "seat {} got {} of {} bytes",
            receiver.address,
            receiver.written.len(),
            data.len()
        );
    }
    let finished = room.events.iter().filter(|e| matches!(e, SessionEvent::Finished { .. })).count();
    assert_eq!(finished, 3);
    assert_eq!(room.sent_blocks, data.len().div_ceil(100), "nothing lost, nothing sent twice");
    assert!(room.events.contains(&SessionEvent::Ended(Ending::Completed)));
}

#[test]
fn blocks_a_seat_reports_missing_are_sent_again_once_for_everyone() {
    let mut lossy = Receiver::new(11);
    lossy.lose_first = vec![2, 5];
    let mut other = Receiver::new(12);
    other.lose_first = vec![5, 7];
    let receivers = vec![Receiver::new(10), lossy, other];
    let data = stream(8 * 100 * 2);
    let mut room = Room::new(settings(Some(3)), receivers, data.clone());
    room.join_all();
    assert_eq!(room.run(), Ending::Completed);
    assert!(room.receivers.iter().all(|r| r.written == data));
    // Blocks 2, 5 and 7 of the first slice once more each: 5 is asked for twice, sent once.
    assert_eq!(room.sent_blocks, 16 + 3);
}

#[test]
fn a_seat_that_goes_silent_is_dropped_and_the_others_finish() {
    let receivers = (10..13).map(Receiver::new).collect();
    let data = stream(8 * 100 * 6);
    let mut room = Room::new(settings(Some(3)), receivers, data.clone());
    room.join_all();
    // The third seat is powered off after the second slice.
    while room.receivers[2].slice < 2 {
        assert!(room.step());
    }
    room.receivers[2].deaf = true;
    let silent_from = room.now;
    assert_eq!(room.run(), Ending::Completed);
    assert!(room.receivers[..2].iter().all(|r| r.written == data));
    let dropped: Vec<_> = room.events.iter().filter(|e| matches!(e, SessionEvent::Dropped { .. })).collect();
    assert_eq!(dropped.len(), 1, "{:?}", room.events);
    let SessionEvent::Dropped { seat: who, why: DropReason::Silent(silent) } = dropped[0] else { unreachable!() };
    assert_eq!(*who, seat(12));
    assert!(*silent >= Duration::from_secs(15), "dropped after {silent:?}");
    assert!(room.now - silent_from < Duration::from_secs(17), "the room waited {:?}", room.now - silent_from);
    assert!(why_text(dropped[0]).contains("stopped answering for 15 s"));
}

fn why_text(event: &SessionEvent) -> String {
    match event {
        SessionEvent::Dropped { why, .. } => why.to_string(),
        _ => String::new(),
    }
}

#[test]
fn every_seat_gone_ends_the_session() {
    let receivers = vec![Receiver::new(10)];
    let mut room = Room::new(settings(Some(1)), receivers, stream(8 * 100 * 4));
    room.join_all();
    room.receivers[0].deaf = true;
    assert_eq!(room.run(), Ending::NoSeatLeft);
}

#[test]
fn a_seat_that_leaves_mid_stream_is_told_apart_from_one_that_finished() {
    let now = Instant::now();
    let mut room = Room::new(settings(Some(2)), vec![Receiver::new(10), Receiver::new(11)], stream(8 * 100 * 4));
    room.join_all();
    while room.receivers[0].slice < 1 {
        room.step();
    }
    room.sender.on_datagram(seat(11), &receiver::disconnect(), now).unwrap();
    room.receivers[1].deaf = true;
    assert_eq!(room.run(), Ending::Completed);
    assert!(room.events.contains(&SessionEvent::Left { seat: seat(11) }));
    assert!(room.events.contains(&SessionEvent::Finished { seat: seat(10) }));
}

#[test]
fn a_disconnect_while_the_end_is_acknowledged_counts_as_finished() {
    // udp-receiver sends its final OK, waits 500 ms, then DISCONNECT: if the OK is lost,
    // the DISCONNECT is all the sender hears.
    let mut room = Room::new(settings(Some(1)), vec![Receiver::new(10)], stream(300));
    room.join_all();
    while room.receivers[0].slice < 1 {
        room.step();
    }
    room.receivers[0].deaf = true;
    // Let the end-of-stream REQACK go out unanswered, then the goodbye arrives.
    for _ in 0..3 {
        room.step();
    }
    let now = room.now;
    room.sender.on_datagram(seat(10), &receiver::disconnect(), now).unwrap();
    assert_eq!(room.run(), Ending::Completed);
    assert!(room.events.contains(&SessionEvent::Finished { seat: seat(10) }));
}

#[test]
fn an_answer_to_an_old_round_is_ignored() {
    let now = Instant::now();
    let mut sender = Sender::new(settings(Some(1)), now);
    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    sender.feed(stream(800), false);
    let mut out = Vec::new();
    let mut reqacks = Vec::new();
    let mut t = now;
    // Send the slice, let two rounds time out.
    for _ in 0..200 {
        if let Some(Destination::Group) = sender.poll_transmit(t, &mut out) {
            if let Some(SenderMessage::Reqack { round, .. }) = wire::parse_sender_message(&out) {
                reqacks.push(round);
            }
        } else {
            t = sender.deadline().unwrap().max(t + Duration::from_millis(1));
        }
        if reqacks.len() == 3 {
            break;
        }
    }
    assert_eq!(reqacks, vec![0, 1, 2], "a round with no answer is asked again");
    // A late RETRANSMIT quoting round 0 asks for nothing now.
    sender.on_datagram(seat(10), &receiver::retransmit(0, 0, 0..4), t).unwrap();
    let mut resent = 0;
    for _ in 0..5 {
        if sender.poll_transmit(t, &mut out).is_some()
            && matches!(wire::parse_sender_message(&out), Some(SenderMessage::Data { .. }))
        {
            resent += 1;
        }
    }
    assert_eq!(resent, 0);
}

#[test]
fn the_rate_falls_when_a_seat_loses_blocks_and_grows_when_slices_are_clean() {
    let initial = settings(Some(1)).initial_rate;
    let mut clean = Room::new(settings(Some(1)), vec![Receiver::new(10)], stream(8 * 100 * 3));
    clean.join_all();
    clean.run();
    assert!(clean.sender.rate() > initial, "clean slices: {} → {}", initial, clean.sender.rate());

    let mut lossy = Receiver::new(10);
    lossy.lose_first = vec![1, 3];
    let mut room = Room::new(settings(Some(1)), vec![lossy], stream(8 * 100));
    room.join_all();
    room.run();
    assert!(room.sender.rate() < initial, "a slice with losses: {} → {}", initial, room.sender.rate());
}

#[test]
fn the_session_paces_its_blocks_at_the_rate() {
    let mut settings = settings(Some(1));
    settings.block_size = wire::BLOCK_SIZE;
    settings.slice_blocks = 512;
    settings.initial_rate = 1e6;
    settings.max_rate = 1e6;
    let data = stream(usize::from(wire::BLOCK_SIZE) * 512);
    let mut room = Room::new(settings, vec![Receiver::new(10)], data.clone());
    room.join_all();
    let start = room.now;
    room.run();
    let elapsed = (room.now - start).as_secs_f64();
    // 745 KB at 1 MB/s, less the first burst.
    assert!((0.65..0.85).contains(&elapsed), "{elapsed} s for {} bytes at 1 MB/s", data.len());
}

#[test]
fn a_seat_whose_receiver_restarts_while_seats_join_keeps_its_place() {
    let now = Instant::now();
    let mut sender = Sender::new(settings(Some(2)), now);
    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    sender.on_datagram(seat(10), &receiver::disconnect(), now).unwrap();
    sender.on_datagram(seat(10), &receiver::connect_request(), now).unwrap();
    assert!(!sender.started(), "one machine is one seat, however often it asks");
    sender.on_datagram(seat(11), &receiver::connect_request(), now).unwrap();
    assert!(sender.started());
    let events: Vec<_> = std::iter::from_fn(|| sender.poll_event()).collect();
    let joined: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Joined { seat, number } => Some((*seat, *number)),
            _ => None,
        })
        .collect();
    assert_eq!(joined, vec![(seat(10), 0), (seat(10), 0), (seat(11), 1)], "{events:?}");
    assert!(events.contains(&SessionEvent::Started { seats: 2 }));
}

#[test]
fn a_rate_limit_below_the_floor_is_kept() {
    let mut settings = settings(Some(1));
    settings.max_rate = 200_000.0;
    let sender = Sender::new(settings, Instant::now());
    assert!(sender.rate() <= 200_000.0, "{}", sender.rate());
}

#[test]
fn a_wait_of_any_length_does_not_overflow() {
    let mut settings = settings(None);
    settings.start.wait = Duration::MAX;
    settings.drop_after = Duration::MAX;
    let mut sender = Sender::new(settings, Instant::now());
    let mut out = Vec::new();
    sender.poll_transmit(Instant::now(), &mut out);
    assert!(sender.deadline().is_some());
}
