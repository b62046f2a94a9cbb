//! Clonezilla clients joining a restore, the pure half: what a Clonezilla "lite server"
//! (`ocs-live-feed-img`) publishes, made from a PortaPXE image.
//!
//! A Clonezilla live booted with `ocs_live_run="ocs-live-get-img SERVER"` fetches
//! `http://SERVER/ocs-client-run.conf` (shell variables: the pseudo image's name, the
//! image folder's name, `ocs-sr`'s options, the target disk), then the pseudo image: a
//! `.tar.xz` of the image folder in Clonezilla's format with an empty placeholder for
//! each partition file (only its name is read: it says the file system and the
//! compression). It then runs `ocs-sr … multicast_restoredisk IMAGE DISK`, which writes
//! the partition table and the boot code from those files and receives each partition
//! with its own `udp-receiver --portbase P`, in the order of the folder's `parts` file,
//! the port going up by 2 from `--mcast-port` for each partition, piped into the
//! decompressor and `partclone.<fs> -r` (or `partclone.dd` for raw bytes).
//!
//! PortaPXE's partition files are what those pipelines read: `partclone -c` output (or
//! the raw bytes) compressed with zstd, which Clonezilla names `sda1.ext4-ptcl-img.zst`
//! (`sda1.dd-ptcl-img.zst` for raw bytes). So each is sent as it is, one udpcast session
//! per partition. Read in clonezilla 5.3.17 (Debian 12): `ocs-live-feed-img`,
//! `ocs-live-get-img`, `ocs-sr` and `ocs-functions`.

use std::fmt;
use std::net::Ipv4Addr;

use super::manifest::{Manifest, Method, valid_name};
use crate::mac::MacAddr;

/// What `ocs-live-get-img` fetches first, at the root of the HTTP server.
pub const CLIENT_RUN_CONF: &str = "ocs-client-run.conf";
/// The image folder without its partition data (`tar -xJf` on the client).
pub const PSEUDO_IMAGE: &str = "img-wo-fs.tar.xz";
/// Clonezilla's first multicast port (`MULTICAST_PORT` in `drbl-ocs.conf`).
pub const DEFAULT_PORT: u16 = 2232;
/// The target disk when none is named: the first SATA/SCSI/USB disk.
pub const DEFAULT_DISK: &str = "sda";

/// The file at the root of every Clonezilla live image (ISO and zip).
pub const LIVE_MARK: &str = "Clonezilla-Live-Version";

/// Whether an ISO image is a Clonezilla live.
pub fn is_clonezilla_live(index: &crate::iso::IsoIndex) -> bool {
    index.contains(LIVE_MARK)
}

/// Why an image cannot be offered to Clonezilla clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// The disk name is not one a Linux kernel gives a whole disk.
    DiskName(String),
    /// The partition table is not an `sfdisk --dump` of a `dos` or `gpt` label.
    Table(String),
    /// An extended partition: Clonezilla restores its EBR from a file PortaPXE does not take.
    Extended(u32),
    /// The manifest names a partition the table does not have.
    NotInTable(u32),
    /// The ports of the sessions would pass 65535, or the first is 0.
    Ports { first: u16, sessions: usize },
    /// The manifest's name is not one that may go into Clonezilla's shell file.
    ImageName(String),
    /// A partition taken by partclone whose file system Clonezilla does not name.
    Filesystem { number: u32, filesystem: String },
    /// The manifest gives the disk no size.
    DiskSize,
    /// A dos disk without its boot area: Clonezilla would leave partclone's fail-MBR.
    NoBootArea,
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DiskName(name) => write!(
                f,
                "{name:?} is not a disk name Clonezilla knows: give the seats' disk as Linux names it (sda, vda, nvme0n1, mmcblk0)"
            ),
            Self::Table(why) => write!(f, "the image's partition table cannot be given to Clonezilla: {why}"),
            Self::Extended(number) => write!(
                f,
                "partition {number} is an extended partition: Clonezilla needs its EBR, which PortaPXE does not capture; restore this image with PortaPXE's agent"
            ),
            Self::NotInTable(number) => {
                write!(f, "the image has partition {number}, which its partition table does not list: capture it again")
            }
            Self::Ports { first, sessions } => write!(
                f,
                "{sessions} partitions need ports {first} to {} (2 a partition, none of them 0): pick another Clonezilla port",
                (u32::from(*first) + 2 * *sessions as u32).saturating_sub(1)
            ),
            Self::ImageName(name) => write!(
                f,
                "its manifest names it {name:?}: Clonezilla's client runs that name in a shell; use letters, digits, '-', '_' and '.'"
            ),
            Self::Filesystem { number, filesystem } => write!(
                f,
                "partition {number} holds {filesystem}, which Clonezilla's partclone does not restore; restore this image with PortaPXE's agent"
            ),
            Self::DiskSize => f.write_str("its manifest gives the disk no size: capture it again"),
            Self::NoBootArea => f.write_str(
                "it has no boot area (the MBR's code), which Clonezilla would replace with a code that boots nothing: capture it again",
            ),
        }
    }
}

