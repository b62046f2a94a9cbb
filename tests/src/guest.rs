//! What the lab guests boot: a Debian kernel and a busybox initramfs that prints a
//! marker unique to the run on ttyS0 and powers off.
//!
//! Owns: locating the kernel (`target/lab/vmlinuz`, made by
//! `tests/lab/prepare-guest.sh target/lab`, or `PORTAPXE_LAB_KERNEL`), writing the
//! initramfs (cpio "newc") and filling a server root with boot files.
//! Nothing binary is committed: the kernel is downloaded, the initramfs built here.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::binary::workspace_root;

pub const KERNEL_NAME: &str = "vmlinuz";
pub const INITRD_NAME: &str = "initrd.img";
/// Serial console; `panic=-1` turns a kernel panic into a reboot, which `-no-reboot` turns
/// into a QEMU exit, so a broken initrd fails fast instead of timing out.
pub const CMDLINE: &str = "console=ttyS0 panic=-1";

/// Debian's iPXE builds (package `ipxe`).
pub const IPXE_DIR: &str = "/usr/lib/ipxe";
pub const BIOS_FILE: &str = "undionly.kpxe";
pub const UEFI_FILE: &str = "ipxe.efi";

static MARKER_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The guest kernel; panics with the command that fetches it when it is missing.
pub fn kernel() -> PathBuf {
    let path = std::env::var_os("PORTAPXE_LAB_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/lab/vmlinuz"));
    if !path.is_file() {
        panic!(
            "guest kernel {} is missing: run tests/lab/prepare-guest.sh target/lab \
             (from the workspace root) or set PORTAPXE_LAB_KERNEL",
            path.display()
        );
    }
    path
}

/// Boot files installed into a server root, and the marker the guest will print.
pub struct Guest {
    pub marker: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl Guest {
    /// Copy the kernel to `root/vmlinuz` and write `root/initrd.img` with a fresh marker.
    pub fn install(root: &Path) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let counter = MARKER_COUNTER.fetch_add(1, Ordering::SeqCst);
        let marker = format!("PORTAPXE-LAB-BOOTED-{}-{counter}-{nanos:08x}", std::process::id());
        let kernel = root.join(KERNEL_NAME);
        let initrd = root.join(INITRD_NAME);
        fs::copy(self::kernel(), &kernel).context("copying the guest kernel into the server root")?;
        fs::write(&initrd, initramfs(&marker)?).context("writing the initramfs")?;
        Ok(Self { marker, kernel, initrd })
    }

    /// `--kernel vmlinuz --initrd initrd.img --cmdline …`
    pub fn server_args(&self) -> Vec<String> {
        ["--kernel", KERNEL_NAME, "--initrd", INITRD_NAME, "--cmdline", CMDLINE].map(String::from).to_vec()
    }

    pub fn kernel_size(&self) -> u64 {
        fs::metadata(&self.kernel).map(|m| m.len()).unwrap_or(0)
    }

    pub fn initrd_size(&self) -> u64 {
        fs::metadata(&self.initrd).map(|m| m.len()).unwrap_or(0)
    }
}

/// The ARM64 guest's folder (`tests/lab/prepare-arm64.sh target/lab/arm64`).
fn arm64_dir() -> PathBuf {
    workspace_root().join("target/lab/arm64")
}

/// Names of the ARM64 guest's files in a server root, beside the x64 ones.
pub const ARM64_KERNEL_NAME: &str = "vmlinuz-arm64";
pub const ARM64_INITRD_NAME: &str = "initrd-arm64.img";
/// ARM64's first serial port on QEMU's `virt` machine is a PL011.
pub const ARM64_CMDLINE: &str = "console=ttyAMA0 panic=-1";

impl Guest {
    /// Debian's signed arm64 kernel and an arm64 busybox initramfs with a fresh marker,
    /// as `root/vmlinuz-arm64` and `root/initrd-arm64.img`.
    pub fn install_arm64(root: &Path) -> Result<Self> {
        let marker =
            format!("PORTAPXE-LAB-ARM64-{}-{}", std::process::id(), MARKER_COUNTER.fetch_add(1, Ordering::SeqCst));
        let (kernel, initrd) = (root.join(ARM64_KERNEL_NAME), root.join(ARM64_INITRD_NAME));
        let from = arm64_dir();
        fs::copy(from.join("vmlinuz"), &kernel)
            .context("copying the arm64 kernel (run tests/lab/prepare-arm64.sh target/lab/arm64)")?;
        fs::write(&initrd, initramfs_with(&from.join("busybox"), &marker)?).context("writing the arm64 initramfs")?;
        Ok(Self { marker, kernel, initrd })
    }

