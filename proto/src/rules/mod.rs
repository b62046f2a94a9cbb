//! Client rules: which machines PortaPXE answers, and what each one boots.
//!
//! Owns: MAC allow/deny lists (exact MACs and OUI prefixes) and per-client rules
//! matched by MAC, architecture and vendor class, evaluated purely against a
//! [`PxeRequest`]. Must not touch sockets or build replies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;
use crate::pxe::{BootOverride, ClientArch, PxeRequest, rule_script_path};

/// A whole MAC (`52:54:00:12:34:56`) or a prefix of one, usually the 3-byte OUI (`52:54:00`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MacPattern(Vec<u8>);

impl MacPattern {
    pub fn matches(&self, mac: &[u8; 6]) -> bool {
        mac.starts_with(&self.0)
    }
}

/// A whole MAC: the pattern that matches that machine only.
impl From<crate::mac::MacAddr> for MacPattern {
    fn from(mac: crate::mac::MacAddr) -> Self {
        Self(mac.0.to_vec())
    }
}

impl FromStr for MacPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Two hex digits per byte and nothing else: `from_str_radix` alone takes "+1".
        let parts: Vec<&str> = s.trim().split([':', '-']).collect();
        let hex_pairs = parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        let bytes: Result<Vec<u8>, _> = parts.iter().map(|part| u8::from_str_radix(part, 16)).collect();
        match bytes {
            Ok(bytes) if (1..=6).contains(&bytes.len()) && hex_pairs => Ok(Self(bytes)),
            _ => Err(format!("`{s}` is not a MAC address or prefix (e.g. 52:54:00:12:34:56 or the OUI 52:54:00)")),
        }
    }
}

impl fmt::Display for MacPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02x}")).collect();
        f.write_str(&parts.join(":"))
    }
}

impl Serialize for MacPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Architecture families a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchMatch {
    Bios,
    UefiIa32,
    UefiX64,
    UefiArm32,
    UefiArm64,
    /// Any UEFI HTTP-boot client (codes 15, 16, 18, 19).
    UefiHttp,
}

impl ArchMatch {
    fn matches(self, arch: ClientArch) -> bool {
        match self {
            Self::Bios => arch == ClientArch::Bios,
            Self::UefiIa32 => arch == ClientArch::UefiIa32,
            Self::UefiX64 => arch == ClientArch::UefiX64,
            Self::UefiArm32 => arch == ClientArch::UefiArm32,
            Self::UefiArm64 => arch == ClientArch::UefiArm64,
            Self::UefiHttp => arch.is_http_boot(),
        }
    }
}

/// One per-client rule: every condition given must hold; the first matching rule wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClientRule {
    pub mac: Option<MacPattern>,
    pub arch: Option<ArchMatch>,
    /// Prefix of option 60, e.g. `PXEClient:Arch:00007` or `HTTPClient`.
    pub vendor_class: Option<String>,
    /// Do not answer matching clients at all.
    pub ignore: bool,
    /// Boot program (relative to the root) for matching firmware clients, instead of the per-arch default.
    pub boot_file: Option<String>,
    /// Name of the boot entry matching iPXE clients boot directly, without the menu.
    pub entry: Option<String>,
}

impl ClientRule {
    fn matches(&self, request: &PxeRequest) -> bool {
        self.mac.as_ref().is_none_or(|mac| mac.matches(&request.mac.0))
            && self.arch.is_none_or(|wanted| request.arch.is_some_and(|arch| wanted.matches(arch)))
            && self
                .vendor_class
                .as_deref()
                .is_none_or(|prefix| request.vendor_class.as_deref().is_some_and(|class| class.starts_with(prefix)))
    }

    /// What the rule changes in the boot choice of the clients it matches (rule `index`).
    pub fn boot_override(&self, index: usize) -> BootOverride<'_> {
        BootOverride {
            loader: self.boot_file.as_deref(),
            script: self.entry.as_ref().map(|_| rule_script_path(index)),
            one_off_x64: None,
        }
    }

    /// What the rule says to do, for an event or a rules table.
    pub fn describe(&self) -> String {
        let mut conditions = Vec::new();
        if let Some(mac) = &self.mac {
            conditions.push(format!("MAC {mac}"));
        }
        if let Some(arch) = self.arch {
            conditions.push(format!("arch {arch:?}"));
        }
        if let Some(class) = &self.vendor_class {
            conditions.push(format!("vendor class {class}*"));
        }
        if conditions.is_empty() {
            conditions.push("every client".into());
        }
        let mut actions = Vec::new();
        if let Some(file) = &self.boot_file {
            actions.push(format!("boot file {file}"));
        }
        if let Some(entry) = &self.entry {
            actions.push(format!("entry {entry}"));
        }
        if actions.is_empty() {
            conditions.join(", ")
        } else {
            format!("{} → {}", conditions.join(", "), actions.join(", "))
        }
    }
}