/// A partition table label, as sfdisk and parted name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Dos,
    Gpt,
}

/// One line of an `sfdisk --dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// `83`, `ef`, or a GPT type GUID, as sfdisk writes it.
    pub kind: String,
    /// The rest of the line after the device name (`start=…, size=…, type=…`).
    pub fields: String,
}

impl TableEntry {
    fn extended(&self, label: Label) -> bool {
        label == Label::Dos && matches!(self.kind.to_ascii_lowercase().as_str(), "5" | "f" | "85")
    }
}

/// An `sfdisk --dump`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub label: Label,
    /// The header lines (`label:`, `label-id:`, `unit:`, …) but `device:`.
    pub header: Vec<String>,
    pub entries: Vec<TableEntry>,
}

/// The number at the end of a partition's device name: `/dev/sda1` → 1, `/dev/nvme0n1p12` → 12.
fn trailing_number(name: &str) -> Option<u32> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    name[name.len() - digits..].parse().ok()
}

/// Reads an `sfdisk --dump` (PortaPXE's image keeps it without its `device:` line).
pub fn parse_table(text: &str) -> Result<Table, Unfit> {
    let mut label = None;
    let mut header = Vec::new();
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if let Some((name, rest)) = line.split_once(" : ") {
            let number = trailing_number(name.trim())
                .ok_or_else(|| Unfit::Table(format!("{:?} names no partition number", name.trim())))?;
            let field = |key: &str| {
                rest.split(',').map(str::trim).find_map(|f| f.strip_prefix(key)?.trim_start().strip_prefix('='))
            };
            let number_field = |key: &str| {
                field(key)
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .ok_or_else(|| Unfit::Table(format!("partition {number} has no {key}")))
            };
            let (start, size) = (number_field("start")?, number_field("size")?);
            if start.checked_add(size).is_none() {
                return Err(Unfit::Table(format!("partition {number} ends past the largest disk")));
            }
            entries.push(TableEntry {
                number,
                start,
                size,
                kind: field("type").unwrap_or("").trim().to_owned(),
                fields: rest.trim().to_owned(),
            });
        } else if let Some((key, value)) = line.split_once(':') {
            match (key.trim(), value.trim()) {
                ("label", "dos") => label = Some(Label::Dos),
                ("label", "gpt") => label = Some(Label::Gpt),
                ("label", other) => return Err(Unfit::Table(format!("its label is {other:?}, not dos or gpt"))),
                ("device", _) => continue,
                ("sector-size", size) if size != "512" => {
                    return Err(Unfit::Table(format!(
                        "its sectors are {size} bytes; Clonezilla's files here assume 512"
                    )));
                }
                _ => {}
            }
            header.push(line.to_owned());
        }
    }
    let label = label.ok_or_else(|| Unfit::Table("it has no label line".into()))?;
    Ok(Table { label, header, entries })
}

/// Linux's name of partition `number` of `disk`: `sda` → `sda1`, `nvme0n1` → `nvme0n1p1`.
pub fn partition_name(disk: &str, number: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) { format!("{disk}p{number}") } else { format!("{disk}{number}") }
}

