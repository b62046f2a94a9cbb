//! Secure Boot in advance: who signed a kernel, read from its Authenticode signature.
//!
//! A Linux kernel with an EFI stub (`vmlinuz`) is a PE/COFF image; when it is signed, its
//! attribute certificate table holds a PKCS#7 SignedData with the signing certificate.
//! [`KernelSignature::read`] turns the bytes of a file into what they say about Secure
//! Boot (signed by whom, not signed, not an EFI program), and [`secure_boot_problem`] into
//! the words a technician reads before trying to boot the entry.
//!
//! Owns: locating the certificate table from the PE headers (with `goblin`), decoding the
//! signature (with `cms`, `der` and `x509-cert`), and the names-based judgement of what
//! Debian's shim will accept. Must not verify anything cryptographically, hash the image,
//! or decide what is served: it only predicts, from names, what the firmware and shim will
//! decide at boot time.
//!
//! Every byte is hostile: [`KernelSignature::read`] never panics. A PE image whose
//! certificate table is missing, points past the end of the file or holds nothing that
//! decodes as a signature with its signing certificate reads as
//! [`KernelSignature::Unsigned`]: Secure Boot refuses all of them alike.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{BmpString, Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use der::oid::db::{rfc4519, rfc5911};
use der::{Any, Decode, SliceReader};
use goblin::pe::certificate_table::{AttributeCertificate, AttributeCertificateType};
use goblin::pe::header::{DosHeader, Header};
use x509_cert::Certificate;
use x509_cert::name::Name;

pub use portapxe_proto::secure_boot::{KernelRefusal, SecureBootProblem};

/// What a kernel file says about Secure Boot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KernelSignature {
    /// Signed; `signer` is the signing certificate's subject common name (e.g. "Debian Secure Boot Signer 2022 - linux"), `issuer` its issuer's CN (e.g. "Debian Secure Boot CA").
    Signed { signer: String, issuer: String },
    /// A PE image with no certificate table: Secure Boot refuses it.
    Unsigned,
    /// Not a PE/COFF image at all (a BIOS-only bzImage without EFI stub, a random file).
    NotPe,
}

/// The PE headers must lie in this many leading bytes. Every EFI program seen in practice
/// has them in the first 4 KiB; the bound lets a large file be judged from a fixed prefix
/// and its certificate table.
const HEADER_WINDOW: usize = 64 * 1024;

/// A certificate name longer than this is cut (real ones are under 100 characters).
const NAME_LIMIT: usize = 200;

/// The certificate authorities whose signatures Debian's shim accepts: its built-in vendor
/// certificate (Debian's CA) and the Microsoft UEFI CAs found in the firmware's db.
const TRUSTED_BY_DEBIAN_SHIM: [&str; 3] = ["Debian Secure Boot CA", MICROSOFT_UEFI_CAS[0], MICROSOFT_UEFI_CAS[1]];

/// The CAs in a PC's db that sign third-party UEFI programs (shims).
const MICROSOFT_UEFI_CAS: [&str; 2] = ["Microsoft Corporation UEFI CA 2011", "Microsoft UEFI CA 2023"];

impl KernelSignature {
    /// What `bytes`, a whole file, say about Secure Boot. Pure; never panics on any input.
    pub fn read(bytes: &[u8]) -> Self {
        // Reading memory fails only where the file is too short, which `read_from` answers.
        read_from(std::io::Cursor::new(bytes)).unwrap_or(Self::Unsigned)
    }

    /// Whether Debian's shim (the one PortaPXE serves, signed by Microsoft; it trusts Debian's
    /// CA and Microsoft's UEFI CAs in the firmware db) will accept this kernel, judged from the
    /// issuer and signer names: Debian's CA, "Microsoft Corporation UEFI CA 2011" and
    /// "Microsoft UEFI CA 2023" are trusted; anything else (Canonical, Red Hat, self-signed)
    /// is not.
    pub fn trusted_by_debian_shim(&self) -> bool {
        // A judgement from names, not a cryptographic verification: nothing here checks the
        // signature over the image or the certificate chain, and anyone can write these
        // names into a certificate of their own. It predicts what shim and the firmware will
        // decide for an honest file; they make the real decision at boot time. The signer
        // counts too, for an image signed directly with a trusted CA's own key.
        match self {
            Self::Signed { signer, issuer } => {
                TRUSTED_BY_DEBIAN_SHIM.iter().any(|trusted| issuer == trusted || signer == trusted)
            }
            Self::Unsigned | Self::NotPe => false,
        }
    }

