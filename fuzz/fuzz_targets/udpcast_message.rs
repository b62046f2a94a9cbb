//! Datagrams from anyone on the multicast sender's port: the udpcast wire parser, and the
//! sender's state machine fed a session's worth of them (joins, OKs, retransmit maps with
//! any slice and round, disconnects) between its own sends.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use portapxe_engine::imaging::multicast::sender::{Sender, SenderSettings, StartWhen};
use portapxe_engine::imaging::multicast::wire;

fuzz_target!(|data: &[u8]| {
    let _ = wire::parse_receiver_message(data);
    let start = Instant::now();
    let settings = SenderSettings::new(
        Ipv4Addr::new(234, 0, 0, 1),
        StartWhen { seats: Some(2), wait: Duration::from_secs(1) },
    );
    let mut sender = Sender::new(settings, start);
    let mut out = Vec::new();
    let mut now = start;
    // Each datagram: 1 byte of sender (seat 1..4), 1 byte of length, then the bytes.
    let mut rest = data;
    while let [seat, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        let from = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, seat % 4 + 1), 9000);
        let _ = sender.on_datagram(from, datagram, now);
        if let Some(want) = sender.wants_data() {
            sender.feed(vec![0x5a; want.min(3000)], want > 3000);
        }
        for _ in 0..64 {
            if sender.poll_transmit(now, &mut out).is_none() {
                break;
            }
        }
        while sender.poll_event().is_some() {}
        now += Duration::from_millis(50);
        rest = next;
    }
});
