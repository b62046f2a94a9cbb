//! A tiny IPv6 router-advertisement sender for the lab bridge.
//!
//! iPXE waits about 13 s for IPv6 router discovery before it gives up; one router
//! advertisement with router lifetime 0 ("no default router here") ends the wait.
//! Owns: one raw ICMPv6 socket inside the server namespace, sending every 500 ms.
//! Must not touch: anything outside that namespace.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const INTERVAL: Duration = Duration::from_millis(500);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// ICMPv6 type 134 with every field zero but the hop limit: router lifetime 0,
/// no prefixes, no managed/other flags. The kernel fills in the checksum.
const ADVERTISEMENT: [u8; 16] = [134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Sends advertisements until dropped.
pub struct RaSender {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RaSender {
    pub fn start(ns: &str, interface: &str) -> Result<Self> {
        let path = format!("/run/netns/{ns}");
        let handle = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let interface = interface.to_owned();
        let thread = thread::Builder::new().name(format!("ra-{ns}")).spawn({
            let stop = Arc::clone(&stop);
            move || {
                let socket = match nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET)
                    .context("setns")
                    .and_then(|()| open_socket(&interface))
                {
                    Ok(socket) => {
                        let _ = ready_tx.send(Ok(()));
                        socket
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                while !stop.load(Ordering::Relaxed) {
                    // Fails until the bridge has a link-local address (first port up): fine.
                    let _ = socket.0.send_to(&ADVERTISEMENT, &socket.1);
                    thread::sleep(INTERVAL);
                }
            }
        })?;
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .context("router-advertisement sender did not start")?
            .context("router-advertisement sender")?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

fn open_socket(interface: &str) -> Result<(Socket, SockAddr)> {
    let index = nix::net::if_::if_nametoindex(interface).with_context(|| format!("no interface {interface}"))?;
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).context("raw ICMPv6 socket")?;
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_multicast_if_v6(index)?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, index));
    Ok((socket, to))
}

impl Drop for RaSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
