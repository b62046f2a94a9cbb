//! Classroom imaging in the lab: image folders written in PortaPXE's image format
//! (README, "Disk images"), seats that run Debian's udpcast `udp-receiver`, and checks
//! of what each seat received.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::ClientNs;
use crate::process::{Guarded, run_bounded, run_ok};

/// Bytes no compressor shrinks, the same for the same seed (xorshift64).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256(path: &Path) -> Result<String> {
    let finished = run_ok("sha256sum", &[path])?;
    finished.stdout.split_whitespace().next().map(str::to_owned).context("sha256sum printed nothing")
}

/// An image folder `images/<name>/`: a partition table and the given partitions
/// (`(file, filesystem, bytes)`), with the manifest naming each file's size and SHA-256.
/// Returns the files by name with their checksums.
pub fn write_image(images: &Path, name: &str, partitions: &[(&str, &str, Vec<u8>)]) -> Result<Vec<(String, String)>> {
    let dir = images.join(name);
    fs::create_dir_all(&dir)?;
    let table = "label: dos\nunit: sectors\n\n/dev/sda1 : start=2048, size=131072, type=83\n";
    fs::write(dir.join("table.sfdisk"), table)?;
    let part = |file: &str| -> Result<String> {
        let path = dir.join(file);
        let bytes = fs::metadata(&path)?.len();
        Ok(format!("file = \"{file}\"\nbytes = {bytes}\nsha256 = \"{}\"\n", sha256(&path)?))
    };
    let mut manifest = format!(
        "format = 1\nname = \"{name}\"\nid = \"lab-{name}-0001\"\ncreated = 1796000000\nsource_mac = \"52:54:00:aa:00:01\"\ndisk_bytes = 268435456\n\n[table]\n{}",
        part("table.sfdisk")?
    );
    let mut files = vec![("table.sfdisk".to_string(), sha256(&dir.join("table.sfdisk"))?)];
    for (number, (file, filesystem, bytes)) in partitions.iter().enumerate() {
        fs::write(dir.join(file), bytes)?;
        let _ = write!(
            manifest,
            "\n[[partitions]]\nnumber = {}\nfilesystem = \"{filesystem}\"\nmethod = \"partclone\"\npartition_bytes = 67108864\n{}",
            number + 1,
            part(file)?
        );
        files.push(((*file).to_string(), sha256(&dir.join(file))?));
    }
    fs::write(dir.join("image.toml"), manifest)?;
    Ok(files)
}

/// Debian's `udp-receiver` on a seat, writing what it receives to a file.
pub struct Seat {
    pub process: Guarded,
    pub out: PathBuf,
    pub log: PathBuf,
}

impl Seat {
    pub fn start(client: &ClientNs, dir: &Path, name: &str) -> Result<Self> {
        let out = dir.join(format!("{name}.tar"));
        let log = dir.join(format!("{name}.log"));
        let mut command = client.command("udp-receiver");
        command
            .args(["--nokbd", "--interface", client.interface(), "--file"])
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?);
        let process = Guarded::spawn(format!("udp-receiver ({name})"), &mut command)?;
        Ok(Self { process, out, log })
    }

    pub fn received(&self) -> u64 {
        fs::metadata(&self.out).map(|m| m.len()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Unpacks what the seat received and checks it is the image: the manifest first,
    /// then every file with its checksum. Returns why not.
    pub fn check(&self, work: &Path, files: &[(String, String)]) -> Result<()> {
        let listing = run_ok("tar", &[Path::new("-tf"), &self.out])?;
        let names: Vec<&str> = listing.stdout.lines().collect();
        let mut expected = vec!["image.toml"];
        expected.extend(files.iter().map(|(name, _)| name.as_str()));
        if names != expected {
            bail!("the stream holds {names:?}, expected {expected:?}");
        }
        let unpacked = work.join(format!("{}.unpacked", self.out.file_name().unwrap_or_default().to_string_lossy()));
        fs::create_dir_all(&unpacked)?;
        let mut tar = Command::new("tar");
        tar.arg("-xf").arg(&self.out).arg("-C").arg(&unpacked);
        let finished = run_bounded("tar -x", &mut tar, Duration::from_secs(60))?;
        if !finished.success() {
            bail!("tar could not unpack it: {finished}");
        }
        for (name, sum) in files {
            let got = sha256(&unpacked.join(name))?;
            if &got != sum {
                bail!("{name}: sha256 {got}, the image has {sum}");
            }
        }
        Ok(())
    }
}

/// The imaging agent's kernel and initramfs (`installers/agent/build.sh`), built once
/// per test process around a fresh `portapxe-agent`; the Debian part is cached in
/// `target/lab/agent/cache`.
pub fn agent_files() -> &'static Path {
    static AGENT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    match AGENT.get_or_init(|| build_agent().map_err(|error| format!("{error:#}"))) {
        Ok(path) => path,
        Err(error) => panic!("cannot build the imaging agent: {error}"),
    }
}