/// The rules as kept in the config (`[rules]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClientRules {
    /// When not empty, only clients matching one of these are answered.
    pub allow: Vec<MacPattern>,
    /// Clients matching one of these are never answered.
    pub deny: Vec<MacPattern>,
    #[serde(rename = "client")]
    pub clients: Vec<ClientRule>,
}

/// What the rules decided for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// No reply at all; the reason goes into the event stream.
    Ignore(IgnoreReason),
    /// Answer; `rule` is the matching per-client rule and its index, if any.
    Serve { rule: Option<(usize, &'a ClientRule)> },
}

/// Why the rules keep a client unanswered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum IgnoreReason {
    Denylist {
        mac: MacAddr,
        pattern: MacPattern,
    },
    NotAllowlisted {
        mac: MacAddr,
    },
    /// A per-client rule with `ignore = true`.
    Rule(AppliedRule),
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denylist { mac, pattern } => write!(f, "{mac} is on the denylist ({pattern})"),
            Self::NotAllowlisted { mac } => write!(f, "{mac} is not in the allowlist"),
            Self::Rule(rule) => write!(f, "{rule} says not to answer"),
        }
    }
}

/// A per-client rule that matched: its number as the user counts (from 1) and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedRule {
    pub number: usize,
    pub description: String,
}

impl AppliedRule {
    pub fn new(index: usize, rule: &ClientRule) -> Self {
        Self { number: index + 1, description: rule.describe() }
    }
}

impl fmt::Display for AppliedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} ({})", self.number, self.description)
    }
}

