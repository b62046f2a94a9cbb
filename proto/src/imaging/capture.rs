//! The rules of a capture session, pure: which seat may write, which files, and when
//! the image is whole. The hub applies them; the HTTP routes only carry bytes.
//!
//! A session is started by the user for one MAC and an image name. The seat booted
//! into the agent asks for its task with its MAC; the first address that asks is the
//! seat's, and only it may write, with the token it was given, each file once, into
//! the session's own temporary folder. The image exists only when the agent's manifest
//! names exactly the files received, with the sizes and SHA-256 the server measured.

use std::fmt;
use std::net::Ipv4Addr;

use super::manifest::{MANIFEST, Manifest, valid_name};
use crate::mac::MacAddr;

/// A file received whole, as measured by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureState {
    /// Waiting for the seat to boot the agent and ask.
    Armed,
    /// The seat at this address is sending.
    Receiving {
        seat: Ipv4Addr,
    },
    Done,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSession {
    pub mac: MacAddr,
    pub name: String,
    /// Handed to the seat with its task; every write names it.
    pub token: String,
    pub state: CaptureState,
    pub received: Vec<Received>,
    /// A file being written now.
    pub writing: Option<String>,
}

/// Why a write or a manifest is refused. `Display` says it to the agent (and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No session has this token: the user started none, or it ended.
    NoSession,
    /// The write comes from another address than the seat that asked for the task.
    WrongSeat {
        seat: Ipv4Addr,
        from: Ipv4Addr,
    },
    NotStarted,
    Ended,
    BadFile(String),
    Twice(String),
    Busy(String),
    /// The manifest does not match what arrived.
    Mismatch(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSession => f.write_str("no capture session has this token: start one in PortaPXE first"),
            Self::WrongSeat { seat, from } => {
                write!(f, "this capture belongs to the seat at {seat}; {from} may not write to it")
            }
            Self::NotStarted => f.write_str("the seat has not asked for its task yet"),
            Self::Ended => f.write_str("this capture session has ended"),
            Self::BadFile(file) => write!(f, "{file:?} is not a file name an image may hold"),
            Self::Twice(file) => write!(f, "{file} was already received"),
            Self::Busy(file) => write!(f, "{file} is being received: one file at a time"),
            Self::Mismatch(what) => write!(f, "the manifest does not match what arrived: {what}"),
        }
    }
}

impl CaptureSession {
    pub fn new(mac: MacAddr, name: String, token: String) -> Self {
        Self { mac, name, token, state: CaptureState::Armed, received: Vec::new(), writing: None }
    }

    /// The seat asks for its task from `from`: the first address is the seat's.
    pub fn claim(&mut self, from: Ipv4Addr) -> Result<(), Refusal> {
        match self.state {
            CaptureState::Armed => {
                self.state = CaptureState::Receiving { seat: from };
                Ok(())
            }
            CaptureState::Receiving { seat } if seat == from => Ok(()),
            CaptureState::Receiving { seat } => Err(Refusal::WrongSeat { seat, from }),
            CaptureState::Done | CaptureState::Failed(_) => Err(Refusal::Ended),
        }
    }

    fn check_seat(&self, from: Ipv4Addr) -> Result<(), Refusal> {
        match self.state {
            CaptureState::Armed => Err(Refusal::NotStarted),
            CaptureState::Receiving { seat } if seat == from => Ok(()),
            CaptureState::Receiving { seat } => Err(Refusal::WrongSeat { seat, from }),
            CaptureState::Done | CaptureState::Failed(_) => Err(Refusal::Ended),
        }
    }

    /// May `from` write `file` now?
    pub fn begin_file(&mut self, from: Ipv4Addr, file: &str) -> Result<(), Refusal> {
        self.check_seat(from)?;
        if !valid_name(file) || file == MANIFEST {
            return Err(Refusal::BadFile(file.into()));
        }
        if self.received.iter().any(|r| r.file == file) {
            return Err(Refusal::Twice(file.into()));
        }
        if let Some(writing) = &self.writing {
            return Err(Refusal::Busy(writing.clone()));
        }
        self.writing = Some(file.into());
        Ok(())
    }

    /// The file arrived whole.
    pub fn end_file(&mut self, received: Received) {
        self.writing = None;
        self.received.push(received);
    }

    /// Writing stopped before the end: the file does not count.
    pub fn abandon_file(&mut self) {
        self.writing = None;
    }

    pub fn fail(&mut self, why: String) {
        self.writing = None;
        self.state = CaptureState::Failed(why);
    }

