//! Group `multi` (cases 3a–3d): `--clients` curl TFTP downloads started together on
//! loopback; wall time, server peak memory, server CPU and the clients' CPU.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::clients::{Client, TftpClient, TftpGet, exit_text, head};
use crate::clock::log;
use crate::procstat::{children_cpu_seconds, cpu_seconds, status_bytes};
use crate::servers::Place;
use crate::suite::{MB, Suite};

const SERVERS: [&str; 4] = ["portapxe", "tftpd-hpa", "atftpd", "dnsmasq"];

impl Suite {
    pub fn tftp_multi(&mut self) -> Result<()> {
        let n = self.s.clients;
        for round in 1..=self.s.runs {
            for server in SERVERS {
                self.records.note_load("3a");
                let proc = self.tftp_server(server, Place::LOOPBACK)?;
                let dests: Vec<_> = (0..n).map(|i| self.out.join(format!("multi{i}.out"))).collect();
                for dest in &dests {
                    let _ = std::fs::remove_file(dest);
                }
                let cpu_before = cpu_seconds(proc.pid());
                let clients_cpu_before = children_cpu_seconds();
                let started = Instant::now();
                let mut clients = Vec::with_capacity(dests.len());
                for dest in &dests {
                    let get = TftpGet {
                        client: TftpClient::Curl,
                        blksize: 1468,
                        window: 1,
                        name: "multi.bin",
                        dest,
                        host: "127.0.0.1",
                        netns: None,
                        cpu: None,
                        timeout: self.s.client_timeout,
                    };
                    clients.push(Client::spawn(&get.argv(), false)?);
                }
                let mut errors = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(self.s.client_timeout);
                for client in &mut clients {
                    // Every client gets at least 0.1 s, as a late one may just be finishing.
                    let deadline = deadline.max(Instant::now() + Duration::from_millis(100));
                    match client.wait_until(deadline)? {
                        Some(status) if status.success() => {}
                        Some(status) => {
                            errors.push(format!("client {}: {}", exit_text(status), head(&client.stderr(), 120)))
                        }
                        None => {
                            client.kill();
                            errors.push(format!("client not done after {} s", self.s.client_timeout));
                        }
                    }
                }
                let seconds = started.elapsed().as_secs_f64();
                let clients_cpu = children_cpu_seconds() - clients_cpu_before;
                let cpu_after = cpu_seconds(proc.pid());
                // tftpd-hpa serves each transfer in a forked process that it has not
                // reaped by then, so its CPU time cannot be read off the server.
                let server_cpu = match (cpu_before, cpu_after) {
                    (Some(before), Some(after)) if server != "tftpd-hpa" => Some(after - before),
                    _ => None,
                };
                drop(clients);
                let hwm = ["portapxe", "atftpd", "dnsmasq"]
                    .contains(&server)
                    .then(|| status_bytes(proc.pid(), "VmHWM"))
                    .flatten();
                proc.stop();
                let bad: Vec<String> = dests.iter().filter_map(|d| self.check_file(d, "multi.bin")).collect();
                for dest in &dests {
                    let _ = std::fs::remove_file(dest);
                }
                if !errors.is_empty() || !bad.is_empty() {
                    let first: Vec<&String> = errors.iter().chain(&bad).take(3).collect();
                    let shown: Vec<&str> = first.iter().map(|s| s.as_str()).collect();
                    let reason =
                        format!("{} client errors, {} files wrong: {}", errors.len(), bad.len(), shown.join("; "));
                    self.records.fail("3a", server, reason);
                    continue;
                }
                self.records.record("3a", server, seconds);
                if let Some(hwm) = hwm {
                    self.records.record("3b", server, hwm as f64 / MB);
                }
                if let Some(cpu) = server_cpu {
                    self.records.record("3c", server, cpu);
                }
                self.records.record("3d", server, clients_cpu);
                let hwm_text = hwm.filter(|h| *h > 0).map(|h| format!(", server VmHWM {:.1} MB", h as f64 / MB));
                let cpu_text = server_cpu.map(|c| format!(", server CPU {c:.2} s"));
                log!(
                    "  3a round {round} {server}: {n} clients in {seconds:.2} s, all byte-exact{}{}, clients' CPU {clients_cpu:.2} s",
                    hwm_text.unwrap_or_default(),
                    cpu_text.unwrap_or_default()
                );
            }
        }
        Ok(())
    }
}