fn build_agent() -> Result<PathBuf> {
    let root = crate::binary::workspace_root();
    let agent = crate::binary::built_binary("portapxe-agent", "portapxe-agent")?;
    let out = root.join("target/lab/agent");
    let mut script = Command::new("sh");
    script.current_dir(&root).arg("installers/agent/build.sh").arg(&out).arg(&agent);
    let finished = run_bounded("installers/agent/build.sh", &mut script, Duration::from_secs(900))?;
    if !finished.success() {
        bail!("installers/agent/build.sh failed: {finished}");
    }
    eprintln!("[lab] {}", finished.stdout.trim());
    Ok(out)
}

/// Copies the agent into `root/agent/`, where `portapxe image` looks by default.
pub fn install_agent(root: &Path) -> Result<()> {
    let dir = root.join("agent");
    fs::create_dir_all(&dir)?;
    for name in ["vmlinuz", "initrd.img"] {
        fs::copy(agent_files().join(name), dir.join(name)).with_context(|| format!("copying the agent's {name}"))?;
    }
    Ok(())
}

/// The start of the reference disk's one partition, and its file system's label.
const PARTITION_START: u64 = 1 << 20;

/// A bootable disk as a classroom PC has one: an MBR with extlinux, one ext4 partition
/// holding the lab kernel, an initramfs that prints `marker`, and data files.
pub struct ReferenceDisk {
    pub path: PathBuf,
    pub marker: String,
    /// Bytes the file system uses (`df`).
    pub used_bytes: u64,
    /// Files on the partition with their SHA-256.
    pub files: Vec<(String, String)>,
    /// The ext4 partition's size.
    pub partition_bytes: u64,
    /// A swap partition after it, if asked for.
    pub swap: Option<Span>,
}

/// Bytes of a disk image: where they start, how many, their SHA-256.
#[derive(Debug, Clone)]
pub struct Span {
    pub start: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl Span {
    /// The SHA-256 of the same bytes of another disk image.
    pub fn sha256_in(&self, disk: &Path) -> Result<String> {
        let bytes = fs::read(disk)?;
        let end = (self.start + self.bytes) as usize;
        let part = bytes.get(self.start as usize..end).context("the disk is shorter than the span")?;
        let scratch = disk.with_extension("span");
        fs::write(&scratch, part)?;
        let sum = sha256(&scratch);
        let _ = fs::remove_file(&scratch);
        sum
    }
}

/// A loop device over part of a file, detached (and unmounted) when dropped.
struct Loop {
    device: String,
    mount: Option<PathBuf>,
}

impl Loop {
    fn attach(file: &Path, offset: u64, read_only: bool) -> Result<Self> {
        Self::attach_span(file, offset, None, read_only)
    }

    /// `length` bytes from `offset` (to the end of the file when `None`).
    fn attach_span(file: &Path, offset: u64, length: Option<u64>, read_only: bool) -> Result<Self> {
        let offset = offset.to_string();
        let length = length.map(|length| length.to_string());
        let mut args = vec!["--find", "--show", "--offset", &offset];
        if let Some(length) = &length {
            args.extend(["--sizelimit", length]);
        }
        if read_only {
            args.push("--read-only");
        }
        let file = file.to_string_lossy().into_owned();
        args.push(&file);
        let device = run_ok("losetup", &args)?.stdout.trim().to_owned();
        Ok(Self { device, mount: None })
    }

