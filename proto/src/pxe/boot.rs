use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message};

use super::{ClientArch, ClientKind, PxeRequest};

/// PXE discovery control (option 43 sub-option 6) bit 3: "boot the file named in
/// this offer, no boot-server discovery, no menu".
const DISCOVERY_USE_BOOT_FILE: u8 = 0x08;
const PXE_DISCOVERY_CONTROL: u8 = 6;
const END: u8 = 255;

/// Where boot programs come from, as the PXE decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSettings {
    pub server_ip: Ipv4Addr,
    pub bios_file: Option<String>,
    pub uefi_ia32_file: Option<String>,
    pub uefi_x64_file: Option<String>,
    pub uefi_arm64_file: Option<String>,
    /// The first loader of the signed chain (shim) for x64 UEFI PXE clients, when the
    /// signed chain is used; it wins over `uefi_x64_file`, but not over a client rule.
    pub uefi_x64_signed_file: Option<String>,
    /// The same for ARM64 UEFI PXE clients (`shimaa64.efi`), when served.
    pub uefi_arm64_signed_file: Option<String>,
    /// The same chain for x64 UEFI HTTP boot: an ISO holding shim and GRUB (the signed
    /// GRUB cannot read files over HTTP; see `grub::http_boot`). `None`: HTTP boot
    /// clients keep `uefi_x64_file`.
    pub uefi_x64_signed_http_file: Option<String>,
    /// `None` when HTTP is off: iPXE then fetches its script over TFTP.
    pub http_port: Option<u16>,
    /// Root-relative path of the iPXE script (generated or the user's).
    pub ipxe_script: String,
}

impl BootSettings {
    fn file_for(&self, arch: ClientArch) -> Option<&str> {
        match arch.pxe_equivalent() {
            ClientArch::Bios => self.bios_file.as_deref(),
            ClientArch::UefiIa32 => self.uefi_ia32_file.as_deref(),
            ClientArch::UefiX64 => self.uefi_x64_file.as_deref(),
            ClientArch::UefiArm64 => self.uefi_arm64_file.as_deref(),
            _ => None,
        }
    }

    /// How a client is pointed at `path`: an http:// URL, or the bare TFTP path when HTTP is off.
    pub fn location(&self, path: &str) -> String {
        self.http_url(path).unwrap_or_else(|| path.to_owned())
    }

    /// The http:// URL of `path`, `None` when HTTP is off.
    pub fn http_url(&self, path: &str) -> Option<String> {
        let port = self.http_port?;
        let host = if port == 80 { self.server_ip.to_string() } else { format!("{}:{port}", self.server_ip) };
        Some(format!("http://{host}/{}", path.trim_start_matches('/')))
    }
}

/// What a client is told to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootPlan {
    /// Not a network-boot client: an address and nothing else.
    AddressOnly,
    /// Firmware PXE: fetch this file from us over TFTP.
    Tftp { file: String },
    /// UEFI HTTP boot: fetch this URL (reply carries option 60 `HTTPClient`).
    HttpBoot { url: String },
    /// iPXE is already running: hand it the script, never the loader again.
    IpxeScript { location: String },
    /// A boot client we have nothing for; it still gets an address.
    NoBootFile { reason: NoBootFile },
}

/// Why a boot client gets no boot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "why", content = "arch", rename_all = "snake_case")]
pub enum NoBootFile {
    /// The client sent no architecture (option 93), so no loader can be chosen.
    NoArch,
    /// No loader is set for this architecture.
    NotConfigured(ClientArch),
    /// A UEFI HTTP boot client, and HTTP is off.
    HttpOff(ClientArch),
}

impl std::fmt::Display for NoBootFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoArch => f.write_str("client sent no architecture (option 93)"),
            Self::NotConfigured(arch) => write!(f, "no boot file configured for {arch}"),
            Self::HttpOff(arch) => write!(f, "{arch} boots over HTTP, but HTTP is off"),
        }
    }
}

impl BootPlan {
    /// The `file` field / option 67 value, when there is one.
    pub fn boot_file(&self) -> Option<&str> {
        match self {
            Self::Tftp { file } => Some(file),
            Self::HttpBoot { url } => Some(url),
            Self::IpxeScript { location } => Some(location),
            Self::AddressOnly | Self::NoBootFile { .. } => None,
        }
    }
}

