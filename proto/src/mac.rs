//! The hardware address, the most basic fact every module shares: a leaf with no
//! dependency inside the engine.

use serde::Serialize;

/// A hardware address as the DHCP client sent it (Ethernet: 6 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// Written as `52:54:00:12:34:56` in event streams, lease files and configs.
impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl MacAddr {
    /// `52-54-00-12-34-56`: how boot menus put a MAC into a file name (a TFTP name has no
    /// colons; iPXE's `${netX/mac:hexhyp}`).
    pub fn dashed(&self) -> String {
        self.to_string().replace(':', "-")
    }

    /// The MAC of a file name written the [`dashed`](Self::dashed) way, lower case only:
    /// any other spelling is another name.
    pub fn from_dashed(name: &str) -> Option<Self> {
        let dashed = name.len() == 17
            && name
                .bytes()
                .enumerate()
                .all(|(at, b)| if at % 3 == 2 { b == b'-' } else { b.is_ascii_digit() || (b'a'..=b'f').contains(&b) });
        if dashed { name.parse().ok() } else { None }
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!("`{s}` is not a MAC address (expected six hex pairs like 52:54:00:12:34:56)"));
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(parts) {
            *byte = u8::from_str_radix(part, 16)
                .map_err(|_| format!("`{s}` is not a MAC address: `{part}` is not a hex byte"))?;
        }
        Ok(MacAddr(mac))
    }
}
