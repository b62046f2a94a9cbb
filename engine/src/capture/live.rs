//! The libpcap driver: a thread that reads DHCP frames off the interface and
//! hands each one to the conflict detector, the event stream and the recorder.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::frame::parse_dhcp_frame;
use super::pcapng::PcapNgRecorder;
use crate::detect::classify;
use crate::detect::watch::Conflicts;
use crate::events::{EngineEvent, EventSink, MacAddr, WireDhcp};

#[derive(Debug, Clone, thiserror::Error)]
#[error("packet capture is unavailable on {interface}: {reason}. {hint}")]
pub struct CaptureUnavailable {
    pub interface: String,
    pub reason: String,
    /// What to install or grant.
    pub hint: String,
}

/// How long the capture thread sleeps when nothing is queued.
#[cfg(feature = "capture")]
const IDLE_POLL: Duration = Duration::from_millis(50);

/// A running capture; stops (and joins its thread) when dropped.
pub struct LiveCapture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where captured frames go.
pub struct CaptureSinks {
    pub ours: Ipv4Addr,
    pub conflicts: Conflicts,
    pub events: EventSink,
    pub recorder: Option<PcapNgRecorder>,
}

fn permission_hint() -> String {
    if cfg!(windows) {
        "Install Npcap (https://npcap.com) to see other servers' traffic".into()
    } else if cfg!(target_os = "macos") {
        "Capture needs read access to /dev/bpf*: run as administrator or install Wireshark's ChmodBPF helper".into()
    } else {
        "Run as root, or grant it once: sudo setcap cap_net_bind_service,cap_net_raw+ep $(which portapxe)".into()
    }
}

#[cfg(feature = "capture")]
pub fn start(interface: &str, sinks: CaptureSinks) -> Result<LiveCapture, CaptureUnavailable> {
    let unavailable =
        |reason: String| CaptureUnavailable { interface: interface.to_owned(), reason, hint: permission_hint() };
    // Non-blocking, polled: a blocking read in immediate mode never returns on a quiet
    // interface, and the thread must notice its stop flag.
    let mut capture = pcap::Capture::from_device(interface)
        .and_then(|c| c.promisc(false).snaplen(super::pcapng::SNAPLEN as i32).immediate_mode(true).open())
        .and_then(|c| c.setnonblock())
        .map_err(|err| unavailable(err.to_string()))?;
    capture.filter("udp and (port 67 or port 68 or port 4011)", true).map_err(|err| unavailable(err.to_string()))?;
    if capture.get_datalink() != pcap::Linktype::ETHERNET {
        return Err(unavailable(format!("{} is not an Ethernet interface", interface)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(format!("capture {interface}"))
        .spawn(move || {
            let mut sinks = sinks;
            while !stopping.load(Ordering::Relaxed) {
                match capture.next_packet() {
                    Ok(packet) => {
                        let at = Duration::new(
                            packet.header.ts.tv_sec.max(0) as u64,
                            (packet.header.ts.tv_usec.max(0) as u32).saturating_mul(1000),
                        );
                        handle_frame(&mut sinks, at, packet.data, packet.header.len);
                    }
                    Err(pcap::Error::TimeoutExpired) => std::thread::sleep(IDLE_POLL),
                    Err(err) => {
                        sinks.events.emit(EngineEvent::Service(crate::events::ServiceEvent {
                            service: "capture".into(),
                            message: format!("capture stopped: {err}"),
                            ok: false,
                        }));
                        break;
                    }
                }
            }
        })
        .map_err(|err| unavailable(err.to_string()))?;
    Ok(LiveCapture { stop, thread: Some(thread) })
}

#[cfg(not(feature = "capture"))]
pub fn start(interface: &str, _sinks: CaptureSinks) -> Result<LiveCapture, CaptureUnavailable> {
    Err(CaptureUnavailable {
        interface: interface.to_owned(),
        reason: "this build has no packet capture (cargo feature `capture`)".into(),
        hint: "Rebuild with the default features".into(),
    })
}

/// One captured frame: record it, and report other servers' replies.
pub fn handle_frame(sinks: &mut CaptureSinks, at: Duration, frame: &[u8], original_len: u32) {
    if let Some(recorder) = sinks.recorder.as_mut()
        && let Err(err) = recorder.record(at, frame, original_len)
    {
        tracing::warn!(%err, "cannot write the capture file; recording stops");
        sinks.recorder = None;
    }
    let Some(dhcp) = parse_dhcp_frame(frame) else { return };
    let Some(sighting) = classify(&dhcp.message, dhcp.source_ip, Some(dhcp.source_mac)) else { return };
    if sighting.server_id == sinks.ours || dhcp.source_ip == sinks.ours {
        return;
    }
    let client = dhcp.message.chaddr().get(..6).and_then(|mac| <[u8; 6]>::try_from(mac).ok());
    if let Some(client) = client {
        sinks.events.emit(EngineEvent::Wire(WireDhcp {
            client: MacAddr(client),
            server: sighting.server_id,
            server_mac: dhcp.source_mac,
            message: sighting.message.clone(),
            address: sighting.offered_address,
        }));
    }
    sinks.conflicts.observe(sighting);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::frame::build_frame;
    use dhcproto::Encodable;
    use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};

    #[test]
    fn a_foreign_ack_is_recorded_reported_and_attributed() {
        let events = EventSink::new();
        let mut received = events.subscribe();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcapng");
        let mut sinks = CaptureSinks {
            ours: Ipv4Addr::new(10, 0, 0, 1),
            conflicts: Conflicts::new(vec![Ipv4Addr::new(10, 0, 0, 1)], false, events.clone()),
            events: events.clone(),
            recorder: Some(PcapNgRecorder::create(&path, "br0").unwrap()),
        };
        let mut ack = Message::default();
        ack.set_opcode(Opcode::BootReply).set_chaddr(&[2, 0, 0, 0, 0, 9]).set_yiaddr(Ipv4Addr::new(10, 0, 0, 77));
        ack.opts_mut().insert(DhcpOption::MessageType(MessageType::Ack));
        ack.opts_mut().insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 2)));
        let frame = build_frame([0xaa, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2), 67, &ack.to_vec().unwrap());
        handle_frame(&mut sinks, Duration::from_secs(1), &frame, frame.len() as u32);

        let Ok(EngineEvent::Wire(wire)) = received.try_recv() else { panic!("no wire event") };
        assert_eq!(
            (wire.client, wire.server, wire.address),
            (MacAddr([2, 0, 0, 0, 0, 9]), [10, 0, 0, 2].into(), Some([10, 0, 0, 77].into()))
        );
        let Ok(EngineEvent::Conflict(conflict)) = received.try_recv() else { panic!("no conflict event") };
        assert_eq!(conflict.server.mac, Some(MacAddr([0xaa, 0, 0, 0, 0, 2])));
        assert!(std::fs::metadata(&path).unwrap().len() > frame.len() as u64);
    }
}
