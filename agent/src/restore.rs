//! Restore: join PortaPXE's multicast session with udpcast's `udp-receiver`, read the
//! image's stream (a tar archive: the manifest, the partition table, the partitions),
//! check it is the image PortaPXE named, and write each part to the disk, checking
//! its SHA-256 against the manifest before the seat reports success.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::capture::Measured;
use crate::disk::Disk;
use crate::report::Server;

/// What the agent reads of the image's manifest (PortaPXE's `image.toml`).
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub id: String,
    pub disk_bytes: u64,
    pub table: Part,
    pub boot_area: Option<Part>,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Deserialize)]
pub struct Part {
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Deserialize)]
pub struct Partition {
    pub number: u32,
    pub filesystem: String,
    pub method: String,
    #[serde(flatten)]
    pub part: Part,
}

/// The manifest must be the image PortaPXE named (FOG's issue 1742: a seat that
/// joined the wrong stream restored the wrong partition), and the disk large enough.
pub fn check_manifest(manifest: &Manifest, id: &str, port_base: u16, disk_bytes: u64) -> Result<(), String> {
    if manifest.id != id {
        return Err(format!(
            "the multicast stream on port {port_base} is image {:?} ({}), not the one PortaPXE named ({id}): another session is using these ports",
            manifest.name, manifest.id
        ));
    }
    if disk_bytes < manifest.disk_bytes {
        return Err(format!(
            "this disk has {} MB; image {:?} needs {} MB",
            disk_bytes / 1_000_000,
            manifest.name,
            manifest.disk_bytes / 1_000_000
        ));
    }
    Ok(())
}

fn wait(child: &mut Child, what: &str) -> Result<(), String> {
    let status = child.wait().map_err(|err| format!("{what}: {err}"))?;
    if status.success() { Ok(()) } else { Err(format!("{what} failed ({status})")) }
}

