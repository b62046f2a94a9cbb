//! The libpcap driver: a thread that reads DHCP frames off the interface and
//! hands each one to the conflict detector, the event stream and the recorder.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::frame::parse_dhcp_frame;
use super::pcapng::PcapNgRecorder;
use crate::detect::watch::Conflicts;
use crate::detect::{ReplyTo, classify};
#[cfg(feature = "capture")]
use crate::events::Service;
use crate::events::{EngineEvent, EventSink, WireDhcp};
use crate::mac::MacAddr;

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

/// The capture's kernel buffer. DHCP traffic is a few hundred bytes per boot, so this
/// holds minutes of a busy network between two polls.
#[cfg(feature = "capture")]
const CAPTURE_BUFFER_BYTES: i32 = 256 * 1024;

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

#[cfg(feature = "capture")]
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
    // On Windows, wpcap.dll (Npcap) is a delay-loaded import: the first pcap call
    // would load it, and crash the process where it is missing. Load it ourselves first.
    #[cfg(windows)]
    npcap::load().map_err(unavailable)?;
    // Non-blocking, polled: a blocking read in immediate mode never returns on a quiet
    // interface, and the thread must notice its stop flag. DHCP is a trickle, so a small
    // kernel buffer does (libpcap's default ring of 2-4 MB was most of the idle memory).
    let mut capture = pcap::Capture::from_device(pcap_device_name(interface).as_str())
        .and_then(|c| {
            c.promisc(false)
                .snaplen(super::pcapng::SNAPLEN as i32)
                .buffer_size(CAPTURE_BUFFER_BYTES)
                .immediate_mode(true)
                .open()
        })
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
                            service: Service::Capture,
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

/// The libpcap name of an interface. Windows lists adapters by GUID (`{…}`), Npcap opens
/// them as `\Device\NPF_{…}`; elsewhere the names are the same.
pub fn pcap_device_name(interface: &str) -> String {
    if cfg!(windows) && interface.starts_with('{') {
        format!("\\Device\\NPF_{interface}")
    } else {
        interface.to_owned()
    }
}

/// Npcap's `wpcap.dll`, found and loaded before the first pcap call.
///
/// The Windows build links `wpcap.dll` through a delay-load import library
/// (`installers/windows/build.sh`), so the exe starts where Npcap is not installed; the
/// delay-load helper loads the DLL at the first pcap call, by name, and a failure there
/// is a crash. Npcap puts `wpcap.dll` in `System32\Npcap` (only its "WinPcap
/// compatible" mode also in `System32`), which is not on the DLL search path. So this
/// loads it from there by full path, with its dependency `Packet.dll` looked up beside
/// it, and keeps it loaded: the helper's later `LoadLibrary("wpcap.dll")` then finds the
/// module already in the process. Nothing is ever loaded from the current or the exe's
/// folder (DLL planting).
#[cfg(all(feature = "capture", windows))]
mod npcap {
    use std::ffi::OsString;
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    use windows_sys::Win32::System::LibraryLoader::{
        LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR, LOAD_LIBRARY_SEARCH_SYSTEM32, LoadLibraryExW,
    };
    use windows_sys::Win32::System::SystemInformation::GetSystemDirectoryW;

    /// `Ok` once `wpcap.dll` is in the process; otherwise why not (the same answer for
    /// the life of the process).
    pub(super) fn load() -> Result<(), String> {
        static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
        LOADED.get_or_init(load_once).clone()
    }

    fn load_once() -> Result<(), String> {
        let system32 = system_directory().ok_or("the Windows system folder cannot be found")?;
        let npcap = system32.join("Npcap");
        for dir in [&npcap, &system32] {
            if load_from(&dir.join("wpcap.dll")) {
                tracing::debug!("capture: loaded {}", dir.join("wpcap.dll").display());
                return Ok(());
            }
        }
        Err(format!("Npcap's wpcap.dll is not installed (looked in {} and {})", npcap.display(), system32.display()))
    }

