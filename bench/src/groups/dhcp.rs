//! Group `dhcp` (cases 5a–5c): between two namespaces joined by a veth pair, perfdhcp as a
//! relay with every exchange a new client (rate, unanswered DISCOVERs), then an avalanche
//! of `--clients` broadcasting PXE clients against a fresh server.

use std::time::Duration;

use anyhow::{Result, anyhow};
use portapxe_lab::netns::in_netns;
use portapxe_lab::process::run_ok;

use crate::clients::{run_captured_or_fail, tail};
use crate::clock::log;
use crate::dhcpburst;
use crate::procs::placed;
use crate::stop;
use crate::suite::Suite;

const SERVERS: [&str; 3] = ["portapxe", "kea", "dnsmasq"];
/// The client end of the veth pair, in the client namespace.
const CLIENT_IF: &str = "pxbc0";
/// How long the avalanche's clients may take to be bound.
const BURST_TIMEOUT: Duration = Duration::from_secs(10);

/// What perfdhcp reported.
#[derive(Debug, PartialEq)]
pub struct PerfdhcpStats {
    /// Completed 4-way exchanges per second.
    pub rate: f64,
    /// 1 − ACKs / DISCOVERs sent, in percent.
    pub drops_pct: f64,
}

impl Suite {
    pub fn dhcp(&mut self) -> Result<()> {
        let (server_ns, client_ns) = (format!("{}-dsrv", self.tag), format!("{}-dcli", self.tag));
        self.add_netns(&server_ns)?;
        self.add_netns(&client_ns)?;
        let veth =
            ["-n", &server_ns, "link", "add", "pxbs0", "type", "veth", "peer", "name", CLIENT_IF, "netns", &client_ns];
        run_ok("ip", &veth)?;
        run_ok("ip", &["-n", &server_ns, "addr", "add", "10.77.0.1/16", "dev", "pxbs0"])?;
        run_ok("ip", &["-n", &client_ns, "addr", "add", "10.77.0.2/16", "dev", CLIENT_IF])?;
        run_ok("ip", &["-n", &server_ns, "link", "set", "pxbs0", "up"])?;
        run_ok("ip", &["-n", &client_ns, "link", "set", CLIENT_IF, "up"])?;
        stop::sleep(Duration::from_millis(500))?;
        let mut bursts = 0u32;
        for round in 1..=self.s.runs {
            for server in SERVERS {
                // Rate: perfdhcp as a relay, every client new (a /16 pool, so no exhaustion).
                self.records.note_load("5a");
                let proc = self.dhcp_server(server, &server_ns)?;
                let (rate, seconds) = (self.s.dhcp_rate.to_string(), self.s.dhcp_seconds.to_string());
                let argv =
                    ["perfdhcp", "-4", "-l", "10.77.0.2", "-r", &rate, "-R", "65000", "-p", &seconds, "10.77.0.1"];
                let argv = placed(argv.map(String::from).to_vec(), Some(&client_ns), None);
                let done = run_captured_or_fail(&argv, Duration::from_secs(self.s.dhcp_seconds + 60))?;
                proc.stop();
                match parse_perfdhcp(&done.stdout) {
                    Some(stats) => {
                        self.records.record("5a", server, stats.rate);
                        self.records.record("5b", server, stats.drops_pct);
                        log!(
                            "  5a round {round} {server}: {:.0} DORA/s, {:.1} % of DISCOVERs without an ACK (offered {rate}/s)",
                            stats.rate,
                            stats.drops_pct
                        );
                    }
                    None => {
                        let reason = format!("perfdhcp: {} {}", tail(&done.stdout, 300), tail(&done.stderr, 300));
                        self.records.fail("5a", server, reason);
                    }
                }
                // Avalanche: 40 PXE clients at once, broadcast, fresh server.
                self.records.note_load("5c");
                let proc = self.dhcp_server(server, &server_ns)?;
                bursts += 1;
                let seed = std::process::id().wrapping_add(bursts);
                let count = u16::try_from(self.s.clients).map_err(|_| anyhow!("--clients is at most 200"))?;
                let burst =
                    in_netns(&client_ns, || dhcpburst::run(CLIENT_IF, count, BURST_TIMEOUT, seed)).and_then(|r| r);
                proc.stop();
                match burst {
                    Err(error) if stop::is_stop(&error) => return Err(error),
                    Err(error) => self.records.fail("5c", server, format!("dhcpburst: {error:#}")),
                    Ok(dhcpburst::BurstResult { all_bound_s: Some(all_bound), resends, .. }) => {
                        self.records.record("5c", server, all_bound);
                        if resends > 0 {
                            self.records.note("5c", format!("{server}: {resends} resends in a round"));
                        }
                        log!(
                            "  5c round {round} {server}: {} clients bound in {:.0} ms (resends {resends})",
                            self.s.clients,
                            all_bound * 1e3
                        );
                    }
                    Ok(unbound) => {
                        let reason = format!(
                            "dhcpburst: {} of {} bound within {} s, {} resends, {} NAKs",
                            unbound.bound,
                            unbound.count,
                            BURST_TIMEOUT.as_secs(),
                            unbound.resends,
                            unbound.naks
                        );
                        self.records.fail("5c", server, reason);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The rate and the share of DISCOVERs without an ACK from perfdhcp's report, or `None`
/// when the report is not there (perfdhcp failed).
pub fn parse_perfdhcp(text: &str) -> Option<PerfdhcpStats> {
    let rate = text.lines().find_map(|line| {
        let rest = &line[line.find("Rate: ")? + "Rate: ".len()..];
        let (number, unit) = rest.split_once(' ')?;
        unit.starts_with("4-way exchanges/second").then_some(number)?.parse::<f64>().ok()
    })?;
    let counts = |label: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|line| {
                let rest = &line[line.find(label)? + label.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    };
    let (sent, received) = (counts("sent packets: "), counts("received packets: "));
    if sent.len() < 2 || received.len() < 2 {
        return None;
    }
    // perfdhcp lists DISCOVER-OFFER first, then REQUEST-ACK.
    let (discovers, acks) = (sent[0], received[1]);
    let drops_pct = if discovers > 0 { 100.0 * (1.0 - acks as f64 / discovers as f64) } else { 100.0 };
    Some(PerfdhcpStats { rate, drops_pct })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
Running: perfdhcp -4 -l 10.77.0.2 -r 6000 -R 65000 -p 3 10.77.0.1
***Rate statistics***
Rate: 1999.46 4-way exchanges/second, expected rate: 6000

***Statistics for: DISCOVER-OFFER***
sent packets: 18000
received packets: 6100
drops: 11900

***Statistics for: REQUEST-ACK***
sent packets: 6100
received packets: 5998
drops: 102
";

    #[test]
    fn a_full_report_gives_rate_and_unanswered_share() {
        let stats = parse_perfdhcp(REPORT).expect("complete report");
        assert_eq!(stats.rate, 1999.46);
        assert!((stats.drops_pct - 100.0 * (1.0 - 5998.0 / 18000.0)).abs() < 1e-9);
    }

    #[test]
    fn no_discovers_sent_counts_as_all_unanswered() {
        let text = REPORT.replacen("sent packets: 18000", "sent packets: 0", 1);
        assert_eq!(parse_perfdhcp(&text).map(|s| s.drops_pct), Some(100.0));
    }

    #[test]
    fn incomplete_reports_give_none() {
        assert_eq!(parse_perfdhcp(""), None);
        assert_eq!(parse_perfdhcp("Error running perfdhcp: no such interface"), None);
        let no_ack_section = REPORT.split("***Statistics for: REQUEST-ACK***").next().unwrap_or_default();
        assert_eq!(parse_perfdhcp(no_ack_section), None);
        assert_eq!(parse_perfdhcp(&REPORT.replace("Rate: 1999.46", "Rate: fast")), None);
        assert_eq!(parse_perfdhcp(&REPORT.replace("4-way exchanges/second", "per second")), None);
    }
}
