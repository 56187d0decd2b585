//! Harness for the black-box tests: start the real `maasd` binary on a free
//! loopback port and talk to it over HTTP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod harden;
pub mod mirror;

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

/// The environment every test's `maasd serve` gets unless the test says
/// otherwise: no automatic image import and no default boot source, so no
/// test contacts images.maas.io (MAAS's default source) or finds a second
/// source beside the loopback mirror it configures.
pub const OFFLINE_IMAGES_ENV: [(&str, &str); 2] = [
    ("MAAS_IMAGES_AUTO_IMPORT", "false"),
    ("MAAS_IMAGES_DEFAULT_SOURCE", "false"),
];

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
    /// The `--config` file, if any (written into `data_dir`).
    pub config: Option<std::path::PathBuf>,
    /// Environment for `serve` on top of [`OFFLINE_IMAGES_ENV`].
    pub env: Vec<(String, String)>,
}

impl Maasd {
    /// Starts `binary serve` on a free loopback port with a fresh SQLite
    /// database and waits (at most 30 s) until it answers.
    pub fn start(binary: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, None)
    }

    /// Like [`Maasd::start`], on the database at `database_url` when given.
    pub fn start_with(binary: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::start_configured(binary, database_url, None)
    }

    /// Like [`Maasd::start_with`], with `config_toml` as the `--config` file.
    pub fn start_configured(
        binary: &Path,
        database_url: Option<&str>,
        config_toml: Option<&str>,
    ) -> anyhow::Result<Self> {
        Self::start_env(binary, database_url, config_toml, &[])
    }

    /// Like [`Maasd::start_configured`], with `env` for `serve` (it wins
    /// over [`OFFLINE_IMAGES_ENV`]: a test that runs the automatic import
    /// against its own mirror sets `MAAS_IMAGES_AUTO_IMPORT=true`).
    pub fn start_env(
        binary: &Path,
        database_url: Option<&str>,
        config_toml: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let data_dir = tempfile::tempdir()?;
        let config = match config_toml {
            Some(text) => {
                let p = data_dir.path().join("maasd.toml");
                std::fs::write(&p, text)?;
                Some(p)
            }
            None => None,
        };
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let child = spawn_serve(
            binary,
            &addr,
            data_dir.path(),
            database_url,
            config.as_deref(),
            &env,
        )?;
        let m = Self {
            child,
            addr,
            binary: binary.to_owned(),
            data_dir,
            database_url: database_url.map(str::to_owned),
            config,
            env,
        };
        m.wait_listening()?;
        Ok(m)
    }

    fn wait_listening(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("maasd did not listen on {} within 30 s", self.addr)
    }

    /// `kill -9` of the server process (SIGKILL: no shutdown code runs).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL maasd")?;
        self.child.wait().context("reaping maasd")?;
        Ok(())
    }

    /// Starts the server again on the same address, database and config.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_serve(
            &self.binary,
            &self.addr,
            self.data_dir.path(),
            self.database_url.as_deref(),
            self.config.as_deref(),
            &self.env,
        )?;
        self.wait_listening()
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

fn spawn_serve(
    binary: &Path,
    addr: &str,
    data_dir: &Path,
    database_url: Option<&str>,
    config: Option<&Path>,
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(binary);
    cmd.args(["serve", "--listen", addr, "--data-dir"])
        .arg(data_dir)
        .envs(OFFLINE_IMAGES_ENV)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(u) = database_url {
        cmd.args(["--database-url", u]);
    }
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", binary.display()))
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

/// Runs `maas <args>` (python-libmaas's CLI) with its profile store in
/// `home`; returns (success, stdout + stderr).
pub fn maas_cli(home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(venv_bin().expect("test virtualenv").join("maas"))
        .args(args)
        .env("HOME", home)
        .env("PAGER", "cat")
        .output()
        .expect("run the maas CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
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

/// Polls `f` every 150 ms until it returns `Some`, failing the test after
/// `secs` seconds with "timed out waiting for `what`".
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// One API 2.0 call over plain HTTP/1.0, signed with the OAuth PLAINTEXT
/// `key` (`consumer:token:secret`) as python-libmaas signs; the body is a
/// urlencoded form. Returns the status and the body as JSON (a JSON string
/// when the body is not JSON).
pub fn api_call(
    addr: &str,
    key: &str,
    method: &str,
    path: &str,
    form: &str,
) -> (u16, serde_json::Value) {
    api_request(
        addr,
        key,
        method,
        path,
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    )
}

/// [`api_call`] with any body and content type (multipart forms, the raw
/// bytes of an upload chunk).
pub fn api_request(
    addr: &str,
    key: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let p: Vec<&str> = key.split(':').collect();
    assert_eq!(p.len(), 3, "an API key is consumer:token:secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let auth = format!(
        "OAuth oauth_nonce=\"{}\", oauth_timestamp=\"{}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
        now.as_nanos(),
        now.as_secs(),
        p[0],
        p[1],
        p[2]
    );
    let mut s = TcpStream::connect(addr).expect("connect to maasd");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("send request head");
    s.write_all(body).expect("send request body");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status");
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_owned())),
    )
}
