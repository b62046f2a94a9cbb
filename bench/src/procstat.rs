//! What the kernel says about processes and sockets: memory, CPU time, bound ports,
//! receive-buffer drops, load average.
//!
//! Owns: reading /proc files and parsing their text. Every parser takes the text and
//! returns `None` (or skips the line) on anything unexpected; none of them panics.
//! The readers see the network namespace of the calling thread.

use std::collections::BTreeSet;

use portapxe_lab::process::group_pids;

/// A `/proc/PID/status` field in bytes (`VmRSS`, `VmHWM`), or `None`.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    status_field_bytes(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?, field)
}

fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User + system CPU of a process and of the children it has reaped, or `None`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let ticks = stat_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// utime + stime + cutime + cstime (fields 14-17 of proc(5)), counted after the
/// command name's last `)` because the name may hold spaces and parentheses.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Index 0 here is field 3 (state), so fields 14-17 are 11..15.
    fields.get(11..15)?.iter().map(|v| v.parse::<u64>().ok()).sum()
}

fn clock_ticks_per_second() -> f64 {
    use nix::unistd::{SysconfVar, sysconf};
    // 100 is what Linux reports everywhere; the call only guards against an odd kernel.
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(ticks)) if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}

/// User + system CPU of every child this process has reaped so far.
pub fn children_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_CHILDREN) else { return 0.0 };
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// Resident memory of every process in group `pgid`, in bytes.
pub fn group_rss(pgid: u32) -> u64 {
    group_pids(pgid).into_iter().filter_map(|pid| status_bytes(pid, "VmRSS")).sum()
}

/// Datagrams this network namespace dropped because a socket's receive buffer was full.
pub fn udp_rcvbuf_errors() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp")?;
    snmp_udp_counter(&text, "RcvbufErrors")
        .ok_or_else(|| anyhow::anyhow!("/proc/net/snmp has no Udp RcvbufErrors counter; is this Linux?"))
}

/// A counter of the `Udp:` rows of /proc/net/snmp (a header row, then a value row).
fn snmp_udp_counter(snmp: &str, name: &str) -> Option<u64> {
    let mut rows = snmp.lines().filter(|line| line.starts_with("Udp:")).map(|line| line.split_whitespace());
    let column = rows.next()?.position(|header| header == name)?;
    rows.next()?.nth(column)?.parse().ok()
}

/// UDP ports bound and TCP ports listening in this network namespace (IPv4).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BoundPorts {
    pub udp: BTreeSet<u16>,
    pub tcp: BTreeSet<u16>,
}

impl BoundPorts {
    pub fn read() -> Self {
        let read = |path| std::fs::read_to_string(path).unwrap_or_default();
        Self { udp: socket_ports(&read("/proc/net/udp"), false), tcp: socket_ports(&read("/proc/net/tcp"), true) }
    }
}

/// Local ports of a /proc/net/{udp,tcp} table; `listening_only` keeps state 0A (LISTEN).
fn socket_ports(table: &str, listening_only: bool) -> BTreeSet<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if listening_only && parts.get(3) != Some(&"0A") {
                return None;
            }
            let port = parts.get(1)?.rsplit_once(':')?.1;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// The 1, 5 and 15 minute load averages (zeros if /proc/loadavg cannot be read).
pub fn load_average() -> [f64; 3] {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default()).unwrap_or([0.0; 3])
}

pub fn load1() -> f64 {
    load_average()[0]
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut values = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([values.next()??, values.next()??, values.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status = "Name:\tportapxe\nVmHWM:\t   10240 kB\nVmRSS:\t    8000 kB\nVmRSSx:\t1 kB\n";
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(10_485_760));
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(8_192_000));
        assert_eq!(status_field_bytes(status, "VmSwap"), None);
        assert_eq!(status_field_bytes("VmRSS:\n", "VmRSS"), None);
        assert_eq!(status_field_bytes("VmRSS: lots kB", "VmRSS"), None);
    }

    #[test]
    fn cpu_ticks_sum_the_four_fields_after_the_name() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0";
        assert_eq!(stat_cpu_ticks(stat), Some(13));
        assert_eq!(stat_cpu_ticks("42 (x) S 1 42"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
        assert_eq!(stat_cpu_ticks("42 (x) S 1 42 42 0 -1 0 0 0 0 0 a 3 2 1"), None);
    }

    #[test]
    fn snmp_counter_is_found_by_column_name() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 100 2 3 90 17 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(snmp_udp_counter(snmp, "RcvbufErrors"), Some(17));
        assert_eq!(snmp_udp_counter(snmp, "Missing"), None);
        assert_eq!(snmp_udp_counter("Udp: InDatagrams RcvbufErrors\n", "RcvbufErrors"), None);
        assert_eq!(snmp_udp_counter("", "RcvbufErrors"), None);
    }

    #[test]
    fn ports_come_from_the_local_address_column() {
        let udp = "  sl  local_address rem_address   st\n   0: 0100007F:0045 00000000:0000 07 0\n   1: garbage\n";
        assert_eq!(socket_ports(udp, false), BTreeSet::from([69]));
        let tcp = "  sl  local_address rem_address   st\n\
                   0: 0100007F:0050 00000000:0000 0A\n\
                   1: 0100007F:D431 0100007F:0050 01\n";
        assert_eq!(socket_ports(tcp, true), BTreeSet::from([80]));
        assert!(socket_ports("", true).is_empty());
    }

    #[test]
    fn loadavg_needs_three_numbers() {
        assert_eq!(parse_loadavg("0.50 1.25 2.00 1/123 4567\n"), Some([0.5, 1.25, 2.0]));
        assert_eq!(parse_loadavg("0.50 1.25"), None);
        assert_eq!(parse_loadavg("a b c"), None);
    }
}
