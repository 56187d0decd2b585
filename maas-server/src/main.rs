//! `maasd`: the maas-rs server binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use maas_server::config::{Config, FileConfig};
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

/// Settings shared by every command that opens the database.
#[derive(Debug, Args)]
struct Common {
    /// TOML configuration file.
    #[arg(long, env = "MAAS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database lives here by default).
    #[arg(long, env = "MAAS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: `postgres://…` or a SQLite file path.
    #[arg(long, env = "MAAS_DATABASE_URL")]
    database_url: Option<String>,
    /// Database connections in the pool.
    #[arg(long, env = "MAAS_POOL_SIZE")]
    pool_size: Option<u32>,
    /// Largest accepted API request body in bytes (413 beyond).
    #[arg(long, env = "MAAS_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
}

impl Common {
    /// File, then env/flags on top.
    fn config(&self, listen: Option<SocketAddr>) -> anyhow::Result<Config> {
        let mut f = match &self.config {
            Some(p) => FileConfig::load(p).with_context(|| format!("reading {}", p.display()))?,
            None => FileConfig::default(),
        };
        if listen.is_some() {
            f.listen = listen;
        }
        if self.data_dir.is_some() {
            f.data_dir.clone_from(&self.data_dir);
        }
        if self.database_url.is_some() {
            f.database_url.clone_from(&self.database_url);
        }
        if self.pool_size.is_some() {
            f.pool_size = self.pool_size;
        }
        if self.max_body_bytes.is_some() {
            f.max_body_bytes = self.max_body_bytes;
        }
        Ok(Config::try_from(f)?)
    }

