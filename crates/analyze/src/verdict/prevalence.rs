//! How widely and for how long an activity (a fingerprint) has been seen: routine automation
//! shows up on many hosts or workloads over days without ever escalating; an activity seen for
//! the first time after long observation is new. `Engine` keeps a `PrevalenceBook` per run;
//! `serve` can fill `Prevalence` from its store instead.

use chrono::{DateTime, Utc};
use fa_model::Alert;

/// What is known about one activity's history, as the verdict reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prevalence {
    /// Distinct hosts it was seen on (counted up to a cap).
    pub hosts: u32,
    /// Distinct workloads (container, else pod) it was seen in (counted up to a cap).
    pub workloads: u32,
    /// Alerts of it so far, this one included.
    pub alerts: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Since when the bookkeeping has been watching (the run's or the store's first alert).
    pub observed_since: Option<DateTime<Utc>>,
    /// Any alert of it was in an escalating incident or carried attack evidence.
    pub ever_escalated: bool,
}

fn hours(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if b > a => (b - a).num_seconds() as f64 / 3600.0,
        _ => 0.0,
    }
}

impl Prevalence {
    /// Hours between the first and the last alert of the activity.
    pub fn span_hours(&self) -> f64 {
        hours(self.first_seen, self.last_seen)
    }

    /// Hours the bookkeeping had been watching when the activity first appeared.
    pub fn observed_hours(&self) -> f64 {
        hours(self.observed_since, self.first_seen)
    }
}

/// Distinct values counted up to `CAP` by a 64-bit hash each: the verdict only asks "at least N".
const CAP: usize = 16;

/// One activity's running record.
#[derive(Debug, Clone, Default)]
pub struct PrevalenceEntry {
    hosts: Vec<u64>,
    workloads: Vec<u64>,
    alerts: u64,
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    escalated: bool,
}

fn add_distinct(set: &mut Vec<u64>, value: Option<&str>) {
    if let Some(v) = value {
        let h = xxhash_rust::xxh3::xxh3_64(v.as_bytes());
        if set.len() < CAP && !set.contains(&h) {
            set.push(h);
        }
    }
}

impl PrevalenceEntry {
    /// A record taken up from a store: the activity's alerts so far, its time span, the hosts
    /// it was seen on, and whether it ever went malicious.
    pub fn from_history(
        alerts: u64,
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
        hosts: &[String],
        escalated: bool,
    ) -> Self {
        let mut e = PrevalenceEntry {
            alerts,
            first_seen: Some(first_seen),
            last_seen: Some(last_seen),
            escalated,
            ..Default::default()
        };
        for h in hosts {
            add_distinct(&mut e.hosts, Some(h));
        }
        e
    }

    /// Count one alert of the activity (before its verdict: the verdict reads the record with
    /// this alert in it).
    pub fn observe(&mut self, alert: &Alert) {
        self.alerts += 1;
        add_distinct(&mut self.hosts, alert.field("hostname").as_deref());
        let workload = alert
            .field("container.id")
            .filter(|c| c != "host")
            .or_else(|| alert.field("k8s.pod.name"));
        add_distinct(&mut self.workloads, workload.as_deref());
        if let Some(t) = alert.time {
            self.first_seen = Some(self.first_seen.map_or(t, |f| f.min(t)));
            self.last_seen = Some(self.last_seen.map_or(t, |l| l.max(t)));
        }
    }

    /// Remember that an alert of the activity escalated or carried attack evidence.
    pub fn mark_escalated(&mut self) {
        self.escalated = true;
    }

    pub fn view(&self, observed_since: Option<DateTime<Utc>>) -> Prevalence {
        Prevalence {
            hosts: self.hosts.len() as u32,
            workloads: self.workloads.len() as u32,
            alerts: self.alerts,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            observed_since,
            ever_escalated: self.escalated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(host: &str, container: &str, time: &str) -> Alert {
        serde_json::from_value(json!({
            "rule": "r", "priority": "Notice", "hostname": host, "time": time,
            "output_fields": {"container.id": container}
        }))
        .expect("valid alert")
    }

    #[test]
    fn a_stored_history_carries_on() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
        let hosts = ["n1".to_string(), "n2".to_string(), "n1".to_string()];
        let mut e = PrevalenceEntry::from_history(
            40,
            t("2026-01-01T00:00:00Z"),
            t("2026-01-03T00:00:00Z"),
            &hosts,
            false,
        );
        e.observe(&alert("n3", "c9", "2026-01-04T00:00:00Z"));
        let v = e.view(None);
        assert_eq!((v.alerts, v.hosts, v.workloads), (41, 3, 1));
        assert_eq!(v.span_hours(), 72.0);
        assert!(!v.ever_escalated);
    }

    #[test]
    fn counts_distinct_hosts_and_workloads_and_the_time_span() {
        let mut e = PrevalenceEntry::default();
        e.observe(&alert("n1", "c1", "2026-01-01T00:00:00Z"));
        e.observe(&alert("n1", "c1", "2026-01-01T01:00:00Z"));
        e.observe(&alert("n2", "c2", "2026-01-03T00:00:00Z"));
        e.observe(&alert("n3", "host", "2026-01-02T00:00:00Z"));
        let p = e.view(None);
        assert_eq!((p.hosts, p.workloads, p.alerts), (3, 2, 4));
        assert_eq!(p.span_hours(), 48.0);
        assert!(!p.ever_escalated);
        e.mark_escalated();
        assert!(e.view(None).ever_escalated);
    }

    #[test]
    fn distinct_counts_stop_at_the_cap() {
        let mut e = PrevalenceEntry::default();
        for i in 0..100 {
            e.observe(&alert(
                &format!("n{i}"),
                &format!("c{i}"),
                "2026-01-01T00:00:00Z",
            ));
        }
        assert_eq!(e.view(None).hosts as usize, CAP);
    }

    #[test]
    fn observed_hours_runs_from_the_start_of_observation_to_first_sight() {
        let mut e = PrevalenceEntry::default();
        e.observe(&alert("n1", "c1", "2026-01-02T00:00:00Z"));
        let since = crate::verdict::prevalence::tests::t("2026-01-01T00:00:00Z");
        assert_eq!(e.view(Some(since)).observed_hours(), 24.0);
        assert_eq!(e.view(None).observed_hours(), 0.0);
    }

    pub(super) fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid time")
    }
}
