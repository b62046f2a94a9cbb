//! What the engine adds to the served namespace on top of the boot root, for TFTP and
//! HTTP alike: files it makes itself (the iPXE script, GRUB configurations) and ISO
//! images mounted at a path (`iso/debian.iso/live/vmlinuz` is a span of the image).
//! Both shadow a real file of the same name, so what a DHCP reply or a boot menu points
//! at is always what gets served. Names are looked up after the TFTP and HTTP path rules
//! have normalised them (`a/b/c`, no `..`), so nothing here builds a path from a request:
//! a name inside an image is only ever a key of the image's index.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::iso::{ImageStamp, IsoIndex};

pub use portapxe_proto::names::NEXT_BOOT_DIR;

/// Generated files and mounted images, by root-relative path (`/` separators, no
/// leading slash).
#[derive(Clone, Default, Debug)]
pub struct Served {
    files: Arc<HashMap<String, Bytes>>,
    images: Arc<Vec<MountedImage>>,
    made: Arc<Vec<Arc<dyn MadeOnRequest>>>,
    /// The app's loader folder (canonical), behind the boot root: a name the root lacks
    /// is looked up there by the same path rules.
    loader_dir: Option<Arc<Path>>,
}

/// Files whose content is decided when they are asked for (the imaging hub's per-MAC
/// GRUB configurations: the agent while the seat has a task, its disk after). Asked
/// after the generated files, before the mounted images; `path` is normalised.
pub trait MadeOnRequest: Send + Sync + std::fmt::Debug {
    fn make(&self, path: &str) -> Option<Bytes>;
}

/// An ISO image whose files are served below `mount`.
#[derive(Debug, Clone)]
pub struct MountedImage {
    /// The image's own served path (`iso/x.iso`); its files are below it.
    pub mount: String,
    /// Where the image file is.
    pub file: PathBuf,
    /// The image as it was when it was indexed.
    pub stamp: ImageStamp,
    pub index: Arc<IsoIndex>,
}

/// The same image file, as it was when read, at the same mount (the index follows from those).
impl PartialEq for MountedImage {
    fn eq(&self, other: &Self) -> bool {
        self.mount == other.mount && self.file == other.file && self.stamp == other.stamp
    }
}

impl MountedImage {
    /// What boots this image, for a server whose files are at `base_url`, with `append`.
    pub fn plan(&self, base_url: &str, append: &str) -> crate::iso::IsoPlan {
        crate::iso::plan(&self.index, crate::iso::Site { mount: &self.mount, base_url, append })
    }
}

/// A span of an image file: a file inside it, or the whole image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpan {
    pub image: PathBuf,
    pub stamp: ImageStamp,
    pub offset: u64,
    pub len: u64,
}

/// What a name is, when the engine added it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServedItem {
    Generated(Bytes),
    InImage(ImageSpan),
}

/// Why a span of an image cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    #[error("cannot open the ISO image {}: {source}", image.display())]
    Open { image: PathBuf, source: std::io::Error },
    #[error("the ISO image {} changed since PortaPXE read it: stop and start serving again", image.display())]
    Changed { image: PathBuf },
}

impl Served {
    pub fn new(files: impl IntoIterator<Item = (String, Bytes)>) -> Self {
        Self {
            files: Arc::new(files.into_iter().collect()),
            images: Arc::default(),
            made: Arc::default(),
            loader_dir: None,
        }
    }

    /// These files and `more` (which win over a file of the same path).
    pub fn with(&self, more: impl IntoIterator<Item = (String, Bytes)>) -> Self {
        let mut files = (*self.files).clone();
        files.extend(more);
        Self { files: Arc::new(files), ..self.clone() }
    }

    /// These files and images, and `images` too.
    pub fn with_images(&self, images: impl IntoIterator<Item = MountedImage>) -> Self {
        let mut all = self.images.to_vec();
        all.extend(images);
        Self { images: Arc::new(all), ..self.clone() }
    }

    /// These files and images, and what `made` makes on request (asked after the
    /// makers added before it).
    pub fn with_made(&self, made: Arc<dyn MadeOnRequest>) -> Self {
        let mut all = self.made.to_vec();
        all.push(made);
        Self { made: Arc::new(all), ..self.clone() }
    }

    /// These files and images, with `loader_dir` (canonical) behind the boot root.
    pub fn with_loader_dir(&self, loader_dir: &Path) -> Self {
        Self { loader_dir: Some(loader_dir.into()), ..self.clone() }
    }

    /// The loader folder behind the boot root, if any.
    pub fn loader_dir(&self) -> Option<&Path> {
        self.loader_dir.as_deref()
    }