    /// `--kernel vmlinuz-arm64 --initrd initrd-arm64.img --cmdline …`
    pub fn arm64_server_args(&self) -> Vec<String> {
        ["--kernel", ARM64_KERNEL_NAME, "--initrd", ARM64_INITRD_NAME, "--cmdline", ARM64_CMDLINE]
            .map(String::from)
            .to_vec()
    }
}

/// Copy Debian's `undionly.kpxe` and `ipxe.efi` into `root`.
pub fn install_ipxe_binaries(root: &Path) -> Result<()> {
    for name in [BIOS_FILE, UEFI_FILE] {
        let from = Path::new(IPXE_DIR).join(name);
        fs::copy(&from, root.join(name))
            .with_context(|| format!("copying {} (apt-get install ipxe)", from.display()))?;
    }
    Ok(())
}

/// The signed chain's loaders (shim, network GRUB), fetched from Debian's packages by
/// `installers/signed-loaders.sh target/signed-loaders` (CI's install step runs it).
pub const SHIM_FILE: &str = "shimx64.efi";
pub const GRUB_FILE: &str = "grubx64.efi";

fn signed_loaders_dir() -> PathBuf {
    workspace_root().join("target/signed-loaders")
}

/// Copy `shimx64.efi` and `grubx64.efi` into `root`, as a packaged PortaPXE serves them.
pub fn install_signed_loaders(root: &Path) -> Result<()> {
    for name in [SHIM_FILE, GRUB_FILE, "shimaa64.efi", "grubaa64.efi"] {
        let from = signed_loaders_dir().join(name);
        fs::copy(&from, root.join(name)).with_context(|| {
            format!("copying {} (run installers/signed-loaders.sh target/signed-loaders)", from.display())
        })?;
    }
    Ok(())
}

/// A cpio "newc" archive: busybox, an /init that prints `marker` and powers off,
/// and the two device nodes the kernel needs before devtmpfs is mounted.
pub fn initramfs(marker: &str) -> Result<Vec<u8>> {
    initramfs_with(Path::new("/bin/busybox"), marker)
}

/// [`initramfs`] with the busybox at `busybox` (another architecture's).
pub fn initramfs_with(busybox_path: &Path, marker: &str) -> Result<Vec<u8>> {
    let busybox = fs::read(busybox_path).with_context(|| {
        format!("reading {} (busybox-static, or tests/lab/prepare-arm64.sh)", busybox_path.display())
    })?;
    if busybox.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("{} is not an ELF binary", busybox_path.display());
    }
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t sysfs sys /sys\n\
         echo\n\
         echo \"{marker}\"\n\
         /bin/busybox poweroff -f\n"
    );
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys"] {
        cpio.entry(dir, 0o040755, 0, &[]);
    }
    cpio.entry("bin/busybox", 0o100755, 0, &busybox);
    cpio.entry("bin/sh", 0o120777, 0, b"busybox");
    cpio.entry("dev/console", 0o020600, dev(5, 1), &[]);
    cpio.entry("dev/ttyS0", 0o020600, dev(4, 64), &[]);
    cpio.entry("init", 0o100755, 0, init.as_bytes());
    Ok(cpio.finish())
}

const fn dev(major: u32, minor: u32) -> u64 {
    ((major as u64) << 32) | minor as u64
}

#[derive(Default)]
struct Cpio {
    bytes: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: u64, data: &[u8]) {
        self.inode += 1;
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            if mode & 0o040000 != 0 { 2 } else { 1 },
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0,
            0,
            (rdev >> 32) as u32,
            rdev as u32,
            u32::try_from(name.len() + 1).unwrap_or(u32::MAX),
            0, // check
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 0, &[]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_lists_with_gnu_cpio() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("initrd.img");
        std::fs::write(&archive, initramfs("MARK").unwrap()).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cpio -itv < {}", archive.display()))
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for name in ["bin/busybox", "bin/sh -> busybox", "dev/console", "dev/ttyS0", "init"] {
            assert!(listing.contains(name), "{name} missing from\n{listing}");
        }
    }
}
