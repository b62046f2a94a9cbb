//! TFTP and HTTP answer only on the serving interface. A host behind a second
//! interface of the server (a laptop's corporate Wi-Fi), with a route to the serving
//! address through it, gets nothing; a client on the bench segment gets its file.

use std::time::Duration;

use portapxe_lab::process::{run_bounded, run_ok};
use portapxe_lab::{Lab, Server, ServerSpec, clients};

#[test]
fn a_host_behind_another_interface_gets_no_boot_files() {
    let mut lab = Lab::new("other-interface").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    std::fs::write(spec.root.join("answers.cfg"), b"root password here").unwrap();
    let server = Server::start(&lab, &spec).unwrap();

    // The corporate side: a namespace joined to the server's by its own veth pair,
    // with a route to the bench subnet through the server.
    let corp = format!("{}-corp", lab.name);
    run_ok("ip", &["netns", "add", &corp]).unwrap();
    let cleanup = Cleanup(corp.clone());
    let srv = lab.server_ns().to_owned();
    run_ok("ip", &["-n", &srv, "link", "add", "corp0", "type", "veth", "peer", "name", "eth0", "netns", &corp])
        .unwrap();
    run_ok("ip", &["-n", &srv, "addr", "add", "10.99.0.1/24", "dev", "corp0"]).unwrap();
    run_ok("ip", &["-n", &srv, "link", "set", "corp0", "up"]).unwrap();
    run_ok("ip", &["-n", &corp, "addr", "add", "10.99.0.2/24", "dev", "eth0"]).unwrap();
    run_ok("ip", &["-n", &corp, "link", "set", "eth0", "up"]).unwrap();
    run_ok("ip", &["-n", &corp, "link", "set", "lo", "up"]).unwrap();
    let bench = format!("{}.0/24", lab.ip(0).to_string().rsplit_once('.').unwrap().0);
    run_ok("ip", &["-n", &corp, "route", "add", &bench, "via", "10.99.0.1"]).unwrap();
    let url = format!("http://{}/answers.cfg", server.ip);
    let server_ip = server.ip.to_string();
    let from_corp = |program: &str, args: &[&str]| {
        let mut command = portapxe_lab::netns::netns_command(&corp, program);
        run_bounded(program, command.args(args), Duration::from_secs(30)).unwrap()
    };
    // The route works: the serving address answers ping from the corporate side.
    let ping = from_corp("busybox", &["ping", "-c", "1", "-W", "2", &server_ip]);
    assert!(ping.success(), "no route from the corporate side to {}: {ping}", server.ip);
    let curl = from_corp("curl", &["-s", "-o", "/dev/null", "--max-time", "3", &url]);
    assert!(!curl.success(), "HTTP answered a host behind another interface: {curl}");
    let tftp = from_corp("busybox", &["tftp", "-g", "-r", "answers.cfg", "-l", "/dev/null", &server_ip]);
    assert!(!tftp.success(), "TFTP answered a host behind another interface: {tftp}");

    // Positive control: a client on the bench segment gets the file over both.
    let client = lab.add_client("52:54:00:0c:00:01").unwrap();
    client.add_address(lab.ip(240)).unwrap();
    let work = lab.dir().join("client");
    std::fs::create_dir_all(&work).unwrap();
    let got = clients::tftp_get(&client, server.ip, "answers.cfg", &work).unwrap();
    assert_eq!(got, b"root password here");
    let curl =
        run_bounded("curl", client.command("curl").args(["-sf", "-o", "/dev/null", &url]), Duration::from_secs(10))
            .unwrap();
    assert!(curl.success(), "HTTP on the bench segment: {curl}");
    drop(cleanup);
}

/// Deletes the corporate namespace (and the veth with it), also after a failed assertion.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run_ok("ip", &["netns", "del", &self.0]);
    }
}
