//! Lease persistence. The handler keeps its table in memory and records
//! every change of a lease (bind, renew, release, decline) in a
//! [`LeaseStore`]; the server loop calls [`LeaseStore::sync`] once per batch
//! of requests *before* sending that batch's ACKs (group commit), so an ACK
//! never promises an address a crash could forget.
//!
//! [`FileStore`] is an append-only text log, one lease per line, compacted
//! when opened and whenever it grows past a multiple of the live set; [`MemoryStore`] keeps the records in memory (tests, and
//! racks that rebuild leases from the region).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
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

/// An append-only lease log on disk with group commit and compaction.
///
/// Line format: `<state> <addr> <mac> <expires-ms> <hostname|->\n`, e.g.
/// `B 10.0.0.10 52:54:00:00:00:01 1700000600000 node1`. On open the log is
/// replayed (last line per address wins; a line without its newline is a
/// torn write and ignored) and rewritten compacted.
///
/// The log is compacted again from [`sync`](LeaseStore::sync) once it holds
/// more than [`CompactPolicy::factor`] lines per live address (and at least
/// [`CompactPolicy::min_lines`]): the live set is written to `<log>.compact`,
/// fsynced, renamed over the log and the directory fsynced. A crash at any
/// step leaves either the old log (whole) or the new one (whole); a stale
/// `.compact` file is overwritten on the next compaction.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    policy: CompactPolicy,
    /// Held for the whole of a sync, so syncs (and compactions) serialise.
    log: Mutex<Log>,
    pending: Mutex<Vec<Lease>>,
    loaded: Vec<Lease>,
    #[cfg(test)]
    crash_at: Mutex<Option<CompactStep>>,
}

/// When [`FileStore`] rewrites its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactPolicy {
    /// Compact when the log has more than this many lines per live address.
    pub factor: usize,
    /// ... and at least this many lines (small tables are not worth it).
    pub min_lines: usize,
}

impl Default for CompactPolicy {
    fn default() -> Self {
        Self {
            factor: 4,
            min_lines: 4096,
        }
    }
}

/// The open log: the append handle, the live set and the line count.
#[derive(Debug)]
struct Log {
    file: File,
    live: HashMap<Ipv4Addr, Lease>,
    lines: usize,
    /// A write failed part-way: the file may end in half a line, so the
    /// next write starts on a fresh one.
    torn: bool,
}

/// The steps of a compaction, where a test can pretend the process died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CompactStep {
    /// Part of the temporary file written.
    TempPartial,
    /// Temporary file complete and synced, not yet renamed.
    TempWritten,
    /// Renamed, directory not yet synced.
    Renamed,
}

impl FileStore {
    /// Opens (creating if needed), replays and compacts the log at `path`,
    /// with the default [`CompactPolicy`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, CompactPolicy::default())
    }

    /// [`open`](Self::open) with a compaction policy.
    pub fn open_with(path: impl AsRef<Path>, policy: CompactPolicy) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::LeaseStore {
            path: path.clone(),
            source,
        };
        let mut records = Vec::new();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut rest = &bytes[..];
                let mut line_no = 0;
                // Only newline-terminated lines count: a torn write leaves an
                // unterminated tail that was never synced, so no ACK promised it.
                while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                    line_no += 1;
                    let line = &rest[..nl];
                    rest = &rest[nl + 1..];
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match std::str::from_utf8(line)
                        .map_err(|e| e.to_string())
                        .and_then(parse_line)
                    {
                        Ok(l) => records.push(l),
                        Err(reason) => {
                            tracing::warn!(path = %path.display(), line = line_no, %reason, "skipping unreadable lease record");
                        }
                    }
                }
                if !rest.is_empty() {
                    tracing::warn!(path = %path.display(), bytes = rest.len(), "ignoring a torn last lease record");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let loaded: Vec<Lease> = last_per_addr(records)
            .into_iter()
            .filter(|l| l.state != LeaseState::Offered)
            .collect();
        let live: HashMap<Ipv4Addr, Lease> = loaded.iter().map(|l| (l.addr, l.clone())).collect();
        // Replaced by the compaction below.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let store = Self {
            path,
            policy,
            log: Mutex::new(Log {
                file,
                live,
                lines: 0,
                torn: false,
            }),
            pending: Mutex::new(Vec::new()),
            loaded,
            #[cfg(test)]
            crash_at: Mutex::new(None),
        };
        store.compact(&mut lock(&store.log))?;
        Ok(store)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, source: std::io::Error) -> Error {
        Error::LeaseStore {
            path: self.path.clone(),
            source,
        }
    }

    /// Whether a test asked to "die" at `step`.
    #[cfg(test)]
    fn crash(&self, step: CompactStep) -> bool {
        *lock(&self.crash_at) == Some(step)
    }
    #[cfg(not(test))]
    fn crash(&self, _step: CompactStep) -> bool {
        false
    }

    /// Rewrites the log as its live set: temporary file, fsync, rename,
    /// directory fsync, then appends go to the new file.
    fn compact(&self, log: &mut Log) -> Result<()> {
        let mut live: Vec<&Lease> = log.live.values().collect();
        live.sort_by_key(|l| u32::from(l.addr));
        let mut out = String::with_capacity(live.len() * 48);
        for l in &live {
            format_line(&mut out, l);
        }
        let tmp = self.path.with_extension("compact");
        {
            let mut f = File::create(&tmp).map_err(|e| self.io_err(e))?;
            if self.crash(CompactStep::TempPartial) {
                let _ = f.write_all(&out.as_bytes()[..out.len() / 2]);
                return Err(self.io_err(std::io::Error::other("simulated crash")));
            }
            f.write_all(out.as_bytes()).map_err(|e| self.io_err(e))?;
            f.sync_all().map_err(|e| self.io_err(e))?;
        }
        if self.crash(CompactStep::TempWritten) {
            return Err(self.io_err(std::io::Error::other("simulated crash")));
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io_err(e))?;
        // From here on appends must go to the new file, whatever fails next.
        log.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io_err(e))?;
        log.lines = live.len();
        log.torn = false;
        if self.crash(CompactStep::Renamed) {
            return Err(self.io_err(std::io::Error::other("simulated crash")));
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable only once the directory is.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io_err(e))?;
        }
        Ok(())
    }

    fn wants_compaction(&self, log: &Log) -> bool {
        log.lines >= self.policy.min_lines
            && log.lines > self.policy.factor.saturating_mul(log.live.len().max(1))
    }

    /// Lines in the log now (for tests and metrics).
    pub fn log_lines(&self) -> usize {
        lock(&self.log).lines
    }
}

