//! What the engine knows of imaging while it serves: the capture sessions the user
//! started, the restore session on offer, and what each seat's agent reported. The HTTP
//! routes (`routes`) call it; it applies the capture rules (`capture`), writes what a
//! seat sends into the image folder, and reports everything as engine events.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::capture::{CaptureSession, CaptureState, Received, Refusal};
use super::image::{self, FORMAT, MANIFEST, Manifest, valid_name};
use crate::events::{EngineEvent, EventSink, ImagingEvent, ImagingWhat, SeatPhase, TaskGiven};
use crate::mac::MacAddr;

/// What a seat's agent is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Send this disk to the server as image `name`, naming `token` in every write.
    Capture {
        token: String,
        name: String,
    },
    /// Join the multicast session on `port_base` and write image `name`, whose stream
    /// starts with a manifest carrying `id`.
    Restore {
        name: String,
        id: String,
        port_base: u16,
    },
    Nothing,
}

impl std::fmt::Display for Task {
    /// The line the agent reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Capture { token, name } => write!(f, "capture {token} {name}"),
            Self::Restore { name, id, port_base } => write!(f, "restore {id} {port_base} {name}"),
            Self::Nothing => f.write_str("none"),
        }
    }
}

/// Which seats a restore session takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seats {
    /// Any seat that boots the agent (the next N that boot: the session itself counts).
    Any,
    Only(Vec<MacAddr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOffer {
    pub name: String,
    pub id: String,
    pub port_base: u16,
    pub seats: Seats,
}

#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("{0:?} is not an image name: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadName(String),
    #[error("an image named {name:?} already exists in {dir}: pick another name or delete it first")]
    Exists { name: String, dir: PathBuf },
    #[error("a capture into an image named {0:?} is already waiting: pick another name")]
    NameInUse(String),
    #[error("a capture of {mac} is already waiting")]
    AlreadyArmed { mac: MacAddr },
    #[error("{0}")]
    Refused(Refusal),
    #[error("the server's disk is full: the capture stopped and what had arrived was removed ({0})")]
    DiskFull(io::Error),
    #[error("cannot write the image: {0}")]
    Write(io::Error),
    #[error("the manifest is not valid: {0}")]
    Manifest(String),
}

impl From<Refusal> for ImagingError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

/// How a seat boots the agent: its kernel and initrd as served, and the kernel
/// arguments (`portapxe.server=` is added, and for each seat `portapxe.mac=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBoot {
    /// Where the boot root is served, e.g. `http://10.0.0.1:80`.
    pub base_url: String,
    pub kernel: String,
    pub initrd: String,
    /// The HTTP server the agent talks to (`host:port`).
    pub server: String,
    pub cmdline: String,
}

impl AgentBoot {
    /// The agent for the seat `mac`: told which card to use (`portapxe.mac=`). A seat
    /// with two cards that boots from its second must report and take its task under the
    /// MAC it booted with, the one the hub keys its task by.
    pub fn for_seat(&self, mac: MacAddr) -> Self {
        Self { cmdline: format!("portapxe.mac={mac} {}", self.cmdline.trim()), ..self.clone() }
    }

    /// The iPXE script that starts the agent.
    pub fn script(&self) -> String {
        let url = |path: &str| crate::url::url(&self.base_url, path);
        let initrd_name = self.initrd.rsplit('/').next().unwrap_or("initrd.img");
        format!(
            "#!ipxe\necho PortaPXE: starting the imaging agent\nkernel {} initrd={initrd_name} portapxe.server={} {}\ninitrd --name {initrd_name} {}\nboot\n",
            url(&self.kernel),
            self.server,
            self.cmdline.trim(),
            url(&self.initrd)
        )
    }
}

/// What a seat that network-boots into imaging gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatBoot {
    /// It has a task: start the agent.
    Agent(AgentBoot),
    /// Nothing to do, or it was just restored: boot the local disk.
    LocalDisk,
}

impl SeatBoot {
    /// The iPXE script.
    pub fn script(&self) -> String {
        match self {
            Self::Agent(agent) => agent.script(),
            Self::LocalDisk => {
                "#!ipxe\necho PortaPXE: nothing to image on this machine; booting its disk\nexit\n".into()
            }
        }
    }

