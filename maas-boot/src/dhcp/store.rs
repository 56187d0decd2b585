//! Lease persistence. The handler keeps its table in memory and records
//! every change of a lease (bind, renew, release, decline) in a
//! [`LeaseStore`]; the server loop calls [`LeaseStore::sync`] once per batch
//! of requests *before* sending that batch's ACKs (group commit), so an ACK
//! never promises an address a crash could forget.
//!
//! [`FileStore`] is an append-only text log, one lease per line, compacted
//! when opened; [`MemoryStore`] keeps the records in memory (tests, and
//! racks that rebuild leases from the region).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use maas_core::{MacAddress, Timestamp};

use super::leases::{Lease, LeaseState};
use crate::{Error, Result};

/// Where lease changes go so they outlive the process.
pub trait LeaseStore: Send + Sync + std::fmt::Debug {
    /// Every lease known at start-up (the last record per address wins).
    fn load(&self) -> Result<Vec<Lease>>;
    /// Records a change. Cheap: buffered until [`sync`](Self::sync).
    fn record(&self, lease: &Lease);
    /// Makes every recorded change durable.
    fn sync(&self) -> Result<()>;
    /// Whether there is something for [`sync`](Self::sync) to do.
    fn dirty(&self) -> bool;
}

/// Keeps records in memory; `sync` is free.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<Vec<Lease>>,
}

impl MemoryStore {
    /// A store pre-loaded with leases (as if from an earlier run).
    pub fn with_leases(leases: Vec<Lease>) -> Self {
        Self {
            records: Mutex::new(leases),
        }
    }