fn valid_disk(disk: &str) -> bool {
    (2..=32).contains(&disk.len())
        && disk.starts_with(|c: char| c.is_ascii_lowercase())
        && disk.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// One multicast session of the feed: one partition, sent as its image file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSession {
    /// The partition on the seat (`sda1`).
    pub device: String,
    /// PortaPXE's file of it in the image folder.
    pub file: String,
    pub bytes: u64,
    /// The session's udpcast port base: the client's `--portbase`.
    pub port_base: u16,
}

/// What a PortaPXE image is to Clonezilla clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The folder name the client gives the extracted pseudo image (`img_prefix`).
    pub image: String,
    pub disk: String,
    /// The pseudo image's files, by name (placeholders are empty).
    pub files: Vec<(String, Vec<u8>)>,
    /// In the order the clients receive them (`parts`).
    pub sessions: Vec<FeedSession>,
    /// The first session's port (`--mcast-port`).
    pub port: u16,
}

/// The file systems Clonezilla restores with partclone (`partclone_support_fs` in
/// clonezilla 5.3.17's `drbl-ocs.conf`), `dd` being the raw bytes.
pub const CLONEZILLA_FILESYSTEMS: &[&str] = &[
    "apfs", "hfs+", "hfsplus", "reiser4", "reiserfs", "xfs", "jfs", "ext2", "ext3", "ext4", "ext4dev", "fat12",
    "fat16", "fat32", "vfat", "ntfs", "ufs", "btrfs", "exfat", "minix", "vmfs3", "vmfs5", "f2fs", "nilfs2", "dd",
];

/// The name of a partition file to Clonezilla (the file system and the compression), or
/// `None` for a partclone image of a file system Clonezilla does not name: sent to
/// `partclone.dd`, its header and bitmap would be written as the partition's bytes.
fn clonezilla_file(device: &str, filesystem: &str, method: Method) -> Option<String> {
    let filesystem = match (method, filesystem) {
        (Method::Raw, _) => "dd",
        (Method::Partclone, "fat") => "vfat",
        (Method::Partclone, "dd") => return None,
        (Method::Partclone, other) if CLONEZILLA_FILESYSTEMS.contains(&other) => other,
        (Method::Partclone, _) => return None,
    };
    Some(format!("{device}.{filesystem}-ptcl-img.zst"))
}

/// `parted -s /dev/DISK unit s print`, as much of it as Clonezilla reads: the disk's
/// size, the label, and one line a partition. A swap partition is not called one: a
/// restore runs `mkswap` on every partition both tables call swap, which (without the
/// UUID Clonezilla keeps in `swappt-*.info`) gives it a new UUID that the restored
/// system's fstab does not name; PortaPXE's image holds its bytes, restored as they are.
fn parted_print(disk: &str, disk_sectors: u64, table: &Table, manifest: &Manifest) -> String {
    let label = match table.label {
        Label::Dos => "msdos",
        Label::Gpt => "gpt",
    };
    let mut out = format!(
        "Model: PortaPXE image (virtual)\nDisk /dev/{disk}: {disk_sectors}s\nSector size (logical/physical): 512B/512B\nPartition Table: {label}\nDisk Flags: \n\n"
    );
    out.push_str("Number  Start  End  Size  Type  File system  Flags\n");
    for entry in &table.entries {
        let filesystem = manifest
            .partitions
            .iter()
            .find(|p| p.number == entry.number)
            .map_or("", |p| if p.filesystem == "swap" { "" } else { p.filesystem.as_str() });
        let kind = if table.label == Label::Gpt { "" } else { "primary" };
        out.push_str(&format!(
            " {}  {}s  {}s  {}s  {kind}  {filesystem}\n",
            entry.number,
            entry.start,
            entry.start.saturating_add(entry.size).saturating_sub(1),
            entry.size
        ));
    }
    out
}

