//! `maasd` configuration: a TOML file (unknown keys refused) whose every
//! key can be overridden by an environment variable or a flag in `main.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The configuration file's shape.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// API listen address (default `127.0.0.1:5240`).
    pub listen: Option<SocketAddr>,
    /// Data directory (default `/var/lib/maasd`).
    pub data_dir: Option<PathBuf>,
    /// Database URL: `postgres://…` or a SQLite path (default
    /// `<data_dir>/maas.db`).
    pub database_url: Option<String>,
    /// Connections in the pool (default 8).
    pub pool_size: Option<u32>,
    /// `[workflow]`: durable workflow runner settings.
    pub workflow: Option<crate::workflow::WorkflowConfig>,
    /// `[rack]`: the in-process rack (DHCP/TFTP/HTTP boot); off when absent.
    pub rack: Option<crate::rack::RackConfig>,
    /// Largest accepted API request body in bytes (default 64 MiB); bigger
    /// requests are answered 413 before they are read.
    pub max_body_bytes: Option<usize>,
    /// `[images]`: automatic imports and the default boot source.
    pub images: Option<crate::images::ImagesConfig>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path).map_err(Error::Io)?;
        FileConfig::parse(&text)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }
}

/// The validated runtime configuration.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// API listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Pool size.
    pub pool_size: u32,
    /// Workflow runner settings.
    pub workflow: crate::workflow::WorkflowConfig,
    /// Rack settings, when the rack runs.
    pub rack: Option<crate::rack::RackConfig>,
    /// Largest accepted API request body in bytes.
    pub max_body_bytes: usize,
    /// Automatic imports and the default boot source.
    pub images: crate::images::ImagesConfig,
}

/// The default request body limit: boot-resource uploads come in 4 MiB
/// chunks and nothing else MAAS accepts is close to this.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may carry a password.
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &crate::db::Backend::of_url(&self.database_url))
            .field("pool_size", &self.pool_size)
            .field("workflow", &self.workflow)
            .field("rack", &self.rack)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("images", &self.images)
            .finish()
    }
}

impl TryFrom<FileConfig> for Config {
    type Error = Error;
    fn try_from(f: FileConfig) -> Result<Config> {
        let data_dir = f
            .data_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/maasd"));
        let database_url = f
            .database_url
            .unwrap_or_else(|| data_dir.join("maas.db").display().to_string());
        let pool_size = f.pool_size.unwrap_or(8);
        if pool_size == 0 || pool_size > 256 {
            return Err(Error::Config("pool_size must be between 1 and 256".into()));
        }
        let workflow = f.workflow.unwrap_or_default();
        workflow.validate()?;
        if let Some(r) = &f.rack {
            r.validate()?;
        }
        let max_body_bytes = f.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(Error::Config("max_body_bytes must be at least 1".into()));
        }
        let images = f.images.unwrap_or_default();
        images.validate()?;
        Ok(Config {
            images,
            listen: f
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5240))),
            data_dir,
            database_url,
            pool_size,
            workflow,
            rack: f.rack,
            max_body_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::try_from(FileConfig::parse("").unwrap()).unwrap();
        assert_eq!(c.listen.port(), 5240);
        assert!(c.database_url.ends_with("maas.db"));
        let c = Config::try_from(
            FileConfig::parse(
                "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\npool_size = 4\n",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.database_url, "/tmp/x/maas.db");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let c = Config::try_from(FileConfig::parse("max_body_bytes = 1024\n").unwrap()).unwrap();
        assert_eq!(c.max_body_bytes, 1024);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(FileConfig::parse("lisen = \"x\"").is_err());
        assert!(Config::try_from(FileConfig::parse("pool_size = 0").unwrap()).is_err());
        assert!(Config::try_from(FileConfig::parse("max_body_bytes = 0").unwrap()).is_err());
    }

    #[test]
    fn workflow_section_parses_and_is_validated() {
        let c = Config::try_from(
            FileConfig::parse("[workflow]\nnode_timeout_secs = 5\ntick_ms = 100\n").unwrap(),
        )
        .unwrap();
        assert_eq!(c.workflow.node_timeout_secs, Some(5));
        assert_eq!(c.workflow.tick_ms, 100);
        assert_eq!(c.workflow.workers, 16);
        assert!(FileConfig::parse("[workflow]\ntick = 1\n").is_err());
        assert!(Config::try_from(FileConfig::parse("[workflow]\nworkers = 0\n").unwrap()).is_err());
    }

    #[test]
    fn images_section_defaults_as_maas_and_is_validated() {
        let c = Config::try_from(FileConfig::parse("").unwrap()).unwrap();
        assert!(c.images.auto_import && c.images.default_source);
        assert_eq!(c.images.import_interval_secs, 3600);
        assert_eq!(
            c.images.default_source_url,
            "http://images.maas.io/ephemeral-v3/stable/"
        );
        let c = Config::try_from(
            FileConfig::parse("[images]\nauto_import = false\nimport_interval_secs = 2\n").unwrap(),
        )
        .unwrap();
        assert!(!c.images.auto_import && c.images.default_source);
        assert_eq!(c.images.import_interval_secs, 2);
        assert!(FileConfig::parse("[images]\ninterval = 2\n").is_err());
        for bad in [
            "[images]\nimport_interval_secs = 0\n",
            "[images]\ndefault_source_url = \"ftp://x/\"\n",
        ] {
            assert!(
                Config::try_from(FileConfig::parse(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_hides_the_database_password() {
        let c = Config::try_from(
            FileConfig::parse("database_url = \"postgres://u:hunter2@h/db\"").unwrap(),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
