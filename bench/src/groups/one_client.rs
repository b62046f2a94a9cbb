//! Group `tftp1` (cases 1a–1i): one TFTP client on loopback, server and client pinned
//! to CPU 0, block sizes and windows; stalls and receive-buffer drops noted.

use std::time::Duration;

use anyhow::Result;

use crate::clients::{TftpClient, TftpGet, run_watching};
use crate::clock::log;
use crate::procstat::udp_rcvbuf_errors;
use crate::records::median;
use crate::report::STALL_SECONDS;
use crate::servers::Place;
use crate::suite::{MB, Suite};

const SERVERS: [&str; 4] = ["portapxe", "tftpd-hpa", "atftpd", "dnsmasq"];
/// Only these implement the windowsize option (RFC 7440).
const WINDOW_SERVERS: [&str; 2] = ["portapxe", "atftpd"];

/// One case: its id, the client with its block size and window, who serves it, which file.
type Case = (&'static str, TftpClient, u32, u32, &'static [&'static str], &'static str);

/// The big-block window cases use a smaller file and a short time limit: a stalled
/// transfer waits a resend timeout per window and would otherwise run for many minutes.
const CASES: [Case; 9] = {
    use TftpClient::{Atftp, Curl};
    [
        ("1a", Curl, 512, 1, &SERVERS, "single.bin"),
        ("1b", Curl, 1468, 1, &SERVERS, "single.bin"),
        ("1c", Curl, 65464, 1, &SERVERS, "single.bin"),
        ("1d", Atftp, 1468, 16, &WINDOW_SERVERS, "single.bin"),
        ("1e", Atftp, 1468, 64, &WINDOW_SERVERS, "single.bin"),
        ("1f", Atftp, 8192, 16, &WINDOW_SERVERS, "window.bin"),
        ("1g", Atftp, 8192, 64, &WINDOW_SERVERS, "window.bin"),
        ("1h", Atftp, 65464, 16, &WINDOW_SERVERS, "window.bin"),
        ("1i", Atftp, 65464, 64, &WINDOW_SERVERS, "window.bin"),
    ]
};

impl Suite {
    pub fn tftp_single(&mut self) -> Result<()> {
        let pinned = Place { cpu: Some(0), ..Place::LOOPBACK };
        let chosen: Vec<Case> = CASES.into_iter().filter(|case| self.s.runs_case(case.0)).collect();
        for (id, client, blksize, window, servers, file) in chosen {
            let size = self.size(file);
            let limit = if file == "single.bin" { self.s.client_timeout } else { self.s.window_timeout };
            for round in 1..=self.s.runs {
                for &server in servers {
                    self.records.note_load(id);
                    let proc = self.tftp_server(server, pinned)?;
                    let dest = self.out.join("single.out");
                    let _ = std::fs::remove_file(&dest);
                    let get = TftpGet {
                        client,
                        blksize,
                        window,
                        name: file,
                        dest: &dest,
                        host: "127.0.0.1",
                        netns: None,
                        cpu: Some(0),
                        timeout: self.s.client_timeout,
                    };
                    let drops_before = udp_rcvbuf_errors()?;
                    let watched = run_watching(&get.argv(), &dest, Duration::from_secs(limit))?;
                    let drops = udp_rcvbuf_errors()?.saturating_sub(drops_before);
                    proc.stop();
                    let error = watched.error.or_else(|| self.check_file(&dest, file));
                    let _ = std::fs::remove_file(&dest);
                    self.records.record(&format!("{id}-drops"), server, drops as f64);
                    self.records.record(&format!("{id}-pause"), server, watched.longest_pause);
                    match (error, watched.seconds) {
                        (None, Some(seconds)) => {
                            let rate = size as f64 / seconds / MB;
                            self.records.record(id, server, rate);
                            log!(
                                "  {id} round {round} {server}: {rate:.1} MB/s ({seconds:.2} s), longest pause {:.2} s, \
                                 {drops} receive-buffer drops",
                                watched.longest_pause
                            );
                        }
                        (error, _) => {
                            let error = error.unwrap_or_default();
                            let reason = format!("{error}; {drops} datagrams dropped at a full receive buffer");
                            self.records.fail(id, server, reason);
                        }
                    }
                }
            }
            self.note_drops_and_stalls(id);
        }
        Ok(())
    }

    fn note_drops_and_stalls(&mut self, case: &str) {
        let results = &self.records.results;
        let per_server = |suffix: &str| -> Vec<(String, Vec<f64>)> {
            let by_server = results.get(&format!("{case}-{suffix}"));
            by_server.map(|b| b.iter().map(|(s, v)| (s.to_owned(), v.clone())).collect()).unwrap_or_default()
        };
        let drops: Vec<(String, u64)> = per_server("drops").into_iter().map(|(s, v)| (s, median(&v) as u64)).collect();
        let pauses: Vec<(String, f64)> = per_server("pause")
            .into_iter()
            .map(|(s, v)| (s, v.iter().copied().fold(f64::NEG_INFINITY, f64::max)))
            .collect();
        if drops.iter().any(|(_, d)| *d > 0) {
            let listed: Vec<String> = drops.iter().map(|(s, d)| format!("{s} {d}")).collect();
            let text =
                format!("UDP datagrams dropped at a full receive buffer per transfer (median): {}", listed.join(", "));
            self.records.note(case, text);
        }
        if pauses.iter().any(|(_, p)| *p >= STALL_SECONDS) {
            let listed: Vec<String> = pauses.iter().map(|(s, p)| format!("{s} {p:.1} s")).collect();
            let text = format!("longest pause without progress (stall ≥ {STALL_SECONDS} s): {}", listed.join(", "));
            self.records.note(case, text);
        }
    }
}
