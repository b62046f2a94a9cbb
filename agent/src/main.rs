//! The imaging agent: the program a seat runs after booting PortaPXE's agent kernel
//! and initramfs (`installers/agent/`). It asks PortaPXE what to do for its MAC, then
//! captures the disk to PortaPXE over HTTP, or restores an image from PortaPXE's
//! multicast session with udpcast's `udp-receiver`, checking every partition against
//! the image's checksum, and reports each step.
//!
//! Usage (from the initramfs's `/init`, once the network is up):
//! `portapxe-agent INTERFACE SERVER` where SERVER is `host:port` of PortaPXE's HTTP.

mod capture;
mod disk;
mod report;
mod restore;
mod task;

use std::process::ExitCode;
use std::time::Duration;

use report::Server;
use task::Task;

/// The exit status that tells the initramfs's init to restart the seat (into the
/// disk it just restored) instead of powering it off.
const RESTART: u8 = 10;

/// How often a seat with nothing to do asks again, and for how long.
const ASK_EVERY: Duration = Duration::from_secs(3);
const ASK_FOR: Duration = Duration::from_secs(30 * 60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(interface), Some(server)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: portapxe-agent INTERFACE SERVER:PORT");
        return ExitCode::from(2);
    };
    let mac = match std::fs::read_to_string(format!("/sys/class/net/{interface}/address")) {
        Ok(mac) => mac.trim().to_owned(),
        Err(err) => {
            eprintln!("portapxe-agent: cannot read the MAC of {interface}: {err}");
            return ExitCode::from(2);
        }
    };
    let server = Server::new(server, &mac);
    let disk = disk::find_disk();
    let layout = match &disk {
        Ok(disk) => disk.to_string(),
        Err(err) => err.clone(),
    };
    server.report("started", &format!("{mac} on {interface}; {layout}"));
    let started = std::time::Instant::now();
    loop {
        let task = match server.task() {
            Ok(task) => task,
            Err(err) => {
                eprintln!("portapxe-agent: {err}");
                Task::Nothing
            }
        };
        let restoring = matches!(task, Task::Restore { .. });
        let result = match (&task, &disk) {
            (Task::Nothing, _) => {
                if started.elapsed() > ASK_FOR {
                    server.report("failed", "no task came in 30 minutes; powering off");
                    return ExitCode::from(1);
                }
                std::thread::sleep(ASK_EVERY);
                continue;
            }
            (_, Err(err)) => Err(err.clone()),
            (Task::Capture { token, name }, Ok(disk)) => capture::run(&server, disk, token, name),
            (Task::Restore { id, port_base, name }, Ok(disk)) => {
                restore::run(&server, disk, interface, id, *port_base, name)
            }
        };
        return match result {
            Ok(summary) => {
                server.report("done", &summary);
                // The init restarts a restored seat: PortaPXE sends it to its own disk next.
                if restoring { ExitCode::from(RESTART) } else { ExitCode::SUCCESS }
            }
            Err(err) => {
                eprintln!("portapxe-agent: {err}");
                server.report("failed", &err);
                ExitCode::from(1)
            }
        };
    }
}
