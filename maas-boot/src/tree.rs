//! The virtual file tree that TFTP and HTTP boot serve from.
//!
//! A request's file name is turned into a [`BootPath`] (validated components:
//! no `..`, no NUL, no backslash, no empty or over-long names) before anything
//! looks at it; trees only ever see a `BootPath`. [`DirTree`] maps one onto a
//! directory by pushing validated components and then checks the resolved path
//! is still inside the root, so neither `..` nor a symlink can escape it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Error, Result};

/// Longest file name accepted, in bytes. Boot paths are short (the longest MAAS
/// uses are image paths of ~150 bytes); anything longer is an attack or a bug.
pub const MAX_PATH_LEN: usize = 1024;

/// A validated, root-relative path inside a boot tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BootPath {
    components: Vec<String>,
}

impl BootPath {
    /// Validates a client-supplied name.
    ///
    /// One leading `/` is accepted and means the tree root, as with tftpd-hpa's
    /// `-s` and MAAS's own TFTP backend: GRUB asks for `/grub/grub.cfg-…`. Refused
    /// with [`Error::AccessDenied`]: `..` or `.` components, empty components
    /// (`a//b`, a trailing `/`), NUL, backslashes, control characters, non-UTF-8
    /// and names over [`MAX_PATH_LEN`] bytes.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let deny = |why: &str| Error::AccessDenied(format!("refused path ({why})"));
        if raw.is_empty() {
            return Err(deny("empty"));
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(deny("too long"));
        }
        let s = std::str::from_utf8(raw).map_err(|_| deny("not UTF-8"))?;
        if s.contains('\\') {
            return Err(deny("backslash"));
        }
        if s.chars().any(char::is_control) {
            return Err(deny("control character"));
        }
        let rel = s.strip_prefix('/').unwrap_or(s);
        let mut components = Vec::new();
        for c in rel.split('/') {
            match c {
                "" => return Err(deny("empty component or absolute path")),
                "." | ".." => return Err(deny("dot component")),
                // A drive letter would make the name absolute on some systems.
                c if c.contains(':') && components.is_empty() && c.len() == 2 => {
                    return Err(deny("drive letter"));
                }
                c => components.push(c.to_owned()),
            }
        }
        Ok(Self { components })
    }

    /// The components, each a plain file name.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// `a/b/c`, without a leading slash.
    pub fn as_string(&self) -> String {
        self.components.join("/")
    }

    /// The path with its first component removed if it equals `first`.
    pub fn strip_first(&self, first: &str) -> Option<BootPath> {
        match self.components.split_first() {
            Some((f, rest)) if f == first && !rest.is_empty() => Some(BootPath {
                components: rest.to_vec(),
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for BootPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// Who is asking, so a tree can render per-machine configs and URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client's address.
    pub peer: SocketAddr,
    /// The server address the request arrived on (the rack address to put in URLs).
    pub local: SocketAddr,
}

/// The content of a file in a tree.
#[derive(Debug)]
pub enum BootFile {
    /// Generated in memory (configs).
    Bytes(Bytes),
    /// A file on disk, read with positioned reads.
    File {
        /// The open file.
        file: std::fs::File,
        /// Its length when opened.
        len: u64,
        /// Its modification time, for HTTP `Last-Modified`.
        modified: Option<SystemTime>,
    },
}

impl BootFile {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            BootFile::Bytes(b) => b.len() as u64,
            BootFile::File { len, .. } => *len,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match self {
            BootFile::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let n = (b.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&b[start..start + n]);
                Ok(n)
            }
            BootFile::File { file, .. } => {
                use std::os::unix::fs::FileExt;
                let mut done = 0;
                while done < buf.len() {
                    match file.read_at(&mut buf[done..], offset + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::io("reading a boot file", e)),
                    }
                }
                Ok(done)
            }
        }
    }
}

/// A tree of files served to netbooting machines.
#[async_trait]
pub trait BootTree: Send + Sync + 'static {
    /// Opens `path` for `client`. [`Error::NotFound`] when there is no such file.
    async fn open(&self, path: &BootPath, client: &Client) -> Result<BootFile>;
}

/// A directory on disk as a tree (bootloaders, the image store).
#[derive(Clone, Debug)]
pub struct DirTree {
    root: PathBuf,
    /// The root, open, for `openat2` lookups beneath it.
    root_fd: std::sync::Arc<std::os::fd::OwnedFd>,
}

