//! A config file someone wrote or edited: TOML into the config model, then validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portapxe_engine::config::{Config, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = toml::from_str::<Config>(text) {
        let _ = validate(&config, None);
    }
});