/// Stops udp-receiver so that it says goodbye (SIGINT: it sends DISCONNECT and the
/// session does not wait for it), then for good.
fn stop(child: &mut Child) {
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn run(
    server: &Server,
    disk: &Disk,
    interface: &str,
    id: &str,
    port_base: u16,
    name: &str,
) -> Result<String, String> {
    server.report("restoring", &format!("joining the multicast session of image {name} on port {port_base}"));
    let log = std::fs::File::create("/tmp/udp-receiver.log").map_err(|err| err.to_string())?;
    let mut receiver = Command::new("udp-receiver")
        // A sender gone, or this seat dropped near the end, must not hang the seat: a
        // live session sends at least a REQACK a second.
        .args(["--nokbd", "--interface", interface, "--portbase", &port_base.to_string(), "--receive-timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|err| format!("udp-receiver: {err}"))?;
    let stream = receiver.stdout.take().ok_or("udp-receiver has no output")?;
    let result = restore_stream(server, disk, stream, id, port_base);
    match result {
        Ok(summary) => {
            wait(&mut receiver, "udp-receiver")?;
            let _ = Command::new("sync").status();
            Ok(summary)
        }
        Err(err) => {
            stop(&mut receiver);
            Err(err)
        }
    }
}

fn restore_stream(server: &Server, disk: &Disk, stream: impl Read, id: &str, port_base: u16) -> Result<String, String> {
    let started = Instant::now();
    let mut archive = tar::Archive::new(stream);
    let summary = restore_entries(server, disk, &mut archive, id, port_base, started)?;
    // tar stops at the first of the archive's two zero blocks; udp-receiver still writes
    // the rest once the sender ends the stream, and must not find the pipe closed.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|err| format!("reading the stream's end: {err}"))?;
    Ok(summary)
}

fn restore_entries<R: Read>(
    server: &Server,
    disk: &Disk,
    archive: &mut tar::Archive<R>,
    id: &str,
    port_base: u16,
    started: Instant,
) -> Result<String, String> {
    let mut entries = archive.entries().map_err(|err| format!("reading the stream: {err}"))?;
    let mut first = entries.next().ok_or("the stream ended before the manifest")?.map_err(|err| err.to_string())?;
    let first_name = first.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    if first_name != "image.toml" {
        return Err(format!("the stream does not start with an image manifest but {first_name:?}"));
    }
    let mut text = String::new();
    first.by_ref().take(1 << 20).read_to_string(&mut text).map_err(|err| format!("the manifest: {err}"))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|err| format!("the manifest: {}", err.message()))?;
    check_manifest(&manifest, id, port_base, disk.bytes)?;
    server.report("restoring", &format!("image {:?} ({}) to {}", manifest.name, manifest.id, disk.device));
    let mut done: HashSet<String> = HashSet::new();
    let mut bytes = 0u64;
    let mut table_text = String::new();
    for entry in entries {
        let mut entry = entry.map_err(|err| format!("reading the stream: {err}"))?;
        let file = entry.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        if file == manifest.table.file {
            let mut measured = Measured::new(&mut entry, server, "restoring", "partition table".into());
            let mut table = Vec::new();
            measured.read_to_end(&mut table).map_err(|err| format!("the partition table: {err}"))?;
            bytes += measured.bytes;
            check_sum("the partition table", &measured.sha256(), &manifest.table.sha256)?;
            table_text = crate::disk::retarget_table(&String::from_utf8_lossy(&table), disk);
            write_table(disk, table_text.as_bytes())?;
        } else if manifest.boot_area.as_ref().is_some_and(|part| part.file == file) {
            let mut measured = Measured::new(&mut entry, server, "restoring", "boot area".into());
            let mut area = Vec::new();
            measured.read_to_end(&mut area).map_err(|err| format!("the boot area: {err}"))?;
            bytes += measured.bytes;
            let expected = manifest.boot_area.as_ref().map(|part| part.sha256.as_str()).unwrap_or_default();
            check_sum("the boot area", &measured.sha256(), expected)?;
            write_boot_area(disk, &area, table_text.contains("label: dos"))?;
        } else if let Some(partition) = manifest.partitions.iter().find(|p| p.part.file == file) {
            let device = disk.partition_device(partition.number);
            let label = format!("partition {} ({}, {})", partition.number, partition.filesystem, partition.method);
            server.report("restoring", &format!("{label} to {device}"));
            let mut measured = Measured::new(&mut entry, server, "restoring", label.clone());
            write_partition(&mut measured, &partition.method, &device)?;
            bytes += measured.bytes;
            check_sum(&label, &measured.sha256(), &partition.part.sha256)?;
            server.report("verifying", &format!("{label}: SHA-256 matches the image"));
        } else {
            return Err(format!("the stream holds {file:?}, which the manifest does not name"));
        }
        done.insert(file);
    }
    let missing: Vec<&str> = std::iter::once(&manifest.table)
        .chain(manifest.boot_area.as_ref())
        .chain(manifest.partitions.iter().map(|p| &p.part))
        .map(|part| part.file.as_str())
        .filter(|file| !done.contains(*file))
        .collect();
    if !missing.is_empty() {
        return Err(format!("the stream ended without {}", missing.join(", ")));
    }
    Ok(format!(
        "restored image {:?} to {}: {} partitions checked, {:.1} MB received in {:.1} s",
        manifest.name,
        disk.device,
        manifest.partitions.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ))
}

fn check_sum(what: &str, got: &str, expected: &str) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: the SHA-256 of what arrived ({got}) is not the image's ({expected})"))
    }
}

fn write_table(disk: &Disk, table: &[u8]) -> Result<(), String> {
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--wipe", "always", &disk.device])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| format!("sfdisk: {err}"))?;
    sfdisk.stdin.take().ok_or("sfdisk has no input")?.write_all(table).map_err(|err| format!("sfdisk: {err}"))?;
    wait(&mut sfdisk, "sfdisk (writing the partition table)")?;
    // The kernel re-reads the table; the partitions' device nodes follow.
    let deadline = Instant::now() + Duration::from_secs(10);
    let _ = Command::new("blockdev").args(["--rereadpt", &disk.device]).status();
    while Instant::now() < deadline {
        if crate::disk::find_disk().is_ok_and(|now| !now.partitions.is_empty()) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("the partitions of {} did not appear after writing the table", disk.device))
}

