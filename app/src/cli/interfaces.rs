use std::process::ExitCode;

use portapxe_engine::net::list_interfaces;

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
    interfaces
        .sort_by_key(|i| (i.kind == portapxe_engine::net::InterfaceKind::Loopback, i.kind.to_string() == "virtual"));
    println!("{:<16} {:<9} {:<5} {:<17} IPv4", "NAME", "KIND", "STATE", "MAC");
    for interface in interfaces {
        let ipv4: Vec<String> = interface.ipv4.iter().map(|(ip, prefix)| format!("{ip}/{prefix}")).collect();
        println!(
            "{:<16} {:<9} {:<5} {:<17} {}",
            interface.name,
            interface.kind.to_string(),
            if interface.up { "up" } else { "down" },
            interface.mac.map(|mac| mac.to_string()).unwrap_or_else(|| "-".into()),
            if ipv4.is_empty() { "-".to_string() } else { ipv4.join(", ") },
        );
    }
    Ok(ExitCode::SUCCESS)
}