impl ClientRules {
    pub fn evaluate(&self, request: &PxeRequest) -> Verdict<'_> {
        let mac = &request.mac.0;
        if let Some(pattern) = self.deny.iter().find(|pattern| pattern.matches(mac)) {
            return Verdict::Ignore(IgnoreReason::Denylist { mac: request.mac, pattern: pattern.clone() });
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|pattern| pattern.matches(mac)) {
            return Verdict::Ignore(IgnoreReason::NotAllowlisted { mac: request.mac });
        }
        match self.clients.iter().enumerate().find(|(_, rule)| rule.matches(request)) {
            Some((index, rule)) if rule.ignore => Verdict::Ignore(IgnoreReason::Rule(AppliedRule::new(index, rule))),
            found => Verdict::Serve { rule: found },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pxe::{ClientKind, fixtures};

    fn request(mac: [u8; 6], arch: u16, class: &str) -> PxeRequest {
        PxeRequest { vendor_class: Some(class.into()), ..fixtures::request(mac, ClientKind::Pxe, Some(arch), false) }
    }

    const QEMU_1: [u8; 6] = [0x52, 0x54, 0x00, 0, 0, 1];
    const OTHER: [u8; 6] = [0xaa, 0xbb, 0xcc, 0, 0, 2];

    #[test]
    fn patterns_parse_and_match_prefixes() {
        let oui: MacPattern = "52:54:00".parse().unwrap();
        assert!(oui.matches(&QEMU_1));
        assert!(!oui.matches(&OTHER));
        let exact: MacPattern = "52-54-00-00-00-01".parse().unwrap();
        assert!(exact.matches(&QEMU_1));
        assert_eq!(exact.to_string(), "52:54:00:00:00:01");
        for bad in ["", "52:54:00:00:00:01:02", "5254", "zz:00", "5:54:00", "+1:02:03", "-1:02", "52:+4"] {
            assert!(bad.parse::<MacPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_rules_serve_everyone() {
        assert_eq!(ClientRules::default().evaluate(&request(OTHER, 0, "PXEClient")), Verdict::Serve { rule: None });
    }

    #[test]
    fn deny_beats_allow_and_allowlist_excludes_the_rest() {
        let rules = ClientRules {
            allow: vec!["52:54:00".parse().unwrap()],
            deny: vec!["52:54:00:00:00:01".parse().unwrap()],
            clients: vec![],
        };
        let Verdict::Ignore(denied) = rules.evaluate(&request(QEMU_1, 0, "PXEClient")) else { panic!() };
        assert!(matches!(denied, IgnoreReason::Denylist { .. }), "{denied}");
        assert_eq!(denied.to_string(), "52:54:00:00:00:01 is on the denylist (52:54:00:00:00:01)");
        let Verdict::Ignore(outside) = rules.evaluate(&request(OTHER, 0, "PXEClient")) else { panic!() };
        assert_eq!(outside, IgnoreReason::NotAllowlisted { mac: MacAddr(OTHER) });
        let mut allowed = QEMU_1;
        allowed[5] = 9;
        assert_eq!(rules.evaluate(&request(allowed, 0, "PXEClient")), Verdict::Serve { rule: None });
    }

    #[test]
    fn first_matching_client_rule_wins_with_all_conditions() {
        let rules = ClientRules {
            clients: vec![
                ClientRule {
                    arch: Some(ArchMatch::UefiX64),
                    vendor_class: Some("HTTPClient".into()),
                    ignore: true,
                    ..ClientRule::default()
                },
                ClientRule {
                    mac: Some("52:54:00".parse().unwrap()),
                    arch: Some(ArchMatch::UefiX64),
                    boot_file: Some("snponly.efi".into()),
                    ..ClientRule::default()
                },
                ClientRule { arch: Some(ArchMatch::Bios), entry: Some("Memtest".into()), ..ClientRule::default() },
            ],
            ..ClientRules::default()
        };
        match rules.evaluate(&request(QEMU_1, 7, "PXEClient:Arch:00007")) {
            Verdict::Serve { rule: Some((1, rule)) } => assert_eq!(rule.boot_file.as_deref(), Some("snponly.efi")),
            other => panic!("{other:?}"),
        }
        assert_eq!(rules.evaluate(&request(OTHER, 7, "PXEClient:Arch:00007")), Verdict::Serve { rule: None });
        assert!(matches!(rules.evaluate(&request(OTHER, 0, "PXEClient")), Verdict::Serve { rule: Some((2, _)) }));
        assert!(matches!(rules.evaluate(&request(OTHER, 16, "HTTPClient:Arch:00016")), Verdict::Serve { rule: None }));
        let Verdict::Ignore(why) = rules.evaluate(&request(OTHER, 7, "HTTPClient:Arch:00007")) else { panic!() };
        assert!(matches!(&why, IgnoreReason::Rule(AppliedRule { number: 1, .. })), "{why}");
    }

    #[test]
    fn a_rule_overrides_the_loader_and_with_an_entry_the_script() {
        let rule = ClientRule {
            boot_file: Some("snponly.efi".into()),
            entry: Some("Memtest".into()),
            ..ClientRule::default()
        };
        assert_eq!(
            rule.boot_override(3),
            BootOverride { loader: Some("snponly.efi"), script: Some("rules/3.ipxe".into()), ..Default::default() }
        );
        let loader_only = ClientRule { boot_file: Some("snponly.efi".into()), ..ClientRule::default() };
        assert_eq!(loader_only.boot_override(0), BootOverride { loader: Some("snponly.efi"), ..Default::default() });
    }

    #[test]
    fn rules_round_trip_through_toml() {
        let text = r#"
            allow = ["52:54:00"]
            deny = ["52:54:00:00:00:66"]
            [[client]]
            mac = "52:54:00:00:00:01"
            entry = "Debian"
            [[client]]
            arch = "uefi-arm64"
            boot_file = "arm64/snponly.efi"
        "#;
        let rules: ClientRules = toml::from_str(text).unwrap();
        assert_eq!(rules.clients.len(), 2);
        assert_eq!(rules.clients[1].arch, Some(ArchMatch::UefiArm64));
        let back: ClientRules = toml::from_str(&toml::to_string(&rules).unwrap()).unwrap();
        assert_eq!(back, rules);
        assert!(toml::from_str::<ClientRules>("allow = [\"nonsense\"]").is_err());
    }
}
