//! One host on the segment opens 1,100 idle HTTP connections and 1,000 slow ones that
//! drip their request heads a byte at a time (slowloris). A machine next to it must
//! still download its files at once, and the server must stay small: the per-client
//! connection limit closes the flood's surplus at once, and the head timeout closes
//! the slow heads it admitted.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use portapxe_lab::netns::in_netns;
use portapxe_lab::{Lab, Server, ServerSpec};

const ATTACKER_MAC: &str = "52:54:00:18:00:01";
const CLIENT_MAC: &str = "52:54:00:18:00:02";
const IDLE: usize = 1100;
const SLOW: usize = 1000;
const FILE_LEN: usize = 20 * 1024 * 1024;

/// A process's resident memory (VmRSS) in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    kib * 1024
}

/// Open descriptors of a process.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|dir| dir.count()).unwrap_or(0)
}

#[test]
fn idle_and_slow_connections_from_one_host_do_not_stop_a_download() {
    let mut lab = Lab::new("http-flood").unwrap();
    let spec = ServerSpec::new(&lab).unwrap();
    std::fs::write(spec.root.join("initrd.img"), vec![0x5a; FILE_LEN]).unwrap();
    let server = Server::start(&lab, &spec).unwrap();
    let pid = server.pid().expect("server pid");
    let attacker = lab.add_client(ATTACKER_MAC).unwrap();
    attacker.add_address(lab.ip(250)).unwrap();
    let client = lab.add_client(CLIENT_MAC).unwrap();
    client.add_address(lab.ip(251)).unwrap();
    let target = SocketAddr::from((server.ip, server.http_port));
    let rss_before = rss(pid);

    // The attacker's sockets live in its namespace; they stay open after the closure returns.
    let (idle, mut slow) = in_netns(&attacker.ns, || {
        let connect = || TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok();
        let idle: Vec<TcpStream> = (0..IDLE).filter_map(|_| connect()).collect();
        let mut slow: Vec<TcpStream> = (0..SLOW).filter_map(|_| connect()).collect();
        for stream in &mut slow {
            let _ = stream.write_all(b"GET /initrd.img HTTP/1.1\r\n");
        }
        (idle, slow)
    })
    .unwrap();
    eprintln!("attacker opened {} idle and {} slow connections", idle.len(), slow.len());
    assert!(idle.len() + slow.len() > 2000, "the flood was made");

    // The slow heads drip on (one header byte each a second) while the client downloads.
    let dripping = Instant::now();
    let drip = std::thread::spawn(move || {
        while dripping.elapsed() < Duration::from_secs(8) {
            for stream in &mut slow {
                let _ = stream.write_all(b"x");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        slow
    });
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let output = client
        .command("curl")
        .args(["-s", "-S", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"])
        .arg(format!("http://{}/initrd.img", server.ip))
        .output()
        .unwrap();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!(
        "curl beside the flood: {answer} in {:.2} s ({})",
        took.as_secs_f64(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(answer, format!("200 {FILE_LEN}"), "the machine next to the flood got its file");
    assert!(took < Duration::from_secs(10), "within 10 s: {took:?}");

    let (memory, files) = (rss(pid), open_files(pid));
    eprintln!(
        "server during the flood: RSS {:.1} MB (before {:.1} MB), {files} open files",
        memory as f64 / 1e6,
        rss_before as f64 / 1e6
    );
    assert!(memory < 100_000_000, "RSS stays under 100 MB: {memory} bytes");
    assert!(files < 200, "the flood's surplus was closed, not held: {files} open files");
    let slow = drip.join().unwrap();
    drop((idle, slow));
    drop(server);
}
