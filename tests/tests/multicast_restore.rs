//! Multicast restore against Debian's udpcast `udp-receiver`, the receiver FOG and
//! Clonezilla put on their seats: `portapxe image restore` sends one image to three
//! seats at once through the lab's bridge, each seat gets every file with its checksum,
//! and a seat killed mid-restore does not stop the other two.

use std::path::Path;
use std::time::{Duration, Instant};

use portapxe_lab::imaging::{Seat, noise, write_image};
use portapxe_lab::process::{Finished, run_bounded, run_ok, signal_pid, wait_until};
use portapxe_lab::{ClientNs, Lab, binary};

const MB: usize = 1 << 20;

/// Seats on the lab's segment. Every address gets its subnet's broadcast address, as a
/// DHCP client sets it: udpcast finds its sender by the subnet broadcast (10.77.N.255),
/// which a host without `brd` does not take as its own.
fn seats(lab: &mut Lab, count: u8) -> Vec<ClientNs> {
    let server = format!("{}/24", lab.server_ip());
    run_ok("ip", &["-n", lab.server_ns(), "addr", "replace", &server, "brd", "+", "dev", "br0"]).unwrap();
    (0..count)
        .map(|i| {
            let client = lab.add_client(&format!("52:54:00:5e:00:{:02x}", i + 1)).unwrap();
            let address = format!("{}/24", lab.ip(20 + i));
            run_ok("ip", &["-n", &client.ns, "addr", "add", &address, "brd", "+", "dev", client.interface()]).unwrap();
            client
        })
        .collect()
}

fn restore(lab: &Lab, images: &Path, args: &[&str], timeout: Duration) -> Finished {
    let mut command = lab.server_command(binary::portapxe().to_str().unwrap());
    command.args(["image", "restore", "lab-ref", "--interface", "br0", "--images"]).arg(images).args(args);
    run_bounded("portapxe image restore", &mut command, timeout).unwrap()
}

#[test]
fn three_seats_restore_one_image_at_once_over_multicast() {
    let mut lab = Lab::new("multicast").unwrap();
    let images = lab.dir().join("images");
    let files = write_image(
        &images,
        "lab-ref",
        &[("part1.pcl.zst", "ext4", noise(24 * MB, 1)), ("part2.img.zst", "vfat", noise(3 * MB + 17, 2))],
    )
    .unwrap();
    let clients = seats(&mut lab, 3);
    let work = lab.dir().join("seats");
    std::fs::create_dir_all(&work).unwrap();
    let mut receivers: Vec<Seat> =
        clients.iter().enumerate().map(|(i, c)| Seat::start(c, &work, &format!("seat{i}")).unwrap()).collect();

    let started = Instant::now();
    let finished = restore(&lab, &images, &["--seats", "3", "--wait", "30"], Duration::from_secs(120));
    let took = started.elapsed();
    eprintln!("{finished}\n[multicast] 3 seats: {took:?}");
    assert!(finished.success(), "{finished}");
    for (i, seat) in receivers.iter_mut().enumerate() {
        let status = seat.process.wait_timeout(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "seat{i}: udp-receiver {status:?}\n{}", seat.log_text());
        seat.check(&work, &files).unwrap_or_else(|err| panic!("seat{i}: {err:#}\n{}", seat.log_text()));
    }
    for i in 0..3 {
        assert!(finished.stdout.contains(&format!("seat {} has the whole image", lab.ip(20 + i))), "{finished}");
    }
    assert!(finished.stdout.contains("started with 3 seats"), "{finished}");
}

#[test]
fn a_seat_killed_mid_restore_is_dropped_and_the_others_finish() {
    let mut lab = Lab::new("multicast-kill").unwrap();
    let images = lab.dir().join("images");
    let files = write_image(&images, "lab-ref", &[("part1.pcl.zst", "ext4", noise(24 * MB, 3))]).unwrap();
    let clients = seats(&mut lab, 3);
    let work = lab.dir().join("seats");
    std::fs::create_dir_all(&work).unwrap();
    let mut receivers: Vec<Seat> =
        clients.iter().enumerate().map(|(i, c)| Seat::start(c, &work, &format!("seat{i}")).unwrap()).collect();

    // 8 MB/s at most, so the restore lasts long enough to kill a seat in the middle.
    let lab_ref = &lab;
    let images_ref = &images;
    let sender = std::thread::scope(|scope| {
        let sender = scope.spawn(move || {
            let args = ["--seats", "3", "--wait", "30", "--max-rate", "8", "--drop-after", "3"];
            restore(lab_ref, images_ref, &args, Duration::from_secs(120))
        });
        let victim = &receivers[2];
        let got = wait_until(Duration::from_secs(60), || (victim.received() >= 6 * MB as u64).then_some(()));
        assert!(got.is_some(), "seat2 never received 6 MB\n{}", victim.log_text());
        signal_pid(victim.process.pid(), nix::sys::signal::Signal::SIGKILL);
        let killed_at = Instant::now();
        let finished = sender.join().unwrap();
        (finished, killed_at.elapsed())
    });
    let (finished, after_kill) = sender;
    eprintln!("{finished}\n[multicast] ended {after_kill:?} after the kill");
    assert_eq!(finished.status.code(), Some(1), "a dropped seat makes the session exit 1\n{finished}");
    let victim_ip = lab.ip(22).to_string();
    let dropped = format!("seat {victim_ip} dropped: stopped answering for 3 s");
    assert!(finished.stdout.contains(&dropped), "the killed seat's row says what happened\n{finished}");
    assert!(finished.stdout.lines().any(|line| line.starts_with(&victim_ip) && line.contains("dropped")), "{finished}");
    // The rest of 24 MB at 8 MB/s and the 3 s wait: the room did not stall.
    assert!(after_kill < Duration::from_secs(12), "the others waited {after_kill:?}");
    for (i, seat) in receivers.iter_mut().enumerate().take(2) {
        let status = seat.process.wait_timeout(Duration::from_secs(10));
        assert!(status.is_some_and(|s| s.success()), "seat{i}: udp-receiver {status:?}\n{}", seat.log_text());
        seat.check(&work, &files).unwrap_or_else(|err| panic!("seat{i}: {err:#}\n{}", seat.log_text()));
        assert!(finished.stdout.contains(&format!("seat {} has the whole image", lab.ip(20 + i as u8))));
    }
}

#[test]
fn a_restore_that_boots_seats_refuses_to_start_without_the_agent() {
    let lab = Lab::new("multicast-no-agent").unwrap();
    let images = lab.dir().join("images");
    write_image(&images, "lab-ref", &[("part1.img.zst", "vfat", noise(MB, 4))]).unwrap();
    let root = lab.dir().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.to_str().unwrap();
    let finished =
        restore(&lab, &images, &["--boot", "--root", root, "--mode", "proxy", "--wait", "5"], Duration::from_secs(30));
    assert_eq!(finished.status.code(), Some(1), "{finished}");
    assert!(
        finished.stderr.contains("the imaging agent's kernel \"agent/vmlinuz\" is not in")
            && finished.stderr.contains("installers/agent/build.sh"),
        "{finished}"
    );
    assert!(!finished.stdout.contains("Waiting up to"), "the session must not start: {finished}");
}
