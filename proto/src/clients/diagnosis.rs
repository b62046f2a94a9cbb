//! Why a client's boot stopped, as typed facts; the plain words are in `Display`.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::events::Protocol;
use crate::pxe::NoBootFile;
use crate::rules::IgnoreReason;
use crate::secure_boot::KernelRefusal;

/// Why a machine's boot stopped at the firmware's or shim's signature check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum SecureBootRefusal {
    /// The firmware ran the loader over TFTP and then started over instead of running it.
    Loader { file: String },
    /// The kernel was fetched and its initrd never asked for: the loader refused the kernel.
    Kernel { file: String, entry: String, problem: Option<KernelRefusal> },
}

impl fmt::Display for SecureBootRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Loader { file } => write!(
                f,
                "the firmware refused {file}: Secure Boot is probably on — use the signed chain (default) or turn \
                 Secure Boot off"
            ),
            Self::Kernel { file, entry, problem: Some(problem) } => write!(
                f,
                "the kernel {file} of \"{entry}\" was refused after it was fetched ({problem}): Secure Boot is on. \
                 Boot a signed kernel (Debian's) or turn Secure Boot off"
            ),
            Self::Kernel { file, entry, problem: None } => write!(
                f,
                "the kernel {file} of \"{entry}\" was fetched but its initrd never was: the loader refused the \
                 kernel (with Secure Boot on, one not signed by a key shim trusts)"
            ),
        }
    }
}

/// Why a client's boot stopped, when the registry can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "diagnosis", rename_all = "snake_case")]
pub enum Diagnosis {
    /// The client rules keep it unanswered.
    Denied(IgnoreReason),
    /// It took another DHCP server's offer.
    OtherServer {
        server: Ipv4Addr,
    },
    /// It gets an address but we have no boot file for it.
    NothingToBoot(NoBootFile),
    SecureBoot(SecureBootRefusal),
    /// A download stopped part way.
    TransferStopped {
        protocol: Protocol,
        file: String,
        bytes: u64,
        reason: String,
    },
    FileNotFound {
        file: String,
        reason: String,
    },
    /// A download refused for another reason (a bad name, a write request, too many).
    TransferRefused {
        protocol: Protocol,
        file: String,
        reason: String,
    },
    /// A proxy offer no request on 4011 or download followed.
    NoProxyFollowUp,
}

/// A diagnosis in the status file: its tag and facts, and the words beside them.
#[derive(Serialize)]
struct Described<'a> {
    #[serde(flatten)]
    diagnosis: &'a Diagnosis,
    text: String,
}

/// For `#[serde(serialize_with)]` on an `Option<Diagnosis>` field.
pub(super) fn described<S: serde::Serializer>(diagnosis: &Option<Diagnosis>, serializer: S) -> Result<S::Ok, S::Error> {
    diagnosis.as_ref().map(|diagnosis| Described { diagnosis, text: diagnosis.to_string() }).serialize(serializer)
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(reason) => write!(f, "denied by a rule: {reason}"),
            Self::OtherServer { server } => write!(f, "took an offer from another DHCP server ({server})"),
            Self::NothingToBoot(reason) => write!(f, "{reason}: it gets an address but nothing to boot"),
            Self::SecureBoot(refusal) => refusal.fmt(f),
            Self::TransferStopped { protocol: Protocol::Tftp, file, bytes, reason } => write!(
                f,
                "TFTP of {file} stopped after {bytes} bytes ({reason}): a firewall dropping packets, or the client \
                 gave up"
            ),
            Self::TransferStopped { protocol: Protocol::Http, file, bytes, reason } => {
                write!(f, "HTTP download of {file} stopped after {bytes} bytes ({reason})")
            }
            Self::FileNotFound { file, reason } => write!(f, "file not found: {file} ({reason})"),
            Self::TransferRefused { protocol, file, reason } => write!(f, "{protocol} refused {file}: {reason}"),
            Self::NoProxyFollowUp => f.write_str(
                "got our proxy offer but never asked on port 4011 or for the boot file: its firmware may ignore \
                 proxyDHCP, or a firewall blocks UDP 4011/69",
            ),
        }
    }
}