    /// GRUB's configuration (the signed chain): the agent's kernel and initramfs over
    /// TFTP, or `exit`, which leaves network boot for the next boot device.
    pub fn grub_config(&self) -> String {
        match self {
            Self::Agent(agent) => crate::grub::agent_config(
                &agent.kernel,
                &agent.initrd,
                &format!("portapxe.server={} {}", agent.server, agent.cmdline.trim()),
            ),
            Self::LocalDisk => crate::grub::leave_config("nothing to image on this machine; booting its disk"),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    captures: Vec<CaptureSession>,
    restore: Option<RestoreOffer>,
    agent: Option<AgentBoot>,
    /// Seats that got the restore task, and those that finished it (their next
    /// network boot goes to the local disk, once).
    restoring: Vec<MacAddr>,
    restored: Vec<MacAddr>,
    /// Seats done with the current offer: it is not given to them again.
    finished: Vec<MacAddr>,
    /// What Clonezilla clients fetch while a restore takes them.
    clonezilla: Option<Arc<super::clonezilla::Prepared>>,
}

/// Shared by the HTTP routes and whoever started the sessions (CLI, window).
pub struct ImagingHub {
    images: PathBuf,
    state: Mutex<State>,
    events: EventSink,
}

impl std::fmt::Debug for ImagingHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagingHub").field("images", &self.images).finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

impl ImagingHub {
    pub fn new(images: PathBuf, events: EventSink) -> Arc<Self> {
        Arc::new(Self { images, state: Mutex::new(State::default()), events })
    }

    pub fn images(&self) -> &Path {
        &self.images
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: go on with it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn emit(&self, mac: Option<MacAddr>, seat: Option<Ipv4Addr>, what: ImagingWhat) {
        self.events.emit(EngineEvent::Imaging(ImagingEvent { mac, seat, what }));
    }

    /// Starts a capture of `mac`'s disk into a new image `name`.
    pub fn arm_capture(&self, mac: MacAddr, name: &str) -> Result<(), ImagingError> {
        if !valid_name(name) {
            return Err(ImagingError::BadName(name.into()));
        }
        if self.images.join(name).exists() {
            return Err(ImagingError::Exists { name: name.into(), dir: self.images.clone() });
        }
        let mut state = self.state();
        let waiting = |s: &&CaptureSession| matches!(s.state, CaptureState::Armed | CaptureState::Receiving { .. });
        if state.captures.iter().filter(waiting).any(|s| s.mac == mac) {
            return Err(ImagingError::AlreadyArmed { mac });
        }
        // Two sessions would write into one temporary folder.
        if state.captures.iter().filter(waiting).any(|s| s.name == name) {
            return Err(ImagingError::NameInUse(name.into()));
        }
        state.captures.push(CaptureSession::new(mac, name.into(), random_hex()));
        Ok(())
    }

    /// How seats start the agent (without it, `seat_boot` always answers the local disk).
    pub fn set_agent(&self, agent: AgentBoot) {
        self.state().agent = Some(agent);
    }

    /// What `mac` boots when it network-boots into imaging: the agent while it has a
    /// task; its disk otherwise, and once right after it was restored.
    pub fn seat_boot(&self, mac: MacAddr) -> SeatBoot {
        self.involved_seat_boot(mac).unwrap_or(SeatBoot::LocalDisk)
    }

    /// What `mac` boots when imaging has something for it: the agent while it has a task
    /// (and the agent is known), its disk once right after it was restored; `None` for a
    /// machine imaging has nothing to do with, which boots as it would without imaging.
    pub fn involved_seat_boot(&self, mac: MacAddr) -> Option<SeatBoot> {
        let mut state = self.state();
        if let Some(at) = state.restored.iter().position(|done| *done == mac) {
            state.restored.remove(at);
            drop(state);
            self.emit(Some(mac), None, ImagingWhat::SentToDisk);
            return Some(SeatBoot::LocalDisk);
        }
        let capture = state
            .captures
            .iter()
            .any(|s| s.mac == mac && matches!(s.state, CaptureState::Armed | CaptureState::Receiving { .. }));
        let restore = !state.finished.contains(&mac)
            && state.restore.as_ref().is_some_and(|offer| match &offer.seats {
                Seats::Any => true,
                Seats::Only(macs) => macs.contains(&mac),
            });
        match (&state.agent, capture || restore) {
            (Some(agent), true) => Some(SeatBoot::Agent(agent.for_seat(mac))),
            _ => None,
        }
    }

    /// Whether a seat is sending a capture now.
    pub fn receiving(&self) -> bool {
        self.state().captures.iter().any(|s| matches!(s.state, CaptureState::Receiving { .. }))
    }

    /// Seats that were given the restore task (by MAC).
    pub fn restoring(&self) -> Vec<MacAddr> {
        self.state().restoring.clone()
    }

    pub fn offer_restore(&self, offer: RestoreOffer) {
        let mut state = self.state();
        state.restore = Some(offer);
        state.finished.clear();
    }

    pub fn end_restore(&self) {
        self.state().restore = None;
    }

    /// Serves Clonezilla's `ocs-client-run.conf` and pseudo image at the HTTP root (and
    /// over TFTP) until [`Self::end_clonezilla`].
    pub fn offer_clonezilla(&self, prepared: Arc<super::clonezilla::Prepared>) {
        self.state().clonezilla = Some(prepared);
    }

    pub fn end_clonezilla(&self) {
        self.state().clonezilla = None;
    }

    /// A seat another tool restored (a Clonezilla client that reported success): its
    /// next network boot goes to its disk, once.
    pub fn restored_by_other(&self, mac: MacAddr) {
        let mut state = self.state();
        if !state.restored.contains(&mac) {
            state.restored.push(mac);
        }
    }

    /// Ends the capture of `mac` still waiting or arriving (what had arrived is removed).
    /// Returns whether there was one.
    pub fn cancel_capture(&self, mac: MacAddr) -> bool {
        let mut state = self.state();
        let Some(session) = state
            .captures
            .iter_mut()
            .find(|s| s.mac == mac && matches!(s.state, CaptureState::Armed | CaptureState::Receiving { .. }))
        else {
            return false;
        };
        session.fail("cancelled".into());
        let name = session.name.clone();
        drop(state);
        let _ = std::fs::remove_dir_all(self.partial_dir(&name));
        self.emit(Some(mac), None, ImagingWhat::CaptureFailed { name, why: "cancelled from the window".into() });
        true
    }

    /// Serving stopped: captures still waiting or arriving end (what had arrived is
    /// removed), the restore offer ends, and no seat is sent to its disk by an old session.
    pub fn stop_all(&self) {
        let mut state = self.state();
        state.restore = None;
        state.restoring.clear();
        state.restored.clear();
        state.finished.clear();
        let mut ended = Vec::new();
        for session in &mut state.captures {
            if matches!(session.state, CaptureState::Armed | CaptureState::Receiving { .. }) {
                session.fail("serving was stopped".into());
                ended.push((session.mac, session.name.clone()));
            }
        }
        drop(state);
        for (mac, name) in ended {
            let _ = std::fs::remove_dir_all(self.partial_dir(&name));
            let why = "serving was stopped: start the capture again".to_string();
            self.emit(Some(mac), None, ImagingWhat::CaptureFailed { name, why });
        }
    }

    /// The task for the agent of `mac` asking from `from`.
    pub fn task(&self, mac: MacAddr, from: Ipv4Addr) -> Task {
        let mut state = self.state();
        let finished = state.finished.contains(&mac);
        let armed = state
            .captures
            .iter_mut()
            .find(|s| s.mac == mac && matches!(s.state, CaptureState::Armed | CaptureState::Receiving { .. }));
        let task = match armed {
            Some(session) => match session.claim(from) {
                Ok(()) => Task::Capture { token: session.token.clone(), name: session.name.clone() },
                Err(refusal) => {
                    drop(state);
                    self.emit(Some(mac), Some(from), ImagingWhat::Refused { why: refusal.to_string() });
                    return Task::Nothing;
                }
            },
            None if finished => Task::Nothing,
            None => match &state.restore {
                Some(offer)
                    if offer.seats == Seats::Any
                        || matches!(&offer.seats, Seats::Only(macs) if macs.contains(&mac)) =>
                {
                    let task =
                        Task::Restore { name: offer.name.clone(), id: offer.id.clone(), port_base: offer.port_base };
                    if !state.restoring.contains(&mac) {
                        state.restoring.push(mac);
                    }
                    task
                }
                _ => Task::Nothing,
            },
        };
        drop(state);
        let given = match &task {
            Task::Capture { name, .. } => TaskGiven::Capture(name.clone()),
            Task::Restore { name, .. } => TaskGiven::Restore(name.clone()),
            Task::Nothing => TaskGiven::Nothing,
        };
        self.emit(Some(mac), Some(from), ImagingWhat::Task { task: given });
        task
    }

    fn session<T>(&self, token: &str, f: impl FnOnce(&mut CaptureSession) -> T) -> Result<T, Refusal> {
        let mut state = self.state();
        let session = state.captures.iter_mut().find(|s| s.token == token).ok_or(Refusal::NoSession)?;
        Ok(f(session))
    }

    fn partial_dir(&self, name: &str) -> PathBuf {
        self.images.join(format!(".{name}.partial"))
    }

    /// Writes one file of a capture from `body`, measuring it as it goes. The disk
    /// filling up ends the session and removes what had arrived.
    pub fn receive_file(
        &self,
        token: &str,
        from: Ipv4Addr,
        file: &str,
        body: &mut dyn FnMut() -> Option<io::Result<bytes::Bytes>>,
    ) -> Result<Received, ImagingError> {
        let (mac, name) = self.session(token, |s| s.begin_file(from, file).map(|()| (s.mac, s.name.clone())))??;
        let dir = self.partial_dir(&name);
        let written = write_measured(&dir, file, body);
        match written {
            Ok(received) => {
                self.session(token, |s| s.end_file(received.clone()))?;
                self.emit(Some(mac), Some(from), ImagingWhat::Received { file: file.into(), bytes: received.bytes });
                Ok(received)
            }
            Err(err) if err.kind() == io::ErrorKind::StorageFull => {
                let error = ImagingError::DiskFull(err);
                let _ = std::fs::remove_dir_all(&dir);
                self.session(token, |s| s.fail(error.to_string()))?;
                self.emit(Some(mac), Some(from), ImagingWhat::CaptureFailed { name, why: error.to_string() });
                Err(error)
            }
            Err(err) => {
                // The seat stopped sending (or the connection broke): it may send the file again.
                let _ = std::fs::remove_file(dir.join(file));
                self.session(token, |s| s.abandon_file())?;
                Err(ImagingError::Write(err))
            }
        }
    }

    /// The agent's manifest: checked against what arrived, completed with what the
    /// server knows (name, id, time, MAC), written, and the folder put in its place.
    pub fn finish_capture(&self, token: &str, from: Ipv4Addr, text: &str) -> Result<PathBuf, ImagingError> {
        let mut manifest: Manifest =
            toml::from_str(text).map_err(|err| ImagingError::Manifest(err.message().into()))?;
        let (mac, name) =
            self.session(token, |s| s.check_manifest(from, &manifest).map(|()| (s.mac, s.name.clone())))??;
        manifest.format = FORMAT;
        manifest.name = name.clone();
        manifest.id = random_hex();
        manifest.source_mac = Some(mac);
        manifest.created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |time| time.as_secs());
        let partial = self.partial_dir(&name);
        let final_dir = self.images.join(&name);
        let result = (|| -> Result<(), ImagingError> {
            let text = toml::to_string_pretty(&manifest).map_err(|err| ImagingError::Manifest(err.to_string()))?;
            crate::config::write_atomically(&partial.join(MANIFEST), text.as_bytes()).map_err(ImagingError::Write)?;
            if final_dir.exists() {
                return Err(ImagingError::Exists { name: name.clone(), dir: self.images.clone() });
            }
            std::fs::rename(&partial, &final_dir).map_err(ImagingError::Write)?;
            // The image must open as any other: sizes match the manifest.
            image::Image::open(&self.images, &name).map_err(|err| ImagingError::Manifest(err.to_string()))?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.session(token, |s| s.state = CaptureState::Done)?;
                let bytes = manifest.bytes();
                self.emit(Some(mac), Some(from), ImagingWhat::CaptureDone { name, bytes });
                Ok(final_dir)
            }
            Err(err) => {
                self.session(token, |s| s.fail(err.to_string()))?;
                self.emit(Some(mac), Some(from), ImagingWhat::CaptureFailed { name, why: err.to_string() });
                Err(err)
            }
        }
    }

    /// A progress or result line from a seat's agent.
    pub fn report(&self, mac: MacAddr, from: Ipv4Addr, phase: SeatPhase, detail: String) {
        if phase == SeatPhase::Done {
            let mut state = self.state();
            // A seat restored boots its own disk next (the agent restarts it).
            if state.restoring.contains(&mac) && !state.restored.contains(&mac) {
                state.restored.push(mac);
                state.finished.push(mac);
            }
        }
        if phase == SeatPhase::Failed {
            let mut state = self.state();
            let capturing = state
                .captures
                .iter_mut()
                .find(|s| s.mac == mac && matches!(s.state, CaptureState::Receiving { seat } if seat == from));
            if let Some(session) = capturing {
                session.fail(detail.clone());
                let name = session.name.clone();
                drop(state);
                let _ = std::fs::remove_dir_all(self.partial_dir(&name));
                self.emit(Some(mac), Some(from), ImagingWhat::CaptureFailed { name, why: detail.clone() });
            }
        }
        self.emit(Some(mac), Some(from), ImagingWhat::Seat { phase, detail });
    }
}

/// Writes `file` in `dir` from the chunks of `body`, with its size and SHA-256.
fn write_measured(
    dir: &Path,
    file: &str,
    body: &mut dyn FnMut() -> Option<io::Result<bytes::Bytes>>,
) -> io::Result<Received> {
    use sha2::Digest;
    crate::config::create_private_dir(dir)?;
    let path = dir.join(file);
    let mut out = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = body() {
        let chunk = chunk?;
        hasher.update(&chunk);
        out.write_all(&chunk)?;
        bytes += chunk.len() as u64;
    }
    out.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()?;
    let sha256 = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(Received { file: file.into(), bytes, sha256 })
}

/// Seats whose GRUB reads `imaging/grub/<mac with dashes>.cfg` get what [`ImagingHub::seat_boot`] says.
impl crate::served::MadeOnRequest for ImagingHub {
    fn make(&self, path: &str) -> Option<bytes::Bytes> {
        if let Some(file) = self.state().clonezilla.as_ref().and_then(|prepared| prepared.file(path)) {
            return Some(file);
        }
        let name = path.strip_prefix(crate::grub::IMAGING_DIR)?.strip_prefix('/')?.strip_suffix(".cfg")?;
        // Only the form GRUB's configuration writes: any other spelling is another file,
        // which does not exist.
        let mac = MacAddr::from_dashed(name)?;
        Some(self.seat_boot(mac).grub_config().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> (tempfile::TempDir, Arc<ImagingHub>, tokio::sync::broadcast::Receiver<EngineEvent>) {
        let dir = tempfile::tempdir().unwrap();
        let events = EventSink::new();
        let rx = events.subscribe();
        let hub = ImagingHub::new(dir.path().join("images"), events);
        (dir, hub, rx)
    }

    const MAC: &str = "52:54:00:00:00:01";
    const SEAT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);

    fn chunks(parts: Vec<io::Result<&'static [u8]>>) -> impl FnMut() -> Option<io::Result<bytes::Bytes>> {
        let mut parts = parts.into_iter();
        move || parts.next().map(|part| part.map(bytes::Bytes::from_static))
    }

    fn manifest_for(received: &[Received]) -> String {
        let part = |r: &Received| format!("file = \"{}\"\nbytes = {}\nsha256 = \"{}\"\n", r.file, r.bytes, r.sha256);
        format!(
            "format = 1\nname = \"\"\nid = \"\"\ncreated = 0\ndisk_bytes = 1048576\n\n[table]\n{}\n[[partitions]]\nnumber = 1\nfilesystem = \"ext4\"\nmethod = \"partclone\"\npartition_bytes = 524288\n{}",
            part(&received[0]),
            part(&received[1])
        )
    }

    #[test]
    fn a_capture_becomes_an_image_only_when_whole() {
        let (_dir, hub, _rx) = hub();
        let mac: MacAddr = MAC.parse().unwrap();
        assert_eq!(hub.task(mac, SEAT), Task::Nothing, "nothing armed");
        hub.arm_capture(mac, "lab").unwrap();
        let Task::Capture { token, name } = hub.task(mac, SEAT) else { panic!("no capture task") };
        assert_eq!(name, "lab");
        let table = hub.receive_file(&token, SEAT, "table.sfdisk", &mut chunks(vec![Ok(b"label: dos\n")])).unwrap();
        let part = hub.receive_file(&token, SEAT, "p1.zst", &mut chunks(vec![Ok(b"abc"), Ok(b"def")])).unwrap();
        assert_eq!(part.bytes, 6);
        assert_eq!(part.sha256, image::sha256_hex(&b"abcdef"[..]).unwrap());
        assert!(!hub.images().join("lab").exists(), "no image before the manifest");
        let dir = hub.finish_capture(&token, SEAT, &manifest_for(&[table, part])).unwrap();
        let image = image::Image::open(hub.images(), "lab").unwrap();
        assert_eq!(image.dir, dir);
        assert_eq!(image.manifest.source_mac, Some(mac));
        assert_eq!(image.manifest.id.len(), 32);
        assert!(!hub.images().join(".lab.partial").exists());
        assert!(matches!(hub.arm_capture(mac, "lab"), Err(ImagingError::Exists { .. })));
        let other: MacAddr = "52:54:00:00:00:02".parse().unwrap();
        hub.arm_capture(other, "second").unwrap();
        let third: MacAddr = "52:54:00:00:00:03".parse().unwrap();
        assert!(matches!(hub.arm_capture(third, "second"), Err(ImagingError::NameInUse(_))), "one name, one session");
    }

    #[test]
    fn writes_without_a_session_or_from_another_address_are_refused() {
        let (_dir, hub, _rx) = hub();
        let mac: MacAddr = MAC.parse().unwrap();
        let err = hub.receive_file("nope", SEAT, "p1", &mut chunks(vec![Ok(b"x")])).unwrap_err();
        assert!(err.to_string().contains("start one in PortaPXE first"), "{err}");
        hub.arm_capture(mac, "lab").unwrap();
        let Task::Capture { token, .. } = hub.task(mac, SEAT) else { panic!() };
        let other = Ipv4Addr::new(10, 0, 0, 99);
        let err = hub.receive_file(&token, other, "p1", &mut chunks(vec![Ok(b"x")])).unwrap_err();
        assert!(err.to_string().contains("belongs to the seat at 10.0.0.20"), "{err}");
        assert_eq!(hub.task(mac, other), Task::Nothing, "another address asking with the MAC gets nothing");
        assert!(!hub.images().join(".lab.partial").join("p1").exists());
    }

    #[test]
    fn a_full_disk_ends_the_capture_and_removes_what_arrived() {
        let (_dir, hub, mut rx) = hub();
        let mac: MacAddr = MAC.parse().unwrap();
        hub.arm_capture(mac, "lab").unwrap();
        let Task::Capture { token, .. } = hub.task(mac, SEAT) else { panic!() };
        hub.receive_file(&token, SEAT, "t", &mut chunks(vec![Ok(b"t")])).unwrap();
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let err = hub.receive_file(&token, SEAT, "p1", &mut chunks(vec![Ok(b"abc"), Err(full)])).unwrap_err();
        assert!(err.to_string().contains("disk is full"), "{err}");
        assert!(!hub.images().join(".lab.partial").exists(), "nothing half-written is left");
        assert!(!hub.images().join("lab").exists());
        let refused = hub.receive_file(&token, SEAT, "p2", &mut chunks(vec![Ok(b"x")])).unwrap_err();
        assert!(refused.to_string().contains("has ended"), "{refused}");
        let mut failed = false;
        while let Ok(event) = rx.try_recv() {
            failed |=
                matches!(event, EngineEvent::Imaging(ImagingEvent { what: ImagingWhat::CaptureFailed { .. }, .. }));
        }
        assert!(failed, "the failure is reported");
    }

    #[test]
    fn a_seat_boots_the_agent_while_it_has_a_task_then_its_disk_once_restored() {
        let (_dir, hub, _rx) = hub();
        let mac: MacAddr = MAC.parse().unwrap();
        assert_eq!(hub.seat_boot(mac), SeatBoot::LocalDisk, "no agent, no task");
        hub.set_agent(AgentBoot {
            base_url: "http://10.0.0.1".into(),
            kernel: "agent/vmlinuz".into(),
            initrd: "agent/initrd.img".into(),
            server: "10.0.0.1:80".into(),
            cmdline: "console=ttyS0".into(),
        });
        assert_eq!(hub.seat_boot(mac), SeatBoot::LocalDisk, "no task");
        hub.offer_restore(RestoreOffer { name: "lab".into(), id: "abc".into(), port_base: 9000, seats: Seats::Any });
        let boot = hub.seat_boot(mac);
        assert!(matches!(boot, SeatBoot::Agent(_)), "{boot:?}");
        // GRUB (the signed chain) reads the same decision as a configuration over TFTP.
        let grub = |path: &str| crate::served::MadeOnRequest::make(&*hub, path);
        let config = String::from_utf8(grub("imaging/grub/52-54-00-00-00-01.cfg").unwrap().to_vec()).unwrap();
        assert!(
            config.contains(
                "    linux '/agent/vmlinuz' 'portapxe.server=10.0.0.1:80' 'portapxe.mac=52:54:00:00:00:01' 'console=ttyS0'\n"
            )
                && config.contains("    initrd '/agent/initrd.img'\nboot\n"),
            "{config}"
        );
        assert_eq!(grub("imaging/grub/52:54:00:00:00:01.cfg"), None, "TFTP names have no colons");
        assert_eq!(grub("imaging/grub/not-a-mac.cfg"), None);
        assert_eq!(grub("imaging/grub/52-54-00-00-00-0A.cfg"), None, "GRUB writes lower case");
        assert_eq!(grub("imaging/grub/+2-54-00-00-00-01.cfg"), None);
        assert_eq!(grub("grub/grub.cfg"), None);
        assert_eq!(
            boot.script(),
            "#!ipxe\necho PortaPXE: starting the imaging agent\nkernel http://10.0.0.1/agent/vmlinuz initrd=initrd.img portapxe.server=10.0.0.1:80 portapxe.mac=52:54:00:00:00:01 console=ttyS0\ninitrd --name initrd.img http://10.0.0.1/agent/initrd.img\nboot\n"
        );
        assert!(matches!(hub.task(mac, SEAT), Task::Restore { .. }));
        hub.report(mac, SEAT, SeatPhase::Done, "restored".into());
        let config = String::from_utf8(grub("imaging/grub/52-54-00-00-00-01.cfg").unwrap().to_vec()).unwrap();
        assert!(config.ends_with("booting its disk'\nexit\n"), "restored: GRUB leaves for its disk:\n{config}");
        assert_eq!(hub.seat_boot(mac), SeatBoot::LocalDisk, "not imaged twice by one offer");
        assert_eq!(hub.task(mac, SEAT), Task::Nothing);
        hub.offer_restore(RestoreOffer { name: "lab".into(), id: "def".into(), port_base: 9000, seats: Seats::Any });
        assert!(matches!(hub.seat_boot(mac), SeatBoot::Agent(_)), "a new offer takes it again");
    }

    #[test]
    fn stopping_ends_waiting_captures_and_the_restore_offer() {
        let (dir, hub, _rx) = hub();
        let mac: MacAddr = MAC.parse().unwrap();
        hub.arm_capture(mac, "golden").unwrap();
        assert!(matches!(hub.task(mac, SEAT), Task::Capture { .. }));
        std::fs::create_dir_all(dir.path().join("images/.golden.partial")).unwrap();
        hub.offer_restore(RestoreOffer { name: "lab".into(), id: "abc".into(), port_base: 9000, seats: Seats::Any });
        hub.stop_all();
        assert_eq!(hub.task(mac, SEAT), Task::Nothing, "no capture, no restore after a stop");
        assert!(!hub.cancel_capture(mac), "nothing left to cancel");
        assert!(!dir.path().join("images/.golden.partial").exists(), "what had arrived is removed");
        hub.arm_capture(mac, "golden").expect("the same capture can be started again");
        assert!(hub.cancel_capture(mac));
        assert_eq!(hub.task(mac, SEAT), Task::Nothing, "cancelled");
    }

    #[test]
    fn a_restore_is_offered_to_the_seats_it_takes() {
        let (_dir, hub, _rx) = hub();
        let mac: MacAddr = MAC.parse().unwrap();
        let other: MacAddr = "52:54:00:00:00:02".parse().unwrap();
        hub.offer_restore(RestoreOffer {
            name: "lab".into(),
            id: "abc".into(),
            port_base: 9000,
            seats: Seats::Only(vec![mac]),
        });
        assert_eq!(hub.task(mac, SEAT), Task::Restore { name: "lab".into(), id: "abc".into(), port_base: 9000 });
        assert_eq!(hub.task(other, SEAT), Task::Nothing);
        assert_eq!(hub.task(mac, SEAT).to_string(), "restore abc 9000 lab");
    }
}
