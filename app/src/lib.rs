//! `portapxe`: the PortaPXE binary's library half. Wires the command line and the
//! desktop window to the engine; holds no protocol logic of its own. The binary
//! (`main.rs`) only parses arguments; tests and benchmarks reach the GUI here.

pub mod boot_files;
pub mod cli;
pub mod event_text;
pub mod gui;
