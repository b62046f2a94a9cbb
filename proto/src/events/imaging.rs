//! Imaging as typed facts: tasks given to seats, files received, captures done or
//! failed, and what each seat's agent reported. Words are in `Display` only.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;

#[derive(Debug, Clone, Serialize)]
pub struct ImagingEvent {
    pub mac: Option<MacAddr>,
    pub seat: Option<Ipv4Addr>,
    #[serde(flatten)]
    pub what: ImagingWhat,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "imaging", rename_all = "snake_case")]
pub enum ImagingWhat {
    /// The agent asked what to do and was told.
    Task {
        task: TaskGiven,
    },
    Received {
        file: String,
        bytes: u64,
    },
    CaptureDone {
        name: String,
        bytes: u64,
    },
    CaptureFailed {
        name: String,
        why: String,
    },
    Refused {
        why: String,
    },
    /// The agent's own report.
    Seat {
        phase: SeatPhase,
        detail: String,
    },
    /// A restored seat network-booted again and was sent to its own disk.
    SentToDisk,
}

/// What an agent was told to do (without the capture's token, which only its seat may know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "image", rename_all = "snake_case")]
pub enum TaskGiven {
    Capture(String),
    Restore(String),
    Nothing,
}

impl fmt::Display for TaskGiven {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capture(image) => write!(f, "capture this disk into image {image:?}"),
            Self::Restore(image) => write!(f, "restore image {image:?}"),
            Self::Nothing => f.write_str("nothing to do"),
        }
    }
}

/// Where a seat's agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatPhase {
    Started,
    Waiting,
    Capturing,
    Restoring,
    Verifying,
    Done,
    Failed,
}

impl SeatPhase {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "started" => Self::Started,
            "waiting" => Self::Waiting,
            "capturing" => Self::Capturing,
            "restoring" => Self::Restoring,
            "verifying" => Self::Verifying,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for SeatPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Started => "agent started",
            Self::Waiting => "waiting for a task",
            Self::Capturing => "capturing",
            Self::Restoring => "restoring",
            Self::Verifying => "checking",
            Self::Done => "done",
            Self::Failed => "failed",
        })
    }
}

impl fmt::Display for ImagingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match (self.mac, self.seat) {
            (Some(mac), Some(seat)) => format!("seat {mac} ({seat})"),
            (Some(mac), None) => format!("seat {mac}"),
            (None, Some(seat)) => format!("seat {seat}"),
            (None, None) => "imaging".into(),
        };
        match &self.what {
            ImagingWhat::Task { task: TaskGiven::Nothing } => write!(f, "{who}: asked for a task; nothing to do"),
            ImagingWhat::Task { task } => write!(f, "{who}: told to {task}"),
            ImagingWhat::Received { file, bytes } => write!(f, "{who}: received {file} ({bytes} bytes)"),
            ImagingWhat::CaptureDone { name, bytes } => write!(f, "{who}: image {name:?} captured ({bytes} bytes)"),
            ImagingWhat::CaptureFailed { name, why } => write!(f, "{who}: capture of {name:?} failed: {why}"),
            ImagingWhat::Refused { why } => write!(f, "{who}: refused: {why}"),
            ImagingWhat::Seat { phase, detail } if detail.is_empty() => write!(f, "{who}: {phase}"),
            ImagingWhat::Seat { phase, detail } => write!(f, "{who}: {phase}: {detail}"),
            ImagingWhat::SentToDisk => write!(f, "{who}: restored; booting its own disk"),
        }
    }
}
