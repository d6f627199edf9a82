//! What both stores keep beside the alerts so the console's overview and filters never read
//! every alert: per-minute counts by priority and verdict, per-minute counts by rule, the
//! namespaces of each incident, and the text an alert search looks in.
//!
//! A batch's changes are summed here first, so a storm of thousands of alerts in a handful of
//! minutes costs a handful of upserts per commit.

use fa_model::Priority;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Nanoseconds in a minute: the rollups' granularity.
pub(crate) const MINUTE: i64 = 60_000_000_000;

/// The start of the minute holding `ts` (floor, also before 1970).
pub(crate) fn minute_of(ts: i64) -> i64 {
    ts - ts.rem_euclid(MINUTE)
}

/// The priority column of the rollup: the level, -1 when the alert had none (a key column
/// cannot be NULL and still conflict).
pub(crate) fn prio_key(p: Option<Priority>) -> i64 {
    p.map_or(-1, |p| i64::from(p.level()))
}

/// Stored priority level (or NULL) to the rollup's key.
pub(crate) fn prio_key_of_level(l: Option<i64>) -> i64 {
    l.unwrap_or(-1)
}

/// The verdict column of the rollup: '' until the alert is analysed.
pub(crate) const NO_VERDICT: &str = "";

/// Count changes of one batch, in key order (so concurrent PostgreSQL writers lock rows in one
/// order and wait for each other instead of deadlocking).
#[derive(Debug, Default)]
pub(crate) struct Rollup {
    /// (minute, priority key, verdict or '') → change.
    pub(crate) minutes: BTreeMap<(i64, i64, String), i64>,
    /// (minute, rule) → change.
    pub(crate) rules: BTreeMap<(i64, String), i64>,
    /// (namespace, incident id) pairs seen.
    pub(crate) incident_namespaces: BTreeSet<(String, String)>,
}

impl Rollup {
    pub(crate) fn add(&mut self, ts: i64, prio: i64, verdict: &str, n: i64) {
        *self
            .minutes
            .entry((minute_of(ts), prio, verdict.to_string()))
            .or_default() += n;
    }

    pub(crate) fn add_rule(&mut self, ts: i64, rule: &str, n: i64) {
        *self
            .rules
            .entry((minute_of(ts), rule.to_string()))
            .or_default() += n;
    }

    pub(crate) fn incident_in(&mut self, namespace: Option<&str>, incident: Option<&str>) {
        if let (Some(ns), Some(inc)) = (namespace, incident) {
            self.incident_namespaces
                .insert((ns.to_string(), inc.to_string()));
        }
    }

    /// The changes that are not zero.
    pub(crate) fn minute_changes(&self) -> impl Iterator<Item = (&(i64, i64, String), i64)> {
        self.minutes
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| (k, *n))
    }

    pub(crate) fn rule_changes(&self) -> impl Iterator<Item = (&(i64, String), i64)> {
        self.rules
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| (k, *n))
    }
}

/// Fields of `output_fields` a search looks in besides the message.
const SEARCH_FIELDS: [&str; 3] = ["proc.cmdline", "proc.pcmdline", "proc.exepath"];

/// The text an alert search looks in: the message and the command lines, one per line (a
/// command line already in the message is not repeated). Empty when the body is not JSON.
pub(crate) fn search_text(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Fields<'a> {
        #[serde(default, borrow)]
        output: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        output_fields: Option<HashMap<String, serde_json::Value>>,
    }
    let Ok(f) = serde_json::from_str::<Fields<'_>>(body) else {
        return String::new();
    };
    let mut out = f.output.map(|o| o.into_owned()).unwrap_or_default();
    if let Some(m) = f.output_fields {
        for k in SEARCH_FIELDS {
            if let Some(v) = m.get(k).and_then(|v| v.as_str()) {
                if !v.is_empty() && !out.contains(v) {
                    out.push('\n');
                    out.push_str(v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_floor_also_before_the_epoch() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(MINUTE - 1), 0);
        assert_eq!(minute_of(MINUTE), MINUTE);
        assert_eq!(minute_of(-1), -MINUTE);
    }

    #[test]
    fn search_text_is_the_message_and_command_lines_not_repeated() {
        let b = r#"{"output":"shell (command=bash -i)","output_fields":{"proc.cmdline":"bash -i","proc.pcmdline":"nginx -g","k8s.ns.name":"shop"}}"#;
        assert_eq!(search_text(b), "shell (command=bash -i)\nnginx -g");
        assert_eq!(search_text("not json"), "");
    }

    #[test]
    fn a_batch_sums_its_changes_and_drops_zeros() {
        let mut r = Rollup::default();
        r.add(5, 4, "", 1);
        r.add(7, 4, "", -1);
        r.add(7, 4, "benign", 1);
        let ch: Vec<_> = r.minute_changes().collect();
        assert_eq!(ch, vec![(&(0, 4, "benign".to_string()), 1)]);
    }
}
