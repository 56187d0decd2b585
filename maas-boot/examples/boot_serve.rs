//! Serves a directory over TFTP and HTTP boot, for benchmarks and manual tries:
//!
//! ```sh
//! cargo run --release -p maas-boot --example boot_serve -- \
//!     --tftp 127.0.0.1:6969 --http 127.0.0.1:5248 --root /srv/boot
//! ```
//!
//! `/images/<path>` and `/<path>` over HTTP and `<path>` over TFTP all come from
//! the same directory. Stops on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use maas_boot::tftp::{self, TftpConfig};
use maas_boot::tree::{BootTree, DirTree};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut tftp_addr: Option<SocketAddr> = None;
    let mut http_addr: Option<SocketAddr> = None;
    let mut root = None;
    let mut http_workers: Option<usize> = None;
    let mut config = TftpConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--tftp" => tftp_addr = Some(val()?.parse()?),
            "--http" => http_addr = Some(val()?.parse()?),
            "--root" => root = Some(val()?),
            "--max-blksize" => config.limits.max_blksize = val()?.parse()?,
            "--max-windowsize" => config.limits.max_windowsize = val()?.parse()?,
            "--max-per-client" => config.max_per_client = val()?.parse()?,
            // 0 runs transfers on this program's (multi-threaded) runtime.
            "--tftp-workers" => config.workers = val()?.parse()?,
            "--http-workers" => http_workers = Some(val()?.parse()?),
            other => bail!("unknown argument {other}"),
        }
    }
    let root = root.context("--root DIR is required")?;
    let tree: Arc<dyn BootTree> = Arc::new(DirTree::new(&root)?);
    let cancel = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = tftp_addr {
        let sock = tokio::net::UdpSocket::bind(addr)
            .await
            .context("bind TFTP")?;
        tasks.spawn(tftp::serve(sock, tree.clone(), config, cancel.clone()));
    }
    if let Some(addr) = http_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .context("bind HTTP")?;
        let app = maas_boot::http::BootHttp::new(tree.clone(), tree.clone(), addr);
        let c = cancel.clone();
        match http_workers {
            Some(n) => tasks.spawn(maas_boot::http::serve_workers(listener, app, c, n)),
            None => tasks.spawn(maas_boot::http::serve(listener, app, c)),
        };
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    cancel.cancel();
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}