    /// Whether the firmware's own db (Microsoft's UEFI CAs, on every PC sold with Secure
    /// Boot) accepts this program, judged from the names as above: what a shim must be.
    pub fn trusted_by_firmware(&self) -> bool {
        match self {
            Self::Signed { signer, issuer } => {
                MICROSOFT_UEFI_CAS.iter().any(|trusted| issuer == trusted || signer == trusted)
            }
            Self::Unsigned | Self::NotPe => false,
        }
    }

    /// Whether this was signed under `authority` (a certificate's common name): by a
    /// certificate it issued, or with its own key. Names, as above.
    pub fn signed_under(&self, authority: &str) -> bool {
        matches!(self, Self::Signed { signer, issuer } if issuer == authority || signer == authority)
    }

    /// The first signature in a certificate table that names its signing certificate.
    fn from_certificate_table(table: &[u8]) -> Self {
        let mut offset = 0;
        while offset < table.len() {
            // Each entry moves `offset` on by at least its 8-byte header, or fails.
            let Ok(entry) = AttributeCertificate::parse(table, &mut offset) else { break };
            if entry.certificate_type == AttributeCertificateType::PkcsSignedData
                && let Some((signer, issuer)) = signer_names(entry.certificate)
            {
                return Self::Signed { signer, issuer };
            }
        }
        Self::Unsigned
    }
}

impl fmt::Display for KernelSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signed { issuer, .. } => write!(f, "signed by {issuer}"),
            Self::Unsigned => f.write_str("not signed"),
            Self::NotPe => f.write_str("not an EFI program"),
        }
    }
}

/// Why an entry booting this kernel cannot boot with Secure Boot on, or `None` when it can.
pub fn secure_boot_problem(signature: &KernelSignature) -> Option<SecureBootProblem> {
    refusal(signature).map(|refusal| SecureBootProblem::Kernel { refusal })
}

/// Why shim refuses this kernel, or `None` when it accepts it.
pub fn refusal(signature: &KernelSignature) -> Option<KernelRefusal> {
    if signature.trusted_by_debian_shim() {
        return None;
    }
    Some(match signature {
        KernelSignature::Signed { signer, .. } => KernelRefusal::UntrustedSigner { signer: signer.clone() },
        KernelSignature::Unsigned => KernelRefusal::NotSigned,
        KernelSignature::NotPe => KernelRefusal::NotEfi,
    })
}

/// Why shim refuses the kernel at `path`, or `None` when it accepts it or the file
/// cannot be read (validation reports a missing file).
pub fn kernel_refusal(path: &Path) -> Option<KernelRefusal> {
    refusal(&read_file(path).ok()?)
}

/// What the file at `path` says about Secure Boot, read as [`read_from`] does. Errors
/// are the file's own (missing, unreadable); what is in it is an answer, never an error.
/// Blocking.
pub fn read_file(path: &Path) -> io::Result<KernelSignature> {
    read_from(File::open(path)?)
}

/// What a file says about Secure Boot, from its first 64 KiB (the PE headers) and its
/// certificate table, reached by seeking, so a large file is not read whole.
pub fn read_from(mut file: impl Read + Seek) -> io::Result<KernelSignature> {
    let mut headers = Vec::with_capacity(HEADER_WINDOW);
    file.by_ref().take(HEADER_WINDOW as u64).read_to_end(&mut headers)?;
    let table = match locate(&headers) {
        Location::NotPe => return Ok(KernelSignature::NotPe),
        Location::NoTable => return Ok(KernelSignature::Unsigned),
        Location::Table(table) => table,
    };
    let Some(table) = within(&table, file.seek(SeekFrom::End(0))?) else {
        return Ok(KernelSignature::Unsigned);
    };
    file.seek(SeekFrom::Start(table.start as u64))?;
    let mut bytes = vec![0; table.len()];
    file.read_exact(&mut bytes)?;
    Ok(KernelSignature::from_certificate_table(&bytes))
}