    fn open(
        &self,
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<(Config, std::sync::Arc<maas_server::AppState>)> {
        let cfg = self.config(listen)?;
        if maas_server::db::Backend::of_url(&cfg.database_url) == maas_server::db::Backend::Sqlite {
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        }
        let state =
            maas_server::AppState::open_with(&cfg.database_url, cfg.pool_size, cfg.max_body_bytes)
                .context("opening the database")?;
        Ok((cfg, state))
    }
}

/// `[images]` overrides (`serve` only).
#[derive(Debug, Args)]
struct ImagesArgs {
    /// Run the automatic imports (at start, then every interval) while the
    /// `boot_images_auto_import` setting is on.
    #[arg(long, env = "MAAS_IMAGES_AUTO_IMPORT")]
    images_auto_import: Option<bool>,
    /// Seconds between automatic imports.
    #[arg(long, env = "MAAS_IMAGES_IMPORT_INTERVAL")]
    images_import_interval: Option<u64>,
    /// Create MAAS's default boot source on a database without one.
    #[arg(long, env = "MAAS_IMAGES_DEFAULT_SOURCE")]
    images_default_source: Option<bool>,
    /// The default boot source's URL (MAAS's variable).
    #[arg(long, env = "MAAS_DEFAULT_IMAGES_URL")]
    images_default_url: Option<String>,
    /// The default boot source's keyring file (MAAS's variable).
    #[arg(long, env = "MAAS_IMAGES_KEYRING_FILEPATH")]
    images_default_keyring: Option<String>,
}

impl ImagesArgs {
    fn apply(&self, cfg: &mut Config) -> anyhow::Result<()> {
        let i = &mut cfg.images;
        if let Some(v) = self.images_auto_import {
            i.auto_import = v;
        }
        if let Some(v) = self.images_import_interval {
            i.import_interval_secs = v;
        }
        if let Some(v) = self.images_default_source {
            i.default_source = v;
        }
        if let Some(v) = &self.images_default_url {
            i.default_source_url.clone_from(v);
        }
        if let Some(v) = &self.images_default_keyring {
            i.default_keyring.clone_from(v);
        }
        i.validate()?;
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (API on 127.0.0.1:5240 by default).
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address the API listens on.
        #[arg(long, env = "MAAS_LISTEN")]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        images: ImagesArgs,
    },
    /// Create an administrator (as `maas createadmin`).
    Createadmin {
        #[command(flatten)]
        common: Common,
        /// Username.
        #[arg(long)]
        username: String,
        /// Password.
        #[arg(long, env = "MAAS_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// Email address.
        #[arg(long, default_value = "")]
        email: String,
        /// An SSH public key to add for the user.
        #[arg(long)]
        ssh_import: Option<String>,
    },
    /// Print (or create, or generate) a user's API key (as `maas apikey`).
    Apikey {
        #[command(flatten)]
        common: Common,
        /// Username.
        #[arg(long)]
        username: String,
        /// Create a new key instead of printing the existing ones.
        #[arg(long)]
        generate: bool,
    },
    /// Load already-commissioned machines from a JSON inventory (labs,
    /// tests, benchmarks, migrations); prints their system ids.
    LoadMachines {
        #[command(flatten)]
        common: Common,
        /// The JSON file: an array of machine specs (see `maas_server::seed`).
        file: PathBuf,
    },
    /// Print MAAS's life-cycle transition table.
    Lifecycle {
        /// Output format.
        #[arg(long, default_value = "table")]
        format: maas_core::lifecycle::ExportFormat,
    },
}

fn now_ms() -> i64 {
    maas_core::Clock::now(&maas_core::SystemClock).as_millis()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            common,
            listen,
            images,
        } => {
            let (mut cfg, state) = common.open(listen)?;
            images.apply(&mut cfg)?;
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                stop.cancel();
            });
            {
                let mut conn = state.pool.get()?;
                conn.write_tx(|c| {
                    maas_server::workflow::store_node_timeout(c, cfg.workflow.node_timeout_secs)
                })
                .context("storing the workflow settings")?;
            }
            if cfg.workflow.enabled {
                maas_server::workflow::spawn(state.clone(), cfg.workflow.clone(), shutdown.clone())
                    .context("starting the workflow runner")?;
            }
            // One image store under the data directory (or the rack's
            // images_dir), shared by the importer and the rack.
            let images_dir = cfg
                .rack
                .as_ref()
                .and_then(|r| r.images_dir.clone())
                .unwrap_or_else(|| cfg.data_dir.join("images"));
            state
                .images
                .open_store(&images_dir)
                .context("opening the image store")?;
            if let Some(mut rack) = cfg.rack.clone() {
                rack.images_dir = Some(images_dir);
                maas_server::rack::start(
                    state.clone(),
                    rack,
                    cfg.data_dir.join("rack"),
                    shutdown.clone(),
                )
                .await
                .context("starting the rack services")?;
            }
            {
                // Sets an import announced before a crash never completed.
                let mut conn = state.pool.get()?;
                let store = state.images.store();
                conn.write_tx(|c| maas_server::images::settle_incomplete(c, store.as_deref()))
                    .context("dropping unfinished import sets")?;
            }
            if cfg.images.default_source {
                let mut conn = state.pool.get()?;
                let created = conn
                    .write_tx(|c| {
                        maas_server::images::ensure_default_source(
                            c,
                            &cfg.images.default_source_url,
                            &cfg.images.default_keyring,
                            now_ms(),
                        )
                    })
                    .context("creating the default boot source")?;
                if created {
                    tracing::info!(url = %cfg.images.default_source_url, "default boot source created");
                }
            }
            if cfg.images.auto_import {
                maas_server::images::spawn_auto_import(
                    state.clone(),
                    std::time::Duration::from_secs(cfg.images.import_interval_secs),
                    shutdown.clone(),
                )
                .context("starting the automatic image import")?;
            }
            maas_server::bind_and_serve(cfg.listen, state, shutdown)
                .await
                .with_context(|| format!("serving on {}", cfg.listen))?;
        }
        Command::Createadmin {
            common,
            username,
            password,
            email,
            ssh_import,
        } => {
            let (_, state) = common.open(None)?;
            let mut conn = state.pool.get()?;
            conn.write_tx(|c| {
                maas_server::db::users::create(c, &username, &email, &password, true, now_ms())?;
                if let Some(key) = &ssh_import {
                    let mut d = serde_json::Map::new();
                    d.insert("key".into(), serde_json::json!(key));
                    d.insert("keysource".into(), serde_json::Value::Null);
                    maas_server::db::objects::insert(c, "sshkey", &username, &d)?;
                }
                Ok::<_, maas_server::Error>(())
            })
            .with_context(|| format!("creating admin {username}"))?;
        }
        Command::Apikey {
            common,
            username,
            generate,
        } => {
            let (_, state) = common.open(None)?;
            let mut conn = state.pool.get()?;
            let keys = conn.write_tx(|c| {
                if maas_server::db::users::by_name(c, &username)?.is_none() {
                    return Err(maas_server::Error::Refused(format!(
                        "no user named {username}"
                    )));
                }
                let mut ts = maas_server::db::users::tokens_of(c, &username)?;
                if generate || ts.is_empty() {
                    ts = vec![maas_server::db::users::create_token(
                        c,
                        &username,
                        "API token",
                        now_ms(),
                    )?];
                }
                Ok(ts.iter().map(|t| t.api_key()).collect::<Vec<_>>())
            })?;
            for k in keys {
                println!("{k}");
            }
        }
        Command::LoadMachines { common, file } => {
            let (_, state) = common.open(None)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let specs: Vec<maas_server::seed::MachineSpec> = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", file.display()))?;
            let mut conn = state.pool.get()?;
            for id in maas_server::seed::load(&mut conn, &specs, now_ms())? {
                println!("{id}");
            }
        }
        Command::Lifecycle { format } => {
            print!("{}", maas_core::lifecycle::export(format));
        }
    }
    Ok(())
}
