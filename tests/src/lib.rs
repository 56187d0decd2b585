//! Harness for the black-box tests: start the real `maasd` binary on a free
//! loopback port and talk to it over HTTP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod harden;

/// The path of the `maasd` binary: `$MAASD_BIN`, else the one cargo built
/// next to this test executable (built on demand with `cargo build`).
pub fn maasd_binary() -> anyhow::Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("MAASD_BIN") {
        return Ok(p.into());
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/maasd
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target directory")?;
    let bin = profile_dir.join("maasd");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "maas-server", "--bin", "maasd"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().context("running cargo build for maasd")?;
        if !st.success() {
            bail!("cargo build of maasd failed: {st}");
        }
    }
    Ok(bin)
}

/// A running `maasd` with its own data directory, killed on drop.
#[derive(Debug)]
pub struct Maasd {
    child: Child,
    /// `127.0.0.1:<port>` of the API.
    pub addr: String,
    /// The binary.
    pub binary: std::path::PathBuf,
    /// Data directory (SQLite database unless `database_url` is set).
    pub data_dir: tempfile::TempDir,
    /// The database URL given with `--database-url`, if any.
    pub database_url: Option<String>,
}

impl Maasd {
    /// Starts `binary serve` on a free loopback port with a fresh SQLite
    /// database and waits (at most 30 s) until it answers.
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, None)
    }

    /// Like [`Maasd::start`], on the database at `database_url` when given.
    pub fn start_with(binary: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--listen", &addr, "--data-dir"])
            .arg(data_dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(u) = database_url {
            cmd.args(["--database-url", u]);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let m = Self {
            child,
            addr,
            binary: binary.to_owned(),
            data_dir,
            database_url: database_url.map(str::to_owned),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(&m.addr).is_ok() {
                return Ok(m);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("maasd did not listen on {} within 30 s", m.addr)
    }

    /// Runs a `maasd` management command on this server's database and
    /// returns its standard output.
    pub fn manage(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args).arg("--data-dir").arg(self.data_dir.path());
        if let Some(u) = &self.database_url {
            cmd.args(["--database-url", u]);
        }
        let out = cmd.output().context("running maasd")?;
        if !out.status.success() {
            bail!(
                "maasd {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Creates an administrator and returns its API key.
    pub fn admin_key(&self, username: &str, password: &str) -> anyhow::Result<String> {
        self.manage(&[
            "createadmin",
            "--username",
            username,
            "--password",
            password,
            "--email",
            &format!("{username}@example.com"),
        ])?;
        let key = self.manage(&["apikey", "--username", username])?;
        Ok(key.trim().to_owned())
    }

    /// `http://<addr>/MAAS/`.
    pub fn url(&self) -> String {
        format!("http://{}/MAAS/", self.addr)
    }

    /// A plain HTTP/1.0 GET; returns (status, content-type, body).
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String, String)> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)?;
        let (head, body) = raw.split_once("\r\n\r\n").context("no header end")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .context("no status")?
            .parse()?;
        let ctype = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default();
        Ok((status, ctype, body.to_owned()))
    }
}

impl Drop for Maasd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test virtualenv's `bin/` directory (`$MAAS_RS_VENV`, else the path
/// `scripts/venv-path.sh` prints), checked to hold python-libmaas.
pub fn venv_bin() -> anyhow::Result<std::path::PathBuf> {
    let venv = match std::env::var_os("MAAS_RS_VENV") {
        Some(v) => std::path::PathBuf::from(v),
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/venv-path.sh");
            let out = Command::new("bash").arg(script).output()?;
            std::path::PathBuf::from(String::from_utf8(out.stdout)?.trim())
        }
    };
    let bin = venv.join("bin");
    let ok = Command::new(bin.join("python"))
        .args(["-c", "import maas.client"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!(
            "python-libmaas is missing from the test virtualenv {}: install the PyPI package \
             python-libmaas==0.6.8 with scripts/install-deps.sh",
            venv.display()
        );
    }
    Ok(bin)
}

/// A throwaway PostgreSQL 15 server in a temp dir on a free loopback port,
/// run as the `postgres` user (it refuses root); stopped on drop.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl Postgres {
    /// initdb + start, then creates database `maas`. Fails naming the
    /// Debian package when the server is not installed.
    pub fn start() -> anyhow::Result<Self> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            bail!("PostgreSQL 15 server missing: install the Debian package postgresql-15");
        }
        let dir = tempfile::Builder::new().prefix("maas-pg-").tempdir()?;
        // The postgres user must be able to reach and own its directory.
        Command::new("chmod").arg("755").arg(dir.path()).status()?;
        Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = dir.path().display().to_string();
        let as_pg = |cmd: String| -> anyhow::Result<()> {
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--", "sh", "-c", &cmd])
                .output()
                .context("runuser")?;
            if !out.status.success() {
                bail!(
                    "{cmd} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        as_pg(format!(
            "{PG_BIN}/initdb -D {d}/data -A trust -U postgres >/dev/null"
        ))?;
        let pg = Postgres { dir, port };
        as_pg(format!(
            "{PG_BIN}/pg_ctl -D {d}/data -l {d}/pg.log -o '-c listen_addresses=127.0.0.1 -p {port} -k {d} -c fsync=off -c max_connections=200' -w start >/dev/null"
        ))?;
        as_pg(format!(
            "{PG_BIN}/createdb -h 127.0.0.1 -p {port} -U postgres maas"
        ))?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:<port>/maas`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/maas", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let d = self.dir.path().display().to_string();
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "sh",
                "-c",
                &format!("{PG_BIN}/pg_ctl -D {d}/data -m immediate -w stop >/dev/null 2>&1"),
            ])
            .status();
    }
}
