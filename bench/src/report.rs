//! The report: the case list with units and targets, number formatting, the verdicts and
//! the markdown table.
//!
//! Owns: turning [`Records`] into text. Pure: nothing here measures or starts anything.

use crate::cli::Settings;
use crate::records::{ByServer, Ordered, Records, median};

/// A pause without progress at least this long is a stall (a resend timeout).
pub const STALL_SECONDS: f64 = 1.0;
/// The peers, in the order of their table columns.
const PEER_COLUMNS: [&str; 5] = ["tftpd-hpa", "atftpd", "dnsmasq", "nginx", "kea"];
/// Cases with no PortaPXE / best peer ratio: only PortaPXE's own value is judged.
const SELF_ONLY: [&str; 5] = ["2c", "3b", "3d", "4c", "5b"];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Better {
    High,
    Low,
    Neither,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    RatioAtLeast(f64),
    RatioAtMost(f64),
    ValueAtLeast(f64),
    ValueAtMost(f64),
    /// No pause of [`STALL_SECONDS`] or more in any PortaPXE round.
    NoStall,
    Pass,
}

pub struct CaseSpec {
    pub id: &'static str,
    pub label: String,
    pub unit: &'static str,
    pub better: Better,
    pub target: Option<Target>,
}

/// How a measured value is judged, per case.
pub fn case_specs(s: &Settings, measured_rtt: Option<f64>) -> Vec<CaseSpec> {
    use Better::{High, Low, Neither};
    use Target::*;
    let rtt_text = match measured_rtt {
        None => format!("~{} ms RTT", s.rtt_us as f64 / 1000.0),
        Some(rtt) => format!("{:.2} ms RTT", rtt * 1e3),
    };
    let (clients, multi_mib, http_mib) = (s.clients, s.multi_mib, s.http_mib);
    let spec = |id, label: String, unit, better, target| CaseSpec { id, label, unit, better, target };
    let window = |id, blk, win, target| {
        spec(id, format!("TFTP 1 client, {blk} × window {win} (atftp), pinned"), "MB/s", High, Some(target))
    };
    vec![
        spec("1a", "TFTP 1 client, blksize 512 (curl), pinned".into(), "MB/s", High, Some(RatioAtLeast(1.0))),
        spec("1b", "TFTP 1 client, blksize 1468 (curl), pinned".into(), "MB/s", High, Some(RatioAtLeast(1.0))),
        spec("1c", "TFTP 1 client, blksize 65464 (curl), pinned".into(), "MB/s", High, Some(RatioAtLeast(1.0))),
        window("1d", 1468, 16, RatioAtLeast(1.0)),
        window("1e", 1468, 64, RatioAtLeast(1.0)),
        window("1f", 8192, 16, NoStall),
        window("1g", 8192, 64, NoStall),
        window("1h", 65464, 16, NoStall),
        window("1i", 65464, 64, NoStall),
        spec("2a", format!("TFTP over {rtt_text}, 1468 × window 1 (atftp)"), "MB/s", High, None),
        spec("2b", format!("TFTP over {rtt_text}, 1468 × window 64 (atftp)"), "MB/s", High, None),
        spec("2c", "speed-up window 64 / window 1 over that RTT".into(), "×", High, Some(ValueAtLeast(20.0))),
        spec(
            "3a",
            format!("TFTP {clients} clients × {multi_mib} MiB at once, blksize 1468 (curl), byte-exact"),
            "s wall",
            Low,
            Some(RatioAtMost(0.9)),
        ),
        spec("3b", "server peak RSS (VmHWM) during 3a".into(), "MB", Low, Some(ValueAtMost(20.0))),
        spec("3c", "server CPU time (user + system) during 3a".into(), "s", Low, None),
        spec("3d", format!("the {clients} curl clients' CPU time during 3a"), "s", Low, None),
        spec("4a", format!("HTTP 1 client, {http_mib} MiB (curl)"), "MB/s", High, Some(RatioAtLeast(0.8))),
        spec(
            "4b",
            format!("HTTP {clients} clients × {http_mib} MiB at once (total)"),
            "MB/s",
            High,
            Some(RatioAtLeast(0.8)),
        ),
        spec(
            "4c",
            "HTTP Range requests: 206, Content-Range and bytes right; 416 past the end".into(),
            "pass",
            Neither,
            Some(Pass),
        ),
        spec("5a", "DHCP DORA rate, perfdhcp relay, new clients, /16 pool".into(), "DORA/s", High, None),
        spec("5b", format!("DHCP DISCOVERs without an ACK at {}/s offered", s.dhcp_rate), "%", Low, None),
        spec(
            "5c",
            format!("DHCP avalanche: {clients} PXE clients (broadcast) until all bound"),
            "s",
            Low,
            Some(ValueAtMost(0.25)),
        ),
        spec("6a", "headless start: launch until TFTP (and HTTP) ports are bound".into(), "ms", Low, None),
        spec("6b", format!("idle RSS {} s after start (process group)", py_float(s.idle_seconds)), "MB", Low, None),
    ]
}