/// The common name of the certificate a shim trusts besides the firmware's db (its
/// built-in vendor certificate: "Debian Secure Boot CA" in Debian's, Canonical's master
/// CA in Ubuntu's), read from its `.vendor_cert` section; `None` when the file is no
/// shim, or its vendor keys are a signature list rather than one certificate. Blocking;
/// never panics on any content.
///
/// The section starts with shim's `cert_table` (`cert_table.h`): four little-endian
/// u32s, the authorized certificate's size, the deauthorized list's size, then their
/// offsets from the section's start.
pub fn shim_vendor_certificate(mut file: impl Read + Seek) -> io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    // A shim is about 1 MB; a file far larger is not one, and is not read whole.
    if len > SHIM_SIZE_LIMIT {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(vendor_certificate_name(&bytes))
}

/// Larger than any shim (Debian's is about 1 MB).
const SHIM_SIZE_LIMIT: u64 = 8 << 20;

fn vendor_certificate_name(image: &[u8]) -> Option<String> {
    use goblin::pe::options::ParseOptions;
    // Only the section table is wanted: nothing else is parsed.
    let mut options = ParseOptions::default();
    options.parse_attribute_certificates = false;
    options.parse_tls_data = false;
    options.parse_resources = false;
    options.parse_imports = false;
    let pe = goblin::pe::PE::parse_with_opts(image, &options).ok()?;
    // ".vendor_cert" is longer than a section name's 8 bytes: its name is in the string table.
    let section = pe.sections.iter().find(|section| section.name().ok() == Some(".vendor_cert"))?;
    let start = usize::try_from(section.pointer_to_raw_data).ok()?;
    let size = usize::try_from(section.size_of_raw_data).ok()?;
    let data = image.get(start..start.checked_add(size)?)?;
    let word = |at: usize| Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize);
    let (cert_size, cert_offset) = (word(0)?, word(8)?);
    let der = data.get(cert_offset..cert_offset.checked_add(cert_size)?)?;
    let certificate = Certificate::from_der(der).ok()?;
    Some(common_name(&certificate.tbs_certificate.subject))
}

/// Where a file's PE headers say its certificate table lies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// No PE/COFF image headers (DOS header, PE signature, COFF and optional header).
    NotPe,
    /// An image whose certificate-table directory entry is empty or missing.
    NoTable,
    /// An image whose certificate table is said to be at these file offsets, not yet
    /// checked against the file's length.
    Table(Range<u64>),
}

/// Reads the PE headers in `headers`, the leading bytes of a file.
fn locate(headers: &[u8]) -> Location {
    // DosHeader::parse checks "MZ" and the "PE\0\0" signature that e_lfanew points at.
    let Ok(dos) = DosHeader::parse(headers) else { return Location::NotPe };
    let Some(pe) = usize::try_from(dos.pe_pointer).ok().and_then(|at| headers.get(at..)) else {
        return Location::NotPe;
    };
    // Without the DOS part, goblin reads no Rich header: a stray "Rich" in a kernel's
    // boot sector code must not make it a non-PE.
    let Ok(header) = Header::parse_without_dos(pe) else { return Location::NotPe };
    // A COFF file without an optional header is an object file, not a loadable image.
    let Some(optional) = header.optional_header else { return Location::NotPe };
    match optional.data_directories.get_certificate_table() {
        // For this one directory, `virtual_address` is a file offset.
        Some(table) if table.size > 0 => {
            let start = u64::from(table.virtual_address);
            Location::Table(start..start + u64::from(table.size))
        }
        _ => Location::NoTable,
    }
}

/// `table` as offsets into a file of `len` bytes, when it lies wholly inside it.
fn within(table: &Range<u64>, len: u64) -> Option<Range<usize>> {
    if table.end > len {
        return None;
    }
    Some(usize::try_from(table.start).ok()?..usize::try_from(table.end).ok()?)
}

