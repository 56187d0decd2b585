//! `maasd`: the maas-rs server binary.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "maasd",
    version,
    about = "maas-rs: MAAS region and rack in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (API on 127.0.0.1:5240 by default).
    Serve {
        /// Address the API listens on.
        #[arg(long, env = "MAAS_LISTEN", default_value = "127.0.0.1:5240")]
        listen: SocketAddr,
    },
    /// Print MAAS's life-cycle transition table.
    Lifecycle {
        /// Output format.
        #[arg(long, default_value = "table")]
        format: maas_core::lifecycle::ExportFormat,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen } => {
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                stop.cancel();
            });
            maas_server::bind_and_serve(listen, shutdown)
                .await
                .with_context(|| format!("serving on {listen}"))?;
        }
        Command::Lifecycle { format } => {
            print!("{}", maas_core::lifecycle::export(format));
        }
    }
    Ok(())
}
