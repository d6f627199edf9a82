//! The ingest journal: where a received alert is made durable before it is acknowledged.
//!
//! Writing a received alert straight into the `alerts` table costs a B-tree insert into the
//! table and its indexes (one on random uuids) and, sooner or later, a checkpoint with its
//! fsyncs, inside the commit every sender waits for. The journal is an append-only log instead:
//! a group of alerts is one `write` at the end of the current segment file. The analysed alert
//! is written to the store later, in large batches nobody waits for, under its journal sequence
//! number as its id, and a segment file is retired once every alert in it is in the store: kept
//! (up to four) and overwritten as a later segment, otherwise deleted.
//!
//! Durability follows [`Synchronous`]: with `Full` every append is `fdatasync`ed before it
//! returns; with `Normal` an append survives a crash of the process at once (the data is in the
//! kernel) and is flushed to disk by [`JournalSyncer::sync`] a moment later, so power loss may
//! lose the last fraction of a second, as SQLite's own `synchronous = NORMAL` may.
//!
//! A record is `length (u32 LE) | crc32 of the payload (u32 LE) | payload`, the payload being
//! `seq (i64 LE) | received_at (i64 LE) | the alert's canonical JSON`. Reading stops at the first
//! record that is short or fails its checksum (a write torn by a crash); what follows it in
//! that segment is dropped, and appends always go to a fresh segment after a restart.

use crate::{Nanos, StoreError, Synchronous};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The journal directory of the store at `db`.
pub fn journal_dir(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// A segment is closed and a new one started past this size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Finished segment files kept for reuse.
const MAX_SPARE: usize = 4;
const HEADER: usize = 8;
const FIXED: usize = 16;
/// Larger "records" are garbage from a torn write, never something we wrote.
const MAX_RECORD: usize = 1 << 30;

/// An alert read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    pub seq: i64,
    pub received_at: Nanos,
    /// The alert's canonical JSON, as appended.
    pub body: String,
}

struct Segment {
    first_seq: i64,
    path: PathBuf,
    /// Sequence numbers in this segment not yet in the store.
    outstanding: HashSet<i64>,
}

#[derive(Default)]
struct SyncState {
    /// The segment being appended to.
    current: Option<File>,
    /// Closed segments not flushed yet.
    closed: Vec<File>,
    /// A segment was created or deleted since the directory was last flushed.
    dir_changed: bool,
}

/// Flushes what [`Journal`] appended under [`Synchronous::Normal`]; call it periodically from
/// a thread the acknowledgements do not wait for.
#[derive(Clone)]
pub struct JournalSyncer {
    dir: PathBuf,
    state: Arc<Mutex<SyncState>>,
}

fn lock(m: &Mutex<SyncState>) -> MutexGuard<'_, SyncState> {
    // The state is a set of file handles: still usable after a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JournalSyncer {
    /// `fdatasync` the current and the closed segments (and the directory when segments came or
    /// went).
    pub fn sync(&self) -> Result<(), StoreError> {
        let (current, closed, dir_changed) = {
            let mut s = lock(&self.state);
            let current = s.current.as_ref().map(File::try_clone).transpose()?;
            let closed = std::mem::take(&mut s.closed);
            let dir_changed = std::mem::take(&mut s.dir_changed);
            (current, closed, dir_changed)
        };
        for f in closed.iter().chain(current.iter()) {
            f.sync_data()?;
        }
        if dir_changed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The writing end of the journal (one per process, on the ingest thread).
pub struct Journal {
    dir: PathBuf,
    sync: Synchronous,
    segment_bytes: u64,
    /// Oldest first; the last one is being appended to.
    segments: Vec<Segment>,
    current: File,
    /// Where the next record goes in `current` (a recycled file may be longer).
    current_len: u64,
    next_seq: i64,
    /// Finished segment files kept for reuse, oldest first.
    spare: Vec<PathBuf>,
    shared: Arc<Mutex<SyncState>>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

fn segment_name(first_seq: i64) -> String {
    format!("{first_seq:020}.log")
}

/// The segment files of `dir`, oldest first.
fn list_segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if let Ok(first) = stem.parse::<i64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort_by_key(|(first, _)| *first);
    Ok(out)
}

/// Finished segment files kept for reuse.
fn list_spares(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "spare") {
            out.push(path);
        }
    }
    Ok(out)
}