/// The signing certificate's subject and issuer names, from a DER PKCS#7 ContentInfo
/// (a WIN_CERTIFICATE's data, which may be followed by padding).
fn signer_names(pkcs7: &[u8]) -> Option<(String, String)> {
    let mut reader = SliceReader::new(pkcs7).ok()?;
    // Decoded without `finish`, so the padding after the ContentInfo is allowed.
    let info = ContentInfo::decode(&mut reader).ok()?;
    if info.content_type != rfc5911::ID_SIGNED_DATA {
        return None;
    }
    let signed: SignedData = info.content.decode_as().ok()?;
    let certificate = signer_certificate(&signed)?;
    let tbs = &certificate.tbs_certificate;
    Some((common_name(&tbs.subject), common_name(&tbs.issuer)))
}

/// The certificate that made the signature: the one the SignerInfo names by issuer and
/// serial number, else the leaf (the one whose subject issued no other in the set).
fn signer_certificate(signed: &SignedData) -> Option<&Certificate> {
    let certificates: Vec<&Certificate> = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(certificate) => Some(certificate),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    let named = signed.signer_infos.0.iter().find_map(|info| match &info.sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => certificates.iter().copied().find(|certificate| {
            certificate.tbs_certificate.issuer == id.issuer
                && certificate.tbs_certificate.serial_number == id.serial_number
        }),
        SignerIdentifier::SubjectKeyIdentifier(_) => None,
    });
    named.or_else(|| {
        certificates.iter().copied().find(|leaf| {
            !certificates.iter().any(|other| {
                !std::ptr::eq(*other, *leaf) && other.tbs_certificate.issuer == leaf.tbs_certificate.subject
            })
        })
    })
}

/// A name's most specific common name (CN), else the whole name in RFC 4514 form, made
/// safe to show.
fn common_name(name: &Name) -> String {
    let common_name = name
        .0
        .iter()
        .rev()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == rfc4519::CN)
        .find_map(|attribute| directory_string(&attribute.value));
    let name = common_name.unwrap_or_else(|| {
        let mut whole = String::new();
        // x509-cert's Display can fail on odd values; then there is no name to show.
        if fmt::write(&mut whole, format_args!("{name}")).is_err() {
            whole.clear();
        }
        whole
    });
    readable(&name)
}