/// The image as Clonezilla's client reads it: its folder's files and the sessions, for
/// seats whose disk Linux names `disk`. `table` is the image's `sfdisk --dump`,
/// `boot_area` its bytes before the first partition.
pub fn feed(
    manifest: &Manifest,
    table_text: &str,
    boot_area: Option<&[u8]>,
    disk: &str,
    port: u16,
) -> Result<Feed, Unfit> {
    if !valid_disk(disk) {
        return Err(Unfit::DiskName(disk.into()));
    }
    // It goes into a file the client runs with bash's `.`, then `eval`s.
    if !valid_name(&manifest.name) {
        return Err(Unfit::ImageName(manifest.name.clone()));
    }
    if manifest.disk_bytes < 512 {
        return Err(Unfit::DiskSize);
    }
    let table = parse_table(table_text)?;
    if table.label == Label::Dos && boot_area.is_none_or(|area| area.len() < 512) {
        return Err(Unfit::NoBootArea);
    }
    if let Some(entry) = table.entries.iter().find(|entry| entry.extended(table.label)) {
        return Err(Unfit::Extended(entry.number));
    }
    if manifest.partitions.is_empty() {
        return Err(Unfit::Table("the image has no partition to send".into()));
    }
    let mut partitions: Vec<_> = manifest.partitions.iter().collect();
    partitions.sort_by_key(|p| p.number);
    if let Some(p) = partitions.iter().find(|p| !table.entries.iter().any(|e| e.number == p.number)) {
        return Err(Unfit::NotInTable(p.number));
    }
    if port == 0 || u32::from(port) + 2 * partitions.len() as u32 - 1 > u32::from(u16::MAX) {
        return Err(Unfit::Ports { first: port, sessions: partitions.len() });
    }
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    // The table with this disk's names, as `sfdisk -d /dev/DISK` writes it.
    let mut sf = String::new();
    for line in &table.header {
        sf.push_str(line);
        sf.push('\n');
        if line.starts_with("label-id:") {
            sf.push_str(&format!("device: /dev/{disk}\n"));
        }
    }
    sf.push('\n');
    for entry in &table.entries {
        sf.push_str(&format!("/dev/{} : {}\n", partition_name(disk, entry.number), entry.fields));
    }
    let disk_sectors = manifest.disk_bytes / 512;
    files.push(("disk".into(), format!("{disk}\n").into_bytes()));
    let names: Vec<String> = partitions.iter().map(|p| partition_name(disk, p.number)).collect();
    files.push(("parts".into(), format!("{}\n", names.join(" ")).into_bytes()));
    files.push((format!("{disk}-pt.sf"), sf.into_bytes()));
    files.push((format!("{disk}-pt.parted"), parted_print(disk, disk_sectors, &table, manifest).into_bytes()));
    if let Some(area) = boot_area.filter(|area| area.len() >= 512) {
        files.push((format!("{disk}-mbr"), area[..512].to_vec()));
        // What `-j2` writes back after the MBR on a dos disk (GRUB's core lives there).
        if table.label == Label::Dos && area.len() > 512 {
            files.push((format!("{disk}-hidden-data-after-mbr"), area[512..].to_vec()));
        }
    }
    let mut dev_fs = String::from("# <Device name>   <File system>   <Size>\n");
    let mut sessions = Vec::new();
    for (index, (partition, device)) in partitions.iter().zip(&names).enumerate() {
        let name = clonezilla_file(device, &partition.filesystem, partition.method)
            .ok_or_else(|| Unfit::Filesystem { number: partition.number, filesystem: partition.filesystem.clone() })?;
        dev_fs.push_str(&format!("/dev/{device} {} {}\n", partition.filesystem, partition.partition_bytes));
        files.push((name, Vec::new()));
        sessions.push(FeedSession {
            device: device.clone(),
            file: partition.part.file.clone(),
            bytes: partition.part.bytes,
            port_base: port + 2 * index as u16,
        });
    }
    files.push(("dev-fs.list".into(), dev_fs.into_bytes()));
    files.push((
        "clonezilla-img".into(),
        format!("This image was made by PortaPXE from its image {:?} (id {}).\n", manifest.name, manifest.id)
            .into_bytes(),
    ));
    // Clonezilla sources this file: only an id of plain characters goes in.
    if manifest.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        files.push(("Info-img-id.txt".into(), format!("IMG_ID={}\n", manifest.id).into_bytes()));
    }
    Ok(Feed { image: manifest.name.clone(), disk: disk.into(), files, sessions, port })
}

/// What the restored seat does when it is done (`ocs-sr -p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRestore {
    Reboot,
    Poweroff,
}

impl fmt::Display for AfterRestore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reboot => "reboot",
            Self::Poweroff => "poweroff",
        })
    }
}

