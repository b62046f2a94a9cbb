//! The image folder's manifest (`image.toml`): every file of an image with its size
//! and SHA-256, the partitions and how each was taken. The engine's
//! `imaging::image` reads and writes image folders with it.

use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;

pub const MANIFEST: &str = "image.toml";
/// The manifest format this PortaPXE writes and reads.
pub const FORMAT: u32 = 1;

/// How a partition's bytes were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `partclone.<fs> -c`: the used blocks only.
    Partclone,
    /// Every byte (`dd`): for file systems partclone cannot read.
    Raw,
}

/// A file of the image, as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// A plain file name inside the image folder.
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// The partition's number on the disk (sda1 → 1).
    pub number: u32,
    /// The file system found on it (`ext4`, `vfat`, `ntfs`, …) or `unknown`.
    pub filesystem: String,
    pub method: Method,
    /// The partition's size on the source disk.
    pub partition_bytes: u64,
    #[serde(flatten)]
    pub part: Part,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    /// Random, made at capture: what identifies this image's stream.
    pub id: String,
    /// Seconds since 1970 when the capture finished.
    pub created: u64,
    pub source_mac: Option<MacAddr>,
    /// The source disk's size: a seat's disk must be at least this large.
    pub disk_bytes: u64,
    /// The partition table (`sfdisk --dump`).
    pub table: Part,
    /// The disk's bytes before its first partition: the MBR's boot code and, on an MBR
    /// disk, the gap after it where GRUB keeps its core (a BIOS machine boots from them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_area: Option<Part>,
    pub partitions: Vec<Partition>,
}

impl Manifest {
    /// Every file of the image in stream order: the table, the boot area, the partitions.
    pub fn parts(&self) -> impl Iterator<Item = &Part> {
        std::iter::once(&self.table)
            .chain(self.boot_area.as_ref())
            .chain(self.partitions.iter().map(|partition| &partition.part))
    }

    /// Bytes of the image's files.
    pub fn bytes(&self) -> u64 {
        self.parts().map(|part| part.bytes).sum()
    }

    /// The partitions in words, for listings: "1:ext4 (67.1 MB), 2:vfat (4.2 MB)".
    pub fn partitions_text(&self) -> String {
        let each: Vec<String> = self
            .partitions
            .iter()
            .map(|p| format!("{}:{} ({:.1} MB)", p.number, p.filesystem, p.partition_bytes as f64 / 1e6))
            .collect();
        each.join(", ")
    }
}

/// A name fit to be a folder and a file name on every system.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