    fn mount(&mut self, at: &Path, read_only: bool) -> Result<()> {
        fs::create_dir_all(at)?;
        let options = if read_only { "ro" } else { "rw" };
        run_ok("mount", &[Path::new("-o"), Path::new(options), Path::new(&self.device), at])?;
        self.mount = Some(at.to_path_buf());
        Ok(())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Some(at) = self.mount.take() {
            let _ = run_ok("umount", &[&at]);
        }
        let _ = run_ok("losetup", &["-d", &self.device]);
    }
}

pub fn reference_disk(dir: &Path, marker: &str, megabytes: u64) -> Result<ReferenceDisk> {
    reference_disk_with_swap(dir, marker, megabytes, 0)
}

/// [`reference_disk`] with a swap partition of `swap_megabytes` at the end of the disk
/// (none when 0): a second partition, which partclone cannot read.
pub fn reference_disk_with_swap(
    dir: &Path,
    marker: &str,
    megabytes: u64,
    swap_megabytes: u64,
) -> Result<ReferenceDisk> {
    let partition_bytes = ((megabytes - swap_megabytes) << 20) - PARTITION_START;
    let path = dir.join("reference.img");
    let file = fs::File::create(&path)?;
    file.set_len(megabytes << 20)?;
    drop(file);
    let mut sfdisk = Command::new("sfdisk");
    sfdisk.arg("--quiet").arg(&path).stdin(Stdio::piped());
    let mut child =
        sfdisk.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().context("sfdisk (apt-get install fdisk)")?;
    std::io::Write::write_all(
        &mut child.stdin.take().context("sfdisk stdin")?,
        format!(
            "label: dos\nstart={}, size={}, type=83, bootable\n{}",
            PARTITION_START / 512,
            partition_bytes / 512,
            if swap_megabytes > 0 { "type=82\n" } else { "" }
        )
        .as_bytes(),
    )?;
    if !child.wait()?.success() {
        bail!("sfdisk could not write the reference disk's table");
    }
    let mut part = Loop::attach_span(&path, PARTITION_START, Some(partition_bytes), false)?;
    // extlinux 6.04 boots ext4 without the 64bit and metadata_csum features.
    run_ok("mkfs.ext4", &["-q", "-O", "^64bit,^metadata_csum", "-L", "labroot", &part.device])?;
    let mount = dir.join("reference.mnt");
    part.mount(&mount, false)?;
    fs::create_dir_all(mount.join("boot"))?;
    fs::create_dir_all(mount.join("data"))?;
    fs::copy(crate::guest::kernel(), mount.join("boot/vmlinuz"))?;
    fs::write(mount.join("boot/initrd.img"), crate::guest::initramfs(marker)?)?;
    fs::write(
        mount.join("boot/extlinux.conf"),
        "DEFAULT disk\nPROMPT 0\nTIMEOUT 1\nLABEL disk\n  KERNEL vmlinuz\n  INITRD initrd.img\n  APPEND console=ttyS0 quiet\n",
    )?;
    fs::write(mount.join("data/noise.bin"), noise(12 << 20, 7))?;
    fs::write(mount.join("data/hello.txt"), format!("a classroom PC, marker {marker}\n"))?;
    run_ok("extlinux", &[Path::new("--install"), &mount.join("boot")])?;
    let df = run_ok("df", &[Path::new("-B1"), Path::new("--output=used"), &mount])?;
    let used_bytes = df.stdout.lines().nth(1).and_then(|line| line.trim().parse().ok()).unwrap_or(0);
    let mut files = Vec::new();
    for name in ["boot/vmlinuz", "boot/initrd.img", "data/noise.bin", "data/hello.txt"] {
        files.push((name.to_string(), sha256(&mount.join(name))?));
    }
    drop(part);
    // The MBR's boot code: it starts the partition marked bootable.
    let mbr = fs::read("/usr/lib/EXTLINUX/mbr.bin").context("reading extlinux's mbr.bin (apt-get install extlinux)")?;
    let mut disk = fs::OpenOptions::new().write(true).open(&path)?;
    std::io::Write::write_all(&mut disk, &mbr[..mbr.len().min(440)])?;
    drop(disk);
    let swap = match swap_megabytes {
        0 => None,
        _ => {
            let start = PARTITION_START + partition_bytes;
            let bytes = swap_megabytes << 20;
            let swap = Loop::attach_span(&path, start, Some(bytes), false)?;
            run_ok("mkswap", &["-q", "-L", "labswap", &swap.device])?;
            drop(swap);
            let mut span = Span { start, bytes, sha256: String::new() };
            span.sha256 = span.sha256_in(&path)?;
            Some(span)
        }
    };
    Ok(ReferenceDisk { path, marker: marker.into(), used_bytes, files, partition_bytes, swap })
}

/// Checks the partition of a restored disk: the file system is clean and holds every
/// file of the reference with its checksum.
pub fn check_restored_disk(disk: &Path, files: &[(String, String)], work: &Path) -> Result<()> {
    let part = Loop::attach(disk, PARTITION_START, true)?;
    let fsck = run_bounded("e2fsck", Command::new("e2fsck").args(["-fn", &part.device]), Duration::from_secs(60))?;
    if !fsck.success() {
        bail!("e2fsck finds the restored file system damaged: {fsck}");
    }
    let mut part = part;
    let mount = work.join(format!("{}.mnt", disk.file_name().unwrap_or_default().to_string_lossy()));
    part.mount(&mount, true)?;
    for (name, sum) in files {
        let got = sha256(&mount.join(name)).with_context(|| format!("{name} is missing"))?;
        if &got != sum {
            bail!("{name}: sha256 {got}, the reference has {sum}");
        }
    }
    Ok(())
}

/// Writes the image folder `images/<name>/` of `disk` (a reference disk) on this machine,
/// with the commands the imaging agent runs on a seat (agent/src/capture.rs): the
/// `sfdisk --dump` without its `device:` line, the bytes before the partition, and the
/// partition's used blocks from `partclone.extfs -c` compressed with `zstd -3`. For tests
/// whose subject is what happens to an image after it was captured.
pub fn capture_on_host(reference: &ReferenceDisk, images: &Path, name: &str) -> Result<()> {
    let disk = reference.path.as_path();
    let dir = images.join(name);
    fs::create_dir_all(&dir)?;
    let dump = run_ok("sfdisk", &[Path::new("--dump"), disk])?.stdout;
    let table: String =
        dump.lines().filter(|line| !line.starts_with("device:")).map(|line| format!("{line}\n")).collect();
    fs::write(dir.join("table.sfdisk"), table)?;
    let head = fs::read(disk)?;
    fs::write(dir.join("bootarea.bin"), &head[..PARTITION_START as usize])?;
    drop(head);
    let part = Loop::attach_span(disk, PARTITION_START, Some(reference.partition_bytes), true)?;
    let out = fs::File::create(dir.join("part1.pcl.zst"))?;
    let mut partclone = Command::new("partclone.extfs")
        .args(["-c", "-q", "-s", &part.device, "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("partclone.extfs (apt-get install partclone)")?;
    let zstd_status = Command::new("zstd")
        .args(["-c", "-q", "-3", "-T0"])
        .stdin(partclone.stdout.take().context("partclone's output")?)
        .stdout(out)
        .status()
        .context("zstd")?;
    if !partclone.wait()?.success() || !zstd_status.success() {
        bail!("partclone.extfs | zstd failed on {}", part.device);
    }
    let disk_bytes = fs::metadata(disk)?.len();
    drop(part);
    // What partclone cannot read, the agent takes whole: zstd of the raw bytes.
    if let Some(swap) = &reference.swap {
        let bytes = fs::read(disk)?;
        let raw = &bytes[swap.start as usize..(swap.start + swap.bytes) as usize];
        let mut zstd = Command::new("zstd")
            .args(["-c", "-q", "-3", "-T0"])
            .stdin(Stdio::piped())
            .stdout(fs::File::create(dir.join("part2.img.zst"))?)
            .spawn()
            .context("zstd")?;
        std::io::Write::write_all(&mut zstd.stdin.take().context("zstd's input")?, raw)?;
        if !zstd.wait()?.success() {
            bail!("zstd failed on the swap partition");
        }
    }
    let entry = |file: &str| -> Result<String> {
        let path = dir.join(file);
        Ok(format!("file = \"{file}\"\nbytes = {}\nsha256 = \"{}\"\n", fs::metadata(&path)?.len(), sha256(&path)?))
    };
    let manifest = format!(
        "format = 1\nname = \"{name}\"\nid = \"lab-{name}-{}\"\ncreated = 1796000000\ndisk_bytes = {disk_bytes}\n\n[table]\n{}\n[boot_area]\n{}\n[[partitions]]\nnumber = 1\nfilesystem = \"ext4\"\nmethod = \"partclone\"\npartition_bytes = {}\n{}",
        std::process::id(),
        entry("table.sfdisk")?,
        entry("bootarea.bin")?,
        reference.partition_bytes,
        entry("part1.pcl.zst")?
    );
    let mut manifest = manifest;
    if let Some(swap) = &reference.swap {
        let _ = write!(
            manifest,
            "\n[[partitions]]\nnumber = 2\nfilesystem = \"swap\"\nmethod = \"raw\"\npartition_bytes = {}\n{}",
            swap.bytes,
            entry("part2.img.zst")?
        );
    }
    fs::write(dir.join("image.toml"), manifest)?;
    Ok(())
}
