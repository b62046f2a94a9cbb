//! What the window knows of classroom imaging: the image folder's images, the captures
//! it started, the restore session and one row per seat. Updated from typed engine
//! events (the multicast session's and the imaging hub's); the imaging panel draws it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use portapxe_engine::events::{ImagingEvent, ImagingWhat, SeatPhase, TaskGiven};
use portapxe_engine::imaging::image::Listed;
use portapxe_engine::imaging::multicast::{DropReason, Ending, SessionEvent};
use portapxe_engine::mac::MacAddr;

/// Imaging commands the window sends to the engine thread.
#[derive(Debug, Clone, PartialEq)]
pub enum ImagingCommand {
    /// Read the image folder again.
    ListImages,
    /// Capture `mac`'s disk into a new image: it boots the agent at its next network boot.
    Capture { mac: MacAddr, name: String },
    /// Send image `image` to the seats over multicast; they boot the agent, restore and
    /// then boot their own disk.
    Restore { image: String, seats: RestoreSeats, wait: Duration },
    /// End the restore session now (seats still receiving stop when they notice).
    StopRestore,
    /// End the capture of this machine still waiting or arriving.
    CancelCapture(MacAddr),
    /// Wake-on-LAN for these machines, on the serving interface.
    Wake { interface: String, macs: Vec<MacAddr> },
}

/// Which seats a restore takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreSeats {
    /// Any machine that network-boots; the session starts once this many joined.
    NextThatBoot(usize),
    /// Only these machines; the session starts once all joined.
    Only(Vec<MacAddr>),
}

/// One image of the folder, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub name: String,
    pub bytes: u64,
    pub disk_bytes: u64,
    /// "1:ext4 (67.1 MB), 2:vfat (…)".
    pub partitions: String,
    pub source: Option<MacAddr>,
    /// Set when the folder is not a usable image, with why.
    pub unusable: Option<String>,
}

impl ImageRow {
    pub fn from_listed(listed: &Listed) -> Self {
        match listed {
            Listed::Image(image) => {
                let manifest = &image.manifest;
                Self {
                    name: manifest.name.clone(),
                    bytes: manifest.bytes(),
                    disk_bytes: manifest.disk_bytes,
                    partitions: manifest.partitions_text(),
                    source: manifest.source_mac,
                    unusable: None,
                }
            }
            Listed::Unusable { name, error } => Self {
                name: name.clone(),
                bytes: 0,
                disk_bytes: 0,
                partitions: String::new(),
                source: None,
                unusable: Some(error.to_string()),
            },
        }
    }
}

pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A capture the window started.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRow {
    pub mac: MacAddr,
    pub name: String,
    pub state: CaptureProgress,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaptureProgress {
    /// Waiting for the machine to network-boot the agent.
    Waiting,
    /// Files arriving; bytes so far.
    Receiving(u64),
    Saved(u64),
    Failed(String),
}

impl std::fmt::Display for CaptureProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Waiting => f.write_str("waiting: network-boot this machine now"),
            Self::Receiving(bytes) => write!(f, "receiving: {}", megabytes(*bytes)),
            Self::Saved(bytes) => write!(f, "saved: {}", megabytes(*bytes)),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// The restore session the window started.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub image: String,
    /// Bytes of the stream.
    pub total: u64,
    pub started: bool,
    /// What every remaining seat has, and the current rate (bytes/s).
    pub bytes: u64,
    pub rate: f64,
    pub ending: Option<Result<Ending, String>>,
}

impl SessionView {
    pub fn new(image: String, total: u64) -> Self {
        Self { image, total, started: false, bytes: 0, rate: 0.0, ending: None }
    }

    /// Time left at the current rate, while sending.
    pub fn eta(&self) -> Option<Duration> {
        (self.started && self.ending.is_none() && self.rate > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(self.bytes) as f64 / self.rate))
    }
}

