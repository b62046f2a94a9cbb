//! PortaPXE benchmark suite: TFTP, HTTP and DHCP side by side with Debian's servers.
//!
//! Started by `bench/run` (see BENCHMARKS.md). Needs root: every server and client runs
//! inside network namespaces this program creates and deletes, so nothing reaches a real
//! network and ports 67/69/80 of the host are never touched.
//!
//! For each case, each round starts every server in turn on the same files, measures, and
//! stops it again (rounds interleave servers, so a load change on the machine hits all of
//! them alike). The table gives the median with min–max over the rounds, and PortaPXE /
//! best peer. Exit status: 0 every target met, 1 a target missed, 2 stopped early.
//!
//! | module | what it owns |
//! |---|---|
//! | [`cli`] | flags, defaults, `--quick`, validation |
//! | [`machine`] | pre-flight checks, building or taking the binary, the report's machine facts |
//! | [`suite`] | namespaces, scratch directories, test files, cleanup |
//! | [`groups`] | the six measurement groups (cases 1–6) |
//! | [`servers`] | server command lines and configs, started until they serve |
//! | [`procs`] | server processes in their own process groups, stopped by group |
//! | [`clients`] | curl/atftp/perfdhcp runs with limits and stall watching |
//! | [`probes`] | readiness probes (TFTP, HTTP, log) |
//! | [`dhcpburst`] | the 5c avalanche of PXE clients |
//! | [`http`] | a minimal HTTP GET for probes and the Range check |
//! | [`procstat`] | /proc parsing: memory, CPU, ports, drops, load |
//! | [`records`] / [`report`] | what was measured; verdicts and the markdown table |
//! | [`stop`] / [`clock`] | signals and `--max-minutes`; time stamps |
//!
//! Part of PortaPXE's benchmark suite (bench/), not of the product or its tests.

mod cli;
mod clients;
mod clock;
mod dhcpburst;
mod groups;
mod http;
mod machine;
mod probes;
mod procs;
mod procstat;
mod records;
mod report;
mod servers;
mod stop;
mod suite;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};

use crate::cli::{Args, GROUPS, Settings};
use crate::clock::log;
use crate::procstat::{load_average, load1};
use crate::report::{Heading, fmt_load};
use crate::suite::Suite;

fn main() -> ExitCode {
    let settings = match Args::parse().validated() {
        Ok(settings) => settings,
        Err(message) => Args::command().error(clap::error::ErrorKind::ValueValidation, message).exit(),
    };
    match run(settings) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::from(1)
        }
    }
}

/// Everything before the measurements can fail with a message (exit 1); after that the
/// run always reports, and an early stop is exit 2.
fn run(settings: Settings) -> Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("run as root (network namespaces, ports 67/69/80 inside them): sudo bench/run");
    }
    machine::check_tools(&settings.atftpd)?;
    let (built, provenance) = machine::portapxe_binary(settings.bin.as_deref())?;
    stop::install(settings.max_minutes)?;

    let mut suite = Suite::new(settings)?;
    // Run a private copy: another build replacing target/release/portapxe mid-run must
    // not change what is measured.
    let private = suite.work().join("portapxe");
    std::fs::copy(&built, &private).with_context(|| format!("cannot copy {built} to {}", private.display()))?;
    suite.bin = private.display().to_string();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let heading = Heading {
        date: clock::date_text("%Y-%m-%d %H:%M %Z"),
        command: std::iter::once("bench/run".to_owned()).chain(args).collect::<Vec<_>>().join(" "),
        machine: machine::machine_line(),
        portapxe: machine::portapxe_line(&suite.bin, &provenance),
        peers: machine::peers_line(&suite.s.atftpd),
        clients: machine::clients_line(),
        load_start: load_average(),
    };

    let outcome = measure(&mut suite);
    suite.cleanup();
    let (mut text, verdicts) =
        report::report(&suite.s, &heading, &suite.records, suite.delay_line.as_ref(), load_average());
    if let Err(error) = &outcome {
        text.push_str(&format!("\n- The suite stopped early: {error:#}\n"));
    }
    println!("{text}");
    if let Some(out) = &suite.s.out {
        std::fs::write(out, &text).with_context(|| format!("cannot write the report to {out}"))?;
    }
    Ok(match outcome {
        Err(_) => ExitCode::from(2),
        Ok(()) if verdicts.iter().any(|(_, _, verdict)| verdict.starts_with("MISS")) => ExitCode::from(1),
        Ok(()) => ExitCode::SUCCESS,
    })
}

/// The measurements. A group that fails is noted and the next one runs; a stop request
/// (signal, `--max-minutes`) or a failed set-up ends them all.
fn measure(suite: &mut Suite) -> Result<()> {
    log!("load average {}; portapxe {}", fmt_load(load_average()), suite.bin);
    suite.enter_main_netns()?;
    suite.make_files()?;
    let chosen: Vec<&str> = GROUPS.into_iter().filter(|g| suite.s.runs_group(g)).collect();
    for group in chosen {
        log!("== {group} (load {:.2})", load1());
        if let Err(error) = suite.run_group(group) {
            if stop::is_stop(&error) {
                return Err(error);
            }
            log!("  group {group} aborted: {error:#}");
            suite.records.note(group, format!("aborted: {error:#}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
