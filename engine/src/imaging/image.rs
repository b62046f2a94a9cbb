//! Images of a disk in an image folder, and the stream a restore session sends.
//!
//! An image is a folder `<images>/<name>/` holding `image.toml` (the manifest below),
//! the partition table as `sfdisk --dump` writes it, and one file per partition: its
//! used blocks as `partclone` writes them, or its raw bytes where partclone cannot read
//! the file system, compressed with zstd. The manifest names every file with its size
//! and SHA-256, so a seat checks each partition it received before it reports success.
//!
//! The restore stream is a POSIX tar archive of the folder, manifest first: busybox
//! `tar -x --to-command` on the seat hands each member to the right tool as it arrives,
//! and the manifest's `id` (random, made at capture) tells the seat that the stream is
//! the image it was told to expect, never another session's on the same ports (FOG
//! issue 1742: a seat restored the wrong partition from a stream one behind).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use portapxe_proto::imaging::manifest::{FORMAT, MANIFEST, Manifest, Method, Part, Partition, valid_name};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no image named {name:?} in {dir}")]
    Missing { name: String, dir: PathBuf },
    #[error("{name:?} is not an image name: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadName { name: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not an image manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error("{path} is written in image format {format}; this PortaPXE reads format {FORMAT}: update PortaPXE")]
    NewerFormat { path: PathBuf, format: u32 },
    #[error("image {image:?}: {file} {problem}; capture the machine again")]
    Damaged { image: String, file: String, problem: String },
}

/// An image checked for use: its manifest, and every file present with the size it names.
#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Image {
    pub fn open(images: &Path, name: &str) -> Result<Self, ImageError> {
        if !valid_name(name) {
            return Err(ImageError::BadName { name: name.into() });
        }
        let dir = images.join(name);
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::Missing { name: name.into(), dir: images.into() });
            }
            other => other.map_err(|source| ImageError::Read { path: path.clone(), source })?,
        };
        let manifest = parse_manifest(&path, &text)?;
        let damaged =
            |file: &str, problem: String| ImageError::Damaged { image: name.into(), file: file.into(), problem };
        for part in manifest.parts() {
            if !valid_name(&part.file) || part.file == MANIFEST {
                return Err(damaged(&part.file, "is not a plain file name".into()));
            }
            let on_disk = std::fs::metadata(dir.join(&part.file))
                .map_err(|err| damaged(&part.file, format!("cannot be read ({err})")))?;
            if on_disk.len() != part.bytes {
                return Err(damaged(
                    &part.file,
                    format!("has {} bytes, the manifest says {}", on_disk.len(), part.bytes),
                ));
            }
        }
        Ok(Self { dir, manifest })
    }

    /// The restore stream: a tar archive of the manifest and the image's files.
    pub fn stream(&self) -> Result<ImageStream, ImageError> {
        let manifest_path = self.dir.join(MANIFEST);
        let manifest =
            std::fs::read(&manifest_path).map_err(|source| ImageError::Read { path: manifest_path, source })?;
        let mut members =
            vec![Member { name: MANIFEST.into(), bytes: manifest.len() as u64, source: Source::Memory(manifest) }];
        for part in self.manifest.parts() {
            let path = self.dir.join(&part.file);
            members.push(Member { name: part.file.clone(), bytes: part.bytes, source: Source::File(path) });
        }
        Ok(ImageStream::new(members))
    }
}

fn parse_manifest(path: &Path, text: &str) -> Result<Manifest, ImageError> {
    #[derive(Deserialize)]
    struct Version {
        format: u32,
    }
    let bad = |err: toml::de::Error| ImageError::Manifest { path: path.into(), message: err.message().to_string() };
    let version: Version = toml::from_str(text).map_err(bad)?;
    if version.format > FORMAT {
        return Err(ImageError::NewerFormat { path: path.into(), format: version.format });
    }
    toml::from_str(text).map_err(bad)
}

/// One line of `portapxe image list`: an image, or why a folder is not one.
#[derive(Debug)]
pub enum Listed {
    Image(Image),
    Unusable { name: String, error: ImageError },
}

