//! Helpers shared by the TFTP, HTTP and boot-config tests: a file tree on disk,
//! servers on loopback, and lookups of real peer programs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maas_boot::tftp::{self, TftpConfig};
use maas_boot::tree::{BootTree, DirTree};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The full path of a real peer program, or a panic naming the Debian package
/// that provides it (tests against real peers never skip silently).
pub fn peer(program: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("{program} not found: install the Debian package `{package}` (scripts/install-deps.sh)");
}

/// A temp dir of files to serve.
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new(files: &[(&str, &[u8])]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, content).expect("write");
        }
        Self { dir }
    }

    pub fn tree(&self) -> Arc<dyn BootTree> {
        Arc::new(DirTree::new(self.dir.path()).expect("tree"))
    }
}

/// A TFTP server on 127.0.0.1:<random>, stopped on drop.
pub struct TftpServer {
    pub addr: SocketAddr,
    cancel: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<maas_boot::Result<()>>>,
}

impl TftpServer {
    pub async fn start(tree: Arc<dyn BootTree>, config: TftpConfig) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = sock.local_addr().expect("addr");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(tftp::serve(sock, tree, config, cancel.clone()));
        Self {
            addr,
            cancel,
            task: Some(task),
        }
    }

    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Runs a real client program; returns (success, stdout+stderr).
pub async fn run(cmd: &Path, args: &[&str], cwd: &Path) -> (bool, String) {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(cmd)
            .args(args)
            .current_dir(cwd)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{} {args:?} took over 60 s", cmd.display()))
    .expect("spawn client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
