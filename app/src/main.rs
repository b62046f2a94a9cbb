//! `portapxe`: the PortaPXE binary. Wires the command line (and, later, the
//! desktop window) to the engine; holds no protocol logic of its own.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("portapxe: {err:#}");
            ExitCode::FAILURE
        }
    }
}