/// Writes what a BIOS boots from, keeping the table just written: the MBR's boot code
/// (its first 440 bytes) and, on an MBR disk, the gap between the MBR and the first
/// partition. On a GPT disk the gap holds the GPT itself, which sfdisk wrote.
fn write_boot_area(disk: &Disk, area: &[u8], mbr_label: bool) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let mut device =
        std::fs::OpenOptions::new().write(true).open(&disk.device).map_err(|err| format!("{}: {err}", disk.device))?;
    let write = |device: &mut std::fs::File, at: u64, bytes: &[u8]| {
        device.seek(SeekFrom::Start(at)).and_then(|_| device.write_all(bytes))
    };
    let code = &area[..area.len().min(440)];
    write(&mut device, 0, code).map_err(|err| format!("{}: {err}", disk.device))?;
    if mbr_label && area.len() > 512 {
        write(&mut device, 512, &area[512..]).map_err(|err| format!("{}: {err}", disk.device))?;
    }
    device.sync_all().map_err(|err| format!("{}: {err}", disk.device))
}

/// Decompresses one partition's bytes from `source` onto `device`.
fn write_partition(source: &mut impl Read, method: &str, device: &str) -> Result<(), String> {
    let mut zstd = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("zstd: {err}"))?;
    let output = zstd.stdout.take().ok_or("zstd has no output")?;
    let (mut writer, copier) = match method {
        "partclone" => {
            let child = Command::new("partclone.restore")
                .args(["-q", "-s", "-", "-O", device, "-L", "/tmp/partclone-restore.log"])
                .stdin(Stdio::from(output))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|err| format!("partclone.restore: {err}"))?;
            (Some(child), None)
        }
        "raw" => {
            let mut target =
                std::fs::OpenOptions::new().write(true).open(device).map_err(|err| format!("{device}: {err}"))?;
            let mut output = output;
            // No sync here: waiting for the disk while udp-receiver's output is not read
            // would stall its answers; the init syncs once at the end.
            (None, Some(std::thread::spawn(move || io::copy(&mut output, &mut target))))
        }
        other => return Err(format!("this agent cannot restore a partition taken with {other:?}")),
    };
    let mut input = zstd.stdin.take().ok_or("zstd has no input")?;
    let copied = io::copy(source, &mut input).map_err(|err| format!("writing {device}: {err}"));
    drop(input);
    wait(&mut zstd, "zstd (decompressing)")?;
    if let Some(child) = writer.as_mut() {
        wait(child, "partclone.restore")?;
    }
    if let Some(copier) = copier {
        copier.join().map_err(|_| "the raw writer stopped".to_string())?.map_err(|err| format!("{device}: {err}"))?;
    }
    copied.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str, disk_bytes: u64) -> Manifest {
        toml::from_str(&format!(
            "format = 1\nname = \"lab\"\nid = \"{id}\"\ncreated = 0\ndisk_bytes = {disk_bytes}\n[table]\nfile = \"table.sfdisk\"\nbytes = 1\nsha256 = \"a\"\n[[partitions]]\nnumber = 1\nfilesystem = \"ext4\"\nmethod = \"partclone\"\npartition_bytes = 9\nfile = \"part1.pcl.zst\"\nbytes = 2\nsha256 = \"b\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_stream_of_another_image_is_refused() {
        let err = check_manifest(&manifest("other", 100), "wanted", 9000, 1000).unwrap_err();
        assert!(err.contains("another session is using these ports"), "{err}");
        check_manifest(&manifest("wanted", 100), "wanted", 9000, 1000).unwrap();
    }

    #[test]
    fn a_disk_smaller_than_the_image_is_refused() {
        let err = check_manifest(&manifest("id", 2_000_000_000), "id", 9000, 1_000_000_000).unwrap_err();
        assert!(err.contains("this disk has 1000 MB; image \"lab\" needs 2000 MB"), "{err}");
    }

    #[test]
    fn the_manifest_of_the_engine_is_read() {
        let manifest = manifest("x", 5);
        assert_eq!(manifest.partitions[0].part.file, "part1.pcl.zst");
        assert_eq!(manifest.partitions[0].method, "partclone");
    }
}
