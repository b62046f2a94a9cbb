use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An inclusive range of addresses handed out by the DHCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRange {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl PoolRange {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.start <= ip && ip <= self.end
    }

    pub fn len(&self) -> u32 {
        u32::from(self.end).saturating_sub(u32::from(self.start)) + 1
    }

    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }
}

impl fmt::Display for PoolRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for PoolRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (start, end) =
            s.split_once('-').ok_or_else(|| format!("pool `{s}` must look like 10.0.0.100-10.0.0.199"))?;
        let parse = |part: &str| {
            part.trim().parse::<Ipv4Addr>().map_err(|_| format!("`{part}` in pool `{s}` is not an IPv4 address"))
        };
        Ok(Self { start: parse(start)?, end: parse(end)? })
    }
}
