//! The seat's disk as Linux shows it in /sys/block, its partitions, and which tool
//! reads each file system.

use std::fmt;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub device: String,
    /// Where it starts on the disk.
    pub start: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub device: String,
    pub name: String,
    pub bytes: u64,
    pub partitions: Vec<Partition>,
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk {} {} MB", self.device, self.bytes / 1_000_000)?;
        for partition in &self.partitions {
            write!(f, ", {} {} MB", partition.device, partition.bytes / 1_000_000)?;
        }
        Ok(())
    }
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Block devices that are never the seat's disk.
fn is_disk_name(name: &str) -> bool {
    !["loop", "ram", "sr", "zram", "fd", "dm-", "md", "nbd"].iter().any(|prefix| name.starts_with(prefix))
}

/// The first fixed disk (by name: nvme0n1, sda, vda): the one a seat boots from.
pub fn find_disk() -> Result<Disk, String> {
    find_disk_in(Path::new("/sys/block"))
}

pub fn find_disk_in(sys_block: &Path) -> Result<Disk, String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_block)
        .map_err(|err| format!("cannot list {}: {err}", sys_block.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| is_disk_name(name))
        .filter(|name| read_number(&sys_block.join(name).join("removable")) != Some(1))
        .filter(|name| read_number(&sys_block.join(name).join("size")).is_some_and(|sectors| sectors > 0))
        .collect();
    names.sort();
    let name = names.into_iter().next().ok_or("no disk found on this machine (is its disk controller supported?)")?;
    let dir = sys_block.join(&name);
    let bytes = read_number(&dir.join("size")).unwrap_or(0) * 512;
    let mut partitions: Vec<Partition> = std::fs::read_dir(&dir)
        .map_err(|err| format!("cannot list {}: {err}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let part = entry.file_name().into_string().ok()?;
            let number = read_number(&entry.path().join("partition"))?;
            let sectors = read_number(&entry.path().join("size"))?;
            let start = read_number(&entry.path().join("start")).unwrap_or(0) * 512;
            Some(Partition {
                number: u32::try_from(number).ok()?,
                device: format!("/dev/{part}"),
                start,
                bytes: sectors * 512,
            })
        })
        .collect();
    partitions.sort_by_key(|partition| partition.number);
    Ok(Disk { device: format!("/dev/{name}"), name, bytes, partitions })
}

/// The boot area kept with an image: at most this much before the first partition.
pub const MAX_BOOT_AREA: u64 = 16 << 20;

impl Disk {
    /// Bytes before the first partition (the MBR's boot code, and GRUB's core in the gap
    /// after it on an MBR disk), at most `MAX_BOOT_AREA`.
    pub fn boot_area(&self) -> u64 {
        self.partitions.iter().map(|partition| partition.start).min().unwrap_or(0).min(MAX_BOOT_AREA)
    }

    /// The device of partition `number` (`/dev/vda1`, `/dev/nvme0n1p1`).
    pub fn partition_device(&self, number: u32) -> String {
        let separator = if self.name.ends_with(|c: char| c.is_ascii_digit()) { "p" } else { "" };
        format!("{}{separator}{number}", self.device)
    }
}

/// The file system on `device`, as blkid names it (`ext4`, `vfat`, `ntfs`), if any.
pub fn filesystem(device: &str) -> Option<String> {
    let output = Command::new("blkid").args(["-o", "value", "-s", "TYPE", device]).output().ok()?;
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

/// The partclone program that reads this file system's used blocks, if there is one.
pub fn partclone_for(filesystem: &str) -> Option<&'static str> {
    Some(match filesystem {
        "ext2" | "ext3" | "ext4" => "partclone.extfs",
        "vfat" | "fat" | "fat12" | "fat16" | "fat32" => "partclone.fat",
        "ntfs" => "partclone.ntfs",
        "exfat" => "partclone.exfat",
        "btrfs" => "partclone.btrfs",
        "xfs" => "partclone.xfs",
        "f2fs" => "partclone.f2fs",
        "hfsplus" => "partclone.hfsplus",
        _ => return None,
    })
}

