//! Real DHCP and TFTP clients run in a client namespace: busybox udhcpc, ISC
//! dhclient, tftp-hpa.
//!
//! Owns: their command lines, hook scripts and result files, and reading back the
//! lease they got. Every run is bounded; dhclient's daemon is stopped by the PID
//! in its pid file.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::netns::ClientNs;
use crate::process::{run_bounded, signal_pid, wait_until};

/// What a PXE client puts in its DISCOVER.
#[derive(Clone, Debug)]
pub struct PxeIdentity {
    /// Option 93 (client system architecture): 0 BIOS, 7 UEFI x64.
    pub arch: u16,
    /// Option 60.
    pub vendor_class: String,
    /// Option 77 exactly as sent (no length prefix added).
    pub user_class: Option<Vec<u8>>,
}

impl PxeIdentity {
    pub fn bios() -> Self {
        Self { arch: 0, vendor_class: "PXEClient:Arch:00000:UNDI:002001".into(), user_class: None }
    }

    pub fn uefi() -> Self {
        Self { arch: 7, vendor_class: "PXEClient:Arch:00007:UNDI:003016".into(), user_class: None }
    }

    /// UEFI HTTP boot firmware (x64 16, ARM64 19), as EDK2's HttpBootDxe identifies itself.
    pub fn http_boot(arch: u16) -> Self {
        Self { arch, vendor_class: format!("HTTPClient:Arch:{arch:05}:UNDI:003001"), user_class: None }
    }

    /// User class `iPXE` as iPXE sends it: raw bytes, not RFC 3004 length-prefixed.
    pub fn ipxe_raw(mut self) -> Self {
        self.user_class = Some(b"iPXE".to_vec());
        self
    }

    /// User class in RFC 3004 form: one length-prefixed entry `\x04iPXE`.
    pub fn ipxe_rfc3004(mut self) -> Self {
        self.user_class = Some(b"\x04iPXE".to_vec());
        self
    }
}

/// What a client got, as its hook script saw it.
#[derive(Clone, Debug)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// BOOTP `siaddr` (next server), when the client reports it.
    pub next_server: Option<Ipv4Addr>,
    /// BOOTP `file` header field.
    pub file_field: String,
    /// Option 67.
    pub bootfile_option: String,
    /// Option 60 in the answer (udhcpc reports it only when asked: `HTTPClient` identities).
    pub vendor_class: String,
    /// Everything the hook recorded.
    pub raw: BTreeMap<String, String>,
}

