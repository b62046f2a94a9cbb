//! Windows Server DHCP as PowerShell (DhcpServer module): a user class for iPXE and a vendor
//! class per option 93 code, one scope policy each (iPXE first), options 66/67 per policy,
//! and our MAC rules as the server's allow/deny filters. Every construct is traced to
//! Microsoft's documentation in `golden/SOURCES.md`.

use std::fmt::Write;

use super::{BootTarget, DhcpServerKind, arch_files, header, mac_hex};
use crate::rules::MacPattern;

/// Name of the user class (and of its policy) that iPXE clients fall into.
const IPXE: &str = "PortaPXE iPXE";

pub(super) fn render(target: &BootTarget) -> String {
    let ip = target.server_ip.to_string();
    let mut out = header(DhcpServerKind::Windows, target, "#");
    out.push_str(
        "# PowerShell for Windows Server 2012 or later (DhcpServer module), run as a DHCP administrator.\n\
         # Set these two to your DHCP server and to the scope your network-boot clients lease from:\n\
         $ComputerName = 'dhcpserver.contoso.com'\n\
         $ScopeId = '10.10.10.0'\n\n",
    );

    let files = arch_files(target);
    out.push_str("# Classes: iPXE sends user class (option 77) \"iPXE\"; PXE firmware sends a vendor class\n");
    out.push_str("# (option 60) that starts with \"PXEClient:Arch:\" and its option 93 code in five digits.\n");
    let _ =
        writeln!(out, "Add-DhcpServerv4Class -ComputerName $ComputerName -Name {} -Type User -Data 'iPXE'", ps(IPXE));
    for (name, codes, _) in &files {
        for code in *codes {
            let _ = writeln!(
                out,
                "Add-DhcpServerv4Class -ComputerName $ComputerName -Name {} -Type Vendor -Data 'PXEClient:Arch:{code:05}'",
                ps(&vendor_class(name, *code)),
            );
        }
    }

    out.push_str("\n# Scope policies. A client matching several takes each option from the first in processing\n");
    out.push_str("# order, so iPXE (which also sends a PXEClient vendor class) gets the script, never the loader.\n");
    let on_policy = "-ComputerName $ComputerName -ScopeId $ScopeId";
    let _ = writeln!(
        out,
        "Add-DhcpServerv4Policy {on_policy} -Name {name} -Condition OR -ProcessingOrder 1 -UserClass EQ,{name}",
        name = ps(IPXE),
    );
    let _ = writeln!(
        out,
        "Set-DhcpServerv4OptionValue {on_policy} -PolicyName {} -OptionId 67 -Value {}",
        ps(IPXE),
        ps(&target.ipxe_script),
    );
    for (order, (name, codes, file)) in (2..).zip(&files) {
        let policy = ps(&format!("PortaPXE {name}"));
        let classes: Vec<String> = codes.iter().map(|code| ps(&format!("{}*", vendor_class(name, *code)))).collect();
        let _ = writeln!(
            out,
            "Add-DhcpServerv4Policy {on_policy} -Name {policy} -Condition OR -ProcessingOrder {order} -VendorClass EQ,{}",
            classes.join(","),
        );
        let _ = writeln!(
            out,
            "Set-DhcpServerv4OptionValue {on_policy} -PolicyName {policy} -OptionId 66 -Value {}",
            ps(&ip)
        );
        let _ = writeln!(
            out,
            "Set-DhcpServerv4OptionValue {on_policy} -PolicyName {policy} -OptionId 67 -Value {}",
            ps(file)
        );
    }
    out.push_str(
        "# Option 66 names PortaPXE as TFTP server. Firmware that ignores it (EDK2-based UEFI takes the\n\
         # next-server field, else this DHCP server's address) finds PortaPXE only if Windows fills that\n\
         # field, which Microsoft does not document; if such clients fail, run `portapxe serve --mode proxy`\n\
         # beside this server instead of this script.\n",
    );
    if !target.ipxe_script.contains("://") {
        out.push_str(
            "# The script is a bare TFTP path, which iPXE fetches from the next-server field too: turn on\n\
             # PortaPXE's HTTP server so that option 67 carries an http:// URL.\n",
        );
    }

    if !target.http_boot.is_empty() {
        http_boot(&mut out, target, on_policy, 2 + files.len());
    }

    let rules = &target.rules;
    if !rules.deny.is_empty() || !rules.allow.is_empty() {
        out.push_str(
            "\n# MAC rules, as the server's link-layer filters. They apply to every scope on this server and\n",
        );
        out.push_str("# to all of DHCP, not only network boot: a filtered machine gets no address at all.\n");
    }
    for pattern in &rules.deny {
        let _ = writeln!(
            out,
            "Add-DhcpServerv4Filter -ComputerName $ComputerName -List Deny -MacAddress {} -Description 'PortaPXE deny'",
            ps(&filter_mac(pattern)),
        );
    }
    if !rules.deny.is_empty() {
        out.push_str("Set-DhcpServerv4FilterList -ComputerName $ComputerName -Deny $true\n");
    }
    for pattern in &rules.allow {
        let _ = writeln!(
            out,
            "Add-DhcpServerv4Filter -ComputerName $ComputerName -List Allow -MacAddress {} -Description 'PortaPXE allow'",
            ps(&filter_mac(pattern)),
        );
    }
    if !rules.allow.is_empty() {
        out.push_str(
            "# Enforcing the allow list refuses an address to every other client of every scope on this\n\
             # server. Uncomment only if that is what you want:\n\
             # Set-DhcpServerv4FilterList -ComputerName $ComputerName -Allow $true\n",
        );
    }
    out
}