/// The images in `images`, by name; a folder without a manifest is not listed (a
/// capture still being written is named `.<name>.partial`).
pub fn list(images: &Path) -> Result<Vec<Listed>, ImageError> {
    let entries = match std::fs::read_dir(images) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.map_err(|source| ImageError::Read { path: images.into(), source })?,
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join(MANIFEST).exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| valid_name(name))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| match Image::open(images, &name) {
            Ok(image) => Listed::Image(image),
            Err(error) => Listed::Unusable { name, error },
        })
        .collect())
}

#[derive(Debug)]
enum Source {
    Memory(Vec<u8>),
    File(PathBuf),
}

#[derive(Debug)]
struct Member {
    name: String,
    bytes: u64,
    source: Source,
}

/// A tar archive read as it is made: each member's 512-byte ustar header, its bytes
/// (read from the file as they are needed), zero padding to 512, and two zero blocks.
pub struct ImageStream {
    members: std::vec::IntoIter<Member>,
    /// What is being read now.
    current: Box<dyn Read + Send>,
    total: u64,
}

impl fmt::Debug for ImageStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageStream").field("total", &self.total).finish_non_exhaustive()
    }
}

const TAR_BLOCK: u64 = 512;

fn padding(bytes: u64) -> u64 {
    (TAR_BLOCK - bytes % TAR_BLOCK) % TAR_BLOCK
}

impl ImageStream {
    fn new(members: Vec<Member>) -> Self {
        let total = members.iter().map(|m| TAR_BLOCK + m.bytes + padding(m.bytes)).sum::<u64>() + 2 * TAR_BLOCK;
        Self { members: members.into_iter(), current: Box::new(io::empty()), total }
    }

    /// Bytes the whole stream has.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn next_member(&mut self) -> io::Result<Option<Box<dyn Read + Send>>> {
        let Some(member) = self.members.next() else { return Ok(None) };
        let mut header = tar::Header::new_ustar();
        header.set_path(&member.name)?;
        header.set_size(member.bytes);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let header = io::Cursor::new(header.as_bytes().to_vec());
        let body: Box<dyn Read + Send> = match member.source {
            Source::Memory(bytes) => Box::new(io::Cursor::new(bytes)),
            // Exactly the bytes the manifest names: a file that grew is cut, one that
            // shrank makes the stream fail rather than shift every member after it.
            Source::File(path) => Box::new(ExactLength::new(File::open(&path)?, member.bytes, path)),
        };
        let pad = io::repeat(0).take(padding(member.bytes));
        Ok(Some(Box::new(header.chain(body).chain(pad))))
    }
}

impl Read for ImageStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.next_member()? {
                Some(next) => self.current = next,
                None if self.total > 0 => {
                    // The end: two zero blocks, once.
                    self.current = Box::new(io::repeat(0).take(2 * TAR_BLOCK));
                    self.total = 0;
                }
                None => return Ok(0),
            }
        }
    }
}

/// A reader of exactly `left` bytes of `inner`: an error if it ends sooner.
struct ExactLength<R> {
    inner: io::Take<R>,
    left: u64,
    path: PathBuf,
}

impl<R: Read> ExactLength<R> {
    fn new(inner: R, bytes: u64, path: PathBuf) -> Self {
        Self { inner: inner.take(bytes), left: bytes, path }
    }
}