/// A float as Python's `str()` prints it in these labels: `2.0`, `1.5`.
pub fn py_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 { format!("{v:.1}") } else { format!("{v}") }
}

/// 2c: window 64 / window 1 per server that has both.
pub fn speedup(results: &Ordered<ByServer>) -> ByServer {
    let (Some(w1), Some(w64)) = (results.get("2a"), results.get("2b")) else { return ByServer::default() };
    w1.iter()
        .filter_map(|(server, one)| {
            let many = w64.get(server)?;
            (!one.is_empty() && !many.is_empty()).then(|| (server.to_owned(), vec![median(many) / median(one)]))
        })
        .collect()
}

/// Three significant-ish digits: `512`, `12.3`, `1.23`, `0.123`.
pub fn fmt_num(v: f64) -> String {
    match v.abs() {
        _ if v == 0.0 => "0".to_owned(),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// `median (min–max)`, or the value alone for one round; `pass` for pass/fail cases.
pub fn fmt_stats(values: &[f64], unit: &str) -> String {
    if unit == "pass" {
        return "pass".to_owned();
    }
    let med = fmt_num(median(values));
    if values.len() == 1 {
        return med;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{med} ({}–{})", fmt_num(min), fmt_num(max))
}

pub fn fmt_load(load: [f64; 3]) -> String {
    load.map(|x| format!("{x:.2}")).join("/")
}

pub fn target_text(target: Option<Target>) -> String {
    match target {
        None => "—".to_owned(),
        Some(Target::RatioAtLeast(t)) => format!("≥ {t}× best peer"),
        Some(Target::RatioAtMost(t)) => format!("≤ {t}× best peer"),
        Some(Target::ValueAtLeast(t)) => format!("≥ {t}"),
        Some(Target::ValueAtMost(t)) => format!("≤ {t}"),
        Some(Target::NoStall) => "no stall".to_owned(),
        Some(Target::Pass) => "pass".to_owned(),
    }
}

/// "met", "MISS", or "" when there is nothing to judge (no target, no peer to compare
/// with, or a stall target, which the table decides from the pauses).
pub fn judge(target: Option<Target>, ratio: Option<f64>, value: f64) -> String {
    let met = match (target, ratio) {
        (Some(Target::RatioAtLeast(t)), Some(r)) => r >= t,
        (Some(Target::RatioAtMost(t)), Some(r)) => r <= t,
        (Some(Target::ValueAtLeast(t)), _) => value >= t,
        (Some(Target::ValueAtMost(t)), _) => value <= t,
        (Some(Target::Pass), _) => true,
        _ => return String::new(),
    };
    if met { "met" } else { "MISS" }.to_owned()
}

/// One judged case: (id, label, verdict).
pub type Verdict = (String, String, String);

/// The markdown table and the verdict of every row. Cases without any value or failure
/// are left out, and so are peer columns no row filled.
pub fn table(records: &Records, specs: &[CaseSpec]) -> (String, Vec<Verdict>) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut verdicts = Vec::new();
    let no_failures = Ordered::default();
    for spec in specs {
        let case = spec.id;
        let derived = case == "2c";
        let values = if derived {
            let values = speedup(&records.results);
            if values.is_empty() {
                continue;
            }
            values
        } else {
            if !records.results.contains(case) && !records.failures.contains(case) {
                continue;
            }
            records.results.get(case).cloned().unwrap_or_default()
        };
        let fails = records.failures.get(case).unwrap_or(&no_failures);
        let cell = |server: &str| {
            let v = values.get(server).filter(|v| !v.is_empty());
            let f = fails.get(server).filter(|f| !f.is_empty());
            if v.is_none() && f.is_none() {
                return "—".to_owned();
            }
            let mut text = v.map(|v| fmt_stats(v, spec.unit)).unwrap_or_default();
            if let Some(f) = f {
                text += &format!(" FAIL×{}", f.len());
            }
            text.trim().to_owned()
        };

        let own = values.get("portapxe").filter(|v| !v.is_empty());
        let (ratio_text, ratio) = match own {
            Some(own) if !SELF_ONLY.contains(&case) => best_peer(&values, spec.better)
                .filter(|(_, best)| *best != 0.0)
                .map(|(name, best)| {
                    let ratio = median(own) / best;
                    (format!("{ratio:.2} (vs {name})"), Some(ratio))
                })
                .unwrap_or(("—".to_owned(), None)),
            _ => ("—".to_owned(), None),
        };
        let mut verdict = own.map(|own| judge(spec.target, ratio, median(own))).unwrap_or_default();
        if spec.target == Some(Target::NoStall) {
            let pauses = records.results.get(&format!("{case}-pause")).and_then(|p| p.get("portapxe"));
            if let Some(pauses) = pauses.filter(|p| !p.is_empty()) {
                let worst = pauses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                verdict = if worst < STALL_SECONDS { "met".to_owned() } else { format!("MISS (stalled {worst:.1} s)") };
            }
        }
        if fails.get("portapxe").is_some_and(|f| !f.is_empty()) {
            verdict = "MISS (failed runs)".to_owned();
        }
        // Cases without a load of their own (3b, 5b, 2c, 6b) were measured with their "a" case.
        let load = records.loads.get(case).filter(|l| !l.is_empty()).or_else(|| {
            let sibling = format!("{}a", &case[..case.len() - 1]);
            records.loads.get(&sibling).filter(|l| !l.is_empty())
        });
        let load_text = load.map(|l| format!("{:.1}", median(l))).unwrap_or_default();

        let mut row = vec![case.to_owned(), spec.label.clone(), spec.unit.to_owned(), cell("portapxe")];
        row.extend(PEER_COLUMNS.iter().map(|peer| cell(peer)));
        row.extend([ratio_text, target_text(spec.target), verdict.clone(), load_text]);
        rows.push(row);
        verdicts.push((case.to_owned(), spec.label.clone(), verdict));
    }
    (markdown(rows), verdicts)
}

/// The peer with the best median (first recorded wins a tie), for cases with a direction.
fn best_peer(values: &ByServer, better: Better) -> Option<(String, f64)> {
    let mut best: Option<(String, f64)> = None;
    for (server, v) in values.iter().filter(|(s, v)| *s != "portapxe" && !v.is_empty()) {
        let m = median(v);
        let wins = match (&best, better) {
            (None, Better::High | Better::Low) => true,
            (Some((_, b)), Better::High) => m > *b,
            (Some((_, b)), Better::Low) => m < *b,
            _ => false,
        };
        if wins {
            best = Some((server.to_owned(), m));
        }
    }
    best
}

/// The table in markdown, without the peer columns nobody filled.
fn markdown(rows: Vec<Vec<String>>) -> String {
    let mut header: Vec<&str> = vec!["#", "case", "unit", "PortaPXE"];
    header.extend(PEER_COLUMNS);
    header.extend(["PortaPXE / best peer", "target", "met?", "load1"]);
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !PEER_COLUMNS.contains(&header[i]) || rows.iter().any(|row| row[i] != "—"))
        .collect();
    let line = |cells: Vec<&str>| format!("| {} |", cells.join(" | "));
    let mut lines = vec![line(keep.iter().map(|&i| header[i]).collect())];
    lines.push(format!("|{}|", vec!["---"; keep.len()].join("|")));
    lines.extend(rows.iter().map(|row| line(keep.iter().map(|&i| row[i].as_str()).collect())));
    lines.join("\n")
}

/// The delay line's calibration, for the report's heading.
pub struct DelayLine {
    pub base_rtt: f64,
    pub one_way_us: u64,
    pub measured_rtt: f64,
}

/// The machine and software the run measured, for the report's heading.
pub struct Heading {
    pub date: String,
    pub command: String,
    pub machine: String,
    pub portapxe: String,
    pub peers: String,
    pub clients: String,
    pub load_start: [f64; 3],
}

/// The whole markdown report (without the "stopped early" line, which `main` adds).
pub fn report(
    s: &Settings,
    heading: &Heading,
    records: &Records,
    delay_line: Option<&DelayLine>,
    load_end: [f64; 3],
) -> (String, Vec<Verdict>) {
    let specs = case_specs(s, delay_line.map(|d| d.measured_rtt));
    let (table, verdicts) = table(records, &specs);
    let mut out = vec![
        format!("### Run of {}", heading.date),
        String::new(),
        format!("- Command: `{}`", heading.command),
        format!("- Machine: {}", heading.machine),
        format!("- PortaPXE: {}", heading.portapxe),
        format!("- Peers: {}", heading.peers),
        format!("- Clients: {}", heading.clients),
        format!(
            "- Load average (1/5/15 min) at start {}, at end {}; the load1 column is the median of the \
             1-minute load taken before each measurement of that case.",
            fmt_load(heading.load_start),
            fmt_load(load_end)
        ),
        format!(
            "- Rounds: {}; every cell is the median (min–max) over the rounds. Sizes: single-client TFTP {} MiB \
             (window cases with 8192/65464 blocks {} MiB, stalled after {} s), latency TFTP {} MiB, {} clients × {} MiB, \
             HTTP {} MiB; DHCP offered {}/s for {} s.",
            s.runs,
            s.tftp_mib,
            s.window_mib,
            s.window_timeout,
            s.relay_mib,
            s.clients,
            s.multi_mib,
            s.http_mib,
            s.dhcp_rate,
            s.dhcp_seconds
        ),
    ];
    if let Some(d) = delay_line.filter(|d| d.measured_rtt != 0.0) {
        out.push(format!(
            "- Delay line (bench/delayline.c, two namespaces joined by taps): {:.3} ms UDP round trip with no delay, \
             {} µs added each way for a {} µs target; measured {:.3} ms (median of 200 UDP echoes).",
            d.base_rtt * 1e3,
            d.one_way_us,
            s.rtt_us,
            d.measured_rtt * 1e3
        ));
    }
    out.extend([String::new(), table, String::new()]);
    for (case, notes) in records.notes.iter() {
        out.extend(notes.iter().map(|n| format!("- {case}: {n}")));
    }
    for (case, by_server) in records.failures.iter() {
        for (server, reasons) in by_server.iter() {
            if let Some(first) = reasons.first() {
                out.push(format!("- {case} {server} failed {}×: {first}", reasons.len()));
            }
        }
    }
    (out.join("\n") + "\n", verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;

    fn settings() -> Settings {
        Args::parse_from(["pxbench"]).validated().expect("defaults are valid")
    }

    #[test]
    fn numbers_keep_about_three_digits() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(512.4), "512");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(0.1234), "0.123");
        assert_eq!(fmt_num(-150.0), "-150");
    }

    #[test]
    fn stats_show_median_and_range() {
        assert_eq!(fmt_stats(&[5.0], "MB/s"), "5.00");
        assert_eq!(fmt_stats(&[5.0, 120.0, 11.0], "MB/s"), "11.0 (5.00–120)");
        assert_eq!(fmt_stats(&[1.0, 1.0], "pass"), "pass");
        assert_eq!(fmt_load([0.5, 1.0, 12.345]), "0.50/1.00/12.35");
    }

    #[test]
    fn targets_read_as_in_the_report() {
        assert_eq!(target_text(None), "—");
        assert_eq!(target_text(Some(Target::RatioAtLeast(1.0))), "≥ 1× best peer");
        assert_eq!(target_text(Some(Target::RatioAtMost(0.9))), "≤ 0.9× best peer");
        assert_eq!(target_text(Some(Target::ValueAtLeast(20.0))), "≥ 20");
        assert_eq!(target_text(Some(Target::ValueAtMost(0.25))), "≤ 0.25");
        assert_eq!(target_text(Some(Target::NoStall)), "no stall");
        assert_eq!(target_text(Some(Target::Pass)), "pass");
    }

    #[test]
    fn judge_needs_a_ratio_for_ratio_targets() {
        assert_eq!(judge(Some(Target::RatioAtLeast(1.0)), None, 5.0), "");
        assert_eq!(judge(Some(Target::RatioAtLeast(1.0)), Some(1.0), 5.0), "met");
        assert_eq!(judge(Some(Target::RatioAtLeast(1.0)), Some(0.99), 5.0), "MISS");
        assert_eq!(judge(Some(Target::RatioAtMost(0.9)), Some(0.95), 5.0), "MISS");
        assert_eq!(judge(Some(Target::ValueAtMost(0.25)), None, 0.25), "met");
        assert_eq!(judge(Some(Target::ValueAtLeast(20.0)), None, 19.9), "MISS");
        assert_eq!(judge(Some(Target::Pass), None, 1.0), "met");
        assert_eq!(judge(Some(Target::NoStall), None, 1.0), "");
        assert_eq!(judge(None, Some(2.0), 1.0), "");
    }

    #[test]
    fn labels_follow_the_settings() {
        let s = settings();
        let specs = case_specs(&s, None);
        let label = |id: &str| specs.iter().find(|c| c.id == id).map(|c| c.label.clone()).unwrap_or_default();
        assert_eq!(specs.len(), 24);
        assert_eq!(label("2a"), "TFTP over ~0.4 ms RTT, 1468 × window 1 (atftp)");
        assert_eq!(label("6b"), "idle RSS 2.0 s after start (process group)");
        assert_eq!(label("3a"), "TFTP 40 clients × 20 MiB at once, blksize 1468 (curl), byte-exact");
        let specs = case_specs(&s, Some(0.000_412));
        assert!(specs[10].label.starts_with("TFTP over 0.41 ms RTT"));
    }

    #[test]
    fn speedup_is_window64_over_window1_per_server() {
        let mut records = Records::default();
        records.record("2a", "portapxe", 1.0);
        records.record("2a", "portapxe", 3.0);
        records.record("2b", "portapxe", 50.0);
        records.record("2a", "atftpd", 1.0);
        let speedup = speedup(&records.results);
        assert_eq!(speedup.get("portapxe"), Some(&vec![25.0]));
        assert!(speedup.get("atftpd").is_none());
    }

    fn specs_of(ids: &[&str]) -> Vec<CaseSpec> {
        case_specs(&settings(), None).into_iter().filter(|c| ids.contains(&c.id)).collect()
    }

    #[test]
    fn table_compares_with_the_best_peer_and_drops_empty_columns() {
        let mut records = Records::default();
        for (server, value) in [("portapxe", 30.0), ("tftpd-hpa", 20.0), ("atftpd", 25.0), ("dnsmasq", 25.0)] {
            records.record("1a", server, value);
        }
        records.record("3a", "portapxe", 2.0);
        records.record("3a", "atftpd", 4.0);
        records.record("3b", "portapxe", 12.0);
        records.note_load("1a");
        let (table, verdicts) = table(&records, &specs_of(&["1a", "3a", "3b", "4a"]));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| # | case | unit | PortaPXE | tftpd-hpa | atftpd | dnsmasq | PortaPXE / best peer | target | met? | load1 |"
        );
        assert_eq!(lines[1], "|---|---|---|---|---|---|---|---|---|---|---|");
        assert!(
            lines[2].contains("| 30.0 | 20.0 | 25.0 | 25.0 | 1.20 (vs atftpd) | ≥ 1× best peer | met |"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].contains("| 2.00 | — | 4.00 | — | 0.50 (vs atftpd) | ≤ 0.9× best peer | met |"),
            "{}",
            lines[3]
        );
        assert!(lines[4].contains("| 12.0 | — | — | — | — | ≤ 20 | met |"), "{}", lines[4]);
        assert_eq!(lines.len(), 5, "4a had nothing recorded");
        let cases: Vec<&str> = verdicts.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(cases, ["1a", "3a", "3b"]);
    }

    #[test]
    fn failures_and_stalls_decide_the_verdict() {
        let mut records = Records::default();
        records.record("1f", "portapxe", 40.0);
        records.record("1f-pause", "portapxe", 0.2);
        records.record("1g", "portapxe", 40.0);
        records.record("1g-pause", "portapxe", 1.6);
        records.fail("1h", "portapxe", "not done after 20 s (stalled)".into());
        records.record("1h-pause", "portapxe", 20.0);
        records.record("1h", "atftpd", 10.0);
        let (table, verdicts) = table(&records, &specs_of(&["1f", "1g", "1h"]));
        let verdict: Vec<&str> = verdicts.iter().map(|v| v.2.as_str()).collect();
        assert_eq!(verdict, ["met", "MISS (stalled 1.6 s)", "MISS (failed runs)"]);
        assert!(table.contains("| FAIL×1 | 10.0 |"), "{table}");
    }

    #[test]
    fn report_lists_notes_and_first_failures() {
        let mut records = Records::default();
        records.record("4c", "portapxe", 1.0);
        records.fail("4c", "nginx", "range past the end: status 200, want 416".into());
        records.fail("4c", "nginx", "again".into());
        records.note("tftp1", "aborted: x".into());
        let heading = Heading {
            date: "2026-12-07 09:00 UTC".into(),
            command: "bench/run --quick".into(),
            machine: "m".into(),
            portapxe: "p".into(),
            peers: "q".into(),
            clients: "c".into(),
            load_start: [1.0, 2.0, 3.0],
        };
        let (text, verdicts) = report(&settings(), &heading, &records, None, [0.0; 3]);
        assert!(text.starts_with("### Run of 2026-12-07 09:00 UTC\n\n- Command: `bench/run --quick`\n"));
        assert!(text.contains("at start 1.00/2.00/3.00, at end 0.00/0.00/0.00;"));
        assert!(text.contains("| 4c | HTTP Range requests"));
        assert!(text.contains("| pass | FAIL×2 | — | pass | met |"), "{text}");
        assert!(
            text.ends_with("- tftp1: aborted: x\n- 4c nginx failed 2×: range past the end: status 200, want 416\n")
        );
        assert!(!text.contains("Delay line"));
        assert_eq!(verdicts[0].2, "met");
    }
}
