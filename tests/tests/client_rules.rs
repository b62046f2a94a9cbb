//! Client rules from a config file (`portapxe serve --config FILE`, full DHCP mode).
//!
//! The config allows one exact MAC and one OUI, denies one MAC inside that OUI, and
//! pins the allowed QEMU guest to the boot entry "Linux" (made by `--kernel`):
//! - udhcpc, MAC on the denylist (inside an allowed OUI): no lease, only "denylist" events;
//! - udhcpc, MAC allowed by its OUI and matched by no client rule: the default BIOS loader;
//! - a BIOS guest (QEMU's iPXE ROM) outside the allowlist: its DISCOVERs get no reply at
//!   all, it never gets a lease, nothing is transferred; it is then killed by PID;
//! - the allowlisted BIOS guest boots to its marker through the rule's own script
//!   (`rules/0.ipxe`, not `boot.ipxe`), kernel and initrd over our HTTP.
//!
//! The two QEMU guests run one after the other, to spare the CPU.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::events::{Event, EventsExt, parse_http_url};
use portapxe_lab::expect::{self, dhcp_story, finished_nonempty, finished_once, has_finished, transfer_story};
use portapxe_lab::guest::BIOS_FILE;
use portapxe_lab::process::wait_until;
use portapxe_lab::qemu::{self, Firmware};
use portapxe_lab::{Lab, Server, boot_setup, pool};

/// QEMU guest on the allowlist; client rule 0 pins it to the entry "Linux".
const ALLOWED: &str = "52:54:00:00:00:11";
/// QEMU guest outside the allowlist.
const OUTSIDER: &str = "52:54:00:00:00:22";
/// udhcpc: inside the allowed OUI `52:54:01`, but on the denylist (deny beats allow).
const DENIED: &str = "52:54:01:00:00:66";
/// udhcpc: allowed by the OUI `52:54:01`; no client rule matches it.
const OUI_ALLOWED: &str = "52:54:01:00:00:77";

/// Where the generated script for client rule 0 (the one with `entry`) is served.
const RULE_SCRIPT: &str = "rules/0.ipxe";

/// Bound for one guest: the boot to the marker, or the wait for the outsider's DISCOVERs.
const GUEST_TIMEOUT: Duration = Duration::from_secs(150);

fn config_text() -> String {
    format!(
        "# client_rules lab: flags on the command line add interface, root, pool and the kernel\n\
         [rules]\n\
         allow = [\"{ALLOWED}\", \"52:54:01\"]\n\
         deny = [\"{DENIED}\"]\n\
         \n\
         [[rules.client]]\n\
         mac = \"{ALLOWED}\"\n\
         entry = \"Linux\"\n"
    )
}

/// The DHCP events for `mac` that the rules silenced with a note containing `why`.
fn ignored(events: &[Event], mac: &str, why: &str) -> usize {
    events.dhcp_for(mac).iter().filter(|d| d.answered.is_none() && d.note.contains(why)).count()
}

/// Every DHCP event for `mac` is silence with a note containing `why`, and there are at least `min`.
fn only_ignored(events: &[Event], mac: &str, why: &str, min: usize) {
    let all = events.dhcp_for(mac);
    let answered: Vec<&str> = all.iter().filter_map(|d| d.answered.as_deref()).collect();
    assert!(
        answered.is_empty(),
        "{mac} must get no reply, but was answered {answered:?}:\n{}",
        dhcp_story(events, mac)
    );
    for event in &all {
        assert!(
            event.reason() == Some("ignored") && event.note.contains(why),
            "{mac}: expected every event to be ignored because it {why:?}, got note {:?}:\n{}",
            event.note,
            dhcp_story(events, mac)
        );
        assert!(
            event.address.is_none() && event.boot.is_none(),
            "{mac}: silenced event with an address or boot: {event:?}"
        );
    }
    assert!(all.len() >= min, "{mac}: expected at least {min} ignored DHCP events, got:\n{}", dhcp_story(events, mac));
}

