//! Why an entry cannot boot with Secure Boot on, as facts; the words are in `Display`.
//! The engine's `signature` reads kernels and decides; the client registry explains a
//! refused boot with [`KernelRefusal`]; the window and the log show [`SecureBootProblem`].

use std::fmt;

use serde::Serialize;

/// Why Debian's shim (the signed chain's) refuses a kernel, judged from its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum KernelRefusal {
    /// Signed, by a certificate (`signer`, its common name) that shim does not trust.
    UntrustedSigner {
        signer: String,
    },
    NotSigned,
    /// Not an EFI program (a BIOS-only bzImage, or not a kernel at all).
    NotEfi,
}

impl fmt::Display for KernelRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UntrustedSigner { signer } => {
                write!(f, "the kernel is signed by {signer}, which Debian's shim does not trust")
            }
            Self::NotSigned => f.write_str("the kernel is not signed"),
            Self::NotEfi => f.write_str("the kernel is not an EFI program"),
        }
    }
}

/// Why a boot entry cannot boot on a machine with Secure Boot on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum SecureBootProblem {
    /// Its kernel is refused by shim.
    Kernel { refusal: KernelRefusal },
    /// An ISO's own program (Memtest86+'s EFI program) is not signed.
    UnsignedProgram,
    /// The whole ISO through iPXE's `sanboot`: iPXE is not signed.
    Sanboot,
    /// A chain URL, which only iPXE can follow.
    ChainUrl,
    /// A floppy image through `memdisk`: BIOS machines only, Secure Boot or not.
    BiosOnly,
}

impl fmt::Display for SecureBootProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const OFF: &str = "needs Secure Boot off: ";
        match self {
            Self::Kernel { refusal } => write!(f, "{OFF}{refusal}"),
            Self::UnsignedProgram => write!(f, "{OFF}its program is not signed"),
            Self::Sanboot => write!(f, "{OFF}the ISO boots whole through iPXE (sanboot), which is not signed"),
            Self::ChainUrl => write!(f, "{OFF}a chain URL boots through iPXE, which is not signed"),
            Self::BiosOnly => f.write_str("boots only on BIOS machines (a floppy image through memdisk)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_in_words_and_as_data() {
        let canonical = KernelRefusal::UntrustedSigner { signer: "Canonical Ltd. Secure Boot Signing".into() };
        assert_eq!(
            SecureBootProblem::Kernel { refusal: canonical.clone() }.to_string(),
            "needs Secure Boot off: the kernel is signed by Canonical Ltd. Secure Boot Signing, which Debian's shim \
             does not trust"
        );
        assert_eq!(KernelRefusal::NotSigned.to_string(), "the kernel is not signed");
        assert_eq!(
            SecureBootProblem::Kernel { refusal: KernelRefusal::NotEfi }.to_string(),
            "needs Secure Boot off: the kernel is not an EFI program"
        );
        assert!(SecureBootProblem::BiosOnly.to_string().starts_with("boots only on BIOS"));
        assert_eq!(
            serde_json::to_value(SecureBootProblem::Kernel { refusal: canonical }).unwrap(),
            serde_json::json!({ "problem": "kernel", "refusal": { "why": "untrusted_signer", "signer": "Canonical Ltd. Secure Boot Signing" } })
        );
    }
}