/// The text of a DirectoryString-like value, in any of the string types CAs use.
fn directory_string(value: &Any) -> Option<String> {
    value
        .decode_as::<Utf8StringRef<'_>>()
        .map(|s| s.as_str().to_owned())
        .or_else(|_| value.decode_as::<PrintableStringRef<'_>>().map(|s| s.as_str().to_owned()))
        .or_else(|_| value.decode_as::<Ia5StringRef<'_>>().map(|s| s.as_str().to_owned()))
        .or_else(|_| value.decode_as::<TeletexStringRef<'_>>().map(|s| s.as_str().to_owned()))
        .or_else(|_| value.decode_as::<BmpString>().map(|s| s.to_string()))
        .ok()
}

/// A name from a hostile file made safe for a window or a terminal: control and
/// bidirectional-override characters become U+FFFD, and it is cut to [`NAME_LIMIT`].
fn readable(name: &str) -> String {
    name.trim()
        .chars()
        .take(NAME_LIMIT)
        .map(|c| match c {
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn workspace_file(relative: &str, how_to_get_it: &str) -> PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
        assert!(path.is_file(), "{} is missing: {how_to_get_it}", path.display());
        path
    }

    fn kernel() -> PathBuf {
        workspace_file("target/lab/vmlinuz", "run tests/lab/prepare-guest.sh target/lab (from the workspace root)")
    }

    fn loader(name: &str) -> PathBuf {
        workspace_file(
            &format!("target/signed-loaders/{name}"),
            "run installers/signed-loaders.sh target/signed-loaders (from the workspace root)",
        )
    }

    /// Runs a tool from Debian's sbsigntool (or openssl), panicking with what to install.
    fn run(program: &str, args: &[&std::ffi::OsStr], package: &str) {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} ({e}): install it with `apt-get install {package}`"));
        assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// A copy of the kernel with its signature removed by `sbattach --remove`.
    fn unsigned_kernel(dir: &Path) -> PathBuf {
        let copy = dir.join("vmlinuz");
        std::fs::copy(kernel(), &copy).unwrap();
        run("sbattach", &["--remove".as_ref(), copy.as_os_str()], "sbsigntool");
        copy
    }

    /// Reads a file both ways and checks they agree.
    fn read_both(path: &Path) -> KernelSignature {
        let whole = KernelSignature::read(&std::fs::read(path).unwrap());
        assert_eq!(read_file(path).unwrap(), whole, "read_file and read disagree on {}", path.display());
        whole
    }

    /// Where an x86-64 image's certificate-table directory entry is (PE32+ layout).
    fn certificate_directory_at(image: &[u8]) -> usize {
        let pe = u32::from_le_bytes(image[0x3c..0x40].try_into().unwrap()) as usize;
        let optional = pe + 4 + 20;
        assert_eq!(&image[optional..optional + 2], &[0x0b, 0x02], "expected a PE32+ optional header");
        optional + 112 + 4 * 8
    }

    #[test]
    fn the_debian_kernel_is_signed_by_debian_and_trusted() {
        let signature = read_both(&kernel());
        let KernelSignature::Signed { signer, issuer } = &signature else {
            panic!("the Debian kernel reads as {signature:?}");
        };
        assert!(issuer.contains("Debian"), "issuer {issuer:?}");
        assert!(signer.contains("Debian"), "signer {signer:?}");
        assert!(signature.trusted_by_debian_shim());
        assert_eq!(secure_boot_problem(&signature), None);
        assert_eq!(signature.to_string(), format!("signed by {issuer}"));
    }

    #[test]
    fn the_kernel_stripped_by_sbattach_is_unsigned() {
        let dir = tempfile::tempdir().unwrap();
        let signature = read_both(&unsigned_kernel(dir.path()));
        assert_eq!(signature, KernelSignature::Unsigned);
        assert!(!signature.trusted_by_debian_shim());
    }

    #[test]
    fn a_kernel_signed_with_a_self_made_key_is_signed_but_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let kernel = unsigned_kernel(dir.path());
        let (key, cert) = (dir.path().join("test.key"), dir.path().join("test.crt"));
        let subject = "PortaPXE Test Signer";
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                &format!("/O=PortaPXE/CN={subject}"),
                "-keyout",
            ]
            .map(std::ffi::OsStr::new)
            .into_iter()
            .chain([key.as_os_str(), "-out".as_ref(), cert.as_os_str()])
            .collect::<Vec<_>>(),
            "openssl",
        );
        run(
            "sbsign",
            &[
                "--key".as_ref(),
                key.as_os_str(),
                "--cert".as_ref(),
                cert.as_os_str(),
                "--output".as_ref(),
                kernel.as_os_str(),
                kernel.as_os_str(),
            ],
            "sbsigntool",
        );
        let signature = read_both(&kernel);
        assert_eq!(signature, KernelSignature::Signed { signer: subject.to_owned(), issuer: subject.to_owned() });
        assert!(!signature.trusted_by_debian_shim());
        assert_eq!(
            secure_boot_problem(&signature).map(|problem| problem.to_string()).as_deref(),
            Some(
                "needs Secure Boot off: the kernel is signed by PortaPXE Test Signer, which Debian's shim does not trust"
            )
        );
    }

    #[test]
    fn the_signed_loaders_are_signed_by_debian_and_microsoft_and_trusted() {
        for (file, signer) in [("grubx64.efi", "Debian"), ("shimx64.efi", "Microsoft")] {
            let signature = read_both(&loader(file));
            let KernelSignature::Signed { issuer, .. } = &signature else { panic!("{file} reads as {signature:?}") };
            assert!(issuer.contains(signer), "{file}: issuer {issuer:?}");
            assert!(signature.trusted_by_debian_shim(), "{file}");
        }
    }

    #[test]
    fn bytes_that_are_no_pe_image_read_as_not_pe() {
        assert_eq!(KernelSignature::read(&[]), KernelSignature::NotPe);
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for len in [1, 2, 63, 64, 4096, 100_000] {
            let random: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
            assert_eq!(KernelSignature::read(&random), KernelSignature::NotPe, "{len} random bytes");
        }
        // "MZ" alone, and an e_lfanew pointing past the end.
        let mut dos = vec![0; 64];
        dos[..2].copy_from_slice(b"MZ");
        assert_eq!(KernelSignature::read(&dos), KernelSignature::NotPe);
        dos[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(KernelSignature::read(&dos), KernelSignature::NotPe);
    }

    #[test]
    fn a_truncated_kernel_is_unsigned() {
        let kernel = std::fs::read(kernel()).unwrap();
        // Its headers are whole, its certificate table is gone with the rest.
        assert_eq!(KernelSignature::read(&kernel[..4096]), KernelSignature::Unsigned);
        // Cut inside the headers: no image any more.
        assert_eq!(KernelSignature::read(&kernel[..200]), KernelSignature::NotPe);
    }

    #[test]
    fn a_certificate_table_past_the_end_is_unsigned() {
        let mut kernel = std::fs::read(kernel()).unwrap();
        let directory = certificate_directory_at(&kernel);
        let len = u32::try_from(kernel.len()).unwrap();
        for (offset, size) in [(len, 8), (len - 8, 16), (u32::MAX, u32::MAX), (0, u32::MAX), (len - 8, 8)] {
            kernel[directory..directory + 4].copy_from_slice(&offset.to_le_bytes());
            kernel[directory + 4..directory + 8].copy_from_slice(&size.to_le_bytes());
            assert_eq!(KernelSignature::read(&kernel), KernelSignature::Unsigned, "table at {offset:#x}+{size:#x}");
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &kernel).unwrap();
            assert_eq!(read_file(file.path()).unwrap(), KernelSignature::Unsigned);
        }
    }

    #[test]
    fn mutated_kernel_headers_and_signatures_never_panic() {
        let kernel = std::fs::read(kernel()).unwrap();
        let Location::Table(table) = locate(&kernel[..4096]) else { panic!("the kernel has no certificate table") };
        let table = within(&table, kernel.len() as u64).unwrap();
        // A small image that keeps the kernel's headers and its signature, so mutations
        // reach the PKCS#7 decoding as well as the PE headers.
        let mut small = kernel[..4096].to_vec();
        let directory = certificate_directory_at(&small);
        small[directory..directory + 4].copy_from_slice(&4096u32.to_le_bytes());
        small[directory + 4..directory + 8].copy_from_slice(&u32::try_from(table.len()).unwrap().to_le_bytes());
        small.extend_from_slice(&kernel[table]);
        assert_eq!(KernelSignature::read(&small), KernelSignature::read(&kernel));

        let mut rng = fastrand::Rng::with_seed(0xb007);
        let mut seen = Vec::new();
        for (sample, rounds) in [(&kernel[..64 * 1024], 1500), (&small[..], 3000)] {
            let mut mutated = sample.to_vec();
            for _ in 0..rounds {
                mutated.copy_from_slice(sample);
                for _ in 0..rng.usize(1..=8) {
                    // Mostly the first 1 KiB (the headers) and the signature, sometimes anywhere.
                    let at = match rng.u8(..4) {
                        0 => rng.usize(..mutated.len()),
                        1 => rng.usize(4096.min(mutated.len() - 1)..mutated.len()),
                        _ => rng.usize(..1024),
                    };
                    mutated[at] = match rng.u8(..3) {
                        0 => rng.u8(..),
                        1 => mutated[at] ^ (1 << rng.u8(..8)),
                        _ => [0, 0xff, 0x80, 0x7f][rng.usize(..4)],
                    };
                }
                let cut = if rng.u8(..8) == 0 { rng.usize(..=mutated.len()) } else { mutated.len() };
                let signature = KernelSignature::read(&mutated[..cut]);
                if !seen.contains(&std::mem::discriminant(&signature)) {
                    seen.push(std::mem::discriminant(&signature));
                }
            }
        }
        // The mutations reached every outcome, the signature decoding included.
        assert_eq!(seen.len(), 3, "only {seen:?} were seen");
    }

    #[test]
    fn only_debian_and_microsoft_uefi_authorities_are_trusted() {
        let signed =
            |signer: &str, issuer: &str| KernelSignature::Signed { signer: signer.into(), issuer: issuer.into() };
        assert!(signed("Debian Secure Boot Signer 2022 - linux", "Debian Secure Boot CA").trusted_by_debian_shim());
        assert!(
            signed("Microsoft Windows UEFI Driver Publisher", "Microsoft Corporation UEFI CA 2011")
                .trusted_by_debian_shim()
        );
        assert!(signed("Microsoft UEFI CA 2023 signer", "Microsoft UEFI CA 2023").trusted_by_debian_shim());
        assert!(
            !signed("Canonical Ltd. Secure Boot Signing", "Canonical Ltd. Master Certificate Authority")
                .trusted_by_debian_shim()
        );
        assert!(!signed("Red Hat Secure Boot Signing 504", "Red Hat Secure Boot CA 5").trusted_by_debian_shim());
        assert!(!signed("my key", "my key").trusted_by_debian_shim());
        assert!(!KernelSignature::Unsigned.trusted_by_debian_shim());
        assert!(!KernelSignature::NotPe.trusted_by_debian_shim());
    }

    #[test]
    fn secure_boot_problems_in_words() {
        let canonical = KernelSignature::Signed {
            signer: "Canonical Ltd. Secure Boot Signing".into(),
            issuer: "Canonical Ltd. Master Certificate Authority".into(),
        };
        let kernel = |refusal| Some(SecureBootProblem::Kernel { refusal });
        assert_eq!(
            secure_boot_problem(&canonical),
            kernel(KernelRefusal::UntrustedSigner { signer: "Canonical Ltd. Secure Boot Signing".into() })
        );
        assert_eq!(secure_boot_problem(&KernelSignature::Unsigned), kernel(KernelRefusal::NotSigned));
        assert_eq!(secure_boot_problem(&KernelSignature::NotPe), kernel(KernelRefusal::NotEfi));
        let debian = KernelSignature::Signed {
            signer: "Debian Secure Boot Signer 2022 - linux".into(),
            issuer: "Debian Secure Boot CA".into(),
        };
        assert_eq!(secure_boot_problem(&debian), None);
        assert_eq!(debian.to_string(), "signed by Debian Secure Boot CA");
        assert_eq!(KernelSignature::Unsigned.to_string(), "not signed");
        assert_eq!(KernelSignature::NotPe.to_string(), "not an EFI program");
        assert_eq!(
            serde_json::to_value(&debian).unwrap(),
            serde_json::json!({ "state": "signed", "signer": "Debian Secure Boot Signer 2022 - linux", "issuer": "Debian Secure Boot CA" })
        );
        assert_eq!(serde_json::to_value(KernelSignature::NotPe).unwrap(), serde_json::json!({ "state": "not_pe" }));
    }

    #[test]
    fn names_from_a_file_cannot_carry_control_characters() {
        assert_eq!(readable("  Evil\u{1b}[2J CA\n"), "Evil\u{fffd}[2J CA");
        assert_eq!(readable("a\u{202e}b"), "a\u{fffd}b");
        assert_eq!(readable(&"x".repeat(1000)).chars().count(), NAME_LIMIT);
    }

    #[test]
    fn a_shims_vendor_certificate_and_signer_are_read_from_debians_shim() {
        let shim = std::fs::File::open(loader("shimx64.efi")).unwrap();
        assert_eq!(shim_vendor_certificate(shim).unwrap().as_deref(), Some("Debian Secure Boot CA"));
        let signature = read_file(&loader("shimx64.efi")).unwrap();
        assert!(signature.trusted_by_firmware(), "{signature:?}");
        let debian_kernel = read_file(&kernel()).unwrap();
        assert!(debian_kernel.signed_under("Debian Secure Boot CA"), "{debian_kernel:?}");
        assert!(!debian_kernel.trusted_by_firmware(), "Debian's kernel is signed for Debian's shim, not the firmware");
        // GRUB has no vendor certificate; a kernel is not a shim; hostile bytes are nothing.
        let grub = std::fs::File::open(loader("grubx64.efi")).unwrap();
        assert_eq!(shim_vendor_certificate(grub).unwrap(), None);
        assert_eq!(shim_vendor_certificate(std::fs::File::open(kernel()).unwrap()).unwrap(), None);
        let mut bytes = std::fs::read(loader("shimx64.efi")).unwrap();
        for at in (0..bytes.len()).step_by(4099) {
            bytes[at] ^= 0x5a;
        }
        let _ = vendor_certificate_name(&bytes);
        assert_eq!(vendor_certificate_name(b"MZ"), None);
    }
}
