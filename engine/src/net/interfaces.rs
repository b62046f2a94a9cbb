use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::config::InterfaceFacts;
use crate::mac::MacAddr;

/// What sort of link an interface is, as far as the OS tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceKind {
    Wired,
    Wireless,
    Virtual,
    Loopback,
    Other,
}

impl fmt::Display for InterfaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wired => "wired",
            Self::Wireless => "wireless",
            Self::Virtual => "virtual",
            Self::Loopback => "loopback",
            Self::Other => "other",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    pub name: String,
    /// The OS's friendly name where it has one (Windows: "Ethernet 2").
    pub friendly_name: Option<String>,
    pub index: u32,
    pub mac: Option<MacAddr>,
    /// IPv4 addresses with their prefix length.
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    pub up: bool,
    pub kind: InterfaceKind,
}

impl InterfaceInfo {
    /// The first IPv4 address: the one the server answers from.
    pub fn facts(&self) -> Option<InterfaceFacts> {
        let loopback = self.kind == InterfaceKind::Loopback;
        self.ipv4.first().map(|&(address, prefix)| InterfaceFacts { address, prefix, loopback })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceLookupError {
    // Names are printed escaped ({:?}): one typed or pasted with a control character
    // must not reach the terminal raw.
    #[error("no interface named {name:?}; available: {available}")]
    NotFound { name: String, available: String },
    #[error("interface {0:?} has no IPv4 address: give it one (e.g. 192.168.50.1/24) before serving on it")]
    NoIpv4(String),
    #[error("interface {0:?} is down: plug in the cable or bring it up")]
    Down(String),
}

/// Interfaces known to the OS, in its order.
pub fn list_interfaces() -> Vec<InterfaceInfo> {
    netdev::get_interfaces().into_iter().map(describe).collect()
}

/// The interface to serve on, checked to be up and to have an IPv4 address.
pub fn find_interface(name: &str) -> Result<InterfaceInfo, InterfaceLookupError> {
    let found = find_up_interface(name)?;
    if found.ipv4.is_empty() {
        return Err(InterfaceLookupError::NoIpv4(name.into()));
    }
    Ok(found)
}

/// An interface that exists and is up, with or without an address (enough to probe from).
pub fn find_up_interface(name: &str) -> Result<InterfaceInfo, InterfaceLookupError> {
    let all = list_interfaces();
    let Some(found) = all.iter().find(|i| i.name == name || i.friendly_name.as_deref() == Some(name)) else {
        let available = all.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(InterfaceLookupError::NotFound { name: name.into(), available });
    };
    if !found.up {
        return Err(InterfaceLookupError::Down(name.into()));
    }
    Ok(found.clone())
}

fn describe(interface: netdev::Interface) -> InterfaceInfo {
    use netdev::interface::types::InterfaceType;
    let kind = match interface.if_type {
        _ if interface.is_loopback() => InterfaceKind::Loopback,
        InterfaceType::Wireless80211 => InterfaceKind::Wireless,
        _ if looks_virtual(&interface) => InterfaceKind::Virtual,
        InterfaceType::Ethernet
        | InterfaceType::GigabitEthernet
        | InterfaceType::FastEthernetT
        | InterfaceType::FastEthernetFx => InterfaceKind::Wired,
        _ => InterfaceKind::Other,
    };
    InterfaceInfo {
        name: interface.name.clone(),
        friendly_name: interface.friendly_name.clone(),
        index: interface.index,
        mac: interface.mac_addr.map(|mac| MacAddr(mac.octets())).filter(|mac| mac.0 != [0; 6]),
        ipv4: interface.ipv4.iter().map(|net| (net.addr(), net.prefix_len())).collect(),
        up: interface.is_up(),
        kind,
    }
}

/// Bridges, taps, veths, VPNs and hypervisor adapters: listed last and marked in the UI.
fn looks_virtual(interface: &netdev::Interface) -> bool {
    is_virtual(&interface.name, interface.description.as_deref(), has_hardware(&interface.name))
}

/// Whether the kernel knows a device behind the interface. Linux gives every NIC, USB
/// dongle included, a `device` link in sysfs and no software interface one (bridges, veths,
/// ifb, dummy, VLANs), which is surer than any list of names.
fn has_hardware(name: &str) -> Option<bool> {
    let entry = std::path::Path::new("/sys/class/net").join(name);
    // No entry at all (not Linux, or sysfs not mounted, as in a bare chroot): unknown.
    (cfg!(target_os = "linux") && entry.exists()).then(|| entry.join("device").exists())
}

fn is_virtual(name: &str, description: Option<&str>, has_hardware: Option<bool>) -> bool {
    const VIRTUAL_PREFIXES: [&str; 12] =
        ["veth", "br", "virbr", "docker", "tap", "tun", "vmnet", "vboxnet", "utun", "wg", "zt", "lxc"];
    let name = name.to_lowercase();
    let description = description.unwrap_or_default().to_lowercase();
    has_hardware == Some(false)
        || VIRTUAL_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || ["virtual", "hyper-v", "vmware", "virtualbox", "tap-windows", "wintun"]
            .iter()
            .any(|w| description.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_and_unknown_names_say_what_exists() {
        let all = list_interfaces();
        assert!(all.iter().any(|i| i.kind == InterfaceKind::Loopback), "{all:?}");
        let err = find_interface("no-such-nic0").unwrap_err();
        let InterfaceLookupError::NotFound { available, .. } = &err else { panic!("{err}") };
        assert!(available.contains("lo"), "{available}");
    }

    #[test]
    fn software_interfaces_are_virtual_and_nics_are_not() {
        assert!(is_virtual("ifb0", None, Some(false)), "no device behind it (Linux)");
        assert!(!is_virtual("eth0", None, Some(true)));
        assert!(!is_virtual("enp3s0", None, None), "unknown hardware: judged by name");
        assert!(is_virtual("vboxnet0", None, None));
        assert!(is_virtual("{4D36E972-E325}", Some("Hyper-V Virtual Ethernet Adapter"), None));
        assert!(!is_virtual("{4D36E972-E325}", Some("Intel(R) Ethernet Connection I219-LM"), None));
    }
}
