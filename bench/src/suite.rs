//! One run of the suite: its namespaces, its scratch directories, the test files and
//! what was recorded. Cleanup (namespaces deleted, directories removed) runs once, also
//! when the run stops early or panics.
//!
//! Owns: the `pxbNNNNN-*` namespaces and `/dev/shm/pxb*`, `/var/tmp/pxb*` directories it
//! made. Must not touch: any other namespace or file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::sched::{CloneFlags, setns};
use portapxe_lab::process::run_ok;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::cli::Settings;
use crate::clock::log;
use crate::records::Records;
use crate::report::DelayLine;

pub const MB: f64 = 1_000_000.0;
pub const MIB: u64 = 1 << 20;

/// A test file in the server root: its size and SHA-256, to check every download.
struct TestFile {
    size: u64,
    sha256: [u8; 32],
}

pub struct Suite {
    pub s: Settings,
    /// The portapxe binary measured: a private copy, so a build during the run changes nothing.
    pub bin: String,
    pub tag: String,
    pub ns_main: String,
    namespaces: Vec<String>,
    work: Option<TempDir>,
    disk: Option<TempDir>,
    pub root: PathBuf,
    pub out: PathBuf,
    pub logs: PathBuf,
    files: HashMap<String, TestFile>,
    pub records: Records,
    pub delay_line: Option<DelayLine>,
    /// The namespace of the clients behind the delay line, while the relay group runs.
    pub relay_client_ns: Option<String>,
}

impl Suite {
    pub fn new(s: Settings) -> Result<Self> {
        let tag = format!("pxb{}", std::process::id() % 100_000);
        // Servers drop to nobody: every directory they read must be world-readable.
        let open = |dir: &Path| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
        let work = tempfile::Builder::new()
            .prefix(&format!("{tag}-"))
            .tempdir_in("/dev/shm")
            .context("cannot make a work directory in /dev/shm")?;
        open(work.path())?;
        let disk = tempfile::Builder::new()
            .prefix(&format!("{tag}-state-"))
            .tempdir_in("/var/tmp")
            .context("cannot make a state directory in /var/tmp")?;
        let (root, out, logs) = (work.path().join("root"), work.path().join("out"), work.path().join("logs"));
        for dir in [&root, &out, &logs] {
            std::fs::create_dir(dir)?;
            open(dir)?;
        }
        Ok(Self {
            s,
            bin: String::new(),
            ns_main: format!("{tag}-main"),
            tag,
            namespaces: Vec::new(),
            work: Some(work),
            disk: Some(disk),
            root,
            out,
            logs,
            files: HashMap::new(),
            records: Records::default(),
            delay_line: None,
            relay_client_ns: None,
        })
    }

    pub fn work(&self) -> &Path {
        self.work.as_ref().map(TempDir::path).unwrap_or(Path::new("/nonexistent"))
    }

    /// Where servers keep leases: on a disk, not in /dev/shm, as they would in use.
    pub fn disk(&self) -> &Path {
        self.disk.as_ref().map(TempDir::path).unwrap_or(Path::new("/nonexistent"))
    }

    pub fn add_netns(&mut self, name: &str) -> Result<()> {
        run_ok("ip", &["netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run_ok("ip", &["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Move this process into its private main namespace. Called on the main thread while
    /// it is the only thread, so every thread and child made later starts there too: a
    /// private loopback where ports 69 and 80 are ours.
    pub fn enter_main_netns(&mut self) -> Result<()> {
        let ns = self.ns_main.clone();
        self.add_netns(&ns)?;
        let path = format!("/run/netns/{ns}");
        let handle = File::open(&path).with_context(|| format!("cannot open {path}"))?;
        setns(&handle, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {path}"))?;
        Ok(())
    }

    /// Random test files; their sizes and digests are kept to check every download.
    pub fn make_files(&mut self) -> Result<()> {
        let s = &self.s;
        let sizes = [
            ("single.bin", s.tftp_mib),
            ("multi.bin", s.multi_mib),
            ("relay.bin", s.relay_mib),
            ("window.bin", s.window_mib),
            ("http.bin", s.http_mib),
        ];
        let ready = self.root.join(crate::probes::READY_FILE);
        std::fs::write(&ready, b"ready\n")?;
        std::fs::set_permissions(&ready, std::fs::Permissions::from_mode(0o644))?;
        let mut random = File::open("/dev/urandom").context("cannot read /dev/urandom")?;
        let mut chunk = vec![0u8; 8 * MIB as usize];
        for (name, mib) in sizes {
            let path = self.root.join(name);
            let mut file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut hash = Sha256::new();
            let mut left = mib * MIB;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                random.read_exact(&mut chunk[..n])?;
                hash.update(&chunk[..n]);
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
            self.files.insert(name.to_owned(), TestFile { size: mib * MIB, sha256: hash.finalize().into() });
        }
        let listed: Vec<String> = sizes.iter().map(|(name, mib)| format!("{name} {mib} MiB")).collect();
        log!("files in {}: {}", self.root.display(), listed.join(", "));
        Ok(())
    }

    /// The size of test file `name`.
    pub fn size(&self, name: &str) -> u64 {
        self.files.get(name).map(|f| f.size).unwrap_or(0)
    }

    /// `None` when `path` is byte for byte test file `name`; else what differs.
    pub fn check_file(&self, path: &Path, name: &str) -> Option<String> {
        let shown = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let want = self.files.get(name)?;
        let size = match std::fs::metadata(path) {
            Ok(meta) => meta.len(),
            Err(error) => return Some(format!("{shown}: {error}")),
        };
        if size != want.size {
            return Some(format!("{shown}: {size} bytes, expected {}", want.size));
        }
        match sha256_file(path) {
            Ok(digest) if digest == want.sha256 => None,
            Ok(_) => Some(format!("{shown}: content differs")),
            Err(error) => Some(format!("{shown}: {error}")),
        }
    }

    /// Delete the namespaces and directories. Runs once; later calls do nothing.
    pub fn cleanup(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            if let Err(error) = run_ok("ip", &["netns", "del", &ns]) {
                log!("could not delete namespace {ns}: {error:#}; delete it with `ip netns del {ns}`");
            }
        }
        for dir in [self.work.take(), self.disk.take()].into_iter().flatten() {
            let shown = dir.path().display().to_string();
            if let Err(error) = dir.close() {
                log!("could not remove {shown}: {error}; remove it by hand");
            }
        }
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 4 * MIB as usize];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}
