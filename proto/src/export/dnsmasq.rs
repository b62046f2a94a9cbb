use std::fmt::Write;

use super::{BootTarget, DhcpServerKind, arch_files, header, mac_hex};

pub(super) fn render(target: &BootTarget) -> String {
    let mut out = header(DhcpServerKind::Dnsmasq, target, "#");
    out.push('\n');
    // iPXE always sends option 175; its user-class is `iPXE`.
    out.push_str("dhcp-match=set:portapxe-ipxe,175\ndhcp-userclass=set:portapxe-ipxe,iPXE\n");
    let files = arch_files(target);
    for (name, codes, _) in &files {
        for code in *codes {
            let _ = writeln!(out, "dhcp-match=set:portapxe-{name},option:client-arch,{code}");
        }
    }
    let ip = target.server_ip;
    let _ = writeln!(out, "dhcp-boot=tag:portapxe-ipxe,{}", target.ipxe_script);
    // iPXE stops waiting for a proxyDHCP offer when it sees PXEClient (2 s saved per boot).
    out.push_str("dhcp-option-force=tag:portapxe-ipxe,option:vendor-class,PXEClient\n");
    for (name, _, file) in &files {
        let _ = writeln!(out, "dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-{name},{file},,{ip}");
    }
    // UEFI HTTP boot: a URL, and option 60 `HTTPClient`, without which EDK2 ignores the offer.
    for http in &target.http_boot {
        let name = http.arch.name();
        let _ = writeln!(out, "dhcp-match=set:portapxe-{name},option:client-arch,{}", http.arch.code());
        let _ = writeln!(out, "dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-{name},{}", http.url);
        let _ = writeln!(out, "dhcp-option-force=tag:portapxe-{name},option:vendor-class,HTTPClient");
    }
    let rules = &target.rules;
    for pattern in &rules.deny {
        let _ = writeln!(out, "dhcp-host={},ignore", wildcard(pattern));
    }
    if !rules.allow.is_empty() {
        for pattern in &rules.allow {
            let _ = writeln!(out, "dhcp-host={},set:portapxe-allowed", wildcard(pattern));
        }
        out.push_str("dhcp-ignore=tag:!portapxe-allowed\n");
    }
    out
}

/// dnsmasq matches a MAC prefix with `*` for each byte left open.
fn wildcard(pattern: &crate::rules::MacPattern) -> String {
    let (_, len) = mac_hex(pattern);
    let mut parts: Vec<String> = pattern.to_string().split(':').map(str::to_owned).collect();
    parts.extend(std::iter::repeat_n("*".to_owned(), 6 - len));
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::super::sample_target;
    use super::*;

    #[test]
    fn tags_per_arch_and_ipxe_excluded_from_loaders() {
        let mut target = sample_target();
        target.rules.allow = vec!["52:54:00".parse().unwrap()];
        let text = render(&target);
        for line in [
            "dhcp-match=set:portapxe-ipxe,175",
            "dhcp-match=set:portapxe-efi-x64,option:client-arch,7",
            "dhcp-match=set:portapxe-efi-x64,option:client-arch,9",
            "dhcp-match=set:portapxe-bios,option:client-arch,0",
            "dhcp-boot=tag:portapxe-ipxe,http://10.77.0.1/boot.ipxe",
            "dhcp-option-force=tag:portapxe-ipxe,option:vendor-class,PXEClient",
            "dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-efi-x64,ipxe.efi,,10.77.0.1",
            "dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-bios,undionly.kpxe,,10.77.0.1",
            "dhcp-host=52:54:00:00:00:66,ignore",
            "dhcp-host=aa:bb:cc:*:*:*,ignore",
            "dhcp-host=52:54:00:*:*:*,set:portapxe-allowed",
            "dhcp-ignore=tag:!portapxe-allowed",
            "dhcp-match=set:portapxe-http-x64,option:client-arch,16",
            "dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-http-x64,http://10.77.0.1/signed-http-boot.iso",
            "dhcp-option-force=tag:portapxe-http-x64,option:vendor-class,HTTPClient",
            "dhcp-match=set:portapxe-http-arm64,option:client-arch,19",
            "dhcp-boot=tag:!portapxe-ipxe,tag:portapxe-http-arm64,http://10.77.0.1/arm64/ipxe.efi",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
    }
}
