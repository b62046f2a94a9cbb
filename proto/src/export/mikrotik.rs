//! MikroTik RouterOS v7 as one script block: an option 67 and an option set per boot file,
//! generic matchers on option 77 (iPXE) and option 93 (firmware architecture), and the
//! network's next-server. MAC rules RouterOS cannot express become comment lines. Every
//! construct is traced to MikroTik's documentation in `golden/SOURCES.md`.

use std::fmt::Write;

use super::{BootTarget, DhcpServerKind, arch_files, header, mac_hex};

pub(super) fn render(target: &BootTarget) -> String {
    let mut out = header(DhcpServerKind::Mikrotik, target, "#");
    out.push_str(
        "# RouterOS 7.4 or later (generic DHCP matcher). Paste it into a terminal or save it for /import;\n\
         # on 7.16 or later, `/import portapxe.rsc verbose=yes dry-run` checks it without changing anything.\n\
         # It is one block, so the :local variables below reach every line: set them to your DHCP server,\n\
         # its address pool and its network (the values shown are RouterOS's default configuration).\n\
         {\n\
         :local pxeServer \"defconf\"\n\
         :local pxePool \"default-dhcp\"\n\
         :local pxeNetwork 192.168.88.0/24\n\n",
    );

    let files = arch_files(target);
    out.push_str("# Each boot file travels in option 67, in an option set that a matcher picks per client.\n");
    let mut sets = vec![("ipxe", target.ipxe_script.as_str())];
    sets.extend(files.iter().map(|(name, _, file)| (*name, *file)));
    for (name, file) in &sets {
        let _ = writeln!(out, "/ip dhcp-server option add name=portapxe-{name} code=67 value={}", option_value(file));
    }
    for (name, _) in &sets {
        let _ = writeln!(out, "/ip dhcp-server option sets add name=portapxe-{name} options=portapxe-{name}");
    }

    out.push_str(
        "\n# iPXE sends user class (option 77) \"iPXE\" and must get the script, never the loader again.\n\
         # UNVERIFIED: MikroTik does not document which matcher applies when several match, and iPXE\n\
         # also sends option 93. The iPXE matcher is added first; check that an iPXE client gets the\n\
         # script (/system logging add topics=dhcp) before relying on it.\n",
    );
    let matcher = "/ip dhcp-server matcher add server=$pxeServer address-pool=$pxePool";
    let _ = writeln!(out, "{matcher} name=portapxe-ipxe code=77 value=\"iPXE\" option-set=portapxe-ipxe");
    for (name, codes, _) in &files {
        for code in *codes {
            let _ = writeln!(
                out,
                "{matcher} name=portapxe-{name}-{code} code=93 value=0x{code:04x} option-set=portapxe-{name}"
            );
        }
    }

    if !target.http_boot.is_empty() {
        out.push_str(
            "\n# UEFI HTTP boot firmware (option 93 = 16 x64, 19 ARM64) needs option 60 \"HTTPClient\" in the\n\
             # answer and the boot file as a URL in option 67; it asks for both, so neither needs force.\n",
        );
        let _ = writeln!(
            out,
            "/ip dhcp-server option add name=portapxe-httpclient code=60 value={}",
            option_value("HTTPClient")
        );
        for http in &target.http_boot {
            let name = http.arch.name();
            let _ = writeln!(
                out,
                "/ip dhcp-server option add name=portapxe-{name} code=67 value={}",
                option_value(&http.url)
            );
            let _ = writeln!(
                out,
                "/ip dhcp-server option sets add name=portapxe-{name} options=portapxe-httpclient,portapxe-{name}"
            );
            let _ = writeln!(
                out,
                "{matcher} name=portapxe-{name} code=93 value=0x{:04x} option-set=portapxe-{name}",
                http.arch.code()
            );
        }
    }

    let _ = write!(
        out,
        "\n# Firmware fetches its loader over TFTP from next-server. boot-file-name stays empty: iPXE\n\
         # prefers that BOOTP field to option 67, so a file name there would send it back to the loader.\n\
         /ip dhcp-server network set [find address=$pxeNetwork] next-server={} boot-file-name=\"\"\n",
        target.server_ip
    );

    let rules = &target.rules;
    if !rules.deny.is_empty() || !rules.allow.is_empty() {
        out.push_str(
            "\n# MAC rules. Matchers test the options a client sends, not its MAC address, so RouterOS cannot\n\
             # express these; nothing below is applied.\n",
        );
    }
    for pattern in &rules.deny {
        if mac_hex(pattern).1 == 6 {
            let _ = write!(
                out,
                "# deny {pattern}: the nearest tool is a static lease with block-access=yes, which MikroTik\n\
                 # documents only as \"Block access for this client\", not as \"do not answer\". If that suffices:\n\
                 # /ip dhcp-server lease add server=$pxeServer mac-address={} block-access=yes\n",
                pattern.to_string().to_uppercase()
            );
        } else {
            let _ = writeln!(
                out,
                "# deny {pattern} (a prefix): not expressible; a static lease needs a whole MAC address."
            );
        }
    }
    for pattern in &rules.allow {
        let _ = writeln!(
            out,
            "# allow {pattern}: not expressible; address-pool=static-only would refuse an address to every\n\
             # client without a static lease, not only to network boot."
        );
    }
    out.push_str("}\n");
    out
}