/// Where the generated script for client rule `index` (one with an `entry`) is served.
pub fn rule_script_path(index: usize) -> String {
    format!("rules/{index}.ipxe")
}

/// What a client rule (see `rules`) changes in the boot choice: the loader, and the
/// script iPXE gets (a rule naming an entry has its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootOverride<'a> {
    pub loader: Option<&'a str>,
    pub script: Option<String>,
    /// The loader planned for this machine's next boot only, for x64 UEFI PXE clients
    /// (an ISO's own signed shim, see `iso::OwnLoader`); it wins over the rule's loader.
    pub one_off_x64: Option<&'a str>,
}

/// The PXE decision table: who gets which boot program, with what the matching client
/// rule overrides.
pub fn choose_boot(request: &PxeRequest, settings: &BootSettings, overrides: &BootOverride<'_>) -> BootPlan {
    if request.is_ipxe {
        let script = overrides.script.as_deref().unwrap_or(&settings.ipxe_script);
        return BootPlan::IpxeScript { location: settings.location(script) };
    }
    if !request.is_boot_client() {
        return BootPlan::AddressOnly;
    }
    let Some(arch) = request.arch else {
        return BootPlan::NoBootFile { reason: NoBootFile::NoArch };
    };
    let wants_http = request.kind == ClientKind::Http || arch.is_http_boot();
    let one_off = match arch.pxe_equivalent() {
        ClientArch::UefiX64 if !wants_http => overrides.one_off_x64,
        _ => None,
    };
    let rule_file = one_off.or(overrides.loader);
    let signed = match arch.pxe_equivalent() {
        ClientArch::UefiX64 if wants_http => settings.uefi_x64_signed_http_file.as_deref(),
        ClientArch::UefiX64 => settings.uefi_x64_signed_file.as_deref(),
        ClientArch::UefiArm64 if !wants_http => settings.uefi_arm64_signed_file.as_deref(),
        _ => None,
    };
    let Some(file) = rule_file.or(signed).or_else(|| settings.file_for(arch)) else {
        return BootPlan::NoBootFile { reason: NoBootFile::NotConfigured(arch) };
    };
    if wants_http {
        return match settings.http_url(file) {
            Some(url) => BootPlan::HttpBoot { url },
            None => BootPlan::NoBootFile { reason: NoBootFile::HttpOff(arch) },
        };
    }
    BootPlan::Tftp { file: file.to_owned() }
}

/// Option 60 and 43 for a reply, as (vendor class, vendor options).
///
/// iPXE stops waiting for a proxyDHCP once it sees `PXEClient`; EDK2 rejects an
/// offer carrying `PXEClient` without option 43, so firmware gets both or neither.
pub fn pxe_vendor_options(request: &PxeRequest, plan: &BootPlan) -> (Option<&'static str>, Option<Vec<u8>>) {
    match plan {
        BootPlan::HttpBoot { .. } => (Some("HTTPClient"), None),
        BootPlan::IpxeScript { .. } => (Some("PXEClient"), None),
        BootPlan::Tftp { .. } if request.kind == ClientKind::Pxe => {
            (Some("PXEClient"), Some(vec![PXE_DISCOVERY_CONTROL, 1, DISCOVERY_USE_BOOT_FILE, END]))
        }
        _ => (None, None),
    }
}

/// The BOOTP `file` field's size; its last byte ends the name.
pub const BOOTP_FILE_MAX: usize = 127;

