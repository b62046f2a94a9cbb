use std::process::ExitCode;
use std::time::Duration;

use portapxe_engine::detect::probe::{ProbeSettings, probe};
use portapxe_engine::detect::{ServerRole, ServerSighting};
use portapxe_engine::net::find_up_interface;

/// Exit status when another server answered (0: none).
const FOUND: u8 = 1;
const ERROR: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Interface to probe (see `portapxe interfaces`).
    #[arg(long)]
    interface: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds to listen for answers.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

/// Exit status 0 when no DHCP or proxyDHCP server answered, 1 when one did; errors exit 2.
pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    scan(args).or_else(|err| {
        eprintln!("portapxe: {}", super::error_text(&err));
        Ok(ExitCode::from(ERROR))
    })
}

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let interface = find_up_interface(&args.interface)?;
    let listen = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--timeout must be a positive number of seconds"))?;
    let settings = ProbeSettings {
        interface: (&interface).into(),
        address: interface.facts().map(|facts| facts.address),
        listen,
        server_port: 67,
        boot_server_port: 4011,
        ours: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let servers = runtime.block_on(probe(&settings))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&servers)?);
    } else {
        print_table(&interface.name, &servers);
    }
    Ok(if servers.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(FOUND) })
}

fn print_table(interface: &str, servers: &[ServerSighting]) {
    if servers.is_empty() {
        println!("No DHCP or proxyDHCP server answered on {interface}.");
        return;
    }
    println!("{:<17} {:<10} {:<15} {:<15} {:<26} BOOT", "SERVER", "ROLE", "OFFERS", "NEXT-SERVER", "MAC (VENDOR)");
    for server in servers {
        let role = match server.role {
            ServerRole::AddressServer => "dhcp",
            ServerRole::ProxyDhcp => "proxydhcp",
        };
        let show = |ip: Option<std::net::Ipv4Addr>| ip.map_or("-".to_string(), |ip| ip.to_string());
        let boot = match (&server.boot_file, server.pxe) {
            (Some(file), _) => file.clone(),
            (None, true) => "(PXE options)".into(),
            (None, false) => "-".into(),
        };
        let mac = match (server.mac, server.vendor()) {
            (Some(mac), Some(vendor)) => format!("{mac} ({vendor})"),
            (Some(mac), None) => mac.to_string(),
            (None, _) => "-".into(),
        };
        println!(
            "{:<17} {:<10} {:<15} {:<15} {:<26} {boot}",
            server.server_id.to_string(),
            role,
            show(server.offered_address),
            show(server.next_server),
            mac
        );
    }
}
