//! Helpers shared by the integration tests.

use std::time::Duration;

use maas_power::{PolicyConfig, PowerManager, Registry};

/// A manager with short waits: the peers here answer at once, so the
/// schedule's length matters, not MAAS's seconds.
pub fn fast_manager() -> PowerManager {
    manager_with_wait(Duration::from_millis(20))
}

/// A manager whose seven waits are all `wait`.
pub fn manager_with_wait(wait: Duration) -> PowerManager {
    PowerManager::new(
        Registry::with_builtin().expect("registry"),
        PolicyConfig {
            retry_waits: vec![wait; 7],
            call_timeout: Duration::from_secs(20),
            ..PolicyConfig::default()
        },
    )
}

/// Fails with a message naming the Debian/PyPI package when `program` is missing.
pub fn require_program(program: &str, package: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    if let Some(venv) = std::env::var_os("MAAS_RS_VENV") {
        dirs.push(std::path::PathBuf::from(venv).join("bin"));
    }
    dirs.push("/root/.cache/maas-rs/venv/bin".into());
    for d in dirs {
        let p = d.join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!("{program} not found: install {package} (scripts/install-deps.sh)");
}

/// Serves `app` on an ephemeral loopback port for the rest of the test.
pub async fn spawn_server(app: axum::Router) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// A child process killed (and reaped) when the test ends, pass or fail.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1 (for peers that cannot bind port 0 themselves).
pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("udp port")
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("tcp port")
            .port()
    }
}
