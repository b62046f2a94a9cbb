//! Group `http` (cases 4a–4c): Range requests checked against the file, then one curl
//! download and `--clients` at once, each from its own loopback address.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::clients::{Client, run_captured_or_fail};
use crate::clock::log;
use crate::http::get;
use crate::procstat::status_bytes;
use crate::suite::{MB, MIB, Suite};

const SERVERS: [&str; 2] = ["portapxe", "nginx"];

impl Suite {
    pub fn http(&mut self) -> Result<()> {
        let size = self.size("http.bin");
        for server in SERVERS {
            let proc = self.http_server(server)?;
            let problems = check_ranges(&self.root.join("http.bin"));
            proc.stop();
            let problems = problems?;
            if problems.is_empty() {
                self.records.record("4c", server, 1.0);
                log!("  4c {server}: Range requests all right");
            } else {
                self.records.fail("4c", server, problems.join("; "));
            }
        }
        let timeout = self.s.client_timeout;
        let curl = |interface: Option<String>| -> Vec<String> {
            let mut argv = vec!["curl".to_owned()];
            if let Some(interface) = interface {
                argv.extend(["--interface".to_owned(), interface]);
            }
            argv.extend(["-sS", "-o", "/dev/null", "--max-time"].map(String::from));
            argv.push(timeout.to_string());
            argv.extend(["-w", "%{http_code} %{size_download}", "http://127.0.0.1/http.bin"].map(String::from));
            argv
        };
        let want = format!("200 {size}");
        let client_limit = Duration::from_secs(timeout + 10);
        for round in 1..=self.s.runs {
            for server in SERVERS {
                self.records.note_load("4a");
                let proc = self.http_server(server)?;
                let started = Instant::now();
                let done = run_captured_or_fail(&curl(None), client_limit)?;
                let seconds = started.elapsed().as_secs_f64();
                if done.stdout.trim() == want {
                    let rate = size as f64 / seconds / MB;
                    self.records.record("4a", server, rate);
                    log!("  4a round {round} {server}: {rate:.0} MB/s");
                } else {
                    let stderr: String = done.stderr.trim().chars().take(200).collect();
                    self.records.fail("4a", server, format!("curl: {} {stderr}", done.stdout.trim()));
                }
                proc.stop();
            }
            for server in SERVERS {
                self.records.note_load("4b");
                let proc = self.http_server(server)?;
                let started = Instant::now();
                // Each client from its own loopback address, as 40 machines would be:
                // PortaPXE admits 16 connections per client address (http/admission).
                let mut clients = Vec::new();
                for i in 0..self.s.clients {
                    let address = format!("127.0.{}.{}", i / 250, i % 250 + 2);
                    clients.push(Client::spawn(&curl(Some(address)), true)?);
                }
                let mut outputs = Vec::new();
                for client in &mut clients {
                    match client.wait_until(Instant::now() + client_limit)? {
                        Some(_) => outputs.push(client.stdout().trim().to_owned()),
                        None => {
                            client.kill();
                            outputs.push("timeout".to_owned());
                        }
                    }
                }
                let seconds = started.elapsed().as_secs_f64();
                drop(clients);
                let hwm = if server == "portapxe" { status_bytes(proc.pid(), "VmHWM") } else { None };
                proc.stop();
                let bad: Vec<&String> = outputs.iter().filter(|o| **o != want).collect();
                let n = self.s.clients;
                if bad.is_empty() {
                    let rate = f64::from(n) * size as f64 / seconds / MB;
                    self.records.record("4b", server, rate);
                    let hwm_text = hwm.filter(|h| *h > 0).map(|h| format!(", VmHWM {:.1} MB", h as f64 / MB));
                    log!(
                        "  4b round {round} {server}: {n} clients {rate:.0} MB/s total ({seconds:.2} s){}",
                        hwm_text.unwrap_or_default()
                    );
                } else {
                    let first: Vec<&&String> = bad.iter().take(3).collect();
                    self.records.fail("4b", server, format!("{} of {n} transfers wrong: {first:?}", bad.len()));
                }
            }
        }
        Ok(())
    }
}

/// Five single ranges must give 206, the right Content-Range and the file's bytes; a
/// range past the end must give 416. Returns what was wrong (empty: all right).
fn check_ranges(path: &Path) -> Result<Vec<String>> {
    let size = std::fs::metadata(path)?.len();
    let mut file = File::open(path)?;
    let to = SocketAddr::from(([127, 0, 0, 1], 80));
    let timeout = Duration::from_secs(10);
    let mut problems = Vec::new();
    for (header, start, end) in range_cases(size) {
        let reply = get(to, "/http.bin", &[("Range", &header)], timeout)?;
        let want_range = format!("bytes {start}-{}/{size}", end - 1);
        let mut expected = vec![0u8; usize::try_from(end - start)?];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut expected)?;
        if reply.status != 206 {
            problems.push(format!("{header}: status {}", reply.status));
        } else if reply.header("Content-Range") != Some(want_range.as_str()) {
            problems.push(format!("{header}: Content-Range {:?}, want {want_range:?}", reply.header("Content-Range")));
        } else if reply.body != expected {
            problems.push(format!("{header}: {} bytes, not bytes {start}-{} of the file", reply.body.len(), end - 1));
        }
    }
    let past_end = format!("bytes={}-", size + 10);
    let reply = get(to, "/http.bin", &[("Range", &past_end)], timeout)?;
    if reply.status != 416 {
        problems.push(format!("range past the end: status {}, want 416", reply.status));
    }
    Ok(problems)
}

/// (Range header, first byte, end) for: the first byte, a middle range, a suffix, an open
/// end, 1 MiB in the middle. `size` is at least a few MiB (the HTTP file).
fn range_cases(size: u64) -> [(String, u64, u64); 5] {
    let half = size / 2;
    [
        ("bytes=0-0".to_owned(), 0, 1),
        ("bytes=1000-1999".to_owned(), 1000, 2000),
        ("bytes=-4096".to_owned(), size.saturating_sub(4096), size),
        (format!("bytes={}-", size.saturating_sub(10_000)), size.saturating_sub(10_000), size),
        (format!("bytes={half}-{}", half + MIB - 1), half, half + MIB),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_start_middle_suffix_open_end_and_a_mebibyte() {
        let cases = range_cases(64 * MIB);
        let headers: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            headers,
            ["bytes=0-0", "bytes=1000-1999", "bytes=-4096", "bytes=67098864-", "bytes=33554432-34603007"]
        );
        assert_eq!((cases[2].1, cases[2].2), (64 * MIB - 4096, 64 * MIB));
        assert_eq!(cases[4].2 - cases[4].1, MIB);
    }
}