/// `ocs-sr`'s options for the clients: batch, no image check (the partition files are
/// placeholders), no disk size check beyond the table's own, the boot data after the
/// MBR (`-j2`), and none of the steps that need tools inside the restored system
/// (GRUB reinstall, syslinux, initrd, EFI boot entries).
pub fn ocs_sr_options(feed: &Feed, after: AfterRestore) -> String {
    format!(
        "--ocsroot /tmp/ -l en_US.UTF-8 --batch -nogui -scr -j2 -irhr -ius -iui -iefi -p {after} --mcast-port {} multicast_restoredisk",
        feed.port
    )
}

/// `ocs-client-run.conf`: read by `ocs-live-get-img` with bash's `.`.
pub fn client_run_conf(feed: &Feed, after: AfterRestore) -> String {
    format!(
        "pseudo_img=\"{PSEUDO_IMAGE}\"\nimg_prefix=\"{}\"\nocs_sr_opt=\"{}\"\nocs_restore_dev=\"{}\"\n",
        feed.image,
        ocs_sr_options(feed, after),
        feed.disk
    )
}

/// What PortaPXE adds to a Clonezilla live entry's kernel command line while a restore
/// session takes Clonezilla clients: run `ocs-live-get-img` against this server, with
/// no question asked.
pub fn boot_parameters(server: Ipv4Addr) -> String {
    format!(
        "locales=en_US.UTF-8 keyboard-layouts=NONE ocs_live_batch=\"yes\" ocs_live_run=\"ocs-live-get-img {server}\""
    )
}

/// Where a Clonezilla client reports its job when it is done (`OCSMGRD_PORT`): one line
/// over TCP from `ocs-socket`, sent to the `-os` server `ocs-live-get-img` names.
pub const JOB_REPORT_PORT: u16 = 6461;

/// What one partition came to on the seat, in the client's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    /// `vda1`
    pub device: String,
    /// `success`, or what else Clonezilla said (`***FAIL***`).
    pub status: String,
}

impl PartitionResult {
    pub fn succeeded(&self) -> bool {
        self.status == "success"
    }
}

/// A Clonezilla client's job report: `IP MAC [EFI facts] Multicast restored IMAGE,
/// /dev/vda1, success, 22 MB, 0.2 mins; /dev/vda2, success, 0.0 mins;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub mac: MacAddr,
    pub partitions: Vec<PartitionResult>,
}

impl JobReport {
    /// Every partition it names was written.
    pub fn succeeded(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.iter().all(PartitionResult::succeeded)
    }

    /// It names each of `devices` (the feed's partitions) written, and nothing else.
    pub fn restored_all(&self, devices: &[&str]) -> bool {
        let mut named: Vec<&str> = self.partitions.iter().map(|p| p.device.as_str()).collect();
        named.sort_unstable();
        let mut wanted = devices.to_vec();
        wanted.sort_unstable();
        self.succeeded() && named == wanted
    }
}

impl fmt::Display for JobReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let each: Vec<String> = self.partitions.iter().map(|p| format!("{} {}", p.device, p.status)).collect();
        write!(f, "Clonezilla reports {}", each.join(", "))
    }
}