/// UEFI HTTP boot firmware sends vendor class `HTTPClient:Arch:NNNNN…` and takes a URL in
/// option 67 only from an answer carrying option 60 `HTTPClient` (EDK2's HttpBootDxe).
/// Windows defines no option 60 of its own: it is added once (as Configuration Manager's
/// PXE guide does), unless the server has it already (WDS adds it).
fn http_boot(out: &mut String, target: &BootTarget, on_policy: &str, first_order: usize) {
    out.push_str(
        "\n# UEFI HTTP boot: firmware sends vendor class \"HTTPClient:Arch:\" and its option 93 code; it needs\n\
         # option 60 \"HTTPClient\" in the answer and the boot file as a URL in option 67.\n\
         if (-not (Get-DhcpServerv4OptionDefinition -ComputerName $ComputerName -OptionId 60 -ErrorAction SilentlyContinue)) {\n\
         \x20   Add-DhcpServerv4OptionDefinition -ComputerName $ComputerName -Name 'Vendor class identifier' -OptionId 60 -Type String\n\
         }\n",
    );
    for (order, http) in (first_order..).zip(&target.http_boot) {
        let (name, code) = (http.arch.name(), http.arch.code());
        let class = vendor_class(name, code);
        let policy = ps(&format!("PortaPXE {name}"));
        let _ = writeln!(
            out,
            "Add-DhcpServerv4Class -ComputerName $ComputerName -Name {} -Type Vendor -Data 'HTTPClient:Arch:{code:05}'",
            ps(&class),
        );
        let _ = writeln!(
            out,
            "Add-DhcpServerv4Policy {on_policy} -Name {policy} -Condition OR -ProcessingOrder {order} -VendorClass EQ,{}",
            ps(&format!("{class}*")),
        );
        let _ = writeln!(
            out,
            "Set-DhcpServerv4OptionValue {on_policy} -PolicyName {policy} -OptionId 60 -Value 'HTTPClient'"
        );
        let _ = writeln!(
            out,
            "Set-DhcpServerv4OptionValue {on_policy} -PolicyName {policy} -OptionId 67 -Value {}",
            ps(&http.url)
        );
    }
}

/// Vendor class name for one option 93 code, e.g. `PortaPXE efi-x64 00007`.
fn vendor_class(arch: &str, code: u16) -> String {
    format!("PortaPXE {arch} {code:05}")
}

