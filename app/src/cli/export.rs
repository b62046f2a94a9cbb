use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::Context;
use portapxe_engine::export::{DhcpServerKind, export};
use portapxe_engine::export_target;
use portapxe_engine::net::find_interface;

use super::serve::ServeArgs;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The DHCP server to configure: isc-dhcpd, kea, dnsmasq, windows (PowerShell for Windows
    /// Server DHCP) or mikrotik (RouterOS v7 script).
    #[arg(long = "for", value_name = "SERVER")]
    server: DhcpServerKind,
    /// PortaPXE's address as clients reach it (default: the first IPv4 address of --interface).
    #[arg(long)]
    server_ip: Option<Ipv4Addr>,
    #[command(flatten)]
    serve: ServeArgs,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config = args.serve.into_config()?;
    let server_ip = match args.server_ip {
        Some(ip) => ip,
        None if config.interface.is_empty() => {
            anyhow::bail!("give --server-ip, or --interface to take PortaPXE's address from")
        }
        None => find_interface(&config.interface)?
            .facts()
            .map(|facts| facts.address)
            .with_context(|| format!("{} has no IPv4 address; give --server-ip", config.interface))?,
    };
    print!("{}", export(args.server, &export_target(&config, server_ip)));
    Ok(ExitCode::SUCCESS)
}
