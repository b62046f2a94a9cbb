//! A frame off the wire, as the capture hands it to the detector and the registry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = portapxe_engine::capture::frame::parse_dhcp_frame(data);
});
