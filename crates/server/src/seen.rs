//! Which uuids the store may already hold, answered from memory.
//!
//! Every new alert needs a "not stored yet" answer before it is journalled, and asking SQLite
//! costs a read transaction and a walk down the random `alerts.uuid` index per alert: in a
//! profile at 20,000 alerts/s it was over half of the ingest thread's time, on the path every
//! sender waits for. A Bloom filter over the stored uuids answers "certainly not stored" for
//! almost every new alert; only a "maybe" (a redelivery, or a false positive, ~1 %) still asks
//! the store. So the filter never decides that an alert is a duplicate, it only skips lookups.
//!
//! The invariant: every uuid in the store is in the filter. It holds because the filter is
//! built from a scan of the store, and every uuid is added before its alert is journalled
//! (so before it can reach the store). Retention deletes rows but not filter bits: stale bits
//! only cost lookups. When the filter has taken more uuids than it was sized for, a new one is
//! built from the store on a background thread; the uuids journalled meanwhile (and those in
//! flight when it started, which may reach the store after the scan's snapshot) are added to
//! it before it replaces the old one. Until the first build finishes, every uuid is a "maybe".

use std::hash::{BuildHasher, RandomState};
use std::sync::mpsc;

use fa_store::{Store, StoreError};

use crate::app::StoreOpener;

/// Bits per expected element; with [`PROBES`] probes, a false-positive rate of about 0.8 %.
const BITS_PER_ITEM: u64 = 10;
const PROBES: u64 = 7;
/// The smallest filter the service builds: a million uuids in 1.5 MiB.
pub const MIN_CAPACITY: u64 = 1 << 20;

/// A Bloom filter over 64-bit hashes (double hashing: probe i is `h1 + i * h2`).
#[derive(Debug, Clone)]
pub struct UuidFilter {
    words: Vec<u64>,
    mask: u64,
    capacity: u64,
    items: u64,
}

impl UuidFilter {
    /// Sized for `capacity` items at about 1 % false positives.
    pub fn with_capacity(capacity: u64) -> Self {
        let capacity = capacity.max(1024);
        let bits = (capacity * BITS_PER_ITEM).next_power_of_two();
        UuidFilter {
            words: vec![0; (bits / 64) as usize],
            mask: bits - 1,
            capacity,
            items: 0,
        }
    }

    fn probes(&self, h: u64) -> impl Iterator<Item = u64> + '_ {
        let h1 = h & 0xffff_ffff;
        // Odd, so the probes of one hash never all coincide.
        let h2 = (h >> 32) | 1;
        (0..PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & self.mask)
    }

    pub fn insert(&mut self, h: u64) {
        let bits: Vec<u64> = self.probes(h).collect();
        for b in bits {
            self.words[(b / 64) as usize] |= 1 << (b % 64);
        }
        self.items += 1;
    }

    pub fn may_contain(&self, h: u64) -> bool {
        self.probes(h)
            .all(|b| self.words[(b / 64) as usize] & (1 << (b % 64)) != 0)
    }

    /// More items than it was sized for: false positives grow from here on.
    pub fn is_full(&self) -> bool {
        self.items > self.capacity
    }

    pub fn items(&self) -> u64 {
        self.items
    }
}

struct Rebuild {
    /// Hashes added since the rebuild started (and those in flight when it did).
    side: Vec<u64>,
    done: mpsc::Receiver<Result<UuidFilter, StoreError>>,
}

/// The ingest thread's view of the uuids the store may hold.
pub struct Seen {
    hasher: RandomState,
    filter: Option<UuidFilter>,
    rebuild: Option<Rebuild>,
    opener: StoreOpener,
    min_capacity: u64,
    /// When the last build failed: the next waits [`RETRY_AFTER`].
    failed_at: Option<std::time::Instant>,
}

/// How long after a failed build the next one starts.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

impl Seen {
    /// `opener` gives the rebuild threads their own read connections; filters are sized for
    /// twice the stored alerts, and at least `min_capacity`.
    pub fn new(opener: StoreOpener, min_capacity: u64) -> Self {
        Seen {
            hasher: RandomState::new(),
            filter: None,
            rebuild: None,
            opener,
            min_capacity,
            failed_at: None,
        }
    }

    /// Hashed with a per-process random key: uuids are sender-chosen, and a sender that could
    /// aim its uuids at the same bits would only make every lookup go to the store, but even
    /// that is not for it to choose.
    pub fn hash(&self, uuid: &str) -> u64 {
        self.hasher.hash_one(uuid)
    }

