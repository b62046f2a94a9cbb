//! `portapxe`: the PortaPXE binary. Parses arguments and hands over to the command
//! line or, with no subcommand, the desktop window (see the library half).

use std::process::ExitCode;

use clap::Parser;
use portapxe::cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portapxe: {}", cli::error_text(&err));
            ExitCode::FAILURE
        }
    }
}
