use serde_json::{Value, json};

use super::{BootTarget, arch_files, mac_hex};

/// A `Dhcp4` fragment to merge into kea-dhcp4.conf: client classes carry next-server
/// and boot-file-name; the special `DROP` class makes Kea ignore denied machines.
pub(super) fn render(target: &BootTarget) -> String {
    let next_server = target.server_ip.to_string();
    let mut classes = vec![json!({
        "name": "portapxe-ipxe",
        "test": "option[77].hex == 'iPXE'",
        "next-server": next_server,
        "boot-file-name": target.ipxe_script,
        // iPXE stops waiting for a proxyDHCP offer when it sees PXEClient (2 s saved per boot).
        "option-data": [{ "name": "vendor-class-identifier", "data": "PXEClient" }],
    })];
    for (name, codes, file) in arch_files(target) {
        let tests: Vec<String> = codes.iter().map(|code| format!("option[93].hex == 0x{code:04x}")).collect();
        classes.push(json!({
            "name": format!("portapxe-{name}"),
            "test": format!("({}) and not member('portapxe-ipxe')", tests.join(" or ")),
            "next-server": next_server,
            "boot-file-name": file,
        }));
    }
    // UEFI HTTP boot: a URL, and option 60 `HTTPClient` (sent even if the client's list of
    // wanted options lacks it), without which EDK2 ignores the offer.
    for http in &target.http_boot {
        classes.push(json!({
            "name": format!("portapxe-{}", http.arch.name()),
            "test": format!("option[93].hex == 0x{:04x} and not member('portapxe-ipxe')", http.arch.code()),
            "boot-file-name": http.url,
            "option-data": [{ "name": "vendor-class-identifier", "data": "HTTPClient", "always-send": true }],
        }));
    }
    let rules = &target.rules;
    let mac_test = |pattern| {
        let (hex, len) = mac_hex(pattern);
        format!("substring(pkt4.mac, 0, {len}) == 0x{hex}")
    };
    let mut drop: Vec<String> = rules.deny.iter().map(mac_test).collect();
    if !rules.allow.is_empty() {
        let allowed: Vec<String> = rules.allow.iter().map(mac_test).collect();
        drop.push(format!("not ({})", allowed.join(" or ")));
    }
    if !drop.is_empty() {
        classes.insert(0, json!({ "name": "DROP", "test": drop.join(" or ") }));
    }
    let fragment = json!({ "Dhcp4": { "client-classes": classes } });
    let mut text = serde_json::to_string_pretty(&fragment).unwrap_or_else(|_| Value::Null.to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::super::sample_target;
    use super::*;

    #[test]
    fn fragment_is_json_with_drop_first_and_ipxe_before_loaders() {
        let value: Value = serde_json::from_str(&render(&sample_target())).unwrap();
        let classes = value["Dhcp4"]["client-classes"].as_array().unwrap();
        let names: Vec<&str> = classes.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "DROP",
                "portapxe-ipxe",
                "portapxe-efi-x64",
                "portapxe-efi-arm64",
                "portapxe-bios",
                "portapxe-http-x64",
                "portapxe-http-arm64"
            ]
        );
        assert_eq!(classes[5]["test"], "option[93].hex == 0x0010 and not member('portapxe-ipxe')");
        assert_eq!(classes[5]["boot-file-name"], "http://10.77.0.1/signed-http-boot.iso");
        assert_eq!(classes[5]["option-data"][0]["data"], "HTTPClient");
        assert_eq!(classes[5]["option-data"][0]["always-send"], true);
        assert_eq!(classes[6]["test"], "option[93].hex == 0x0013 and not member('portapxe-ipxe')");
        assert_eq!(
            classes[0]["test"],
            "substring(pkt4.mac, 0, 6) == 0x525400000066 or substring(pkt4.mac, 0, 3) == 0xaabbcc"
        );
        assert_eq!(
            classes[2]["test"],
            "(option[93].hex == 0x0007 or option[93].hex == 0x0009) and not member('portapxe-ipxe')"
        );
        assert_eq!(classes[1]["boot-file-name"], "http://10.77.0.1/boot.ipxe");
        assert_eq!(classes[1]["option-data"][0]["data"], "PXEClient");
        assert_eq!(classes[4]["next-server"], "10.77.0.1");
    }
}
