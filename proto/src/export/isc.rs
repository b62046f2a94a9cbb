use std::fmt::Write;

use super::{BootTarget, DhcpServerKind, arch_files, header, mac_hex};

pub(super) fn render(target: &BootTarget) -> String {
    let mut out = header(DhcpServerKind::IscDhcpd, target, "#");
    out.push_str("# Put the option definition at the top level of dhcpd.conf and the rest in your subnet block.\n\n");
    out.push_str("option portapxe-client-arch code 93 = unsigned integer 16;\n\n");
    let _ = writeln!(out, "next-server {};", target.server_ip);
    // iPXE first, so the loader it runs is never handed out again (the chainload loop).
    let _ = writeln!(out, "if exists user-class and option user-class = \"iPXE\" {{");
    let _ = writeln!(out, "    filename \"{}\";", target.ipxe_script);
    // iPXE stops waiting for a proxyDHCP offer when it sees PXEClient (2 s saved per boot).
    out.push_str("    option vendor-class-identifier \"PXEClient\";\n");
    // UEFI HTTP boot: a URL, and option 60 `HTTPClient`, without which EDK2 ignores the offer.
    for http in &target.http_boot {
        let code = http.arch.code();
        let _ = writeln!(out, "}} elsif option portapxe-client-arch = {:02x}:{:02x} {{", code >> 8, code & 0xff);
        let _ = writeln!(out, "    filename \"{}\";", http.url);
        out.push_str("    option vendor-class-identifier \"HTTPClient\";\n");
    }
    for (_, codes, file) in arch_files(target) {
        let test: Vec<String> = codes
            .iter()
            .map(|code| format!("option portapxe-client-arch = {:02x}:{:02x}", code >> 8, code & 0xff))
            .collect();
        let _ = writeln!(out, "}} elsif {} {{", test.join(" or "));
        let _ = writeln!(out, "    filename \"{file}\";");
    }
    out.push_str("}\n");

    let rules = &target.rules;
    for (index, pattern) in rules.deny.iter().enumerate() {
        let (hex, len) = mac_hex(pattern);
        if len == 6 {
            let _ = write!(out, "\nhost portapxe-deny-{index} {{ hardware ethernet {pattern}; deny booting; }}\n");
        } else {
            let _ = write!(
                out,
                "\n# Denied prefix {pattern}: add `deny members of \"portapxe-deny-{index}\";` to your pool.\n\
                 class \"portapxe-deny-{index}\" {{ match if substring(hardware, 1, {len}) = {}; }}\n",
                colon_hex(&hex)
            );
        }
    }
    if !rules.allow.is_empty() {
        out.push_str("\n# Only these machines may boot: add `allow members of \"portapxe-allowed\";` to your pool.\n");
        out.push_str("class \"portapxe-allowed\" {\n    match if ");
        let tests: Vec<String> = rules
            .allow
            .iter()
            .map(|pattern| {
                let (hex, len) = mac_hex(pattern);
                format!("substring(hardware, 1, {len}) = {}", colon_hex(&hex))
            })
            .collect();
        out.push_str(&tests.join("\n          or "));
        out.push_str(";\n}\n");
    }
    out
}

fn colon_hex(hex: &str) -> String {
    hex.as_bytes().chunks(2).map(|pair| String::from_utf8_lossy(pair).into_owned()).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::super::sample_target;
    use super::*;

    #[test]
    fn ipxe_first_then_each_architecture() {
        let text = render(&sample_target());
        let ipxe = text.find("option user-class = \"iPXE\"").unwrap();
        let efi = text.find("option portapxe-client-arch = 00:07 or option portapxe-client-arch = 00:09").unwrap();
        let bios = text.find("option portapxe-client-arch = 00:00").unwrap();
        assert!(ipxe < efi && efi < bios, "{text}");
        assert!(text.contains("next-server 10.77.0.1;"));
        assert!(text.contains("    option vendor-class-identifier \"PXEClient\";\n} elsif"), "{text}");
        assert!(text.contains("filename \"http://10.77.0.1/boot.ipxe\";"));
        assert!(text.contains("filename \"arm64/ipxe.efi\";"));
        assert!(
            text.contains(
                "} elsif option portapxe-client-arch = 00:10 {\n    filename \"http://10.77.0.1/signed-http-boot.iso\";\n    \
                 option vendor-class-identifier \"HTTPClient\";\n} elsif"
            ),
            "{text}"
        );
        assert!(
            text.contains("option portapxe-client-arch = 00:13 {\n    filename \"http://10.77.0.1/arm64/ipxe.efi\";")
        );
        assert!(text.contains("host portapxe-deny-0 { hardware ethernet 52:54:00:00:00:66; deny booting; }"));
        assert!(text.contains("match if substring(hardware, 1, 3) = aa:bb:cc;"));
        assert_eq!(text.matches('{').count(), text.matches('}').count(), "{text}");
    }
}