impl<R: Read> Read for ExactLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ended {} bytes early: it changed since the image was checked",
                    self.path.display(),
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// SHA-256 of everything `reader` yields, lowercase hex.
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_image(images: &Path, name: &str, files: &[(&str, &[u8])]) -> Manifest {
        let dir = images.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut parts = Vec::new();
        for (file, bytes) in files {
            std::fs::write(dir.join(file), bytes).unwrap();
            parts.push(Part { file: (*file).into(), bytes: bytes.len() as u64, sha256: sha256_hex(*bytes).unwrap() });
        }
        let table = parts.remove(0);
        let manifest = Manifest {
            format: FORMAT,
            name: name.into(),
            id: "4f1c2b".into(),
            created: 1_796_000_000,
            source_mac: Some("52:54:00:aa:00:01".parse().unwrap()),
            disk_bytes: 64 << 20,
            table,
            boot_area: None,
            partitions: parts
                .into_iter()
                .enumerate()
                .map(|(i, part)| Partition {
                    number: i as u32 + 1,
                    filesystem: "ext4".into(),
                    method: Method::Partclone,
                    partition_bytes: 32 << 20,
                    part,
                })
                .collect(),
        };
        std::fs::write(dir.join(MANIFEST), toml::to_string(&manifest).unwrap()).unwrap();
        manifest
    }

    #[test]
    fn the_stream_is_a_tar_of_the_manifest_then_each_part() {
        let images = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        let manifest = write_image(images.path(), "lab", &[("table.sfdisk", b"label: dos\n"), ("part1.pcl.zst", &big)]);
        let image = Image::open(images.path(), "lab").unwrap();
        assert_eq!(image.manifest, manifest);
        let mut stream = image.stream().unwrap();
        let len = stream.len();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, len, "the announced length is the real one");

        let mut archive = tar::Archive::new(bytes.as_slice());
        let members: Vec<(String, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                let mut body = Vec::new();
                entry.read_to_end(&mut body).unwrap();
                (name, body)
            })
            .collect();
        let names: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["image.toml", "table.sfdisk", "part1.pcl.zst"]);
        assert_eq!(members[2].1, big);
        let sent: Manifest = toml::from_str(std::str::from_utf8(&members[0].1).unwrap()).unwrap();
        assert_eq!(sent.id, "4f1c2b");
    }

    #[test]
    fn a_damaged_or_hostile_image_is_named_with_what_to_do() {
        let images = tempfile::tempdir().unwrap();
        write_image(images.path(), "short", &[("table.sfdisk", b"x"), ("p1", b"abc")]);
        std::fs::write(images.path().join("short/p1"), b"ab").unwrap();
        let err = Image::open(images.path(), "short").unwrap_err().to_string();
        assert!(err.contains("p1 has 2 bytes, the manifest says 3") && err.contains("capture"), "{err}");

        write_image(images.path(), "escape", &[("table.sfdisk", b"x")]);
        let path = images.path().join("escape").join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap().replace("\"table.sfdisk\"", "\"../../etc/passwd\"");
        std::fs::write(&path, text).unwrap();
        let err = Image::open(images.path(), "escape").unwrap_err().to_string();
        assert!(err.contains("not a plain file name"), "{err}");

        assert!(matches!(Image::open(images.path(), "../x"), Err(ImageError::BadName { .. })));
        assert!(matches!(Image::open(images.path(), "none"), Err(ImageError::Missing { .. })));

        std::fs::create_dir_all(images.path().join("future")).unwrap();
        std::fs::write(images.path().join("future").join(MANIFEST), "format = 9\n").unwrap();
        let err = Image::open(images.path(), "future").unwrap_err().to_string();
        assert!(err.contains("format 9") && err.contains("update PortaPXE"), "{err}");

        std::fs::create_dir_all(images.path().join("junk")).unwrap();
        std::fs::write(images.path().join("junk").join(MANIFEST), [0xff, 0x00, b'[']).unwrap();
        assert!(Image::open(images.path(), "junk").is_err());
    }

    #[test]
    fn a_file_that_shrank_after_the_check_fails_the_stream() {
        let images = tempfile::tempdir().unwrap();
        write_image(images.path(), "lab", &[("table.sfdisk", b"t"), ("p1", &[7u8; 5000])]);
        let image = Image::open(images.path(), "lab").unwrap();
        std::fs::write(images.path().join("lab/p1"), [7u8; 100]).unwrap();
        let err = image.stream().unwrap().read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("changed since the image was checked"), "{err}");
    }

    #[test]
    fn list_names_images_and_unusable_folders() {
        let images = tempfile::tempdir().unwrap();
        write_image(images.path(), "b", &[("t", b"t")]);
        write_image(images.path(), "a", &[("t", b"t")]);
        std::fs::create_dir_all(images.path().join("bad")).unwrap();
        std::fs::write(images.path().join("bad").join(MANIFEST), "name = 3").unwrap();
        std::fs::create_dir_all(images.path().join("no-manifest")).unwrap();
        let listed = list(images.path()).unwrap();
        let names: Vec<String> = listed
            .iter()
            .map(|entry| match entry {
                Listed::Image(image) => image.manifest.name.clone(),
                Listed::Unusable { name, .. } => format!("!{name}"),
            })
            .collect();
        assert_eq!(names, ["a", "b", "!bad"]);
        assert!(list(&images.path().join("missing")).unwrap().is_empty());
    }
}