impl LeaseStore for FileStore {
    fn load(&self) -> Result<Vec<Lease>> {
        Ok(self.loaded.clone())
    }

    fn record(&self, lease: &Lease) {
        lock(&self.pending).push(lease.clone());
    }

    fn sync(&self) -> Result<()> {
        // Take the log lock first so concurrent syncs serialise and none
        // returns before the data it must cover is on disk.
        let mut log = lock(&self.log);
        let pending = std::mem::take(&mut *lock(&self.pending));
        if pending.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(pending.len() * 48 + 1);
        if log.torn {
            text.push('\n');
        }
        for l in &pending {
            format_line(&mut text, l);
        }
        if let Err(e) = log.file.write_all(text.as_bytes()) {
            log.torn = true;
            return Err(self.io_err(e));
        }
        log.torn = false;
        log.file.sync_data().map_err(|e| self.io_err(e))?;
        log.lines += pending.len();
        for l in pending {
            log.live.insert(l.addr, l);
        }
        if self.wants_compaction(&log) {
            // The records are durable already; a failed compaction leaves
            // the old log in place and is retried at the next sync.
            if let Err(e) = self.compact(&mut log) {
                tracing::warn!(error = %e, "lease log compaction failed");
            }
        }
        Ok(())
    }

    fn dirty(&self) -> bool {
        !lock(&self.pending).is_empty()
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

    fn small() -> CompactPolicy {
        CompactPolicy {
            factor: 2,
            min_lines: 8,
        }
    }

    #[test]
    fn log_is_compacted_when_it_outgrows_the_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.log");
        let s = FileStore::open_with(&p, small()).unwrap();
        // Four addresses renewed over and over: the log must stay within
        // factor x live (or min_lines), never grow with the renewals.
        let mut last = Vec::new();
        for round in 0..50u8 {
            for n in 1..=4u8 {
                let mut l = lease(n, LeaseState::Bound);
                l.expires = Timestamp(1_700_000_000_000 + i64::from(round));
                s.record(&l);
                if round == 49 {
                    last.push(l);
                }
            }
            s.sync().unwrap();
            let lines = std::fs::read_to_string(&p).unwrap().lines().count();
            assert_eq!(lines, s.log_lines());
            assert!(lines <= 8 + 4, "round {round}: {lines} lines");
        }
        drop(s);
        assert_eq!(FileStore::open(&p).unwrap().load().unwrap(), last);
    }

    /// Synced records survive a crash at every step of a compaction; a new
    /// store on the same path recovers them all and goes on working.
    #[test]
    fn compaction_survives_a_crash_at_every_step() {
        for step in [
            CompactStep::TempPartial,
            CompactStep::TempWritten,
            CompactStep::Renamed,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("leases.log");
            let s = FileStore::open_with(&p, small()).unwrap();
            let mut want = Vec::new();
            for n in 1..=6u8 {
                let l = lease(n, LeaseState::Bound);
                s.record(&l);
                want.push(l);
            }
            s.sync().unwrap();
            *lock(&s.crash_at) = Some(step);
            // Enough renewals of one address to trigger a compaction, which "dies".
            for i in 0..10 {
                let mut l = lease(1, LeaseState::Bound);
                l.expires = Timestamp(1_800_000_000_000 + i);
                s.record(&l);
                s.sync().unwrap();
                want[0] = l;
            }
            // The process is gone; whatever the step, the synced state is on disk.
            drop(s);
            let s = FileStore::open_with(&p, small()).unwrap();
            assert_eq!(s.load().unwrap(), want, "crash at {step:?}");
            s.record(&lease(9, LeaseState::Bound));
            s.sync().unwrap();
            drop(s);
            let got = FileStore::open(&p).unwrap().load().unwrap();
            assert_eq!(got.len(), 7, "crash at {step:?}: {got:?}");
        }
    }

    /// A log cut anywhere (a torn write) loses at most the cut record; every
    /// complete line before the cut is recovered.
    #[test]
    fn truncated_tail_recovers_every_complete_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("leases.log");
        let mut full = String::new();
        let leases: Vec<Lease> = (1..=5u8).map(|n| lease(n, LeaseState::Bound)).collect();
        let mut ends = Vec::new();
        for l in &leases {
            format_line(&mut full, l);
            ends.push(full.len());
        }
        for cut in 0..=full.len() {
            std::fs::write(&p, &full.as_bytes()[..cut]).unwrap();
            let got = FileStore::open(&p).unwrap().load().unwrap();
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(got, leases[..complete].to_vec(), "cut at {cut}");
        }
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