    /// Checks the agent's manifest against what arrived: every part named was
    /// received with that size and checksum, and nothing else was.
    pub fn check_manifest(&self, from: Ipv4Addr, manifest: &Manifest) -> Result<(), Refusal> {
        self.check_seat(from)?;
        if let Some(writing) = &self.writing {
            return Err(Refusal::Busy(writing.clone()));
        }
        let mismatch = |what: String| Err(Refusal::Mismatch(what));
        let mut named: Vec<&str> = Vec::new();
        let mut numbers: Vec<u32> = Vec::new();
        for partition in &manifest.partitions {
            if numbers.contains(&partition.number) {
                return mismatch(format!("partition {} is named twice", partition.number));
            }
            numbers.push(partition.number);
        }
        for part in manifest.parts() {
            if named.contains(&part.file.as_str()) {
                return mismatch(format!("{} is named twice", part.file));
            }
            named.push(&part.file);
            match self.received.iter().find(|r| r.file == part.file) {
                None => return mismatch(format!("{} was never received", part.file)),
                Some(got) if got.bytes != part.bytes => {
                    return mismatch(format!(
                        "{}: {} bytes arrived, the seat sent {}",
                        part.file, got.bytes, part.bytes
                    ));
                }
                Some(got) if got.sha256 != part.sha256 => {
                    return mismatch(format!("{}: the checksum of what arrived differs from the seat's", part.file));
                }
                Some(_) => {}
            }
        }
        if named.len() != self.received.len() {
            let extra: Vec<&str> = self
                .received
                .iter()
                .filter(|r| !manifest.parts().any(|p| p.file == r.file))
                .map(|r| r.file.as_str())
                .collect();
            return mismatch(format!("received but not named: {}", extra.join(", ")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::manifest::{FORMAT, Method, Part, Partition};

    const SEAT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 21);

    fn session() -> CaptureSession {
        CaptureSession::new("52:54:00:00:00:01".parse().unwrap(), "lab".into(), "t0k3n".into())
    }

    fn received(file: &str) -> Received {
        Received { file: file.into(), bytes: 10, sha256: format!("sum-of-{file}") }
    }

    fn manifest(files: &[&str]) -> Manifest {
        let part = |file: &str| Part { file: file.into(), bytes: 10, sha256: format!("sum-of-{file}") };
        Manifest {
            format: FORMAT,
            name: "lab".into(),
            id: String::new(),
            created: 0,
            source_mac: None,
            disk_bytes: 1 << 20,
            table: part(files[0]),
            boot_area: None,
            partitions: files[1..]
                .iter()
                .enumerate()
                .map(|(i, file)| Partition {
                    number: i as u32 + 1,
                    filesystem: "ext4".into(),
                    method: Method::Partclone,
                    partition_bytes: 1 << 19,
                    part: part(file),
                })
                .collect(),
        }
    }

    #[test]
    fn only_the_seat_that_asked_may_write() {
        let mut session = session();
        assert_eq!(session.begin_file(SEAT, "table.sfdisk"), Err(Refusal::NotStarted));
        session.claim(SEAT).unwrap();
        assert_eq!(session.claim(OTHER), Err(Refusal::WrongSeat { seat: SEAT, from: OTHER }));
        let refused = session.begin_file(OTHER, "table.sfdisk").unwrap_err();
        assert_eq!(refused.to_string(), "this capture belongs to the seat at 10.0.0.20; 10.0.0.21 may not write to it");
        session.begin_file(SEAT, "table.sfdisk").unwrap();
    }

    #[test]
    fn files_are_plain_names_each_received_once_one_at_a_time() {
        let mut session = session();
        session.claim(SEAT).unwrap();
        for bad in ["../x", "a/b", ".hidden", "image.toml", ""] {
            assert!(matches!(session.begin_file(SEAT, bad), Err(Refusal::BadFile(_))), "{bad:?}");
        }
        session.begin_file(SEAT, "p1").unwrap();
        assert_eq!(session.begin_file(SEAT, "p2"), Err(Refusal::Busy("p1".into())));
        session.end_file(received("p1"));
        assert_eq!(session.begin_file(SEAT, "p1"), Err(Refusal::Twice("p1".into())));
        session.begin_file(SEAT, "p2").unwrap();
        session.abandon_file();
        session.begin_file(SEAT, "p2").unwrap();
    }

    #[test]
    fn the_manifest_must_name_exactly_what_arrived() {
        let mut session = session();
        session.claim(SEAT).unwrap();
        for file in ["t", "p1"] {
            session.begin_file(SEAT, file).unwrap();
            session.end_file(received(file));
        }
        session.check_manifest(SEAT, &manifest(&["t", "p1"])).unwrap();
        let missing = session.check_manifest(SEAT, &manifest(&["t", "p1", "p2"])).unwrap_err();
        assert!(missing.to_string().contains("p2 was never received"), "{missing}");
        let extra = session.check_manifest(SEAT, &manifest(&["t"])).unwrap_err();
        assert!(extra.to_string().contains("received but not named: p1"), "{extra}");
        let mut other = manifest(&["t", "p1"]);
        other.partitions[0].part.sha256 = "forged".into();
        assert!(session.check_manifest(SEAT, &other).unwrap_err().to_string().contains("checksum"));
        assert!(matches!(session.check_manifest(OTHER, &manifest(&["t", "p1"])), Err(Refusal::WrongSeat { .. })));
        let twice = session.check_manifest(SEAT, &manifest(&["t", "t"])).unwrap_err();
        assert!(twice.to_string().contains("t is named twice"), "{twice}");
    }

    #[test]
    fn a_failed_or_finished_session_takes_nothing_more() {
        let mut session = session();
        session.claim(SEAT).unwrap();
        session.fail("the disk is full".into());
        assert_eq!(session.begin_file(SEAT, "p1"), Err(Refusal::Ended));
        assert_eq!(session.claim(SEAT), Err(Refusal::Ended));
    }
}
