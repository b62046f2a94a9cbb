//! Capture: the partition table and each partition's used blocks (partclone; the raw
//! bytes where partclone cannot read the file system), compressed with zstd and
//! streamed to PortaPXE, then a manifest naming each file with its size and SHA-256.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::disk::{self, Disk};
use crate::report::Server;

/// A reader that measures what passes through it and tells PortaPXE how far it got.
pub struct Measured<'a, R> {
    inner: R,
    hasher: sha2::Sha256,
    pub bytes: u64,
    server: &'a Server,
    label: String,
    phase: &'static str,
    last_report: Instant,
}

impl<'a, R: Read> Measured<'a, R> {
    pub fn new(inner: R, server: &'a Server, phase: &'static str, label: String) -> Self {
        Self { inner, hasher: sha2::Sha256::new(), bytes: 0, server, label, phase, last_report: Instant::now() }
    }

    pub fn sha256(self) -> String {
        hex(&self.hasher.finalize())
    }

    pub fn note(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        if self.last_report.elapsed() >= Duration::from_secs(5) {
            self.last_report = Instant::now();
            self.server.report(self.phase, &format!("{}: {:.1} MB", self.label, self.bytes as f64 / 1e6));
        }
    }
}

impl<R: Read> Read for Measured<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        self.note(data);
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// The file holding the bytes before the first partition.
pub const BOOT_AREA: &str = "bootarea.bin";

/// One file of the image, as sent.
struct Sent {
    file: String,
    bytes: u64,
    sha256: String,
}

fn toml_part(sent: &Sent) -> String {
    format!("file = \"{}\"\nbytes = {}\nsha256 = \"{}\"\n", sent.file, sent.bytes, sent.sha256)
}

/// Checks PortaPXE measured what was sent (`bytes=N sha256=H`).
fn check_answer(answer: &str, sent: &Sent) -> Result<(), String> {
    let expected = format!("bytes={} sha256={}", sent.bytes, sent.sha256);
    if answer.trim() == expected {
        Ok(())
    } else {
        Err(format!("{}: PortaPXE received {:?}, the seat sent {expected:?}", sent.file, answer.trim()))
    }
}

fn wait(child: &mut Child, what: &str) -> Result<(), String> {
    let status = child.wait().map_err(|err| format!("{what}: {err}"))?;
    if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
}

fn send(server: &Server, token: &str, file: &str, reader: impl Read, label: String) -> Result<Sent, String> {
    let mut measured = Measured::new(reader, server, "capturing", label);
    let answer = server.upload(&format!("/imaging/capture/{token}/{file}"), &mut measured)?;
    let sent = Sent { file: file.into(), bytes: measured.bytes, sha256: measured.sha256() };
    check_answer(&answer, &sent)?;
    Ok(sent)
}

/// Captures `disk` into image `name` on PortaPXE.
pub fn run(server: &Server, disk: &Disk, token: &str, name: &str) -> Result<String, String> {
    let started = Instant::now();
    server.report("capturing", &format!("{disk} into image {name}"));
    let dump =
        Command::new("sfdisk").arg("--dump").arg(&disk.device).output().map_err(|err| format!("sfdisk: {err}"))?;
    if !dump.status.success() {
        return Err(format!(
            "{} has no partition table sfdisk can read: {}",
            disk.device,
            String::from_utf8_lossy(&dump.stderr).trim()
        ));
    }
    let table = disk::portable_table(&String::from_utf8_lossy(&dump.stdout));
    let table = send(server, token, "table.sfdisk", table.as_bytes(), "partition table".into())?;
    let mut total = table.bytes;
    // What a BIOS boots from: the MBR's code and the gap before the first partition.
    let mut boot_area = String::new();
    if disk.boot_area() > 0 {
        let device = std::fs::File::open(&disk.device).map_err(|err| format!("{}: {err}", disk.device))?;
        let sent = send(server, token, BOOT_AREA, device.take(disk.boot_area()), "boot area".into())?;
        total += sent.bytes;
        boot_area = format!("\n[boot_area]\n{}", toml_part(&sent));
    }
    let mut partitions = String::new();
    for partition in &disk.partitions {
        let filesystem = disk::filesystem(&partition.device).unwrap_or_else(|| "unknown".into());
        let tool = disk::partclone_for(&filesystem);
        let (method, file) = match tool {
            Some(_) => ("partclone", format!("part{}.pcl.zst", partition.number)),
            None => ("raw", format!("part{}.img.zst", partition.number)),
        };
        let label =
            format!("partition {} ({filesystem}, {:.0} MB, {method})", partition.number, partition.bytes as f64 / 1e6);
        server.report("capturing", &label);
        let (mut source, mut raw_copy) = match tool {
            Some(tool) => {
                let log = format!("/tmp/{tool}-{}.log", partition.number);
                let child = Command::new(tool)
                    .args(["-c", "-q", "-s", &partition.device, "-o", "-", "-L", &log])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|err| format!("{tool}: {err}"))?;
                (Some(child), None)
            }
            None => (
                None,
                Some(std::fs::File::open(&partition.device).map_err(|err| format!("{}: {err}", partition.device))?),
            ),
        };
        let zstd_input = match source.as_mut().and_then(|child| child.stdout.take()) {
            Some(stdout) => Stdio::from(stdout),
            None => Stdio::piped(),
        };
        let mut zstd = Command::new("zstd")
            .args(["-c", "-q", "-3", "-T0"])
            .stdin(zstd_input)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("zstd: {err}"))?;
        // Raw partitions are read here and fed to zstd from a thread of their own.
        let feeder = match (raw_copy.take(), zstd.stdin.take()) {
            (Some(mut file), Some(mut input)) => Some(std::thread::spawn(move || io::copy(&mut file, &mut input))),
            _ => None,
        };
        let output = zstd.stdout.take().ok_or("zstd has no output")?;
        let sent = send(server, token, &file, output, label.clone());
        if let Some(feeder) = feeder {
            feeder
                .join()
                .map_err(|_| "the raw reader stopped".to_string())?
                .map_err(|err| format!("{}: {err}", partition.device))?;
        }
        if let Some(child) = source.as_mut() {
            wait(child, tool.unwrap_or("partclone"))?;
        }
        wait(&mut zstd, "zstd")?;
        let sent = sent?;
        total += sent.bytes;
        let _ = write!(
            partitions,
            "\n[[partitions]]\nnumber = {}\nfilesystem = \"{filesystem}\"\nmethod = \"{method}\"\npartition_bytes = {}\n{}",
            partition.number,
            partition.bytes,
            toml_part(&sent)
        );
    }
    let manifest = format!(
        "format = 1\nname = \"{name}\"\nid = \"\"\ncreated = 0\ndisk_bytes = {}\n\n[table]\n{}{boot_area}{partitions}",
        disk.bytes,
        toml_part(&table)
    );
    server.post(&format!("/imaging/capture/{token}/finish"), &manifest)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(format!(
        "captured {} partitions of {} into image {name}: {:.1} MB in {seconds:.1} s",
        disk.partitions.len(),
        disk.device,
        total as f64 / 1e6
    ))
}
