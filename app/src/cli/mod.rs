//! The headless command line: `serve`, `interfaces`, `scan`, `export`, `wake`, `image`. The
//! end-to-end tests drive the product through these names, so they are a contract.
//! With no subcommand, `portapxe` opens the desktop window.

mod clonezilla;
mod export;
mod image;
mod interfaces;
mod scan;
mod serve;
mod wake;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "portapxe", version, about = "PortaPXE: a portable PXE boot server (DHCP, TFTP, HTTP, iPXE)")]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Open the window and start serving at once with the saved settings (a bench
    /// laptop that serves from login). Without a subcommand only.
    #[arg(long)]
    pub start: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve network boot on one interface until interrupted (Ctrl-C / SIGTERM).
    Serve(Box<serve::ServeArgs>),
    /// List network interfaces with their addresses and kind.
    Interfaces(interfaces::InterfacesArgs),
    /// Look for DHCP and proxyDHCP servers on a network (exit 0: none, 1: found, 2: error).
    Scan(scan::ScanArgs),
    /// Print the configuration that makes an existing DHCP server send clients to PortaPXE.
    Export(Box<export::ExportArgs>),
    /// Disk images: list them, restore one to many seats at once over multicast.
    Image(image::ImageArgs),
    /// Wake seats with Wake-on-LAN magic packets, broadcast on one interface.
    Wake(wake::WakeArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.start && cli.command.is_some() {
        anyhow::bail!(
            "--start opens the window and starts it; a subcommand runs without the window: use one or the other"
        );
    }
    match cli.command {
        Some(Command::Serve(args)) => serve::run(*args),
        Some(Command::Interfaces(args)) => interfaces::run(args),
        Some(Command::Scan(args)) => scan::run(args),
        Some(Command::Export(args)) => export::run(*args),
        Some(Command::Wake(args)) => wake::run(args),
        Some(Command::Image(args)) => image::run(args),
        None => crate::gui::run(cli.start),
    }
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTAPXE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// An error and its causes in one line, each said once: many of the engine's
/// messages already name their cause, which the chain would otherwise repeat.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read the lease file /x/leases.json: {source}")]
        struct LeaseFile {
            source: std::io::Error,
        }
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let reason = io.to_string();
        let err = anyhow::Error::new(LeaseFile { source: io }).context("cannot start");
        let text = error_text(&err);
        assert_eq!(text.matches(&reason).count(), 1, "{text}");
        assert!(text.starts_with("cannot start: cannot read the lease file"), "{text}");
    }
}