    /// A generated file's content. `path` must already be normalised the way the TFTP
    /// and HTTP path rules do it.
    pub fn get(&self, path: &str) -> Option<Bytes> {
        self.files.get(path).cloned().or_else(|| self.made.iter().find_map(|made| made.make(path)))
    }

    /// What `path` (normalised) names, if the engine added it: a generated file, an
    /// image's mount path (the whole image) or a file inside a mounted image.
    pub fn lookup(&self, path: &str) -> Option<ServedItem> {
        if let Some(content) = self.get(path) {
            return Some(ServedItem::Generated(content));
        }
        self.images.iter().find_map(|image| {
            let span = |offset, len| {
                ServedItem::InImage(ImageSpan { image: image.file.clone(), stamp: image.stamp.clone(), offset, len })
            };
            if path == image.mount {
                return Some(span(0, image.stamp.len));
            }
            let inside = path.strip_prefix(image.mount.as_str())?.strip_prefix('/')?;
            let (_, member) = image.index.find(inside)?;
            Some(span(member.offset, member.len))
        })
    }
}

impl ImageSpan {
    /// Opens the image, checking it is still the one that was indexed (blocking).
    pub fn open(&self) -> Result<File, SpanError> {
        let file = File::open(&self.image).map_err(|source| SpanError::Open { image: self.image.clone(), source })?;
        let same = file.metadata().is_ok_and(|metadata| ImageStamp::of(&metadata) == self.stamp);
        if same { Ok(file) } else { Err(SpanError::Changed { image: self.image.clone() }) }
    }

    /// The span as a file of its own, to read and seek in (blocking).
    pub fn reader(&self) -> Result<SpanReader, SpanError> {
        Ok(SpanReader { file: self.open()?, start: self.offset, len: self.len, at: 0 })
    }
}

/// A span of an image file read as if it were the whole file.
pub struct SpanReader {
    file: File,
    start: u64,
    len: u64,
    at: u64,
}

impl Read for SpanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len.saturating_sub(self.at)).unwrap_or(usize::MAX);
        let count = buf.len().min(left);
        if count == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.at))?;
        let read = self.file.read(&mut buf[..count])?;
        self.at += read as u64;
        Ok(read)
    }
}

impl Seek for SpanReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.at.checked_add_signed(delta),
        };
        self.at = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::iso::Member;

    fn mounted(file: &Path) -> MountedImage {
        let index = IsoIndex::from_files([("live/vmlinuz", Member { offset: 4096, len: 5 })]);
        let stamp = ImageStamp::of(&std::fs::metadata(file).unwrap());
        MountedImage { mount: "iso/a.iso".into(), file: file.to_path_buf(), stamp, index: Arc::new(index) }
    }

    #[test]
    fn generated_files_then_image_files_then_nothing() {
        let folder = tempfile::tempdir().unwrap();
        let iso = folder.path().join("a.iso");
        std::fs::write(&iso, vec![7u8; 8192]).unwrap();
        let served =
            Served::new([("boot.ipxe".to_owned(), Bytes::from_static(b"#!ipxe"))]).with_images([mounted(&iso)]);
        assert_eq!(served.lookup("boot.ipxe"), Some(ServedItem::Generated(Bytes::from_static(b"#!ipxe"))));
        let Some(ServedItem::InImage(span)) = served.lookup("iso/a.iso/live/vmlinuz") else {
            panic!("not in the image")
        };
        assert_eq!((span.offset, span.len), (4096, 5));
        let Some(ServedItem::InImage(whole)) = served.lookup("iso/a.iso") else { panic!("the image itself") };
        assert_eq!((whole.offset, whole.len), (0, 8192));
        assert!(served.lookup("iso/a.iso/live/VMLINUZ").is_some(), "names inside an image match in any case");
        assert_eq!(served.lookup("iso/a.iso/live"), None, "a folder is not a file");
        assert_eq!(served.lookup("iso/a.isox/live/vmlinuz"), None);
        assert_eq!(served.lookup("iso/a.iso/../a.iso/live/vmlinuz"), None, "only index keys are served");
        assert!(span.open().is_ok());
        let mut reader = span.reader().unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, vec![7u8; 5], "a span reads as a file of its own length");
        assert_eq!(reader.seek(SeekFrom::End(-2)).unwrap(), 3);
        std::fs::write(&iso, vec![7u8; 100]).unwrap();
        assert!(matches!(span.open(), Err(SpanError::Changed { .. })), "a replaced image is not served");
    }
}
