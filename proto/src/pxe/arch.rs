use std::fmt;

/// Client system architecture from option 93 (RFC 4578, IANA "Processor
/// Architecture Types"), folded into the families that need different boot files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientArch {
    /// 0: x86 BIOS (legacy PXE ROM).
    Bios,
    /// 6: x86 UEFI (32-bit).
    UefiIa32,
    /// 7 and 9: x64 UEFI (9 is the "EFI BC" code some firmware sends).
    UefiX64,
    /// 10: ARM 32-bit UEFI.
    UefiArm32,
    /// 11: ARM 64-bit UEFI.
    UefiArm64,
    /// 15: x86 UEFI HTTP boot.
    HttpIa32,
    /// 16: x64 UEFI HTTP boot.
    HttpX64,
    /// 18: ARM 32-bit UEFI HTTP boot.
    HttpArm32,
    /// 19: ARM 64-bit UEFI HTTP boot.
    HttpArm64,
    /// Anything else (Itanium, EBC, RISC-V, …): we have no default boot file for it.
    Other(u16),
}

impl ClientArch {
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => Self::Bios,
            6 => Self::UefiIa32,
            7 | 9 => Self::UefiX64,
            10 => Self::UefiArm32,
            11 => Self::UefiArm64,
            15 => Self::HttpIa32,
            16 => Self::HttpX64,
            18 => Self::HttpArm32,
            19 => Self::HttpArm64,
            other => Self::Other(other),
        }
    }

    /// Whether this code asks for UEFI HTTP boot rather than PXE over TFTP.
    pub fn is_http_boot(self) -> bool {
        matches!(self, Self::HttpIa32 | Self::HttpX64 | Self::HttpArm32 | Self::HttpArm64)
    }

    /// The PXE (TFTP) architecture whose boot program an HTTP-boot client also runs.
    pub fn pxe_equivalent(self) -> Self {
        match self {
            Self::HttpIa32 => Self::UefiIa32,
            Self::HttpX64 => Self::UefiX64,
            Self::HttpArm32 => Self::UefiArm32,
            Self::HttpArm64 => Self::UefiArm64,
            other => other,
        }
    }
}

/// Written as its label ("UEFI x64") in event streams.
impl serde::Serialize for ClientArch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for ClientArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bios => f.write_str("BIOS"),
            Self::UefiIa32 => f.write_str("UEFI IA32"),
            Self::UefiX64 => f.write_str("UEFI x64"),
            Self::UefiArm32 => f.write_str("UEFI ARM32"),
            Self::UefiArm64 => f.write_str("UEFI ARM64"),
            Self::HttpIa32 => f.write_str("UEFI HTTP IA32"),
            Self::HttpX64 => f.write_str("UEFI HTTP x64"),
            Self::HttpArm32 => f.write_str("UEFI HTTP ARM32"),
            Self::HttpArm64 => f.write_str("UEFI HTTP ARM64"),
            Self::Other(code) => write!(f, "arch {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fold_into_families() {
        assert_eq!(ClientArch::from_code(0), ClientArch::Bios);
        assert_eq!(ClientArch::from_code(7), ClientArch::UefiX64);
        assert_eq!(ClientArch::from_code(9), ClientArch::UefiX64);
        assert_eq!(ClientArch::from_code(11), ClientArch::UefiArm64);
        assert_eq!(ClientArch::from_code(16), ClientArch::HttpX64);
        assert_eq!(ClientArch::from_code(19), ClientArch::HttpArm64);
        assert_eq!(ClientArch::from_code(2), ClientArch::Other(2));
        assert!(ClientArch::HttpX64.is_http_boot());
        assert!(!ClientArch::UefiX64.is_http_boot());
        assert_eq!(ClientArch::HttpArm64.pxe_equivalent(), ClientArch::UefiArm64);
    }
}