    /// Loads `dll` by full path and leaks the handle (it must stay loaded).
    fn load_from(dll: &Path) -> bool {
        if !dll.is_file() {
            return false;
        }
        let wide: Vec<u16> = dll.as_os_str().encode_wide().chain(std::iter::once(0)).collect();
        // SAFETY: `wide` is a NUL-terminated UTF-16 path that outlives the call; no file
        // handle is passed (reserved, must be null).
        let module = unsafe {
            LoadLibraryExW(
                wide.as_ptr(),
                std::ptr::null_mut(),
                LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32,
            )
        };
        !module.is_null()
    }

    fn system_directory() -> Option<PathBuf> {
        let mut buffer = [0u16; 512];
        // SAFETY: the length passed is the buffer's; the call writes at most that many.
        let len = unsafe { GetSystemDirectoryW(buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
        (len > 0 && len < buffer.len()).then(|| PathBuf::from(OsString::from_wide(&buffer[..len])))
    }
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
    if dhcp.message.opcode() == dhcproto::v4::Opcode::BootRequest {
        sinks.conflicts.saw_request(&dhcp.message);
        return;
    }
    // A server answers a client on the client port, and a relay on the server port with
    // the relay's address in giaddr. A reply sent to port 67 without one reaches no
    // client: a forged or broken packet, which must not stop full DHCP.
    let to_a_relay = dhcp.destination_port == 67 && !dhcp.message.giaddr().is_unspecified();
    if dhcp.destination_port != 68 && !to_a_relay {
        return;
    }
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
            message: sighting.message,
            address: sighting.offered_address,
        }));
    }
    sinks.conflicts.observe_reply(sighting, &ReplyTo::of(&dhcp.message));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::frame::{build_frame, build_frame_to};
    use dhcproto::Encodable;
    use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};

    #[test]
    fn device_names_are_npcap_names_on_windows_only() {
        let guid = "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}";
        let expected = if cfg!(windows) { format!("\\Device\\NPF_{guid}") } else { guid.to_owned() };
        assert_eq!(pcap_device_name(guid), expected);
        assert_eq!(pcap_device_name("eth0"), "eth0");
    }

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

    #[test]
    fn a_reply_sent_to_the_server_port_without_a_relay_is_no_server() {
        let events = EventSink::new();
        let mut received = events.subscribe();
        let conflicts = Conflicts::new(vec![Ipv4Addr::new(10, 0, 0, 1)], false, events.clone()).halting_full_dhcp();
        let mut sinks =
            CaptureSinks { ours: Ipv4Addr::new(10, 0, 0, 1), conflicts: conflicts.clone(), events, recorder: None };
        let mut offer = Message::default();
        offer.set_opcode(Opcode::BootReply).set_chaddr(&[2, 0, 0, 0, 0, 9]).set_yiaddr(Ipv4Addr::new(10, 0, 0, 77));
        offer.opts_mut().insert(DhcpOption::MessageType(MessageType::Offer));
        let source = Ipv4Addr::new(10, 0, 0, 250);
        // A client machine sending an OFFER to the server port (the hostile-input test).
        let forged = build_frame_to([0xaa, 0, 0, 0, 0, 3], source, 68, 67, &offer.to_vec().unwrap());
        handle_frame(&mut sinks, Duration::from_secs(1), &forged, forged.len() as u32);
        assert!(received.try_recv().is_err(), "a reply to port 67 without a relay is nobody's answer");
        assert!(!conflicts.full_dhcp_halted());
        // The same offer to a relay on this segment, and to a client, is another server's.
        offer.set_giaddr(Ipv4Addr::new(10, 0, 0, 254));
        let relayed = build_frame_to([0xaa, 0, 0, 0, 0, 3], source, 67, 67, &offer.to_vec().unwrap());
        handle_frame(&mut sinks, Duration::from_secs(1), &relayed, relayed.len() as u32);
        assert!(conflicts.full_dhcp_halted(), "a server answering through a relay here");
    }
}