impl DirTree {
    /// A tree rooted at `root`, which must exist.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root
            .as_ref()
            .canonicalize()
            .map_err(|e| Error::io("opening the boot tree root", e))?;
        let root_fd =
            std::fs::File::open(&root).map_err(|e| Error::io("opening the boot tree root", e))?;
        Ok(Self {
            root,
            root_fd: std::sync::Arc::new(root_fd.into()),
        })
    }

    fn open_sync(&self, path: &BootPath) -> Result<BootFile> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        // Fast path: one openat2(2) that the kernel confines beneath the root
        // (no `..` or symlink may leave it), instead of an lstat per path
        // component. Whatever it refuses or cannot do (an absolute symlink, an
        // old kernel) takes the portable path below, which decides the same way.
        let rel: PathBuf = path.components().iter().collect();
        match rustix::fs::openat2(
            &*self.root_fd,
            &rel,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Self::opened(std::fs::File::from(fd), path),
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {
                return Err(Error::NotFound(path.as_string()));
            }
            Err(_) => {}
        }
        self.open_resolved(path)
    }

    fn opened(file: std::fs::File, path: &BootPath) -> Result<BootFile> {
        let meta = file
            .metadata()
            .map_err(|e| Error::io("reading boot file metadata", e))?;
        if !meta.is_file() {
            return Err(Error::NotFound(path.as_string()));
        }
        Ok(BootFile::File {
            len: meta.len(),
            modified: meta.modified().ok(),
            file,
        })
    }

    fn open_resolved(&self, path: &BootPath) -> Result<BootFile> {
        let mut p = self.root.clone();
        for c in path.components() {
            p.push(c);
        }
        let not_found = || Error::NotFound(path.as_string());
        let real = match p.canonicalize() {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(Error::io("resolving a boot path", e)),
        };
        // A symlink inside the tree may point anywhere; serve only what resolves
        // back inside the root.
        if !real.starts_with(&self.root) {
            return Err(Error::AccessDenied(format!("{path} leaves the tree")));
        }
        let file = std::fs::File::open(&real).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(),
            std::io::ErrorKind::PermissionDenied => Error::AccessDenied(path.as_string()),
            _ => Error::io("opening a boot file", e),
        })?;
        Self::opened(file, path)
    }
}

#[async_trait]
impl BootTree for DirTree {
    async fn open(&self, path: &BootPath, _client: &Client) -> Result<BootFile> {
        // canonicalize/open are blocking calls; they are quick on a local disk and
        // keeping them inline avoids a thread hop per TFTP request.
        self.open_sync(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_normal_names() {
        let p = BootPath::parse(b"pxelinux.cfg/01-52-54-00-00-00-01").unwrap();
        assert_eq!(p.components(), ["pxelinux.cfg", "01-52-54-00-00-00-01"]);
        let g = BootPath::parse(b"/grub/grub.cfg-52:54:00:00:00:01").unwrap();
        assert_eq!(g.as_string(), "grub/grub.cfg-52:54:00:00:00:01");
    }

    #[test]
    fn refuses_escapes() {
        let long = vec![b'a'; MAX_PATH_LEN + 1];
        for bad in [
            &b"../etc/passwd"[..],
            b"a/../../etc",
            b"//etc/passwd",
            b"a\\b",
            b"a\0b",
            b"a//b",
            b"a/",
            b"./a",
            b"c:",
            b"\xff\xfe",
            b"",
            &long,
        ] {
            assert!(
                matches!(BootPath::parse(bad), Err(Error::AccessDenied(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn dir_tree_stays_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("f"), b"hello").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let tree = DirTree::new(&root).unwrap();
        let c = Client {
            peer: "127.0.0.1:1".parse().unwrap(),
            local: "127.0.0.1:69".parse().unwrap(),
        };
        let f = tree
            .open(&BootPath::parse(b"f").unwrap(), &c)
            .await
            .unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(f.read_at(1, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        let err = tree.open(&BootPath::parse(b"link").unwrap(), &c).await;
        assert!(matches!(err, Err(Error::AccessDenied(_))), "{err:?}");
        let err = tree.open(&BootPath::parse(b"missing").unwrap(), &c).await;
        assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");

        // Symlinks that stay inside are followed, relative (openat2's fast
        // path) or absolute (the resolving path), and so are directories of them.
        std::fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("../f", root.join("d/rel")).unwrap();
        std::os::unix::fs::symlink(root.join("f"), root.join("d/abs")).unwrap();
        std::os::unix::fs::symlink("d", root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("d/up")).unwrap();
        for ok in [&b"d/rel"[..], b"d/abs", b"dirlink/rel"] {
            let f = tree.open(&BootPath::parse(ok).unwrap(), &c).await;
            assert!(matches!(f, Ok(ref f) if f.len() == 5), "{ok:?}: {f:?}");
        }
        // A relative link climbing out, and a directory asked for as a file.
        let err = tree.open(&BootPath::parse(b"d/up").unwrap(), &c).await;
        assert!(matches!(err, Err(Error::AccessDenied(_))), "{err:?}");
        let err = tree.open(&BootPath::parse(b"d").unwrap(), &c).await;
        assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");
    }

    proptest! {
        #[test]
        fn parsed_paths_are_plain(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = BootPath::parse(&raw) {
                for c in p.components() {
                    prop_assert!(!c.is_empty() && c != "." && c != "..");
                    prop_assert!(!c.contains('/') && !c.contains('\\') && !c.contains('\0'));
                }
            }
        }
    }
}
