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