    /// Every record so far, oldest first.
    pub fn records(&self) -> Vec<Lease> {
        lock(&self.records).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these plain buffers
    // half-updated in a way that matters more than losing the server.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn last_per_addr(records: impl IntoIterator<Item = Lease>) -> Vec<Lease> {
    let mut map = std::collections::HashMap::new();
    for l in records {
        map.insert(l.addr, l);
    }
    let mut v: Vec<Lease> = map.into_values().collect();
    v.sort_by_key(|l| u32::from(l.addr));
    v
}

impl LeaseStore for MemoryStore {
    fn load(&self) -> Result<Vec<Lease>> {
        Ok(last_per_addr(lock(&self.records).iter().cloned()))
    }
    fn record(&self, lease: &Lease) {
        lock(&self.records).push(lease.clone());
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn dirty(&self) -> bool {
        false
    }
}

/// An append-only lease log on disk with group commit.
///
/// Line format: `<state> <addr> <mac> <expires-ms> <hostname|->`, e.g.
/// `B 10.0.0.10 52:54:00:00:00:01 1700000600000 node1`. On open the log is
/// replayed (last line per address wins) and rewritten compacted through a
/// temporary file and an atomic rename.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: Mutex<File>,
    buf: Mutex<String>,
    loaded: Vec<Lease>,
}

impl FileStore {
    /// Opens (creating if needed), replays and compacts the log at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::LeaseStore {
            path: path.clone(),
            source,
        };
        let mut records = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line.map_err(io)?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match parse_line(&line) {
                        Ok(l) => records.push(l),
                        // A torn last line is what a crash mid-write leaves;
                        // it was never synced, so no ACK promised it.
                        Err(reason) => {
                            tracing::warn!(path = %path.display(), line = i + 1, %reason, "skipping unreadable lease record");
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let loaded: Vec<Lease> = last_per_addr(records)
            .into_iter()
            .filter(|l| l.state != LeaseState::Offered)
            .collect();
        let tmp = path.with_extension("compact");
        {
            let mut out = String::new();
            for l in &loaded {
                format_line(&mut out, l);
            }
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(out.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable only once the directory is.
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
            buf: Mutex::new(String::new()),
            loaded,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl LeaseStore for FileStore {
    fn load(&self) -> Result<Vec<Lease>> {
        Ok(self.loaded.clone())
    }

    fn record(&self, lease: &Lease) {
        format_line(&mut lock(&self.buf), lease);
    }

    fn sync(&self) -> Result<()> {
        // Take the file lock first so concurrent syncs serialise and none
        // returns before the data it must cover is on disk.
        let mut file = lock(&self.file);
        let pending = std::mem::take(&mut *lock(&self.buf));
        if pending.is_empty() {
            return Ok(());
        }
        let io = |source| Error::LeaseStore {
            path: self.path.clone(),
            source,
        };
        file.write_all(pending.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
    }

    fn dirty(&self) -> bool {
        !lock(&self.buf).is_empty()
    }
}

fn format_line(out: &mut String, l: &Lease) {
    let host = l
        .hostname
        .as_deref()
        .filter(|h| !h.is_empty() && *h != "-" && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("-");
    // invariant: writing to a String cannot fail
    let _ = writeln!(
        out,
        "{} {} {} {} {}",
        l.state.tag(),
        l.addr,
        l.mac,
        l.expires.0,
        host
    );
}

fn parse_line(line: &str) -> std::result::Result<Lease, String> {
    let mut it = line.split(' ');
    let mut next = |what: &str| it.next().ok_or_else(|| format!("missing {what}"));
    let tag = next("state")?;
    let state = tag
        .chars()
        .next()
        .filter(|_| tag.len() == 1)
        .and_then(LeaseState::from_tag)
        .ok_or_else(|| format!("bad state {tag:?}"))?;
    let addr: Ipv4Addr = next("address")?
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    let mac: MacAddress = next("mac")?.parse().map_err(|e| format!("mac: {e}"))?;
    let expires = Timestamp(
        next("expiry")?
            .parse()
            .map_err(|e| format!("expiry: {e}"))?,
    );
    let host = next("hostname")?;
    let hostname = (host != "-").then(|| host.to_owned());
    Ok(Lease {
        addr,
        mac,
        state,
        expires,
        hostname,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(n: u8, state: LeaseState) -> Lease {
        Lease {
            addr: Ipv4Addr::new(10, 0, 0, n),
            mac: MacAddress([2, 0, 0, 0, 0, n]),
            state,
            expires: Timestamp(1_700_000_000_000 + i64::from(n)),
            hostname: n.is_multiple_of(2).then(|| format!("node{n}")),
        }
    }

    #[test]
    fn file_store_survives_reopen_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.log");
        {
            let s = FileStore::open(&p).unwrap();
            assert!(s.load().unwrap().is_empty());
            s.record(&lease(1, LeaseState::Bound));
            s.record(&lease(2, LeaseState::Bound));
            assert!(s.dirty());
            s.sync().unwrap();
            assert!(!s.dirty());
            s.record(&lease(1, LeaseState::Released));
            s.record(&lease(3, LeaseState::Offered));
            s.sync().unwrap();
            s.record(&lease(4, LeaseState::Bound)); // never synced: lost
        }
        let s = FileStore::open(&p).unwrap();
        let got = s.load().unwrap();
        assert_eq!(
            got,
            vec![lease(1, LeaseState::Released), lease(2, LeaseState::Bound)]
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 2, "compacted: {text}");
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.log");
        let mut good = String::new();
        format_line(&mut good, &lease(2, LeaseState::Bound));
        std::fs::write(&p, format!("{good}B 10.0.0.7 52:54")).unwrap();
        let s = FileStore::open(&p).unwrap();
        assert_eq!(s.load().unwrap(), vec![lease(2, LeaseState::Bound)]);
    }

    #[test]
    fn memory_store_keeps_last_record() {
        let s = MemoryStore::default();
        s.record(&lease(1, LeaseState::Bound));
        s.record(&lease(1, LeaseState::Released));
        assert_eq!(s.load().unwrap(), vec![lease(1, LeaseState::Released)]);
        assert_eq!(s.records().len(), 2);
    }

    proptest! {
        #[test]
        fn parse_line_never_panics(s in "\\PC{0,80}") {
            let _ = parse_line(&s);
        }

        #[test]
        fn format_parse_roundtrip(a in any::<u32>(), m in any::<[u8; 6]>(), e in any::<i64>(), h in proptest::option::of("[a-z0-9][a-z0-9.-]{0,19}")) {
            let l = Lease { addr: a.into(), mac: MacAddress(m), state: LeaseState::Bound, expires: Timestamp(e), hostname: h };
            let mut s = String::new();
            format_line(&mut s, &l);
            prop_assert_eq!(parse_line(s.trim_end()).unwrap(), l);
        }
    }
}