impl Lease {
    /// The boot file the client would use: option 67, else the `file` field.
    pub fn boot_file(&self) -> &str {
        if self.bootfile_option.is_empty() { &self.file_field } else { &self.bootfile_option }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_script(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn read_env(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("hook output {} missing", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect())
}

/// Run busybox udhcpc once (`-q -n`: quit after a lease, fail without one).
pub fn udhcpc(client: &ClientNs, who: &PxeIdentity, work: &Path) -> Result<Lease> {
    std::fs::create_dir_all(work)?;
    let tag = format!("udhcpc-{}-{}", client.ns, who.arch);
    let out = work.join(format!("{tag}.env"));
    let _ = std::fs::remove_file(&out);
    let hook = work.join(format!("{tag}.hook"));
    write_script(
        &hook,
        &format!(
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n\
             {{ echo \"ip=$ip\"; echo \"siaddr=$siaddr\"; echo \"boot_file=$boot_file\"; echo \"bootfile=$bootfile\"; \
             echo \"serverid=$serverid\"; echo \"mask=$mask\"; echo \"tftp=$tftp\"; echo \"vendor=$vendor\"; }} > {}.tmp && mv {0}.tmp {0}\n",
            out.display()
        ),
    )?;
    let mut command = client.command("udhcpc");
    command.args(["-i", client.interface(), "-f", "-q", "-n", "-t", "4", "-T", "2", "-s"]);
    command.arg(&hook);
    command.args(["-V", &who.vendor_class, "-x", &format!("0x5d:{:04x}", who.arch)]);
    if let Some(user_class) = &who.user_class {
        command.args(["-x", &format!("0x4d:{}", hex(user_class))]);
    }
    command.args(["-O", "bootfile", "-O", "tftp"]);
    // UEFI HTTP boot firmware needs option 60 `HTTPClient` in the answer: ask for it.
    if who.vendor_class.starts_with("HTTPClient") {
        command.args(["-O", "60"]);
    }
    let finished = run_bounded("udhcpc", &mut command, Duration::from_secs(30))?;
    if !finished.success() || !out.exists() {
        bail!("udhcpc ({who:?}, MAC {}) got no lease: {finished}", client.mac);
    }
    let raw = read_env(&out)?;
    lease_from(raw, "ip", "siaddr", "boot_file", "bootfile")
}

fn lease_from(raw: BTreeMap<String, String>, ip: &str, siaddr: &str, file: &str, option: &str) -> Result<Lease> {
    let get = |key: &str| raw.get(key).cloned().unwrap_or_default();
    let address = get(ip).parse().with_context(|| format!("client reported no address: {raw:?}"))?;
    Ok(Lease {
        address,
        next_server: get(siaddr).parse().ok(),
        file_field: get(file),
        bootfile_option: get(option),
        vendor_class: get("vendor"),
        raw,
    })
}

/// Run ISC dhclient once (`-1`); it daemonizes after a lease, and is then stopped by
/// the PID in its pid file.
pub fn dhclient(client: &ClientNs, who: &PxeIdentity, work: &Path) -> Result<Lease> {
    std::fs::create_dir_all(work)?;
    let tag = format!("dhclient-{}-{}", client.ns, who.arch);
    let out = work.join(format!("{tag}.env"));
    let _ = std::fs::remove_file(&out);
    let hook = work.join(format!("{tag}.hook"));
    let conf = work.join(format!("{tag}.conf"));
    let leases = work.join(format!("{tag}.leases"));
    let pidfile = work.join(format!("{tag}.pid"));
    let log = work.join(format!("{tag}.log"));
    // A fresh client every run: with no remembered lease it starts with DISCOVER; and
    // no stale pid file, whose PID could by now belong to someone else.
    let _ = std::fs::remove_file(&leases);
    let _ = std::fs::remove_file(&pidfile);
    write_script(
        &hook,
        &format!(
            "#!/bin/sh\ncase \"$reason\" in BOUND|RENEW|REBIND|REBOOT) env > {0}.tmp && mv {0}.tmp {0};; esac\nexit 0\n",
            out.display()
        ),
    )?;
    let mut config = format!(
        "timeout 20;\ninitial-interval 1;\n\
         option client-arch code 93 = unsigned integer 16;\n\
         send vendor-class-identifier \"{}\";\n\
         send client-arch {};\n",
        who.vendor_class, who.arch
    );
    if let Some(user_class) = &who.user_class {
        let bytes: Vec<String> = user_class.iter().map(|b| format!("{b:02x}")).collect();
        config.push_str(&format!("send user-class {};\n", bytes.join(":")));
    }
    config.push_str("request subnet-mask, broadcast-address, routers, bootfile-name, tftp-server-name;\n");
    std::fs::write(&conf, config)?;
    let log_file = std::fs::File::create(&log)?;
    let mut command = client.command("dhclient");
    command.args(["-4", "-1", "-v", "-cf"]).arg(&conf).arg("-sf").arg(&hook).arg("-lf").arg(&leases);
    command.arg("-pf").arg(&pidfile).arg(client.interface());
    command.stdout(log_file.try_clone()?).stderr(log_file);
    let mut child = crate::process::Guarded::spawn("dhclient", &mut command)?;
    let status = child.wait_timeout(Duration::from_secs(40));
    drop(child);
    stop_dhclient_daemon(&pidfile);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(status) if status.success() && out.exists() => {}
        other => bail!("dhclient ({who:?}, MAC {}) got no lease (exit {other:?}):\n{log_text}", client.mac),
    }
    let raw = read_env(&out)?;
    // dhclient hands siaddr to its script as `new_next_server`, the file field as `new_filename`.
    lease_from(raw, "new_ip_address", "new_next_server", "new_filename", "new_bootfile_name")
}

/// dhclient forks a daemon after a lease and writes its PID to `pidfile`: stop that one.
fn stop_dhclient_daemon(pidfile: &Path) {
    let Some(pid) = wait_until(Duration::from_secs(3), || {
        std::fs::read_to_string(pidfile).ok().and_then(|text| text.trim().parse::<u32>().ok())
    }) else {
        return; // no daemon (no lease)
    };
    signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
    let gone = wait_until(Duration::from_secs(5), || (!process_alive(pid)).then_some(()));
    if gone.is_none() {
        signal_pid(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Fetch `file` from `server` with tftp-hpa inside the client namespace (binary mode).
pub fn tftp_get(client: &ClientNs, server: Ipv4Addr, file: &str, work: &Path) -> Result<Vec<u8>> {
    let local: PathBuf = work.join(format!("tftp-{}", file.replace('/', "_")));
    let _ = std::fs::remove_file(&local);
    let mut command = client.command("tftp");
    command.args(["-m", "binary", &server.to_string(), "-c", "get", file]).arg(&local);
    let finished = run_bounded("tftp", &mut command, Duration::from_secs(30))?;
    let bytes = std::fs::read(&local).unwrap_or_default();
    if !finished.success() || bytes.is_empty() || finished.stderr.contains("Error") {
        bail!("tftp-hpa get {file} from {server} failed: {finished}");
    }
    Ok(bytes)
}

/// False once the process is gone or a zombie (its parent may never reap it).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()).is_some_and(|rest| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
