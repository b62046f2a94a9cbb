//! Group `startup` (cases 6a–6b): time from launch until the TFTP (and HTTP) ports are
//! bound, and the memory of the whole process group after `--idle-seconds` idle.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::clock::log;
use crate::procstat::{BoundPorts, group_rss};
use crate::report::py_float;
use crate::servers::Place;
use crate::stop;
use crate::suite::{MB, Suite};

/// Each server and the ports (UDP, TCP) it must have bound to count as started.
const SERVERS: [(&str, &[u16], &[u16]); 5] = [
    ("portapxe", &[69], &[80]),
    ("dnsmasq", &[69], &[]),
    ("tftpd-hpa", &[69], &[]),
    ("atftpd", &[69], &[]),
    ("nginx", &[], &[80]),
];

impl Suite {
    pub fn startup(&mut self) -> Result<()> {
        for round in 1..=self.s.runs {
            for (server, udp_want, tcp_want) in SERVERS {
                let (udp_want, tcp_want): (BTreeSet<u16>, BTreeSet<u16>) =
                    (udp_want.iter().copied().collect(), tcp_want.iter().copied().collect());
                let before = BoundPorts::read();
                if !before.udp.is_disjoint(&udp_want) || !before.tcp.is_disjoint(&tcp_want) {
                    bail!(
                        "ports still bound before starting {server}: udp {:?} tcp {:?}; a server of the previous round \
                         did not stop",
                        before.udp,
                        before.tcp
                    );
                }
                self.records.note_load("6a");
                if server == "nginx" {
                    self.nginx_conf()?;
                }
                let started = Instant::now();
                let proc = match server {
                    "portapxe" => self.portapxe("portapxe-startup", "lo", "off", Place::LOOPBACK, &[])?,
                    "nginx" => self.nginx_proc("startup-nginx")?,
                    peer => self.tftp_server_nowait(peer)?,
                };
                let mut bound = None;
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let now = BoundPorts::read();
                    if udp_want.is_subset(&now.udp) && tcp_want.is_subset(&now.tcp) {
                        bound = Some(started.elapsed().as_secs_f64());
                        break;
                    }
                    stop::check()?;
                    std::thread::sleep(Duration::from_micros(500));
                }
                stop::sleep(Duration::from_secs_f64(self.s.idle_seconds))?;
                let rss = group_rss(proc.pid());
                proc.stop();
                let Some(bound) = bound else {
                    self.records.fail("6a", server, "ports not bound within 10 s".to_owned());
                    continue;
                };
                self.records.record("6a", server, bound * 1e3);
                self.records.record("6b", server, rss as f64 / MB);
                log!(
                    "  6 round {round} {server}: bound after {:.1} ms, RSS {:.1} MB after {} s idle",
                    bound * 1e3,
                    rss as f64 / MB,
                    py_float(self.s.idle_seconds)
                );
            }
        }
        Ok(())
    }
}
