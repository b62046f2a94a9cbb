//! `portapxe wake`: Wake-on-LAN magic packets for the given MACs, broadcast on one interface.

use std::process::ExitCode;

use portapxe_engine::mac::MacAddr;
use portapxe_engine::net::find_up_interface;
use portapxe_engine::wake::{REPEATS, wake};

#[derive(Debug, clap::Args)]
pub struct WakeArgs {
    /// Interface the seats are on (see `portapxe interfaces`).
    #[arg(long)]
    interface: String,
    /// MACs to wake, like 52:54:00:12:34:56.
    #[arg(required = true, value_parser = parse_mac)]
    macs: Vec<MacAddr>,
}

fn parse_mac(text: &str) -> Result<MacAddr, String> {
    text.parse()
}

pub fn run(args: WakeArgs) -> anyhow::Result<ExitCode> {
    let interface = find_up_interface(&args.interface)?;
    let facts = interface
        .facts()
        .ok_or_else(|| anyhow::anyhow!("interface {:?} has no IPv4 address to send from", interface.name))?;
    let woken = wake(&(&interface).into(), &facts, &args.macs)?;
    for mac in &woken.macs {
        println!("wake packet for {mac} sent {REPEATS} times to {} on {}", woken.to, interface.name);
    }
    println!("A seat wakes only if Wake-on-LAN is on in its firmware and it still has power.");
    Ok(ExitCode::SUCCESS)
}