impl std::fmt::Display for SessionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.ending, self.started) {
            (Some(Ok(ending)), _) => write!(f, "Restore of {:?} ended: {ending}", self.image),
            (Some(Err(why)), _) => write!(f, "Restore of {:?} stopped: {why}", self.image),
            (None, false) => write!(f, "Restore of {:?}: waiting for seats to boot and join", self.image),
            (None, true) => {
                write!(
                    f,
                    "Restore of {:?}: {} of {} ({:.0}%) at {:.1} MB/s",
                    self.image,
                    megabytes(self.bytes),
                    megabytes(self.total),
                    self.bytes as f64 * 100.0 / self.total.max(1) as f64,
                    self.rate / 1e6
                )?;
                match self.eta() {
                    Some(left) => write!(f, ", about {} s left", left.as_secs()),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Where a seat is in the multicast stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatStream {
    /// Its agent asked for its task; its receiver has not joined yet.
    NotJoined,
    Joined(u16),
    Receiving(u16),
    Finished(u16),
    Dropped(DropReason),
    Left,
    Refused(String),
}

impl SeatStream {
    /// The phase column's word; the reasons are in the result column (`Display`).
    pub fn short(&self) -> &'static str {
        match self {
            Self::NotJoined => "booted the agent",
            Self::Joined(_) => "joined, waiting for the start",
            Self::Receiving(_) => "receiving",
            Self::Finished(_) => "has the whole image",
            Self::Dropped(_) => "dropped",
            Self::Left => "left",
            Self::Refused(_) => "refused",
        }
    }
}

impl std::fmt::Display for SeatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotJoined => f.write_str("booted the agent"),
            Self::Joined(_) => f.write_str("joined, waiting for the start"),
            Self::Receiving(_) => f.write_str("receiving"),
            Self::Finished(_) => f.write_str("has the whole image"),
            Self::Dropped(why) => write!(f, "dropped: {why}"),
            Self::Left => f.write_str("left before the end: its receiver stopped or could not write"),
            Self::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

/// One seat of the restore grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SeatRow {
    pub ip: Ipv4Addr,
    pub mac: Option<MacAddr>,
    pub stream: SeatStream,
    /// The agent's last report: its phase and words.
    pub agent: Option<(SeatPhase, String)>,
    /// Restored and sent to its own disk at its next network boot.
    pub booted_disk: bool,
}

impl SeatRow {
    /// Its number in the session, once it joined.
    pub fn number(&self) -> Option<u16> {
        match self.stream {
            SeatStream::Joined(n) | SeatStream::Receiving(n) | SeatStream::Finished(n) => Some(n),
            _ => None,
        }
    }

    /// Whether it is still taking the stream (its rate and time left are the session's).
    pub fn receiving(&self) -> bool {
        matches!(self.stream, SeatStream::Receiving(_))
    }

    /// The phase column: the furthest it got.
    pub fn phase(&self) -> String {
        if self.booted_disk {
            return "booted its restored disk".into();
        }
        match &self.agent {
            Some((phase @ (SeatPhase::Verifying | SeatPhase::Done | SeatPhase::Failed), _)) => phase.to_string(),
            _ => self.stream.short().into(),
        }
    }

    /// The result column: the agent's words once it reported, else nothing yet.
    pub fn result(&self) -> String {
        match &self.agent {
            Some((SeatPhase::Done, detail)) => format!("done: {detail}"),
            Some((SeatPhase::Failed, detail)) => format!("failed: {detail}"),
            _ => match &self.stream {
                SeatStream::Dropped(_) | SeatStream::Left | SeatStream::Refused(_) => self.stream.to_string(),
                _ => String::new(),
            },
        }
    }
}

/// Everything the imaging tab draws.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImagingState {
    /// The image folder (`None`: this system names no data folder).
    pub folder: Option<PathBuf>,
    /// `None` until listed; the error when the folder could not be read.
    pub images: Option<Result<Vec<ImageRow>, String>>,
    /// A capture saved an image since the folder was listed.
    pub images_stale: bool,
    /// What the last imaging action did, or why it could not.
    pub notice: Option<Result<String, String>>,
    pub captures: Vec<CaptureRow>,
    pub session: Option<SessionView>,
    pub seats: Vec<SeatRow>,
}

impl ImagingState {
    fn seat(&mut self, ip: Ipv4Addr) -> &mut SeatRow {
        let at = match self.seats.iter().position(|row| row.ip == ip) {
            Some(at) => at,
            None => {
                self.seats.push(SeatRow {
                    ip,
                    mac: None,
                    stream: SeatStream::NotJoined,
                    agent: None,
                    booted_disk: false,
                });
                self.seats.len() - 1
            }
        };
        &mut self.seats[at]
    }