/// Puts the boot plan into a reply. Some firmware reads only the BOOTP `siaddr`/`file`
/// fields, some only options 66/67: both are set, but a name longer than the `file`
/// field holds goes in option 67 only (cut, it would name another file).
pub fn write_boot_fields(reply: &mut Message, request: &PxeRequest, plan: &BootPlan, server_ip: Ipv4Addr) {
    let Some(file) = plan.boot_file() else { return };
    reply.set_siaddr(server_ip);
    if file.len() <= BOOTP_FILE_MAX {
        reply.set_fname_str(file);
    }
    let opts = reply.opts_mut();
    opts.insert(DhcpOption::TFTPServerName(server_ip.to_string().into_bytes()));
    opts.insert(DhcpOption::BootfileName(file.as_bytes().to_vec()));
    let (class, vendor_options) = pxe_vendor_options(request, plan);
    if let Some(class) = class {
        opts.insert(DhcpOption::ClassIdentifier(class.as_bytes().to_vec()));
    }
    if let Some(vendor_options) = vendor_options {
        opts.insert(DhcpOption::VendorExtensions(vendor_options));
    }
    // PXE clients match replies by their machine GUID.
    if let Some(guid) = &request.guid {
        opts.insert(DhcpOption::ClientMachineIdentifier(guid.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pxe::fixtures;

    fn settings(http_port: Option<u16>) -> BootSettings {
        BootSettings { http_port, ..fixtures::boot_settings() }
    }

    fn request(kind: ClientKind, arch: Option<u16>, is_ipxe: bool) -> PxeRequest {
        fixtures::request([2, 0, 0, 0, 0, 1], kind, arch, is_ipxe)
    }

    fn tftp(file: &str) -> BootPlan {
        BootPlan::Tftp { file: file.into() }
    }

    /// Every architecture × iPXE or not, with HTTP on (port 80 and another) and off.
    #[test]
    fn decision_table() {
        let script_80 = BootPlan::IpxeScript { location: "http://10.77.0.1/boot.ipxe".into() };
        let no_file =
            |arch: u16| BootPlan::NoBootFile { reason: NoBootFile::NotConfigured(ClientArch::from_code(arch)) };
        let cases: Vec<(ClientKind, u16, bool, BootPlan)> = vec![
            (ClientKind::Pxe, 0, false, tftp("undionly.kpxe")),
            (ClientKind::Pxe, 0, true, script_80.clone()),
            (ClientKind::Pxe, 6, false, no_file(6)),
            (ClientKind::Pxe, 6, true, script_80.clone()),
            (ClientKind::Pxe, 7, false, tftp("ipxe.efi")),
            (ClientKind::Pxe, 7, true, script_80.clone()),
            (ClientKind::Pxe, 9, false, tftp("ipxe.efi")),
            (ClientKind::Pxe, 9, true, script_80.clone()),
            (ClientKind::Pxe, 10, false, no_file(10)),
            (ClientKind::Pxe, 11, false, tftp("arm64/ipxe.efi")),
            (ClientKind::Pxe, 11, true, script_80.clone()),
            (ClientKind::Http, 16, false, BootPlan::HttpBoot { url: "http://10.77.0.1/ipxe.efi".into() }),
            (ClientKind::Http, 16, true, script_80.clone()),
            (ClientKind::Http, 19, false, BootPlan::HttpBoot { url: "http://10.77.0.1/arm64/ipxe.efi".into() }),
            (ClientKind::Pxe, 16, false, BootPlan::HttpBoot { url: "http://10.77.0.1/ipxe.efi".into() }),
            (ClientKind::Pxe, 2, false, no_file(2)),
            (ClientKind::Plain, 0, false, BootPlan::AddressOnly),
            (ClientKind::Plain, 7, true, script_80.clone()),
        ];
        for (kind, arch, is_ipxe, expected) in cases {
            let got = choose_boot(&request(kind, Some(arch), is_ipxe), &settings(Some(80)), &BootOverride::default());
            assert_eq!(got, expected, "kind {kind:?} arch {arch} ipxe {is_ipxe}");
        }
    }

    #[test]
    fn http_off_sends_ipxe_to_tftp_script_and_refuses_http_boot() {
        let off = settings(None);
        assert_eq!(
            choose_boot(&request(ClientKind::Pxe, Some(0), true), &off, &BootOverride::default()),
            BootPlan::IpxeScript { location: "boot.ipxe".into() }
        );
        assert!(matches!(
            choose_boot(&request(ClientKind::Http, Some(16), false), &off, &BootOverride::default()),
            BootPlan::NoBootFile { .. }
        ));
        assert_eq!(
            choose_boot(&request(ClientKind::Pxe, Some(7), false), &off, &BootOverride::default()),
            tftp("ipxe.efi")
        );
    }

    #[test]
    fn non_default_http_port_is_in_the_url() {
        let plan =
            choose_boot(&request(ClientKind::Pxe, Some(7), true), &settings(Some(8080)), &BootOverride::default());
        assert_eq!(plan, BootPlan::IpxeScript { location: "http://10.77.0.1:8080/boot.ipxe".into() });
    }

    #[test]
    fn pxe_client_without_arch_gets_no_file() {
        let plan = choose_boot(&request(ClientKind::Pxe, None, false), &settings(Some(80)), &BootOverride::default());
        assert!(matches!(plan, BootPlan::NoBootFile { .. }));
    }

    #[test]
    fn an_override_changes_loader_and_script() {
        let both =
            BootOverride { loader: Some("snponly.efi"), script: Some(rule_script_path(3)), ..Default::default() };
        let firmware = choose_boot(&request(ClientKind::Pxe, Some(7), false), &settings(Some(80)), &both);
        assert_eq!(firmware, tftp("snponly.efi"));
        let ipxe = choose_boot(&request(ClientKind::Pxe, Some(7), true), &settings(Some(80)), &both);
        assert_eq!(ipxe, BootPlan::IpxeScript { location: "http://10.77.0.1/rules/3.ipxe".into() });
        let loader_only = BootOverride { loader: Some("snponly.efi"), script: None, ..Default::default() };
        let ipxe = choose_boot(&request(ClientKind::Pxe, Some(7), true), &settings(Some(80)), &loader_only);
        assert_eq!(ipxe, BootPlan::IpxeScript { location: "http://10.77.0.1/boot.ipxe".into() });
        // A loader override also reaches architectures without a default.
        let arm32 = choose_boot(&request(ClientKind::Pxe, Some(10), false), &settings(Some(80)), &loader_only);
        assert_eq!(arm32, tftp("snponly.efi"));
    }

    #[test]
    fn the_signed_chain_goes_to_x64_and_arm64_uefi_pxe_only() {
        let signed = BootSettings {
            uefi_x64_signed_file: Some("shimx64.efi".into()),
            uefi_arm64_signed_file: Some("shimaa64.efi".into()),
            ..settings(Some(80))
        };
        let choose =
            |kind, arch, is_ipxe| choose_boot(&request(kind, Some(arch), is_ipxe), &signed, &BootOverride::default());
        assert_eq!(choose(ClientKind::Pxe, 7, false), tftp("shimx64.efi"));
        assert_eq!(choose(ClientKind::Pxe, 9, false), tftp("shimx64.efi"));
        assert_eq!(choose(ClientKind::Pxe, 0, false), tftp("undionly.kpxe"), "BIOS keeps iPXE");
        assert_eq!(choose(ClientKind::Pxe, 11, false), tftp("shimaa64.efi"));
        assert_eq!(
            choose(ClientKind::Http, 19, false),
            BootPlan::HttpBoot { url: "http://10.77.0.1/arm64/ipxe.efi".into() },
            "no signed HTTP boot image for ARM64: it keeps its loader"
        );
        let x64_only = BootSettings { uefi_arm64_signed_file: None, ..signed.clone() };
        let arm64 = choose_boot(&request(ClientKind::Pxe, Some(11), false), &x64_only, &BootOverride::default());
        assert_eq!(arm64, tftp("arm64/ipxe.efi"), "without Debian's arm64 loaders, ARM64 keeps iPXE");
        assert_eq!(
            choose(ClientKind::Http, 16, false),
            BootPlan::HttpBoot { url: "http://10.77.0.1/ipxe.efi".into() },
            "without the HTTP boot image, HTTP boot keeps iPXE"
        );
        let with_image =
            BootSettings { uefi_x64_signed_http_file: Some("signed-http-boot.iso".into()), ..signed.clone() };
        assert_eq!(
            choose_boot(&request(ClientKind::Http, Some(16), false), &with_image, &BootOverride::default()),
            BootPlan::HttpBoot { url: "http://10.77.0.1/signed-http-boot.iso".into() },
            "HTTP boot gets the image holding shim and GRUB"
        );
        assert_eq!(
            choose_boot(&request(ClientKind::Pxe, Some(7), false), &with_image, &BootOverride::default()),
            tftp("shimx64.efi"),
            "PXE keeps shim over TFTP"
        );
        assert!(matches!(choose(ClientKind::Pxe, 7, true), BootPlan::IpxeScript { .. }), "iPXE gets its script");
        let rule = BootOverride { loader: Some("snponly.efi"), script: None, ..Default::default() };
        let ruled = choose_boot(&request(ClientKind::Pxe, Some(7), false), &signed, &rule);
        assert_eq!(ruled, tftp("snponly.efi"), "a client rule still wins");
    }

    #[test]
    fn a_one_off_loader_goes_to_x64_uefi_pxe_only_and_wins_over_a_rule() {
        let signed = BootSettings { uefi_x64_signed_file: Some("shimx64.efi".into()), ..settings(Some(80)) };
        let shim = "iso/u.iso/EFI/BOOT/BOOTX64.EFI";
        let once = BootOverride { loader: Some("snponly.efi"), one_off_x64: Some(shim), ..Default::default() };
        let choose = |kind, arch, is_ipxe| choose_boot(&request(kind, Some(arch), is_ipxe), &signed, &once);
        assert_eq!(choose(ClientKind::Pxe, 7, false), tftp(shim));
        assert_eq!(choose(ClientKind::Pxe, 9, false), tftp(shim));
        assert_eq!(choose(ClientKind::Pxe, 0, false), tftp("snponly.efi"), "BIOS: the rule's loader");
        assert_eq!(choose(ClientKind::Pxe, 11, false), tftp("snponly.efi"), "ARM64: the rule's loader");
        assert!(
            matches!(choose(ClientKind::Http, 16, false), BootPlan::HttpBoot { url } if url.ends_with("snponly.efi")),
            "HTTP boot: not the one-off (shim is handed over TFTP)"
        );
        assert!(matches!(choose(ClientKind::Pxe, 7, true), BootPlan::IpxeScript { .. }), "iPXE gets its script");
    }

    #[test]
    fn a_boot_file_longer_than_the_bootp_field_goes_in_option_67_only() {
        let request = request(ClientKind::Pxe, Some(7), false);
        let server = Ipv4Addr::new(10, 77, 0, 1);
        let long = format!("iso/{}/EFI/BOOT/BOOTX64.EFI", "a".repeat(150));
        let mut reply = Message::default();
        write_boot_fields(&mut reply, &request, &tftp(&long), server);
        assert_eq!(reply.fname().unwrap_or_default(), b"", "never cut: a cut name names another file");
        assert_eq!(
            reply.opts().get(dhcproto::v4::OptionCode::BootfileName),
            Some(&DhcpOption::BootfileName(long.into_bytes()))
        );
        let fits = "a".repeat(BOOTP_FILE_MAX);
        let mut reply = Message::default();
        write_boot_fields(&mut reply, &request, &tftp(&fits), server);
        assert_eq!(reply.fname().unwrap_or_default(), fits.as_bytes());
    }

    #[test]
    fn vendor_options_follow_the_edk2_rule() {
        let pxe = request(ClientKind::Pxe, Some(7), false);
        let (class, opt43) = pxe_vendor_options(&pxe, &tftp("ipxe.efi"));
        assert_eq!(class, Some("PXEClient"));
        assert_eq!(opt43, Some(vec![6, 1, 8, 255]));

        let ipxe = request(ClientKind::Pxe, Some(7), true);
        let script = BootPlan::IpxeScript { location: "http://x/boot.ipxe".into() };
        assert_eq!(pxe_vendor_options(&ipxe, &script), (Some("PXEClient"), None));

        let http = request(ClientKind::Http, Some(16), false);
        assert_eq!(pxe_vendor_options(&http, &BootPlan::HttpBoot { url: "u".into() }), (Some("HTTPClient"), None));

        let plain = request(ClientKind::Plain, None, false);
        assert_eq!(pxe_vendor_options(&plain, &BootPlan::AddressOnly), (None, None));
    }
}
