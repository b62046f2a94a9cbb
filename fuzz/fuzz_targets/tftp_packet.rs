//! A TFTP datagram from anyone: the wire format parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = portapxe_engine::tftp::packet::parse(data);
});