    /// False only when the uuid is certainly not in the store.
    pub fn may_be_stored(&self, h: u64) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(h))
    }

    /// A uuid about to be journalled (so about to be stored).
    pub fn add(&mut self, h: u64) {
        if let Some(f) = &mut self.filter {
            f.insert(h);
        }
        if let Some(r) = &mut self.rebuild {
            r.side.push(h);
        }
    }

    /// Whether a filter is answering (the first build has finished).
    pub fn is_ready(&self) -> bool {
        self.filter.is_some()
    }

    /// Take a finished rebuild, or start one when there is no filter yet or it is full.
    /// `in_flight` lists the uuids acknowledged and not yet stored: they may reach the store
    /// after the rebuild's snapshot. Call between groups, on the thread that calls [`add`].
    ///
    /// [`add`]: Seen::add
    pub fn maintain(&mut self, in_flight: impl FnOnce() -> Vec<String>) {
        if let Some(r) = &self.rebuild {
            match r.done.try_recv() {
                Ok(Ok(mut f)) => {
                    let r = self.rebuild.take();
                    for h in r.iter().flat_map(|r| r.side.iter()) {
                        f.insert(*h);
                    }
                    tracing::debug!(uuids = f.items(), "uuid filter rebuilt");
                    self.filter = Some(f);
                }
                Ok(Err(e)) => {
                    // The old filter (or none: every uuid a "maybe") goes on answering
                    // correctly; a later call tries again.
                    tracing::warn!(error = %e, "building the uuid filter");
                    self.rebuild = None;
                    self.failed_at = Some(std::time::Instant::now());
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    tracing::warn!("the uuid filter build stopped without an answer");
                    self.rebuild = None;
                    self.failed_at = Some(std::time::Instant::now());
                }
            }
            return;
        }
        if self.filter.as_ref().is_some_and(|f| !f.is_full())
            || self.failed_at.is_some_and(|t| t.elapsed() < RETRY_AFTER)
        {
            return;
        }
        let side: Vec<u64> = in_flight().iter().map(|u| self.hash(u)).collect();
        let (tx, rx) = mpsc::channel();
        let (opener, hasher, min) = (self.opener.clone(), self.hasher.clone(), self.min_capacity);
        let spawned = std::thread::Builder::new()
            .name("fa-uuid-filter".into())
            .spawn(move || {
                crate::pipeline::background_priority();
                let _ = tx.send(build(opener, &hasher, min));
            });
        match spawned {
            Ok(_) => {
                self.rebuild = Some(Rebuild { side, done: rx });
            }
            Err(e) => {
                tracing::warn!(error = %e, "starting the uuid filter build");
                self.failed_at = Some(std::time::Instant::now());
            }
        }
    }
}

