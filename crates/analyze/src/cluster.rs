//! De-duplication: alerts with one fingerprint form a cluster with a count, first and last
//! seen, and one representative report. The table is capped; the oldest cluster is evicted
//! (and handed back to the caller, so its report is still written) when it is full.

use crate::fingerprint::Fingerprint;
use chrono::{DateTime, Utc};
use fa_model::{Alert, ClusterInfo, Report, VerdictKind};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Cluster {
    pub fingerprint: Fingerprint,
    pub count: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// The most severe verdict any member got.
    pub verdict: VerdictKind,
    /// The first alert of the cluster: what tuning and the report are built from.
    pub alert: Alert,
    /// The representative report, when the caller keeps reports.
    pub report: Option<Report>,
    /// First-seen order, for stable output.
    pub seq: u64,
    last_touch: u64,
}

impl Cluster {
    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            fingerprint: self.fingerprint.to_string(),
            count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
        }
    }

    /// The representative report with the cluster's final figures.
    pub fn into_report(self) -> Option<Report> {
        let info = self.info();
        self.report.map(|mut r| {
            r.cluster = Some(info);
            r
        })
    }
}

#[derive(Debug)]
pub struct ClusterTable {
    map: crate::fingerprint::FingerprintMap<Cluster>,
    // (fingerprint, touch) in touch order; stale pairs are skipped lazily on eviction.
    order: VecDeque<(Fingerprint, u64)>,
    cap: usize,
    touches: u64,
    next_seq: u64,
    pub evicted: u64,
}

fn min_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl ClusterTable {
    pub fn new(cap: usize) -> Self {
        ClusterTable {
            map: Default::default(),
            order: VecDeque::new(),
            cap: cap.max(1),
            touches: 0,
            next_seq: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, fp: &Fingerprint) -> Option<&Cluster> {
        self.map.get(fp)
    }

    /// Count one more alert in an existing cluster; returns the new count, or None if unknown.
    pub fn touch(
        &mut self,
        fp: Fingerprint,
        time: Option<DateTime<Utc>>,
        verdict: VerdictKind,
    ) -> Option<u64> {
        self.touches += 1;
        let t = self.touches;
        let c = self.map.get_mut(&fp)?;
        c.count += 1;
        c.first_seen = min_time(c.first_seen, time);
        c.last_seen = max_time(c.last_seen, time);
        c.verdict = c.verdict.max(verdict);
        c.last_touch = t;
        let count = c.count;
        self.order.push_back((fp, t));
        self.compact();
        Some(count)
    }

    /// Start a cluster; returns the cluster evicted to make room, if any.
    pub fn insert(
        &mut self,
        fp: Fingerprint,
        alert: Alert,
        verdict: VerdictKind,
        report: Option<Report>,
    ) -> Option<Cluster> {
        let evicted = if self.map.len() >= self.cap {
            self.evict_oldest()
        } else {
            None
        };
        self.touches += 1;
        let t = self.touches;
        let seq = self.next_seq;
        self.next_seq += 1;
        let time = alert.time;
        self.map.insert(
            fp,
            Cluster {
                fingerprint: fp,
                count: 1,
                first_seen: time,
                last_seen: time,
                verdict,
                alert,
                report,
                seq,
                last_touch: t,
            },
        );
        self.order.push_back((fp, t));
        evicted
    }

    fn evict_oldest(&mut self) -> Option<Cluster> {
        while let Some((fp, t)) = self.order.pop_front() {
            if self.map.get(&fp).is_some_and(|c| c.last_touch == t) {
                self.evicted += 1;
                return self.map.remove(&fp);
            }
        }
        None
    }

    // Keep the lazy queue bounded: rebuild it from live clusters when stale pairs dominate.
    fn compact(&mut self) {
        if self.order.len() > self.cap.saturating_mul(4).max(1024) {
            let mut live: Vec<(Fingerprint, u64)> = self
                .map
                .values()
                .map(|c| (c.fingerprint, c.last_touch))
                .collect();
            live.sort_by_key(|&(_, t)| t);
            self.order = live.into();
        }
    }

    /// All live clusters, in first-seen order.
    pub fn drain(self) -> Vec<Cluster> {
        let mut v: Vec<Cluster> = self.map.into_values().collect();
        v.sort_by_key(|c| c.seq);
        v
    }

    pub fn iter(&self) -> impl Iterator<Item = &Cluster> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> Alert {
        serde_json::from_str(r#"{"rule":"r","priority":"Debug"}"#).unwrap()
    }

    #[test]
    fn counts_repeats_and_evicts_least_recently_seen() {
        let mut t = ClusterTable::new(2);
        assert!(t
            .insert(Fingerprint(1), a(), VerdictKind::Benign, None)
            .is_none());
        assert!(t
            .insert(Fingerprint(2), a(), VerdictKind::Suspicious, None)
            .is_none());
        assert_eq!(t.touch(Fingerprint(1), None, VerdictKind::Benign), Some(2));
        // 2 is now the least recently seen.
        let ev = t
            .insert(Fingerprint(3), a(), VerdictKind::Benign, None)
            .unwrap();
        assert_eq!(ev.fingerprint, Fingerprint(2));
        assert_eq!(t.evicted, 1);
        assert_eq!(t.len(), 2);
        let d = t.drain();
        assert_eq!(
            d.iter().map(|c| c.fingerprint.0).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(d[0].count, 2);
    }

    #[test]
    fn lazy_queue_stays_bounded() {
        let mut t = ClusterTable::new(1);
        t.insert(Fingerprint(1), a(), VerdictKind::Benign, None);
        for _ in 0..100_000 {
            t.touch(Fingerprint(1), None, VerdictKind::Benign);
        }
        assert!(t.order.len() <= 1024);
        assert_eq!(t.get(&Fingerprint(1)).map(|c| c.count), Some(100_001));
    }
}