/// The valid records of one segment file, and whether a torn tail was dropped.
///
/// Records are numbered `first_seq`, `first_seq + 1`, ... from the start of the file; anything
/// else ends the segment. A recycled file still holds an older segment's records past what was
/// written into it this time, and those carry older numbers.
fn read_segment(path: &Path, first_seq: i64) -> Result<(Vec<JournalRecord>, bool), StoreError> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let Some(header) = data.get(at..at + HEADER) else {
            return Ok((out, true));
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if !(FIXED..=MAX_RECORD).contains(&len) {
            return Ok((out, true));
        }
        let Some(payload) = data.get(at + HEADER..at + HEADER + len) else {
            return Ok((out, true));
        };
        if crc32fast::hash(payload) != crc {
            return Ok((out, true));
        }
        let seq = i64::from_le_bytes(payload[0..8].try_into().unwrap_or_default());
        if seq != first_seq + out.len() as i64 {
            // Left over from the file's previous use: the end of this segment.
            return Ok((out, false));
        }
        let received_at = i64::from_le_bytes(payload[8..16].try_into().unwrap_or_default());
        let Ok(body) = String::from_utf8(payload[FIXED..].to_vec()) else {
            return Ok((out, true));
        };
        out.push(JournalRecord {
            seq,
            received_at,
            body,
        });
        at += HEADER + len;
    }
    Ok((out, false))
}

/// Every record in the journal directory `dir`, oldest first, without changing anything (for
/// inspection and tests). A missing directory is an empty journal.
pub fn read_journal(dir: &Path) -> Result<Vec<JournalRecord>, StoreError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (first, path) in list_segments(dir)? {
        out.extend(read_segment(&path, first)?.0);
    }
    Ok(out)
}

