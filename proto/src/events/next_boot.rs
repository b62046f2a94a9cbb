//! One-off boots planned per machine ("boot this entry once", "boot its own disk once")
//! as typed facts; words in `Display` only.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;

/// What a machine boots the next time it network-boots, once, instead of its menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "boot", content = "entry", rename_all = "snake_case")]
pub enum NextBoot {
    /// The boot entry of this name, without the menu.
    Entry(String),
    /// Leave network boot: the firmware goes on to the next boot device (the disk).
    LocalDisk,
}

impl fmt::Display for NextBoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Entry(name) => write!(f, "boot \"{name}\" once"),
            Self::LocalDisk => f.write_str("boot its own disk once"),
        }
    }
}

/// A machine network-booted with a one-off boot planned: what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextBootEvent {
    pub mac: MacAddr,
    #[serde(flatten)]
    pub boot: NextBoot,
    /// It was given (false: the entry is no longer served, so the menu was; or see `expired`).
    pub given: bool,
    /// Not given because the image's own signed loader was handed out and its GRUB never
    /// asked for the entry in time (the firmware refused the shim, or that GRUB does not
    /// read PortaPXE's configuration): the plan was dropped so the machine boots as usual.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

impl fmt::Display for NextBootEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.boot, self.given) {
            (boot, true) => write!(f, "{}: network-booted and was told to {boot}, as planned", self.mac),
            (NextBoot::Entry(name), false) if self.expired => write!(
                f,
                "{}: was handed the signed loader of \"{name}\"'s image, whose GRUB never asked for the entry: \
                 the plan is dropped and the machine boots as usual (the image's loader may not read PortaPXE's \
                 menu; boot the entry with Secure Boot off)",
                self.mac
            ),
            (NextBoot::Entry(name), false) => write!(
                f,
                "{}: was to boot \"{name}\" once, but no entry of that name is served now: it got the menu",
                self.mac
            ),
            (NextBoot::LocalDisk, false) => write!(f, "{}: its one-off boot was not given", self.mac),
        }
    }
}