/// Reads a job report line; `None` for anything else (the address it names is not
/// read: the connection's own address says which seat sent it).
pub fn parse_job_report(line: &str) -> Option<JobReport> {
    let mut words = line.split_whitespace();
    let _ip: Ipv4Addr = words.next()?.parse().ok()?;
    let mac: MacAddr = words.next()?.parse().ok()?;
    let mut partitions = Vec::new();
    for piece in line.split(';') {
        let fields: Vec<&str> = piece.split(',').map(str::trim).collect();
        let Some(at) =
            fields.iter().position(|field| field.split_whitespace().last().is_some_and(|w| w.starts_with("/dev/")))
        else {
            continue;
        };
        let device = fields[at].split_whitespace().last().unwrap_or_default().trim_start_matches("/dev/");
        let Some(status) = fields.get(at + 1).filter(|status| !status.is_empty()) else { continue };
        if device.is_empty() || device.len() > 32 || status.len() > 32 {
            continue;
        }
        partitions.push(PartitionResult { device: device.into(), status: (*status).into() });
    }
    Some(JobReport { mac, partitions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::manifest::{FORMAT, Part, Partition};

    const DOS: &str = "label: dos\nlabel-id: 0x1c2d3e4f\nunit: sectors\nsector-size: 512\n\n/dev/vda1 : start=        2048, size=      262144, type=83, bootable\n/dev/vda2 : start=      264192, size=       65536, type=82\n";

    fn part(file: &str, bytes: u64) -> Part {
        Part { file: file.into(), bytes, sha256: "00".repeat(32) }
    }

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            name: "lab-ref".into(),
            id: "0123abcd".into(),
            created: 0,
            source_mac: None,
            disk_bytes: 256 << 20,
            table: part("table.sfdisk", DOS.len() as u64),
            boot_area: Some(part("bootarea.bin", 2048 * 512)),
            partitions: vec![
                Partition {
                    number: 2,
                    filesystem: "swap".into(),
                    method: Method::Raw,
                    partition_bytes: 65536 * 512,
                    part: part("part2.img.zst", 1000),
                },
                Partition {
                    number: 1,
                    filesystem: "ext4".into(),
                    method: Method::Partclone,
                    partition_bytes: 262144 * 512,
                    part: part("part1.pcl.zst", 5000),
                },
            ],
        }
    }

    fn file<'a>(feed: &'a Feed, name: &str) -> &'a [u8] {
        &feed.files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in {:?}", feed.files)).1
    }

    #[test]
    fn an_image_becomes_clonezilla_files_and_one_session_a_partition() {
        let boot: Vec<u8> = (0..2048 * 512).map(|i| (i % 251) as u8).collect();
        let feed = feed(&manifest(), DOS, Some(&boot), "sda", DEFAULT_PORT).unwrap();
        assert_eq!(file(&feed, "disk"), b"sda\n");
        assert_eq!(file(&feed, "parts"), b"sda1 sda2\n", "in partition order, swap included (restored as bytes)");
        assert_eq!(
            std::str::from_utf8(file(&feed, "sda-pt.sf")).unwrap(),
            "label: dos\nlabel-id: 0x1c2d3e4f\ndevice: /dev/sda\nunit: sectors\nsector-size: 512\n\n/dev/sda1 : start=        2048, size=      262144, type=83, bootable\n/dev/sda2 : start=      264192, size=       65536, type=82\n"
        );
        let parted = std::str::from_utf8(file(&feed, "sda-pt.parted")).unwrap();
        assert!(parted.contains("Disk /dev/sda: 524288s\n") && parted.contains("Partition Table: msdos\n"), "{parted}");
        assert!(parted.contains(" 1  2048s  264191s  262144s  primary  ext4\n"), "{parted}");
        assert!(
            parted.contains(" 2  264192s  329727s  65536s  primary  \n") && !parted.contains("swap"),
            "not made anew by mkswap: its bytes are restored as they are\n{parted}"
        );
        assert_eq!(file(&feed, "sda-mbr"), &boot[..512]);
        assert_eq!(file(&feed, "sda-hidden-data-after-mbr"), &boot[512..]);
        assert_eq!(file(&feed, "sda1.ext4-ptcl-img.zst"), b"", "a placeholder: only its name is read");
        assert_eq!(file(&feed, "sda2.dd-ptcl-img.zst"), b"", "raw bytes are partclone.dd's format");
        assert_eq!(
            feed.sessions,
            vec![
                FeedSession { device: "sda1".into(), file: "part1.pcl.zst".into(), bytes: 5000, port_base: 2232 },
                FeedSession { device: "sda2".into(), file: "part2.img.zst".into(), bytes: 1000, port_base: 2234 },
            ],
            "the port goes up by 2 a partition, as ocs-sr's does"
        );
        let conf = client_run_conf(&feed, AfterRestore::Reboot);
        assert_eq!(
            conf,
            "pseudo_img=\"img-wo-fs.tar.xz\"\nimg_prefix=\"lab-ref\"\nocs_sr_opt=\"--ocsroot /tmp/ -l en_US.UTF-8 --batch -nogui -scr -j2 -irhr -ius -iui -iefi -p reboot --mcast-port 2232 multicast_restoredisk\"\nocs_restore_dev=\"sda\"\n"
        );
    }

    #[test]
    fn nvme_partitions_take_a_p_and_gpt_keeps_no_hidden_data() {
        let gpt = "label: gpt\nlabel-id: 0E63D1AA-A8B4-4D91-A001-679409116352\nunit: sectors\nfirst-lba: 34\nlast-lba: 524254\nsector-size: 512\n\n/dev/sda1 : start=2048, size=262144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6A1A3D0C-1B2E-4F6A-9C4B-2F1D3E5A7B8C\n";
        let mut manifest = manifest();
        manifest.partitions.retain(|p| p.number == 1);
        let feed = feed(&manifest, gpt, Some(&[0u8; 2048 * 512]), "nvme0n1", 2232).unwrap();
        assert_eq!(file(&feed, "parts"), b"nvme0n1p1\n");
        let sf = std::str::from_utf8(file(&feed, "nvme0n1-pt.sf")).unwrap();
        assert!(sf.contains("device: /dev/nvme0n1\n") && sf.contains("\n/dev/nvme0n1p1 : start=2048,"), "{sf}");
        assert!(std::str::from_utf8(file(&feed, "nvme0n1-pt.parted")).unwrap().contains("Partition Table: gpt\n"));
        assert!(!feed.files.iter().any(|(name, _)| name.ends_with("hidden-data-after-mbr")));
        assert!(feed.files.iter().any(|(name, _)| name == "nvme0n1p1.ext4-ptcl-img.zst"));
    }

    #[test]
    fn what_clonezilla_cannot_take_is_refused_saying_why() {
        assert_eq!(feed(&manifest(), DOS, BOOT, "/dev/sda", 2232), Err(Unfit::DiskName("/dev/sda".into())));
        assert_eq!(feed(&manifest(), DOS, BOOT, "sda;reboot", 2232), Err(Unfit::DiskName("sda;reboot".into())));
        let extended =
            "label: dos\n\n/dev/sda1 : start=2048, size=100, type=83\n/dev/sda2 : start=4096, size=100, type=5\n";
        assert_eq!(feed(&manifest(), extended, BOOT, "sda", 2232), Err(Unfit::Extended(2)));
        assert!(matches!(feed(&manifest(), "label: sun\n", BOOT, "sda", 2232), Err(Unfit::Table(_))));
        assert!(matches!(feed(&manifest(), "/dev/sda1 : start=1, size=2\n", BOOT, "sda", 2232), Err(Unfit::Table(_))));
        let one = "label: dos\n\n/dev/sda1 : start=2048, size=100, type=83\n";
        assert_eq!(feed(&manifest(), one, BOOT, "sda", 2232), Err(Unfit::NotInTable(2)));
        assert_eq!(feed(&manifest(), DOS, BOOT, "sda", 65533), Err(Unfit::Ports { first: 65533, sessions: 2 }));
        assert!(Unfit::Extended(2).to_string().contains("restore this image with PortaPXE's agent"));
        let mut named = manifest();
        named.name = "x\"; reboot -f #".into();
        assert_eq!(feed(&named, DOS, BOOT, "sda", 2232), Err(Unfit::ImageName(named.name.clone())));
        let mut odd = manifest();
        odd.partitions[1].filesystem = "zfs".into();
        assert_eq!(
            feed(&odd, DOS, BOOT, "sda", 2232),
            Err(Unfit::Filesystem { number: 1, filesystem: "zfs".into() }),
            "a partclone image sent to partclone.dd would be written raw"
        );
        let mut empty = manifest();
        empty.disk_bytes = 0;
        assert_eq!(feed(&empty, DOS, BOOT, "sda", 2232), Err(Unfit::DiskSize));
        assert_eq!(feed(&manifest(), DOS, None, "sda", 2232), Err(Unfit::NoBootArea));
        assert_eq!(feed(&manifest(), DOS, BOOT, "sda", 0), Err(Unfit::Ports { first: 0, sessions: 2 }));
        assert!(feed(&manifest(), DOS, BOOT, "sda", 65532).is_ok(), "65532 and 65534: within the range");
        assert!(matches!(
            feed(&manifest(), &DOS.replace("sector-size: 512", "sector-size: 4096"), BOOT, "sda", 2232),
            Err(Unfit::Table(_))
        ));
        let huge = "label: dos\n\n/dev/sda1 : start=18446744073709551615, size=1, type=83\n";
        assert!(matches!(feed(&manifest(), huge, BOOT, "sda", 2232), Err(Unfit::Table(_))));
    }

    /// A boot area of the usual size: the MBR and the gap before the first partition.
    const BOOT: Option<&[u8]> = Some(&[0u8; 2048 * 512]);

    #[test]
    fn every_file_system_partclone_takes_has_a_name_clonezilla_restores() {
        let agent = [
            "ext2", "ext3", "ext4", "vfat", "fat", "fat12", "fat16", "fat32", "ntfs", "exfat", "btrfs", "xfs", "f2fs",
            "hfsplus",
        ];
        for filesystem in agent {
            let name = clonezilla_file("sda1", filesystem, Method::Partclone).unwrap();
            let named = name.strip_prefix("sda1.").and_then(|n| n.strip_suffix("-ptcl-img.zst")).unwrap();
            assert!(CLONEZILLA_FILESYSTEMS.contains(&named), "{filesystem} → {name}");
        }
        assert_eq!(clonezilla_file("sda2", "swap", Method::Raw).as_deref(), Some("sda2.dd-ptcl-img.zst"));
    }

    #[test]
    fn hostile_tables_never_panic() {
        for text in
            ["", ":", " : ", "label: dos\n/dev/sda : start=1", "label: dos\nx9 : start=1, size=", "\u{0}: \u{0}"]
        {
            let _ = parse_table(text);
        }
        let alphabet = b"label: dosgpt/dev/sda1 :start=size=type=,0123456789\n";
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..rng.usize(..120)).map(|_| alphabet[rng.usize(..alphabet.len())]).collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_table(&text);
            let _ = feed(&manifest(), &text, BOOT, "sda", 2232);
        }
    }

    #[test]
    fn a_job_report_says_how_each_partition_went() {
        let line = "10.77.1.128 52:54:00:c2:01:00 Multicast restored lab-ref, /dev/vda1, success, 22 MB, 0.2 mins; /dev/vda2, success, 0.0 mins;\n";
        let report = parse_job_report(line).unwrap();
        assert_eq!(report.mac, "52:54:00:c2:01:00".parse().unwrap());
        assert_eq!(
            report.partitions,
            vec![
                PartitionResult { device: "vda1".into(), status: "success".into() },
                PartitionResult { device: "vda2".into(), status: "success".into() },
            ]
        );
        assert!(report.succeeded() && report.restored_all(&["vda2", "vda1"]));
        assert!(!report.restored_all(&["vda1", "vda2", "vda3"]), "a report that leaves a partition out");
        assert!(!report.restored_all(&["vda1"]), "a report of another disk's partitions");
        assert_eq!(report.to_string(), "Clonezilla reports vda1 success, vda2 success");
        // With the EFI facts a UEFI client adds before the words, and a failure.
        let efi = "10.0.0.5 52:54:00:00:00:09 debian 1 \\EFI\\debian\\shimx64.efi Multicast restored x, /dev/sda1, ***FAIL***, 0 mins;";
        let report = parse_job_report(efi).unwrap();
        assert_eq!(report.partitions, vec![PartitionResult { device: "sda1".into(), status: "***FAIL***".into() }]);
        assert!(!report.succeeded());
        assert_eq!(parse_job_report("10.0.0.5 52:54:00:00:00:09 nothing restored").map(|r| r.succeeded()), Some(false));
        for hostile in ["", "GET / HTTP/1.1", "10.0.0.5", "10.0.0.5 not-a-mac /dev/sda1, success;", ";;;,,,/dev/, ;"] {
            assert!(parse_job_report(hostile).is_none_or(|r| !r.succeeded()), "{hostile:?}");
        }
    }

    #[test]
    fn the_boot_line_runs_the_client_against_this_server() {
        assert_eq!(
            boot_parameters(Ipv4Addr::new(10, 0, 0, 1)),
            "locales=en_US.UTF-8 keyboard-layouts=NONE ocs_live_batch=\"yes\" ocs_live_run=\"ocs-live-get-img 10.0.0.1\""
        );
    }
}
