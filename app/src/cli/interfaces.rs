use std::process::ExitCode;

use portapxe_engine::net::{InterfaceKind, list_interfaces};

#[derive(Debug, clap::Args)]
pub struct InterfacesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InterfacesArgs) -> anyhow::Result<ExitCode> {
    let mut interfaces = list_interfaces();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&interfaces)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Real adapters first: that is where a technician's bench switch is.
    interfaces.sort_by_key(|i| (i.kind == InterfaceKind::Loopback, i.kind == InterfaceKind::Virtual));
    println!("{:<16} {:<9} {:<5} {:<17} IPv4", "NAME", "KIND", "STATE", "MAC");
    for interface in interfaces {
        let ipv4: Vec<String> = interface.ipv4.iter().map(|(ip, prefix)| format!("{ip}/{prefix}")).collect();
        // Windows names adapters by GUID; `--interface` takes the friendly name people know
        // ("Ethernet 2") as well, so that is the one to show.
        let name = interface.friendly_name.as_deref().unwrap_or(&interface.name);
        println!(
            "{:<16} {:<9} {:<5} {:<17} {}",
            name,
            interface.kind.to_string(),
            if interface.up { "up" } else { "down" },
            interface.mac.map(|mac| mac.to_string()).unwrap_or_else(|| "-".into()),
            if ipv4.is_empty() { "-".to_string() } else { ipv4.join(", ") },
        );
    }
    Ok(ExitCode::SUCCESS)
}
