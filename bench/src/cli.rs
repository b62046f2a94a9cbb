//! The command line: flags, their defaults, the `--quick` overrides and validation.
//!
//! Owns: turning `argv` into [`Settings`]. Must not touch: anything on the machine.

use clap::Parser;

/// The measurement groups, in the order they run.
pub const GROUPS: [&str; 6] = ["tftp1", "relay", "multi", "http", "dhcp", "startup"];

/// Where `bench/install-deps.sh` unpacks atftpd (it conflicts with tftpd-hpa in apt).
pub const ATFTPD_DEFAULT: &str = "/var/cache/portapxe-bench/atftpd/usr/sbin/atftpd";

#[derive(Parser, Debug, Clone)]
#[command(name = "pxbench", about = "PortaPXE benchmarks against tftpd-hpa, atftpd, dnsmasq, nginx, Kea.")]
pub struct Args {
    /// portapxe binary (default: build target/release/portapxe with cargo)
    #[arg(long)]
    pub bin: Option<String>,
    #[arg(long, default_value = ATFTPD_DEFAULT)]
    pub atftpd: String,
    /// comma-separated groups: tftp1,relay,multi,http,dhcp,startup
    #[arg(long, default_value = "tftp1,relay,multi,http,dhcp,startup")]
    pub only: String,
    /// only these single-client cases, e.g. 1a,1e
    #[arg(long, default_value = "")]
    pub cases: String,
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// small sizes and 1 round, to try the suite out
    #[arg(long)]
    pub quick: bool,
    #[arg(long, default_value_t = 64)]
    pub tftp_mib: u64,
    #[arg(long, default_value_t = 16)]
    pub relay_mib: u64,
    /// file for the big-block window cases 1f-1i
    #[arg(long, default_value_t = 8)]
    pub window_mib: u64,
    /// seconds before 1f-1i count as stalled
    #[arg(long, default_value_t = 20)]
    pub window_timeout: u64,
    #[arg(long, default_value_t = 20)]
    pub multi_mib: u64,
    #[arg(long, default_value_t = 512)]
    pub http_mib: u64,
    #[arg(long, default_value_t = 40)]
    pub clients: u32,
    #[arg(long, default_value_t = 400)]
    pub rtt_us: u64,
    #[arg(long, default_value_t = 6000)]
    pub dhcp_rate: u64,
    #[arg(long, default_value_t = 10)]
    pub dhcp_seconds: u64,
    #[arg(long, default_value_t = 2.0)]
    pub idle_seconds: f64,
    #[arg(long, default_value_t = 300)]
    pub client_timeout: u64,
    /// give up (and clean up) after this long
    #[arg(long, default_value_t = 90)]
    pub max_minutes: u64,
    /// also write the markdown report to this file
    #[arg(long)]
    pub out: Option<String>,
}

/// The flags as the suite uses them: after [`Args::validated`] has applied `--quick`.
pub type Settings = Args;

impl Args {
    /// Applies `--quick` and checks the ranges; the error is the sentence to show.
    pub fn validated(mut self) -> Result<Settings, String> {
        if self.quick {
            // Only the default round count gives way: an explicit --runs 5 --quick keeps 5.
            if self.runs == 3 {
                self.runs = 1;
            }
            (self.tftp_mib, self.relay_mib, self.multi_mib, self.http_mib, self.window_mib) = (8, 1, 2, 64, 2);
            self.window_timeout = 20;
            self.dhcp_seconds = 3;
            self.idle_seconds = 1.0;
        }
        let groups = self.groups();
        let unknown: Vec<&String> = groups.iter().filter(|g| !GROUPS.contains(&g.as_str())).collect();
        if !unknown.is_empty() {
            return Err(format!("unknown group(s) {unknown:?}; choose from {GROUPS:?}"));
        }
        if !(1..=20).contains(&self.runs) || !(1..=200).contains(&self.clients) {
            return Err("runs must be 1..20 and clients 1..200".to_owned());
        }
        if !(self.idle_seconds.is_finite() && self.idle_seconds >= 0.0) {
            return Err(format!("--idle-seconds must be 0 or more, not {}", self.idle_seconds));
        }
        Ok(self)
    }

    /// The groups of `--only`.
    pub fn groups(&self) -> Vec<String> {
        split_list(&self.only)
    }

    /// The cases of `--cases` (empty: all).
    pub fn cases(&self) -> Vec<String> {
        split_list(&self.cases)
    }

    pub fn runs_group(&self, group: &str) -> bool {
        self.groups().iter().any(|g| g == group)
    }

    /// `--cases` empty means every case of the single-client group.
    pub fn runs_case(&self, case: &str) -> bool {
        let cases = self.cases();
        cases.is_empty() || cases.iter().any(|c| c == case)
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(argv: &[&str]) -> Result<Settings, String> {
        let args = Args::try_parse_from(std::iter::once("pxbench").chain(argv.iter().copied())).expect("flags parse");
        args.validated()
    }

    #[test]
    fn defaults_are_the_full_suite() {
        let s = settings(&[]).expect("valid");
        assert_eq!(s.groups(), GROUPS.to_vec());
        assert!(s.cases().is_empty());
        assert_eq!((s.runs, s.tftp_mib, s.relay_mib, s.window_mib, s.multi_mib, s.http_mib), (3, 64, 16, 8, 20, 512));
        assert_eq!((s.window_timeout, s.clients, s.rtt_us, s.dhcp_rate, s.dhcp_seconds), (20, 40, 400, 6000, 10));
        assert_eq!((s.idle_seconds, s.client_timeout, s.max_minutes), (2.0, 300, 90));
        assert_eq!(s.atftpd, ATFTPD_DEFAULT);
        assert!(s.bin.is_none() && s.out.is_none());
    }

    #[test]
    fn quick_shrinks_sizes_and_rounds() {
        let s = settings(&["--quick", "--tftp-mib", "100", "--idle-seconds", "5"]).expect("valid");
        assert_eq!((s.runs, s.tftp_mib, s.relay_mib, s.multi_mib, s.http_mib, s.window_mib), (1, 8, 1, 2, 64, 2));
        assert_eq!((s.window_timeout, s.dhcp_seconds, s.idle_seconds), (20, 3, 1.0));
        assert_eq!(s.dhcp_rate, 6000);
    }

    #[test]
    fn quick_keeps_an_explicit_round_count_other_than_three() {
        assert_eq!(settings(&["--quick", "--runs", "5"]).expect("valid").runs, 5);
        assert_eq!(settings(&["--quick", "--runs", "3"]).expect("valid").runs, 1);
    }

    #[test]
    fn lists_are_split_and_trimmed() {
        let s = settings(&["--only", " tftp1, http,,", "--cases", "1a, 1e"]).expect("valid");
        assert_eq!(s.groups(), ["tftp1", "http"]);
        assert_eq!(s.cases(), ["1a", "1e"]);
        assert!(s.runs_group("http") && !s.runs_group("dhcp"));
        assert!(s.runs_case("1e") && !s.runs_case("1b"));
    }

    #[test]
    fn unknown_groups_and_ranges_are_refused() {
        let error = settings(&["--only", "tftp1,disk"]).expect_err("unknown group");
        assert!(error.contains("\"disk\""), "{error}");
        assert!(settings(&["--runs", "0"]).is_err());
        assert!(settings(&["--runs", "21"]).is_err());
        assert!(settings(&["--clients", "201"]).is_err());
        assert!(settings(&["--clients", "200", "--runs", "20"]).is_ok());
        assert!(settings(&["--idle-seconds", "nan"]).is_err());
        assert!(settings(&["--idle-seconds=-1"]).is_err());
    }
}