/// A filter holding every uuid stored at the scan's snapshot, sized for twice as many.
fn build(opener: StoreOpener, hasher: &RandomState, min: u64) -> Result<UuidFilter, StoreError> {
    let store: Box<dyn Store> = opener()?;
    let stored = store.stats()?.alerts;
    let mut f = UuidFilter::with_capacity((stored * 2).max(min));
    store.for_each_uuid(&mut |u| f.insert(hasher.hash_one(u)))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &RandomState, i: u64) -> u64 {
        s.hash_one(format!("uuid-{i}"))
    }

    #[test]
    fn a_filter_never_forgets_and_rarely_imagines() {
        let s = RandomState::new();
        let mut f = UuidFilter::with_capacity(100_000);
        for i in 0..100_000 {
            f.insert(h(&s, i));
        }
        assert!((0..100_000).all(|i| f.may_contain(h(&s, i))));
        let false_positives = (100_000..200_000)
            .filter(|&i| f.may_contain(h(&s, i)))
            .count();
        // 10 bits and 7 probes per item: ~0.8 % expected.
        assert!(false_positives < 2_000, "{false_positives} false positives");
        assert!(!f.is_full());
        f.insert(h(&s, 1_000_000));
        assert!(f.is_full());
    }

    fn stored(uuid: &str) -> fa_store::NewAlert {
        fa_store::NewAlert {
            uuid: uuid.into(),
            received_at: 1,
            time: Some(1),
            rule: "Terminal shell in container".into(),
            priority: Some(fa_model::Priority::Notice),
            source: Some("syscall".into()),
            hostname: Some("node-1".into()),
            namespace: None,
            body: format!(r#"{{"uuid":"{uuid}"}}"#),
        }
    }

    fn write(store: &mut fa_store::SqliteStore, uuids: impl Iterator<Item = String>) {
        let batch = fa_store::WriteBatch {
            alerts: uuids.map(|u| stored(&u)).collect(),
            ..Default::default()
        };
        store.write(&batch).expect("write");
    }

    fn wait_ready(seen: &mut Seen, in_flight: &[String]) {
        let t = std::time::Instant::now();
        while seen.rebuild.is_some() || !seen.is_ready() {
            seen.maintain(|| in_flight.to_vec());
            assert!(t.elapsed().as_secs() < 30, "the filter was never built");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The invariant through a rebuild: what the store holds, what was in flight when the
    /// rebuild started, and what was added while it ran are all "maybe stored"; the rest of
    /// the uuids mostly are not.
    #[test]
    fn rebuilt_filters_keep_every_stored_and_in_flight_uuid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.db");
        let opts = fa_store::SqliteOptions::default();
        let mut store = fa_store::SqliteStore::open(&path, &opts).expect("open");
        write(&mut store, (0..3000).map(|i| format!("stored-{i}")));
        let opener: StoreOpener = {
            let (path, opts) = (path.clone(), opts.clone());
            std::sync::Arc::new(move || {
                fa_store::SqliteStore::open_reader(&path, &opts)
                    .map(|s| Box::new(s) as Box<dyn Store>)
            })
        };
        let mut seen = Seen::new(opener, 1024);
        // No filter yet: everything is a "maybe", so the store is always asked.
        assert!(seen.may_be_stored(seen.hash("never-seen")));
        wait_ready(&mut seen, &[]);
        let capacity = seen.filter.as_ref().map(|f| f.capacity).unwrap_or_default();
        assert_eq!(capacity, 6000, "sized for twice the stored alerts");
        assert!((0..3000).all(|i| seen.may_be_stored(seen.hash(&format!("stored-{i}")))));
        let unseen = (0..3000)
            .filter(|i| seen.may_be_stored(seen.hash(&format!("other-{i}"))))
            .count();
        assert!(
            unseen < 100,
            "{unseen} of 3000 unseen uuids answered 'maybe'"
        );

        // Fill it past its size: the next maintain starts a rebuild. Alerts in flight then,
        // and alerts added while it runs (some of them stored before the scan), must be in
        // the new filter.
        for i in 0..3001 {
            let h = seen.hash(&format!("journalled-{i}"));
            seen.add(h);
        }
        write(&mut store, (0..3001).map(|i| format!("journalled-{i}")));
        let in_flight: Vec<String> = (0..50).map(|i| format!("in-flight-{i}")).collect();
        seen.maintain(|| in_flight.clone());
        assert!(seen.rebuild.is_some(), "a full filter starts a rebuild");
        for i in 0..50 {
            let h = seen.hash(&format!("during-{i}"));
            seen.add(h);
        }
        write(&mut store, (0..50).map(|i| format!("during-{i}")));
        wait_ready(&mut seen, &in_flight);
        let f = seen.filter.as_ref().expect("filter");
        assert!(!f.is_full());
        for u in (0..3000)
            .map(|i| format!("stored-{i}"))
            .chain((0..3001).map(|i| format!("journalled-{i}")))
            .chain(in_flight.iter().cloned())
            .chain((0..50).map(|i| format!("during-{i}")))
        {
            assert!(seen.may_be_stored(seen.hash(&u)), "{u} lost by the rebuild");
        }
    }

    /// A store that cannot be opened leaves every uuid a "maybe", and is not retried on every
    /// group (a thread and a warning each time) but after a pause.
    #[test]
    fn a_failed_build_is_retried_after_a_pause_not_at_once() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let opener: StoreOpener = {
            let calls = calls.clone();
            std::sync::Arc::new(move || {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(StoreError::Corrupt("no database here".into()))
            })
        };
        let mut seen = Seen::new(opener, 1024);
        let t = std::time::Instant::now();
        while seen.failed_at.is_none() {
            seen.maintain(Vec::new);
            assert!(t.elapsed().as_secs() < 10, "the failure was never reported");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for _ in 0..100 {
            seen.maintain(Vec::new);
        }
        assert!(seen.rebuild.is_none(), "restarted at once");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!seen.is_ready());
        assert!(seen.may_be_stored(seen.hash("anything")));
    }

    #[test]
    fn an_empty_filter_holds_nothing() {
        let s = RandomState::new();
        let f = UuidFilter::with_capacity(10);
        assert!((0..10_000).all(|i| !f.may_contain(h(&s, i))));
    }
}