    /// The latest capture into `name` (an earlier one may have failed).
    fn capture(&mut self, name: &str) -> Option<&mut CaptureRow> {
        self.captures.iter_mut().rev().find(|c| c.name == name)
    }

    /// Whether `mac` has a capture waiting or under way.
    fn capturing(&self, mac: Option<MacAddr>) -> bool {
        self.captures
            .iter()
            .any(|c| Some(c.mac) == mac && matches!(c.state, CaptureProgress::Waiting | CaptureProgress::Receiving(_)))
    }

    /// A new restore session: the grid starts empty.
    pub fn begin_restore(&mut self, image: String, total: u64) {
        self.session = Some(SessionView::new(image, total));
        self.seats.clear();
    }

    /// The multicast session's own events.
    pub fn on_session(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Joined { seat, number } => self.seat(*seat.ip()).stream = SeatStream::Joined(*number),
            SessionEvent::Refused { seat, why } => self.seat(*seat.ip()).stream = SeatStream::Refused(why.to_string()),
            SessionEvent::Started { .. } => {
                if let Some(session) = &mut self.session {
                    session.started = true;
                }
                for row in &mut self.seats {
                    if let SeatStream::Joined(number) = row.stream {
                        row.stream = SeatStream::Receiving(number);
                    }
                }
            }
            SessionEvent::Progress { bytes, rate } => {
                if let Some(session) = &mut self.session {
                    session.bytes = *bytes;
                    session.rate = *rate;
                }
            }
            SessionEvent::Dropped { seat, why } => self.seat(*seat.ip()).stream = SeatStream::Dropped(*why),
            SessionEvent::Left { seat } => self.seat(*seat.ip()).stream = SeatStream::Left,
            SessionEvent::Finished { seat } => {
                let row = self.seat(*seat.ip());
                row.stream = SeatStream::Finished(row.number().unwrap_or_default());
            }
            SessionEvent::Ended(ending) => self.end_session(Ok(*ending)),
        }
    }

    pub fn end_session(&mut self, ending: Result<Ending, String>) {
        if let Some(session) = &mut self.session
            && session.ending.is_none()
        {
            session.ending = Some(ending);
        }
    }

    /// The imaging hub's events: tasks given, files received, agents' reports.
    pub fn on_imaging(&mut self, event: &ImagingEvent) {
        match &event.what {
            ImagingWhat::CaptureDone { name, bytes } => {
                if let Some(row) = self.capture(name) {
                    row.state = CaptureProgress::Saved(*bytes);
                }
                self.images_stale = true;
            }
            ImagingWhat::CaptureFailed { name, why } => {
                if let Some(row) = self.capture(name) {
                    row.state = CaptureProgress::Failed(why.clone());
                }
            }
            ImagingWhat::Received { bytes, .. } => {
                if let Some(row) = self.captures.iter_mut().rev().find(|c| {
                    Some(c.mac) == event.mac
                        && matches!(c.state, CaptureProgress::Waiting | CaptureProgress::Receiving(_))
                }) {
                    let before = match row.state {
                        CaptureProgress::Receiving(so_far) => so_far,
                        _ => 0,
                    };
                    row.state = CaptureProgress::Receiving(before + bytes);
                }
            }
            ImagingWhat::Seat { phase, detail } => {
                // A capturing seat's words are in the log; the grid is the restore's.
                if let (Some(ip), true, false) = (event.seat, self.session.is_some(), self.capturing(event.mac)) {
                    let row = self.seat(ip);
                    row.mac = event.mac.or(row.mac);
                    row.agent = Some((*phase, detail.clone()));
                }
            }
            ImagingWhat::Task { task: TaskGiven::Restore(_) } => {
                if let (Some(ip), true) = (event.seat, self.session.is_some()) {
                    let row = self.seat(ip);
                    row.mac = event.mac.or(row.mac);
                }
            }
            ImagingWhat::SentToDisk => {
                if let Some(row) = self.seats.iter_mut().find(|row| row.mac.is_some() && row.mac == event.mac) {
                    row.booted_disk = true;
                }
            }
            ImagingWhat::Task { .. } | ImagingWhat::Refused { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;

    use super::*;

    fn at(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), 9000)
    }

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, last])
    }

    fn hub(mac: MacAddr, seat: u8, what: ImagingWhat) -> ImagingEvent {
        ImagingEvent { mac: Some(mac), seat: Some(*at(seat).ip()), what }
    }

    #[test]
    fn a_restore_fills_one_row_per_seat_from_join_to_its_own_disk() {
        let mut state = ImagingState::default();
        state.begin_restore("lab".into(), 100_000_000);
        state.on_imaging(&hub(mac(1), 21, ImagingWhat::Task { task: TaskGiven::Restore("lab".into()) }));
        state.on_imaging(&hub(mac(2), 22, ImagingWhat::Task { task: TaskGiven::Restore("lab".into()) }));
        assert_eq!(state.seats[0].phase(), "booted the agent");
        state.on_session(&SessionEvent::Joined { seat: at(21), number: 0 });
        state.on_session(&SessionEvent::Joined { seat: at(22), number: 1 });
        assert_eq!(
            state.session.as_ref().unwrap().to_string(),
            "Restore of \"lab\": waiting for seats to boot and join"
        );
        state.on_session(&SessionEvent::Started { seats: 2 });
        state.on_session(&SessionEvent::Progress { bytes: 40_000_000, rate: 10e6 });
        let session = state.session.clone().unwrap();
        assert_eq!(session.eta(), Some(Duration::from_secs(6)));
        assert_eq!(session.to_string(), "Restore of \"lab\": 40.0 MB of 100.0 MB (40%) at 10.0 MB/s, about 6 s left");
        assert!(state.seats.iter().all(SeatRow::receiving));

        state.on_session(&SessionEvent::Dropped { seat: at(22), why: DropReason::Silent(Duration::from_secs(15)) });
        state.on_session(&SessionEvent::Finished { seat: at(21) });
        state.on_session(&SessionEvent::Ended(Ending::Completed));
        assert_eq!(state.seats[0].number(), Some(0));
        assert!(state.seats[1].result().starts_with("dropped: "), "{}", state.seats[1].result());
        assert_eq!(state.session.as_ref().unwrap().eta(), None);

        state.on_imaging(&hub(mac(1), 21, ImagingWhat::Seat { phase: SeatPhase::Done, detail: "2 partitions".into() }));
        assert_eq!((state.seats[0].phase(), state.seats[0].result()), ("done".into(), "done: 2 partitions".into()));
        state.on_imaging(&ImagingEvent { mac: Some(mac(1)), seat: None, what: ImagingWhat::SentToDisk });
        assert_eq!(state.seats[0].phase(), "booted its restored disk");
        assert_eq!(state.seats[0].mac, Some(mac(1)));
    }

    #[test]
    fn a_capture_row_goes_from_waiting_to_saved_or_failed() {
        let mut state = ImagingState::default();
        state.captures.push(CaptureRow { mac: mac(9), name: "golden".into(), state: CaptureProgress::Waiting });
        state.captures.push(CaptureRow { mac: mac(8), name: "other".into(), state: CaptureProgress::Waiting });
        state.on_imaging(&hub(mac(9), 9, ImagingWhat::Received { file: "part1.pcl.zst".into(), bytes: 5_000_000 }));
        state.on_imaging(&hub(mac(9), 9, ImagingWhat::Received { file: "part2.img.zst".into(), bytes: 1_000_000 }));
        assert_eq!(state.captures[0].state, CaptureProgress::Receiving(6_000_000));
        state.on_imaging(&hub(mac(9), 9, ImagingWhat::CaptureDone { name: "golden".into(), bytes: 6_000_100 }));
        state.on_imaging(&hub(mac(8), 8, ImagingWhat::CaptureFailed { name: "other".into(), why: "disk full".into() }));
        assert_eq!(state.captures[0].state.to_string(), "saved: 6.0 MB");
        assert!(state.images_stale, "the new image is listed");
        assert_eq!(state.captures[1].state.to_string(), "failed: disk full");
        assert!(state.seats.is_empty(), "captures are not restore seats");
    }
}