#[test]
fn allowlist_denylist_and_entry_rule_from_the_config_file() {
    let mut lab = Lab::new("rules").unwrap();
    let (mut spec, guest) = boot_setup(&lab);
    let config = lab.dir().join("portapxe.toml");
    std::fs::write(&config, config_text()).unwrap();
    spec.extra.extend(["--config".to_owned(), config.display().to_string()]);
    let server = Server::start(&lab, &spec).unwrap();
    let work = lab.dir().join("clients");

    // 1a. Denylist beats the allowed OUI: udhcpc gets nothing.
    let denied = lab.add_client(DENIED).unwrap();
    let started = Instant::now();
    let result = clients::udhcpc(&denied, &PxeIdentity::bios(), &work);
    assert!(result.is_err(), "denylisted {DENIED} got a lease: {result:?}\n{}", dhcp_story(&server.events(), DENIED));
    let events = server.wait_for_events("two denylist events", Duration::from_secs(10), |e| {
        ignored(e, DENIED, "is on the denylist") >= 2
    });
    only_ignored(&events, DENIED, "is on the denylist", 2);
    eprintln!(
        "[rules] udhcpc {DENIED} (denylist) gave up after {:.1} s, no lease:\n{}",
        started.elapsed().as_secs_f64(),
        dhcp_story(&events, DENIED)
    );

    // 1b. The OUI on the allowlist lets in a MAC no client rule names: the default loader.
    let oui = lab.add_client(OUI_ALLOWED).unwrap();
    let lease = clients::udhcpc(&oui, &PxeIdentity::bios(), &work)
        .unwrap_or_else(|error| panic!("{OUI_ALLOWED} (allowed by OUI): {error:#}"));
    let story = || dhcp_story(&server.events(), OUI_ALLOWED);
    assert!(pool(&lab).contains(&lease.address), "{OUI_ALLOWED}: {} outside the pool\n{}", lease.address, story());
    assert_eq!(lease.boot_file(), BIOS_FILE, "{OUI_ALLOWED}: wrong boot file; lease {lease:?}\n{}", story());
    eprintln!("[rules] udhcpc {OUI_ALLOWED} (allowed by OUI): {} boot {:?}", lease.address, lease.boot_file());

    // 1c. A real BIOS guest outside the allowlist: no reply, no lease, no transfer.
    let tap = lab.add_tap().unwrap();
    let mut outsider = qemu::RunningGuest::start(&lab, &tap, Firmware::BiosIpxeRom, OUTSIDER).expect("starting QEMU");
    let seen = wait_until(GUEST_TIMEOUT, || {
        if let Some(status) = outsider.qemu.try_status() {
            panic!("outsider QEMU exited ({status}) before two DISCOVERs were ignored\n{}", outsider.report());
        }
        let events = server.events();
        (ignored(&events, OUTSIDER, "is not in the allowlist") >= 2).then_some(events)
    });
    let Some(events) = seen else {
        panic!(
            "no two ignored DHCP events for {OUTSIDER} within {GUEST_TIMEOUT:?}; its events:\n{}\n{}",
            dhcp_story(&server.events(), OUTSIDER),
            outsider.report()
        );
    };
    eprintln!(
        "[rules] outsider {OUTSIDER}: two DISCOVERs ignored {:.1} s after QEMU started",
        outsider.started.elapsed().as_secs_f64()
    );
    let report = outsider.report();
    let serial = outsider.kill();
    let events_after = server.events();
    for events in [&events, &events_after] {
        only_ignored(events, OUTSIDER, "is not in the allowlist", 2);
        assert!(
            events.transfers().is_empty(),
            "no client may have fetched anything yet, but:\n{}",
            transfer_story(events)
        );
    }
    // The guest's own view: iPXE tried DHCP and got no lease.
    assert!(!serial.contains("Filename:"), "the outsider's iPXE got a lease (Filename: on its console)\n{report}");
    eprintln!(
        "[rules] outsider {OUTSIDER}: console says DHCP tried: {}; events:\n{}",
        serial.contains("Configuring ("),
        dhcp_story(&events_after, OUTSIDER)
    );

    // 2. The allowlisted guest boots through the script of its client rule.
    let tap = lab.add_tap().unwrap();
    let boot = qemu::boot(&lab, &tap, Firmware::BiosIpxeRom, ALLOWED, &guest.marker, GUEST_TIMEOUT);
    eprintln!("BOOT TIME client_rules allowed bios_ipxe_rom: {:.1} s", boot.elapsed.as_secs_f64());

    let events =
        server.wait_for_events("HTTP transfers of kernel and initrd to finish", Duration::from_secs(10), |e| {
            has_finished(e, "vmlinuz") && has_finished(e, "initrd.img")
        });
    let answered: Vec<&str> = events.dhcp_for(ALLOWED).iter().filter_map(|d| d.answered.as_deref()).collect();
    assert!(
        answered.contains(&"OFFER") && answered.contains(&"ACK"),
        "{ALLOWED}: expected an OFFER and an ACK, got {answered:?}:\n{}",
        dhcp_story(&events, ALLOWED)
    );
    let ack = expect::acks(&events, ALLOWED)
        .into_iter()
        .rev()
        .find(|d| d.is_ipxe)
        .unwrap_or_else(|| panic!("no ACK to {ALLOWED} as an iPXE client:\n{}", dhcp_story(&events, ALLOWED)));
    let boot_url = ack.boot.as_deref().unwrap_or("");
    let expected = (server.ip.to_string(), server.http_port, format!("/{RULE_SCRIPT}"));
    assert_eq!(
        parse_http_url(boot_url),
        Some(expected),
        "{ALLOWED} matches client rule 0 (entry \"Linux\"): its iPXE must get the rule's script, got {boot_url:?}:\n{}",
        dhcp_story(&events, ALLOWED)
    );
    let address: Ipv4Addr =
        ack.address.unwrap_or_else(|| panic!("ACK to {ALLOWED} without an address:\n{}", dhcp_story(&events, ALLOWED)));
    assert!(pool(&lab).contains(&address), "{ALLOWED} got {address}, outside the pool");
    finished_nonempty(&events, "http", RULE_SCRIPT, address);
    finished_once(&events, "http", "vmlinuz", address, guest.kernel_size());
    finished_once(&events, "http", "initrd.img", address, guest.initrd_size());
    assert!(
        expect::transfers_of(&events, "http", "boot.ipxe", address).is_empty(),
        "{ALLOWED} is pinned to an entry and must not fetch the menu script:\n{}",
        transfer_story(&events)
    );

    // Nothing changed for the shut-out clients, and only the allowed guest fetched anything.
    only_ignored(&events, OUTSIDER, "is not in the allowlist", 2);
    only_ignored(&events, DENIED, "is on the denylist", 2);
    let strangers: Vec<String> = events
        .transfers()
        .iter()
        .filter(|t| t.client.ip() != address)
        .map(|t| format!("{} {} {}", t.protocol, t.client, t.file))
        .collect();
    assert!(strangers.is_empty(), "transfers to clients other than {ALLOWED} ({address}): {strangers:?}");
    eprintln!("[rules] {ALLOWED} acked {address} with {boot_url}; DHCP:\n{}", dhcp_story(&events, ALLOWED));
}
