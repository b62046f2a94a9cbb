//! The servers measured: PortaPXE and its peers, each with the command line and config the
//! suite gives it, started and waited for until it serves.
//!
//! Owns: server command lines, nginx's and Kea's config files, readiness per protocol.
//! Must not touch: Debian's packaged services or their configs (each server runs in the
//! foreground with a config of ours).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::probes::{http_ready, log_ready, remote_tftp_ready, tftp_ready};
use crate::procs::{Launch, Proc};
use crate::stop;
use crate::suite::Suite;

/// How much of a failed server's log goes into the error.
const LOG_TAIL: usize = 800;

/// Where a TFTP server runs: on the main namespace's loopback, or behind the delay line.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub host: Ipv4Addr,
    pub netns: Option<&'a str>,
    pub cpu: Option<u32>,
}

impl Place<'_> {
    pub const LOOPBACK: Place<'static> = Place { host: Ipv4Addr::LOCALHOST, netns: None, cpu: None };
}

impl Suite {
    /// `portapxe serve` on `interface` in `mode`, TFTP on 69 and HTTP on 80.
    pub fn portapxe(&self, name: &str, interface: &str, mode: &str, place: Place, extra: &[String]) -> Result<Proc> {
        let root = self.root.display().to_string();
        let mut argv = vec![self.bin.as_str(), "serve", "--mode", mode, "--interface", interface, "--root", &root];
        argv.extend(["--tftp-port", "69", "--http-port", "80"]);
        argv.extend(extra.iter().map(String::as_str));
        Launch::new(&argv).netns(place.netns).cpu(place.cpu).start(&self.logs.join(format!("{name}.log")))
    }

    /// A peer TFTP server's command line. `tuned` raises the concurrent-transfer limits
    /// (atftpd `--maxthread`, dnsmasq `--tftp-max`) for the measurements; the start-up
    /// case runs the defaults.
    fn peer_tftp_argv(&self, server: &str, host: Ipv4Addr, tuned: bool) -> Result<Vec<String>> {
        let root = self.root.display().to_string();
        let mut argv: Vec<String> = match server {
            "tftpd-hpa" => ["in.tftpd", "-L", "-4", "-u", "nobody", "-s", &root].map(String::from).to_vec(),
            "atftpd" => {
                let mut argv = vec![self.s.atftpd.clone()];
                argv.extend(["--daemon", "--no-fork", "--port", "69", "--bind-address"].map(String::from));
                argv.push(host.to_string());
                argv.extend(["--logfile", "-", "--user", "nobody", "--group", "nogroup"].map(String::from));
                if tuned {
                    argv.extend(["--maxthread".to_owned(), "200".to_owned()]);
                }
                argv
            }
            "dnsmasq" => {
                let mut argv: Vec<String> = DNSMASQ_BASE.map(String::from).to_vec();
                argv.extend([format!("--listen-address={host}"), "--bind-interfaces".into()]);
                argv.extend(["--enable-tftp".into(), format!("--tftp-root={root}")]);
                if tuned {
                    argv.push("--tftp-max=200".into());
                }
                argv
            }
            other => bail!("no TFTP server called {other:?}"),
        };
        if server == "atftpd" {
            argv.push(root);
        }
        Ok(argv)
    }

    /// Start `server` at `place` and wait until it serves `ready.txt` over TFTP (from the
    /// relay client namespace when it runs behind the delay line).
    pub fn tftp_server(&self, server: &str, place: Place) -> Result<Proc> {
        let mut proc = if server == "portapxe" {
            let interface = if place.netns.is_none() { "lo" } else { "pxbr1" };
            self.portapxe("portapxe-tftp", interface, "off", place, &[])?
        } else {
            let argv = self.peer_tftp_argv(server, place.host, true)?;
            Launch::new(&argv).netns(place.netns).cpu(place.cpu).start(&self.logs.join(format!("tftp-{server}.log")))?
        };
        let ready = match (place.netns, &self.relay_client_ns) {
            (Some(_), Some(client_ns)) => remote_tftp_ready(client_ns, place.host)?,
            _ => tftp_ready(place.host, &mut proc)?,
        };
        if !ready {
            let text = proc.log_tail(LOG_TAIL);
            proc.stop();
            bail!("{server} did not start serving TFTP: {text}");
        }
        Ok(proc)
    }

    /// Start a peer TFTP server without waiting (the start-up case times the wait itself).
    pub fn tftp_server_nowait(&self, server: &str) -> Result<Proc> {
        let argv = self.peer_tftp_argv(server, Ipv4Addr::LOCALHOST, false)?;
        Launch::new(&argv).start(&self.logs.join(format!("startup-{server}.log")))
    }