/// A single-quoted (verbatim) PowerShell string: nothing is expanded, `'` is doubled.
fn ps(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Filter MACs as Windows writes them: `52-54-00-00-00-66`, or `AA-BB-CC-*-*-*` for a prefix.
fn filter_mac(pattern: &MacPattern) -> String {
    let (_, len) = mac_hex(pattern);
    let mut parts: Vec<String> = pattern.to_string().to_uppercase().split(':').map(str::to_owned).collect();
    parts.extend(std::iter::repeat_n("*".to_owned(), 6 - len));
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::super::sample_target;
    use super::*;

    #[test]
    fn sample_matches_the_golden_file() {
        assert_eq!(render(&sample_target()), include_str!("golden/windows.ps1"));
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no `{needle}` in\n{text}"))
    }

    #[test]
    fn ipxe_policy_comes_first_and_gets_the_script() {
        let text = render(&sample_target());
        let policies: Vec<&str> = text.lines().filter(|l| l.starts_with("Add-DhcpServerv4Policy")).collect();
        assert_eq!(policies.len(), 6, "{text}");
        assert!(policies[0].contains("-Name 'PortaPXE iPXE'") && policies[0].contains("-ProcessingOrder 1"));
        assert!(policies[0].ends_with("-UserClass EQ,'PortaPXE iPXE'"));
        for (order, policy) in (1..).zip(&policies) {
            assert!(policy.contains(&format!("-ProcessingOrder {order} ")), "{policy}");
        }
        assert!(text.contains("-PolicyName 'PortaPXE iPXE' -OptionId 67 -Value 'http://10.77.0.1/boot.ipxe'\n"));
        assert!(!text.contains("-PolicyName 'PortaPXE iPXE' -OptionId 66"), "iPXE takes next-server, not 66");
        assert!(
            line_of(&text, "-Name 'PortaPXE iPXE' -Type User") < line_of(&text, "-Name 'PortaPXE iPXE' -Condition")
        );
    }

    #[test]
    fn each_architecture_has_classes_a_policy_and_its_loader() {
        let text = render(&sample_target());
        for (code, class) in [(0, "bios"), (7, "efi-x64"), (9, "efi-x64"), (11, "efi-arm64")] {
            assert!(text.contains(&format!(
                "-Name 'PortaPXE {class} {code:05}' -Type Vendor -Data 'PXEClient:Arch:{code:05}'\n"
            )));
        }
        assert!(text.contains("-VendorClass EQ,'PortaPXE efi-x64 00007*','PortaPXE efi-x64 00009*'\n"));
        assert!(text.contains("-VendorClass EQ,'PortaPXE efi-arm64 00011*'\n"));
        assert!(text.contains("-VendorClass EQ,'PortaPXE bios 00000*'\n"));
        for (policy, file) in [("efi-x64", "ipxe.efi"), ("efi-arm64", "arm64/ipxe.efi"), ("bios", "undionly.kpxe")] {
            assert!(text.contains(&format!("-PolicyName 'PortaPXE {policy}' -OptionId 66 -Value '10.77.0.1'\n")));
            assert!(text.contains(&format!("-PolicyName 'PortaPXE {policy}' -OptionId 67 -Value '{file}'\n")));
        }
    }

    #[test]
    fn http_boot_firmware_gets_option_60_and_the_url() {
        let text = render(&sample_target());
        let define = line_of(
            &text,
            "Add-DhcpServerv4OptionDefinition -ComputerName $ComputerName -Name 'Vendor class identifier' -OptionId 60 -Type String",
        );
        assert!(line_of(&text, "Get-DhcpServerv4OptionDefinition -ComputerName $ComputerName -OptionId 60") < define);
        for (name, code, url) in [
            ("http-x64", 16, "http://10.77.0.1/signed-http-boot.iso"),
            ("http-arm64", 19, "http://10.77.0.1/arm64/ipxe.efi"),
        ] {
            let class = format!("-Name 'PortaPXE {name} {code:05}' -Type Vendor -Data 'HTTPClient:Arch:{code:05}'");
            assert!(define < line_of(&text, &class), "{text}");
            assert!(text.contains(&format!("-Name 'PortaPXE {name}' -Condition OR")));
            assert!(text.contains(&format!("-VendorClass EQ,'PortaPXE {name} {code:05}*'\n")));
            assert!(text.contains(&format!("-PolicyName 'PortaPXE {name}' -OptionId 60 -Value 'HTTPClient'\n")));
            assert!(text.contains(&format!("-PolicyName 'PortaPXE {name}' -OptionId 67 -Value '{url}'\n")));
        }
        let mut target = sample_target();
        target.http_boot.clear();
        assert!(!render(&target).contains("OptionId 60"), "no HTTP boot, no option 60");
    }

    #[test]
    fn deny_and_allow_become_filters_with_wildcards_for_prefixes() {
        let text = render(&sample_target());
        assert!(text.contains("-List Deny -MacAddress '52-54-00-00-00-66' -Description 'PortaPXE deny'\n"));
        assert!(text.contains("-List Deny -MacAddress 'AA-BB-CC-*-*-*' -Description 'PortaPXE deny'\n"));
        assert!(text.contains("\nSet-DhcpServerv4FilterList -ComputerName $ComputerName -Deny $true\n"));
        assert!(!text.contains("-List Allow"));

        let mut target = sample_target();
        target.rules.deny.clear();
        target.rules.allow = vec!["52:54:00".parse().unwrap(), "52:54:00:12:34".parse().unwrap()];
        let text = render(&target);
        assert!(text.contains("-List Allow -MacAddress '52-54-00-*-*-*' -Description 'PortaPXE allow'\n"));
        assert!(text.contains("-List Allow -MacAddress '52-54-00-12-34-*' -Description 'PortaPXE allow'\n"));
        assert!(text.contains("\n# Set-DhcpServerv4FilterList -ComputerName $ComputerName -Allow $true\n"), "{text}");
        assert!(!text.contains("-List Deny") && !text.contains("-Deny $true"));

        target.rules.allow.clear();
        assert!(!render(&target).contains("Filter"), "no rules, no filters");
    }

    #[test]
    fn strings_stay_verbatim() {
        let mut target = sample_target();
        target.bios_file = Some("it's $HOME.kpxe".into());
        target.ipxe_script = "boot.ipxe".into();
        let text = render(&target);
        assert!(text.contains("-OptionId 67 -Value 'it''s $HOME.kpxe'\n"), "{text}");
        assert!(text.contains("bare TFTP path"), "{text}");
        assert!(!render(&sample_target()).contains("bare TFTP path"));
    }
}
