//! Real DHCP clients with PXE options (busybox udhcpc, ISC dhclient) get a lease from
//! the pool, the right boot file and next-server; leases survive a server restart.

use portapxe_lab::clients::{self, Lease, PxeIdentity};
use portapxe_lab::guest::{BIOS_FILE, UEFI_FILE};
use portapxe_lab::{ClientNs, Lab, Server, ServerSpec, expect, pool};

#[derive(Clone, Copy, Debug)]
enum Client {
    Udhcpc,
    Dhclient,
}

fn lease(kind: Client, client: &ClientNs, who: &PxeIdentity, lab: &Lab) -> Lease {
    let work = lab.dir().join("clients");
    let result = match kind {
        Client::Udhcpc => clients::udhcpc(client, who, &work),
        Client::Dhclient => clients::dhclient(client, who, &work),
    };
    result.unwrap_or_else(|error| panic!("{kind:?} (arch {}, MAC {}): {error:#}", who.arch, client.mac))
}

fn server_spec(lab: &Lab) -> ServerSpec {
    let spec = ServerSpec::new(lab).unwrap();
    portapxe_lab::guest::install_ipxe_binaries(&spec.root).unwrap();
    spec
}

#[test]
fn pxe_clients_get_pool_address_boot_file_and_next_server() {
    let mut lab = Lab::new("dhcp-clients").unwrap();
    let server = Server::start(&lab, &server_spec(&lab)).unwrap();
    let cases = [
        (Client::Udhcpc, PxeIdentity::bios(), "52:54:00:d1:00:00", BIOS_FILE),
        (Client::Udhcpc, PxeIdentity::uefi(), "52:54:00:d1:00:07", UEFI_FILE),
        (Client::Dhclient, PxeIdentity::bios(), "52:54:00:d2:00:00", BIOS_FILE),
        (Client::Dhclient, PxeIdentity::uefi(), "52:54:00:d2:00:07", UEFI_FILE),
    ];
    let mut addresses = Vec::new();
    for (kind, who, mac, expected_file) in cases {
        let client = lab.add_client(mac).unwrap();
        let got = lease(kind, &client, &who, &lab);
        eprintln!(
            "{kind:?} arch {}: {} boot {:?} next-server {:?}",
            who.arch,
            got.address,
            got.boot_file(),
            got.next_server
        );
        let story = || expect::dhcp_story(&server.events(), mac);
        assert!(pool(&lab).contains(&got.address), "{kind:?} {mac}: {} outside the pool\n{}", got.address, story());
        assert_eq!(
            got.boot_file(),
            expected_file,
            "{kind:?} arch {}: wrong boot file; lease {got:?}\n{}",
            who.arch,
            story()
        );
        assert_eq!(got.next_server, Some(server.ip), "{kind:?} arch {}: next-server; lease {got:?}", who.arch);
        assert!(!addresses.contains(&got.address), "{} handed out twice ({addresses:?})", got.address);
        addresses.push(got.address);
    }
}

#[test]
fn same_mac_gets_same_address_after_restart() {
    let mut lab = Lab::new("dhcp-restart").unwrap();
    let spec = server_spec(&lab);
    let mut server = Server::start(&lab, &spec).unwrap();
    let first = lab.add_client("52:54:00:d3:00:01").unwrap();
    let second = lab.add_client("52:54:00:d3:00:02").unwrap();
    let first_lease = lease(Client::Udhcpc, &first, &PxeIdentity::bios(), &lab);
    let second_lease = lease(Client::Dhclient, &second, &PxeIdentity::uefi(), &lab);
    assert_ne!(first_lease.address, second_lease.address);

    let status = server.stop();
    assert!(status.success(), "portapxe should exit cleanly on SIGTERM, got {status}");
    drop(server);
    let server = Server::start(&lab, &spec).unwrap();

    // Ask in the opposite order: a server that forgot its leases would hand the
    // lowest free address to whoever asks first.
    let second_again = lease(Client::Dhclient, &second, &PxeIdentity::uefi(), &lab);
    let first_again = lease(Client::Udhcpc, &first, &PxeIdentity::bios(), &lab);
    let events = server.events();
    assert_eq!(
        second_again.address,
        second_lease.address,
        "{} got a new address after the restart; DHCP events after restart:\n{}",
        second.mac,
        expect::dhcp_story(&events, &second.mac)
    );
    assert_eq!(
        first_again.address,
        first_lease.address,
        "{} got a new address after the restart; DHCP events after restart:\n{}",
        first.mac,
        expect::dhcp_story(&events, &first.mac)
    );
}