impl Journal {
    /// Open the journal in `dir` (created if missing) and read back what it holds: the alerts
    /// an earlier run acknowledged and did not get into the store, oldest first. The caller
    /// marks those already in the store [`done`](Journal::done). New records are numbered
    /// above every record read and above `min_seq`.
    pub fn open(
        dir: &Path,
        sync: Synchronous,
        segment_bytes: u64,
        min_seq: i64,
    ) -> Result<(Journal, Vec<JournalRecord>), StoreError> {
        fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        let mut records = Vec::new();
        let mut max_seq = min_seq;
        let mut spare = list_spares(dir)?;
        for (first, path) in list_segments(dir)? {
            let (recs, torn) = read_segment(&path, first)?;
            if torn {
                tracing::warn!(
                    segment = %path.display(),
                    records = recs.len(),
                    "the journal segment ends in bytes that are not a complete record (a write cut by a crash, or an older segment's leftovers in a reused file); nothing after its last complete record was acknowledged"
                );
            }
            if recs.is_empty() {
                fs::remove_file(&path)?;
                continue;
            }
            max_seq = recs.iter().map(|r| r.seq).fold(max_seq, i64::max);
            segments.push(Segment {
                first_seq: first,
                path,
                outstanding: recs.iter().map(|r| r.seq).collect(),
            });
            records.extend(recs);
        }
        let next_seq = max_seq.saturating_add(1);
        let (current, path) = new_segment(dir, next_seq, &mut spare)?;
        segments.push(Segment {
            first_seq: next_seq,
            path,
            outstanding: HashSet::new(),
        });
        let shared = Arc::new(Mutex::new(SyncState {
            current: Some(current.try_clone()?),
            closed: Vec::new(),
            dir_changed: true,
        }));
        sync_dir(dir)?;
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                sync,
                segment_bytes: segment_bytes.max(1),
                segments,
                current,
                current_len: 0,
                next_seq,
                spare,
                shared,
                buf: Vec::new(),
            },
            records,
        ))
    }

    /// The flusher for [`Synchronous::Normal`].
    pub fn syncer(&self) -> JournalSyncer {
        JournalSyncer {
            dir: self.dir.clone(),
            state: self.shared.clone(),
        }
    }

    /// Append one record per `(received_at, body)` with one write (and one `fdatasync` under
    /// [`Synchronous::Full`]); returns their sequence numbers. On error nothing was appended.
    pub fn append<'a, I>(&mut self, alerts: I) -> Result<Vec<i64>, StoreError>
    where
        I: IntoIterator<Item = (Nanos, &'a str)>,
    {
        self.buf.clear();
        let mut seqs = Vec::new();
        let mut seq = self.next_seq;
        for (received_at, body) in alerts {
            let len = FIXED + body.len();
            if len > MAX_RECORD {
                return Err(StoreError::Corrupt(format!(
                    "an alert of {} bytes is too large for the journal",
                    body.len()
                )));
            }
            let start = self.buf.len();
            self.buf.extend_from_slice(&[0u8; HEADER]);
            self.buf.extend_from_slice(&seq.to_le_bytes());
            self.buf.extend_from_slice(&received_at.to_le_bytes());
            self.buf.extend_from_slice(body.as_bytes());
            let crc = crc32fast::hash(&self.buf[start + HEADER..]);
            self.buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
            self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            seqs.push(seq);
            seq += 1;
        }
        if seqs.is_empty() {
            return Ok(seqs);
        }
        // A failed write leaves `current_len` where it was and cuts off whatever part of this
        // group reached the file, so that a restart before the next group does not bring back
        // alerts whose senders were told nothing was stored.
        if let Err(e) = self.write_current() {
            if let Err(t) = self.current.set_len(self.current_len) {
                tracing::warn!(error = %t, "cutting a failed journal append back off");
            }
            return Err(e);
        }
        self.current_len += self.buf.len() as u64;
        self.next_seq = seq;
        if let Some(cur) = self.segments.last_mut() {
            cur.outstanding.extend(seqs.iter().copied());
        }
        if self.current_len >= self.segment_bytes {
            // The records are written: a failed rotation only means appending to this
            // segment a while longer.
            if let Err(e) = self.rotate() {
                tracing::warn!(error = %e, "starting a new journal segment failed");
            }
        }
        Ok(seqs)
    }

    fn write_current(&mut self) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        self.current.write_all_at(&self.buf, self.current_len)?;
        if self.sync == Synchronous::Full {
            self.current.sync_data()?;
        }
        Ok(())
    }

    /// Close the current segment and start the next one.
    fn rotate(&mut self) -> Result<(), StoreError> {
        let (file, path) = new_segment(&self.dir, self.next_seq, &mut self.spare)?;
        if self.sync == Synchronous::Full {
            sync_dir(&self.dir)?;
        }
        let old = std::mem::replace(&mut self.current, file);
        self.current_len = 0;
        self.segments.push(Segment {
            first_seq: self.next_seq,
            path,
            outstanding: HashSet::new(),
        });
        let mut s = lock(&self.shared);
        s.current = Some(self.current.try_clone()?);
        s.closed.push(old);
        s.dir_changed = true;
        drop(s);
        self.delete_finished()?;
        Ok(())
    }

    /// These records are in the store: a closed segment goes once all of its records are.
    pub fn done(&mut self, seqs: &[i64]) -> Result<(), StoreError> {
        for &seq in seqs {
            // The last segment starting at or before `seq`.
            let i = self.segments.partition_point(|s| s.first_seq <= seq);
            if let Some(seg) = i.checked_sub(1).and_then(|i| self.segments.get_mut(i)) {
                seg.outstanding.remove(&seq);
            }
        }
        self.delete_finished()
    }

    fn delete_finished(&mut self) -> Result<(), StoreError> {
        let mut removed = false;
        let mut i = 0;
        // Never the last segment: it is the one being appended to.
        while i + 1 < self.segments.len() {
            if self.segments[i].outstanding.is_empty() {
                let seg = self.segments.remove(i);
                // Kept for reuse rather than deleted: overwriting blocks a file already has
                // costs the disk less than allocating new ones and discarding old ones.
                if self.spare.len() < MAX_SPARE {
                    // Renamed so that it is never read as a segment again.
                    let spare = self
                        .dir
                        .join(format!("{}.spare", segment_name(seg.first_seq)));
                    if fs::rename(&seg.path, &spare).is_ok() {
                        self.spare.push(spare);
                        continue;
                    }
                }
                match fs::remove_file(&seg.path) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        self.segments.insert(i, seg);
                        return Err(e.into());
                    }
                }
            } else {
                i += 1;
            }
        }
        if removed {
            lock(&self.shared).dir_changed = true;
        }
        Ok(())
    }

    /// Alerts appended and not yet marked done.
    pub fn outstanding(&self) -> usize {
        self.segments.iter().map(|s| s.outstanding.len()).sum()
    }

    /// The number the next record gets.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// At shutdown: flush, and remove the journal's files when everything is in the store.
    pub fn close(self) -> Result<(), StoreError> {
        self.current.sync_data()?;
        if self.outstanding() == 0 {
            for s in self.segments.iter().map(|s| &s.path).chain(&self.spare) {
                match fs::remove_file(s) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        sync_dir(&self.dir)?;
        Ok(())
    }
}

/// The file for the segment starting at `first_seq`: a spare renamed, or a new file.
fn new_segment(
    dir: &Path,
    first_seq: i64,
    spare: &mut Vec<PathBuf>,
) -> Result<(File, PathBuf), StoreError> {
    let path = dir.join(segment_name(first_seq));
    // Only leftovers of an earlier failed start can have this name: records are numbered
    // above everything read back.
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    while let Some(old) = spare.pop() {
        // Its old records stay past what is written now; their numbers end the segment when it
        // is read back.
        if fs::rename(&old, &path).is_ok() {
            let file = OpenOptions::new().write(true).open(&path)?;
            return Ok((file, path));
        }
    }
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    Ok((file, path))
}
