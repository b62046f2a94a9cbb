//! How long a frame takes with 1,000 clients in the table (each mid-transfer),
//! sorted by last seen, through the real app and a fixed snapshot.
//! `cargo bench -p portapxe --bench clients_table` prints the egui pass time
//! (layout + tessellation, what the UI thread spends) and a full render on wgpu.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use portapxe::gui::engine_handle::UiSnapshot;
use portapxe::gui::{EngineHandle, PortaApp};
use portapxe_engine::clients::ClientRegistry;
use portapxe_engine::config::Config;
use portapxe_engine::events::{
    DhcpEvent, DhcpMessage, DhcpRole, EngineEvent, MacAddr, Protocol, TransferEvent, TransferPhase,
};
use portapxe_engine::pxe::ClientArch;

const CLIENTS: u32 = 1000;
const FRAMES: usize = 200;

fn registry(now: u64) -> ClientRegistry {
    let mut registry = ClientRegistry::default();
    for n in 0..CLIENTS {
        let [_, _, hi, lo] = n.to_be_bytes();
        let mac = MacAddr([0x52, 0x54, 0x00, 0x10, hi, lo]);
        let address = Ipv4Addr::new(10, 20, hi, lo);
        let at = now - u64::from(n) * 50;
        let dhcp = |received: DhcpMessage, answered: DhcpMessage| {
            EngineEvent::Dhcp(DhcpEvent {
                mac,
                role: DhcpRole::Server,
                received,
                answered: Some(answered),
                address: Some(address),
                arch: Some(if n % 2 == 0 { ClientArch::Bios } else { ClientArch::UefiX64 }),
                vendor_class: Some("PXEClient:Arch:00007:UNDI:003010".into()),
                is_ipxe: false,
                boot: Some("ipxe.efi".into()),
                reason: None,
                rule: None,
            })
        };
        let transfer = |phase| {
            EngineEvent::Transfer(TransferEvent {
                protocol: Protocol::Tftp,
                client: SocketAddr::new(address.into(), 2070),
                file: "ipxe.efi".into(),
                phase,
            })
        };
        registry.apply(&dhcp(DhcpMessage::DISCOVER, DhcpMessage::OFFER), at - 300);
        registry.apply(&dhcp(DhcpMessage::REQUEST, DhcpMessage::ACK), at - 200);
        registry.apply(&transfer(TransferPhase::Started { size: Some(1_000_000) }), at - 100);
        registry.apply(&transfer(TransferPhase::Progress { bytes: u64::from(n) * 997, size: Some(1_000_000) }), at);
    }
    registry
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{what}: mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms over {} frames",
        mean.as_secs_f64() * 1e3,
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        times.len()
    );
}

fn main() {
    let now = 1_700_000_000_000;
    let clients = registry(now).snapshot(now);
    assert_eq!(clients.len(), CLIENTS as usize);
    let snapshot = UiSnapshot { clients, interfaces: Some(Vec::new()), now_ms: now, ..UiSnapshot::default() };
    let mut harness = Harness::builder()
        .with_size([1280.0, 860.0])
        .with_accessibility_check(false)
        .build_eframe(move |cc| PortaApp::new(&cc.egui_ctx, EngineHandle::detached(snapshot), Config::default()));
    harness.run_steps(10);

    let mut passes = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let started = Instant::now();
        harness.step();
        passes.push(started.elapsed());
    }
    report(&format!("egui pass, {CLIENTS} clients"), passes);

    let mut renders = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        harness.step();
        match harness.render() {
            Ok(_) => renders.push(started.elapsed()),
            Err(err) => {
                println!("render skipped: {err}");
                break;
            }
        }
    }
    if !renders.is_empty() {
        report("pass + wgpu render + read-back (software rasterizer here)", renders);
    }
}
