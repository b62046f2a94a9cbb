//! What this process may do: bind ports below 1024 and capture packets (Linux
//! capabilities), and whether it runs elevated (Windows).

/// Whether the process may bind ports below 1024 and capture packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    pub bind_low_ports: bool,
    pub capture: bool,
}

impl Privileges {
    /// From the `CapEff:` line of Linux's `/proc/self/status`.
    pub fn from_proc_status(status: &str) -> Option<Self> {
        let hex = status.lines().find_map(|line| line.strip_prefix("CapEff:"))?.trim();
        let effective = u64::from_str_radix(hex, 16).ok()?;
        const NET_BIND_SERVICE: u64 = 1 << 10;
        const NET_RAW: u64 = 1 << 13;
        Some(Self { bind_low_ports: effective & NET_BIND_SERVICE != 0, capture: effective & NET_RAW != 0 })
    }

    /// This process's privileges, where the OS says (Linux); `None` elsewhere.
    pub fn of_this_process() -> Option<Self> {
        if cfg!(target_os = "linux") {
            std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(Self::from_proc_status)
        } else {
            None
        }
    }
}

/// Windows: whether this process runs as administrator (an elevated token).
#[cfg(windows)]
pub fn is_elevated() -> Option<bool> {
    // SAFETY: IsUserAnAdmin takes no arguments and only reads this process's token.
    Some(unsafe { windows_sys::Win32::UI::Shell::IsUserAnAdmin() } != 0)
}

/// Elevation is a Windows notion; elsewhere capabilities say it (see [`Privileges`]).
#[cfg(not(windows))]
pub fn is_elevated() -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_cap_eff() {
        let root = "Name:\tportapxe\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(Privileges::from_proc_status(root), Some(Privileges { bind_low_ports: true, capture: true }));
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(Privileges::from_proc_status(user), Some(Privileges { bind_low_ports: false, capture: false }));
        let setcap = "CapEff:\t0000000000002400\n";
        assert_eq!(Privileges::from_proc_status(setcap), Some(Privileges { bind_low_ports: true, capture: true }));
        assert_eq!(Privileges::from_proc_status("Name: x\n"), None);
    }
}