/// An `sfdisk --dump` of one disk without its `device:` line: the partitions keep their
/// names, whose numbers say which partition each line is (a GPT disk with partitions
/// 1, 2 and 4 keeps them so).
pub fn portable_table(dump: &str) -> String {
    dump.lines().filter(|line| !line.starts_with("device:")).collect::<Vec<_>>().join("\n") + "\n"
}

/// The table for this disk: each `/dev/NAME<N> :` line renamed to this disk's
/// partition N (`/dev/sda1` taken, `/dev/nvme0n1p1` restored).
pub fn retarget_table(table: &str, disk: &Disk) -> String {
    table
        .lines()
        .filter(|line| !line.starts_with("device:"))
        .map(|line| match line.split_once(" : ") {
            Some((name, rest)) if name.starts_with("/dev/") => {
                let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                match name[name.len() - digits..].parse::<u32>() {
                    Ok(number) => format!("{} : {}", disk.partition_device(number), rest.trim_start()),
                    Err(_) => line.to_owned(),
                }
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fixed_disk_is_found_with_its_partitions() {
        let sys = tempfile_dir();
        let make = |path: &str, files: &[(&str, &str)]| {
            let dir = sys.join(path);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in files {
                std::fs::write(dir.join(name), text).unwrap();
            }
        };
        make("loop0", &[("size", "100"), ("removable", "0")]);
        make("sr0", &[("size", "100"), ("removable", "1")]);
        make("vda", &[("size", "524288"), ("removable", "0")]);
        make("vda/vda2", &[("size", "2048"), ("partition", "2"), ("start", "6144")]);
        make("vda/vda1", &[("size", "4096"), ("partition", "1"), ("start", "2048")]);
        make("vdb", &[("size", "0"), ("removable", "0")]);
        let disk = find_disk_in(&sys).unwrap();
        assert_eq!(disk.device, "/dev/vda");
        assert_eq!(disk.bytes, 268_435_456);
        assert_eq!(disk.partitions.iter().map(|p| p.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(disk.partitions[0].bytes, 4096 * 512);
        assert_eq!(disk.boot_area(), 2048 * 512, "the MBR and the gap before the first partition");
        assert_eq!(disk.partition_device(1), "/dev/vda1");
        let nvme = Disk { device: "/dev/nvme0n1".into(), name: "nvme0n1".into(), bytes: 0, partitions: vec![] };
        assert_eq!(nvme.partition_device(3), "/dev/nvme0n1p3");
        std::fs::remove_dir_all(&sys).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("portapxe-agent-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_table_from_one_disk_fits_another_keeping_partition_numbers() {
        let dump = "label: gpt\ndevice: /dev/sda\nunit: sectors\n\n/dev/sda1 : start=2048, size=4096, type=L\n/dev/sda2 : start=6144, size=4096, type=L\n/dev/sda4 : start=10240, size=4096, type=L\n";
        let table = portable_table(dump);
        assert!(!table.contains("device:"), "{table}");
        let nvme = Disk { device: "/dev/nvme0n1".into(), name: "nvme0n1".into(), bytes: 0, partitions: vec![] };
        let restored = retarget_table(&table, &nvme);
        assert!(restored.contains("\n/dev/nvme0n1p4 : start=10240, size=4096, type=L\n"), "{restored}");
        assert!(restored.contains("\n/dev/nvme0n1p1 : start=2048"), "{restored}");
        assert!(!restored.contains("/dev/sda"), "{restored}");
        assert!(restored.starts_with("label: gpt\nunit: sectors"), "{restored}");
    }

    #[test]
    fn partclone_reads_the_common_file_systems_and_nothing_else() {
        assert_eq!(partclone_for("ext4"), Some("partclone.extfs"));
        assert_eq!(partclone_for("vfat"), Some("partclone.fat"));
        assert_eq!(partclone_for("ntfs"), Some("partclone.ntfs"));
        assert_eq!(partclone_for("swap"), None);
        assert_eq!(partclone_for("crypto_LUKS"), None);
    }
}
