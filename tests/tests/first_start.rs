//! A newcomer's first start: the real binary with a fresh `HOME`, no `XDG_*`
//! variables, no `--state-dir` and no config file, in the default mode (full DHCP).
//! Nothing is prepared for it: the folder for its leases does not exist yet.

use std::path::Path;

use portapxe_lab::clients::{self, Lease, PxeIdentity};
use portapxe_lab::guest::BIOS_FILE;
use portapxe_lab::server::leases_on_disk;
use portapxe_lab::{ClientNs, Lab, Server, ServerSpec, expect, pool};

fn lease(client: &ClientNs, lab: &Lab) -> Lease {
    clients::udhcpc(client, &PxeIdentity::bios(), &lab.dir().join("clients"))
        .unwrap_or_else(|error| panic!("udhcpc (MAC {}): {error:#}", client.mac))
}

/// Where the platform keeps a Linux user's data when `XDG_DATA_HOME` is unset.
fn lease_file(home: &Path) -> std::path::PathBuf {
    home.join(".local/share/portapxe/leases.json")
}

#[test]
fn full_dhcp_starts_in_a_fresh_home_and_finds_its_leases_again() {
    let mut lab = Lab::new("first-start").unwrap();
    let home = lab.dir().join("home/newcomer");
    let spec = ServerSpec::new(&lab).unwrap().as_newcomer(&home);
    portapxe_lab::guest::install_ipxe_binaries(&spec.root).unwrap();
    assert!(!home.join(".local").exists(), "the home folder must start empty");

    let mut server = Server::start(&lab, &spec).unwrap();
    let first = lab.add_client("52:54:00:f1:00:01").unwrap();
    let got = lease(&first, &lab);
    let story = |server: &Server, mac: &str| expect::dhcp_story(&server.events(), mac);
    assert!(pool(&lab).contains(&got.address), "{} outside the pool\n{}", got.address, story(&server, &first.mac));
    assert_eq!(got.boot_file(), BIOS_FILE, "BIOS boot file; lease {got:?}\n{}", story(&server, &first.mac));
    assert_eq!(got.next_server, Some(server.ip), "next-server; lease {got:?}");
    server.stop();

    // The platform data folder was made, private to the user, and holds the lease.
    let file = lease_file(&home);
    let folder = file.parent().unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(folder).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "{} has mode {:o}", folder.display(), mode & 0o777);
    let saved = leases_on_disk(&file);
    assert!(saved.iter().any(|(_, at)| *at == got.address), "the lease of {} is not on disk: {saved:?}", got.address);

    // A second start with the same HOME knows the first client: a newcomer gets
    // another address, the first client its own again.
    let server = Server::start(&lab, &spec).unwrap();
    let second = lab.add_client("52:54:00:f1:00:02").unwrap();
    let other = lease(&second, &lab);
    assert_ne!(other.address, got.address, "the first lease was forgotten\n{}", story(&server, &second.mac));
    let again = lease(&first, &lab);
    assert_eq!(again.address, got.address, "the first client lost its address\n{}", story(&server, &first.mac));
}

#[test]
fn a_state_folder_that_cannot_be_made_is_named_with_what_to_do() {
    let lab = Lab::new("first-start-blocked").unwrap();
    // A file where the folder should be: nothing can be created under it.
    let blocked = lab.dir().join("not-a-folder");
    std::fs::write(&blocked, b"a file").unwrap();
    let state = blocked.join("state");
    let mut spec = ServerSpec::new(&lab).unwrap();
    spec.state_dir = Some(state.clone());
    portapxe_lab::guest::install_ipxe_binaries(&spec.root).unwrap();
    let error = Server::start(&lab, &spec).err().expect("the start must fail");
    let text = format!("{error:#}");
    let line = text
        .lines()
        .find(|line| line.starts_with("portapxe:"))
        .unwrap_or_else(|| panic!("no error line from portapxe:\n{text}"));
    assert!(line.contains(&state.display().to_string()), "names the folder: {line}");
    assert!(line.contains("--state-dir") && line.contains("Settings"), "says what to do: {line}");
    let reason = "Not a directory";
    assert_eq!(line.matches(reason).count(), 1, "the reason once: {line}");
}