    /// Start `server` on 127.0.0.1:80 and wait until it serves `ready.txt`.
    pub fn http_server(&self, server: &str) -> Result<Proc> {
        let mut proc = match server {
            "portapxe" => self.portapxe("portapxe-http", "lo", "off", Place::LOOPBACK, &[])?,
            "nginx" => {
                self.nginx_conf()?;
                self.nginx_proc("nginx")?
            }
            other => bail!("no HTTP server called {other:?}"),
        };
        if !http_ready(Ipv4Addr::LOCALHOST, &mut proc)? {
            let text = proc.log_tail(LOG_TAIL);
            proc.stop();
            bail!("{server} did not start serving HTTP: {text}");
        }
        Ok(proc)
    }

    /// nginx as a plain static server of the root: sendfile, no access log, all CPUs.
    pub fn nginx_conf(&self) -> Result<()> {
        let dir = self.work().join("nginx");
        std::fs::create_dir_all(&dir)?;
        let (d, root) = (dir.display(), self.root.display());
        let conf = format!(
            "
daemon off;
master_process on;
worker_processes auto;
user nobody nogroup;
pid {d}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:80; root {root}; }}
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        Ok(())
    }

    pub fn nginx_proc(&self, name: &str) -> Result<Proc> {
        let dir = self.work().join("nginx");
        let (prefix, conf) = (dir.display().to_string(), dir.join("nginx.conf").display().to_string());
        Launch::new(&["nginx", "-p", &prefix, "-c", &conf, "-e", "stderr"])
            .start(&self.logs.join(format!("{name}.log")))
    }

    /// Start a DHCP `server` on `pxbs0` in the DHCP server namespace, with fresh state on
    /// disk, and wait until its log says it serves.
    pub fn dhcp_server(&self, server: &str, ns: &str) -> Result<Proc> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let state = self.disk().join(format!("{server}-{}", stamp.as_nanos()));
        std::fs::create_dir(&state)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let (mut proc, needle) = match server {
            "portapxe" => {
                let extra = ["--pool", "10.77.1.1-10.77.255.254", "--state-dir", &state.display().to_string()]
                    .map(String::from);
                let place = Place { host: Ipv4Addr::UNSPECIFIED, netns: Some(ns), cpu: None };
                (self.portapxe("portapxe-dhcp", "pxbs0", "dhcp", place, &extra)?, "DHCP serving pool")
            }
            "kea" => (self.kea(&state, ns)?, "DHCP4_STARTED"),
            "dnsmasq" => {
                // dnsmasq writes its lease file as nobody.
                std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
                let mut argv: Vec<String> = DNSMASQ_BASE.map(String::from).to_vec();
                argv.extend(["--interface=pxbs0", "--bind-interfaces"].map(String::from));
                argv.extend(
                    ["--dhcp-range=10.77.1.1,10.77.255.254,255.255.0.0,1h", "--dhcp-lease-max=70000"].map(String::from),
                );
                argv.extend([
                    "--no-ping".into(),
                    format!("--dhcp-leasefile={}", state.join("dnsmasq.leases").display()),
                ]);
                argv.push("--quiet-dhcp".into());
                (Launch::new(&argv).netns(Some(ns)).start(&self.logs.join("dnsmasq-dhcp.log"))?, "DHCP, IP range")
            }
            other => bail!("no DHCP server called {other:?}"),
        };
        if !log_ready(&mut proc, needle, deadline)? {
            let text = proc.log_tail(LOG_TAIL);
            proc.stop();
            bail!("{server} did not start DHCP: {text}");
        }
        stop::sleep(Duration::from_millis(200))?;
        Ok(proc)
    }

    /// kea-dhcp4 with raw sockets and a persisted memfile, its lock and pid files in `state`.
    fn kea(&self, state: &Path, ns: &str) -> Result<Proc> {
        let config = serde_json::json!({"Dhcp4": {
            "interfaces-config": {"interfaces": ["pxbs0"], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": true,
                               "name": state.join("kea-leases.csv").display().to_string(), "lfc-interval": 0},
            "valid-lifetime": 3600,
            "subnet4": [{"id": 1, "subnet": "10.77.0.0/16", "pools": [{"pool": "10.77.1.1 - 10.77.255.254"}]}],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
        }});
        let conf = state.join("kea.json");
        std::fs::write(&conf, config.to_string())?;
        let state_text = state.display().to_string();
        Launch::new(&["kea-dhcp4".to_owned(), "-c".to_owned(), conf.display().to_string()])
            .netns(Some(ns))
            .env("KEA_LOCKFILE_DIR", &state_text)
            .env("KEA_PIDFILE_DIR", &state_text)
            .start(&self.logs.join("kea.log"))
    }
}

/// dnsmasq in the foreground with no config file, no DNS and no pid file, as nobody.
const DNSMASQ_BASE: [&str; 7] = [
    "dnsmasq",
    "--keep-in-foreground",
    "--log-facility=-",
    "--conf-file=/dev/null",
    "--port=0",
    "--user=nobody",
    "--pid-file=",
];
