//! Leases survive a full disk: the state folder is a small tmpfs, filled while clients
//! keep asking. Every lease whose ACK a client received is there after a restart, a
//! client that could not be recorded got no ACK, and the server starts with the disk
//! nearly full.

use std::path::{Path, PathBuf};
use std::process::Command;

use portapxe_lab::clients::{self, PxeIdentity};
use portapxe_lab::events::EventsExt;
use portapxe_lab::server::leases_on_disk;
use portapxe_lab::{ClientNs, Lab, Server, ServerSpec};

/// A tmpfs mounted for the test and unmounted when dropped, also after a panic.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(mounted.success(), "mount a tmpfs (needs root)");
        Self { path: path.to_path_buf() }
    }

    fn free_bytes(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.path).unwrap();
        stat.blocks_available() * stat.fragment_size()
    }

    /// Fills the disk up to `leave` free bytes with one file (replacing an earlier one).
    fn fill(&self, leave: u64) {
        let filler = self.path.join("filler");
        let earlier = std::fs::metadata(&filler).map_or(0, |m| m.len());
        let size = (self.free_bytes() + earlier).saturating_sub(leave);
        std::fs::write(&filler, vec![0u8; size as usize]).unwrap();
    }

    fn empty(&self) {
        let _ = std::fs::remove_file(self.path.join("filler"));
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn lease_of(client: &ClientNs, mac: &str, lab: &Lab) -> Option<std::net::Ipv4Addr> {
    portapxe_lab::netns::netns_command(&client.ns, "ip")
        .args(["link", "set", client.interface(), "address", mac])
        .status()
        .unwrap();
    clients::udhcpc(client, &PxeIdentity::bios(), &lab.dir().join("clients")).ok().map(|lease| lease.address)
}

#[test]
fn acknowledged_leases_survive_a_full_disk_and_the_server_starts_on_one() {
    let mut lab = Lab::new("lease-full-disk").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    portapxe_lab::guest::install_ipxe_binaries(&spec.root).unwrap();
    let state = spec.state_dir.clone().unwrap();
    let disk = SmallDisk::mount(&state, "1m");
    let client = lab.add_client("52:54:00:fd:00:00").unwrap();

    // Leases from a first run, then a restart with about 300 KB free: it starts.
    let mut server = Server::start(&lab, &spec).unwrap();
    let mut acked = Vec::new();
    for n in 0..3 {
        let mac = format!("52:54:00:fd:00:{n:02x}");
        acked.push((mac.clone(), lease_of(&client, &mac, &lab).expect("a lease with room on the disk")));
    }
    server.stop();
    disk.fill(300 * 1024);
    let mut server = Server::start(&lab, &spec).unwrap();
    eprintln!("[full-disk] started with {} KB free", disk.free_bytes() / 1024);

    // Now almost nothing is left: clients ask until the journal cannot take a lease.
    disk.fill(4096); // one page of tmpfs: some leases fit, then the journal is full
    let mut refused = None;
    for n in 3..40 {
        let mac = format!("52:54:00:fd:00:{n:02x}");
        match lease_of(&client, &mac, &lab) {
            Some(address) => acked.push((mac, address)),
            None => {
                refused = Some(mac);
                break;
            }
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("the disk never filled: {} KB free", disk.free_bytes() / 1024));
    eprintln!("[full-disk] {} leases acknowledged, then {refused} got no ACK: the disk was full", acked.len());
    let withheld = server.events().services().iter().any(|s| s.service == "dhcp" && s.message.contains("withheld"));
    assert!(withheld, "the log says replies were withheld\n{}", server.report());
    server.assert_alive();
    server.stop();

    // Room again: the restart finds every acknowledged lease, and no torn line.
    disk.empty();
    let mut server = Server::start(&lab, &spec).unwrap();
    let torn = server.events().services().iter().any(|s| s.message.contains("unreadable"));
    assert!(!torn, "a torn journal line was left behind\n{}", server.report());
    server.stop();
    let on_disk = leases_on_disk(&state.join("leases.json"));
    for (mac, address) in &acked {
        let found = on_disk.iter().any(|(kept, at)| kept.eq_ignore_ascii_case(mac) && at == address);
        assert!(found, "{mac} was acknowledged {address} but is not on disk: {on_disk:?}");
    }
    drop(disk);
}