/// An option value RouterOS sends as these exact bytes: `"'text'"` (documented as ASCII) when
/// that cannot be misread, else hex (documented as "no conversion"). Text that looks like an
/// IP address or a number would be converted to binary, and `\ " $ ? '` are special in the
/// script string or the option syntax.
fn option_value(text: &str) -> String {
    let plain = text.bytes().all(|b| b.is_ascii_graphic() && !b"\\\"$?'".contains(&b))
        && text.parse::<std::net::Ipv4Addr>().is_err()
        && !text.bytes().all(|b| b.is_ascii_digit());
    if plain {
        format!("\"'{text}'\"")
    } else {
        text.bytes().fold("0x".to_owned(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample_target;
    use super::*;

    #[test]
    fn sample_matches_the_golden_file() {
        assert_eq!(render(&sample_target()), include_str!("golden/mikrotik.rsc"));
    }

    #[test]
    fn http_boot_firmware_gets_option_60_and_the_url() {
        let text = render(&sample_target());
        let commands = commands(&text);
        for line in [
            "/ip dhcp-server option add name=portapxe-httpclient code=60 value=\"'HTTPClient'\"",
            "/ip dhcp-server option add name=portapxe-http-x64 code=67 value=\"'http://10.77.0.1/signed-http-boot.iso'\"",
            "/ip dhcp-server option sets add name=portapxe-http-x64 options=portapxe-httpclient,portapxe-http-x64",
            "/ip dhcp-server option add name=portapxe-http-arm64 code=67 value=\"'http://10.77.0.1/arm64/ipxe.efi'\"",
        ] {
            assert!(commands.contains(&line), "missing `{line}` in\n{text}");
        }
        let mut target = sample_target();
        target.http_boot.clear();
        assert!(!render(&target).contains("code=60"), "no HTTP boot, no option 60");
    }

    fn commands(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with('/')).collect()
    }

    #[test]
    fn ipxe_matcher_first_then_each_architecture() {
        let text = render(&sample_target());
        let matchers: Vec<&str> = commands(&text).into_iter().filter(|l| l.contains(" matcher add ")).collect();
        let tail = |l: &str| l.split_once("address-pool=$pxePool ").map(|(_, t)| t.to_owned()).unwrap();
        assert_eq!(
            matchers.iter().map(|l| tail(l)).collect::<Vec<_>>(),
            [
                "name=portapxe-ipxe code=77 value=\"iPXE\" option-set=portapxe-ipxe",
                "name=portapxe-efi-x64-7 code=93 value=0x0007 option-set=portapxe-efi-x64",
                "name=portapxe-efi-x64-9 code=93 value=0x0009 option-set=portapxe-efi-x64",
                "name=portapxe-efi-arm64-11 code=93 value=0x000b option-set=portapxe-efi-arm64",
                "name=portapxe-bios-0 code=93 value=0x0000 option-set=portapxe-bios",
                "name=portapxe-http-x64 code=93 value=0x0010 option-set=portapxe-http-x64",
                "name=portapxe-http-arm64 code=93 value=0x0013 option-set=portapxe-http-arm64",
            ]
        );
        assert!(matchers.iter().all(|l| l.starts_with("/ip dhcp-server matcher add server=$pxeServer ")));
        for (name, value) in [
            ("ipxe", "\"'http://10.77.0.1/boot.ipxe'\""),
            ("efi-x64", "\"'ipxe.efi'\""),
            ("efi-arm64", "\"'arm64/ipxe.efi'\""),
            ("bios", "\"'undionly.kpxe'\""),
        ] {
            assert!(text.contains(&format!("/ip dhcp-server option add name=portapxe-{name} code=67 value={value}\n")));
            assert!(text.contains(&format!("sets add name=portapxe-{name} options=portapxe-{name}\n")));
        }
        assert!(text.contains("network set [find address=$pxeNetwork] next-server=10.77.0.1 boot-file-name=\"\"\n"));
        assert!(text.starts_with("# PortaPXE") && text.ends_with("}\n"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn every_variable_is_declared_in_the_block() {
        let text = render(&sample_target());
        let block = &text[text.find("\n{\n").unwrap()..];
        let declared: Vec<&str> =
            block.lines().filter_map(|l| l.strip_prefix(":local ")).filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(declared, ["pxeServer", "pxePool", "pxeNetwork"]);
        for line in commands(block) {
            for used in line.split('$').skip(1) {
                let name: String = used.chars().take_while(char::is_ascii_alphanumeric).collect();
                assert!(declared.contains(&name.as_str()), "`${name}` in {line}");
            }
        }
    }

    #[test]
    fn mac_rules_are_comments_only() {
        let mut target = sample_target();
        target.rules.allow = vec!["52:54:00".parse().unwrap()];
        let text = render(&target);
        assert!(!commands(&text).iter().any(|l| l.contains("lease") || l.contains("static-only")), "{text}");
        assert!(text.contains(
            "\n# /ip dhcp-server lease add server=$pxeServer mac-address=52:54:00:00:00:66 block-access=yes\n"
        ));
        assert!(text.contains("\n# deny aa:bb:cc (a prefix): not expressible"));
        assert!(text.contains("\n# allow 52:54:00: not expressible"));

        target.rules.deny.clear();
        target.rules.allow.clear();
        assert!(!render(&target).contains("MAC rules"));
    }

    #[test]
    fn values_that_routeros_would_convert_go_as_hex() {
        assert_eq!(option_value("ipxe.efi"), "\"'ipxe.efi'\"");
        assert_eq!(option_value("10.0.0.1"), "0x31302e302e302e31");
        assert_eq!(option_value("10"), "0x3130");
        assert_eq!(option_value("a$b"), "0x612462");
        assert_eq!(option_value("it's"), "0x69742773");
    }
}
