//! The journal as the queue (one node): the ingest thread appends received alerts to the
//! journal with one write per group (group commit), answers duplicates, and forgets alerts once
//! the store has them. See `crate::queue`.

use crate::pipeline::{AnalysisMsg, IngestCmd, JournalCmd, QueuedAlert, Shared};
use crate::seen::Seen;
use fa_store::{Inserted, Journal, Store};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Alerts acknowledged (in the journal) and not yet in the store, by uuid: what makes a
/// redelivery a duplicate before it reaches the store, and what the API reports as waiting.
#[derive(Default)]
pub struct InFlight {
    map: std::sync::Mutex<HashMap<String, i64>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The journal sequence number of an alert waiting for analysis.
    pub fn get(&self, uuid: &str) -> Option<i64> {
        self.lock().get(uuid).copied()
    }

    pub fn insert(&self, entries: impl IntoIterator<Item = (String, i64)>) {
        self.lock().extend(entries);
    }

    /// Every uuid in flight.
    pub fn uuids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Forget alerts the store now has.
    pub fn remove(&self, done: &[(i64, String)]) {
        let mut m = self.lock();
        for (seq, uuid) in done {
            if m.get(uuid) == Some(seq) {
                m.remove(uuid);
            }
        }
    }
}

/// The ingest thread: group commit of received alerts into the journal, the only write a
/// sender waits for. Redeliveries (a uuid in flight or already in the store) are answered as
/// duplicates without being written.
pub fn journal_loop(
    mut journal: Journal,
    dedup: Dedup,
    mut rx: mpsc::Receiver<JournalCmd>,
    to_analysis: std_mpsc::Sender<AnalysisMsg>,
    shared: Arc<Shared>,
    max_batch: usize,
) {
    let Dedup {
        store,
        in_flight,
        mut seen,
    } = dedup;
    let mut stopping = false;
    loop {
        seen.maintain(|| in_flight.uuids());
        shared
            .metrics
            .uuid_filter_ready
            .set(i64::from(seen.is_ready()));
        let first = match rx.try_recv() {
            Ok(c) => Some(c),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) if stopping => None,
            Err(mpsc::error::TryRecvError::Empty) => rx.blocking_recv(),
        };
        let Some(first) = first else { break };
        let mut cmds = vec![first];
        let mut n_alerts = journal_alerts_in(&cmds[0]);
        while n_alerts < max_batch {
            match rx.try_recv() {
                Ok(c) => {
                    n_alerts += journal_alerts_in(&c);
                    cmds.push(c);
                }
                Err(_) => break,
            }
        }
        let mut ingests: Vec<IngestCmd> = Vec::new();
        let mut done: Vec<(i64, String)> = Vec::new();
        for c in cmds {
            match c {
                JournalCmd::Append(ic) => ingests.push(ic),
                JournalCmd::Remove(d) => done.extend(d),
                JournalCmd::Stop => stopping = true,
            }
        }
        // Only once the store has them: a redelivery finds an alert in one or the other.
        if !done.is_empty() {
            in_flight.remove(&done);
            let seqs: Vec<i64> = done.iter().map(|(seq, _)| *seq).collect();
            if let Err(e) = journal.done(&seqs) {
                tracing::warn!(error = %e, "removing finished journal segments");
            }
        }
        if ingests.is_empty() {
            continue;
        }
        let t = Instant::now();
        let result = find_duplicates(&ingests, &in_flight, store.as_ref(), &seen).and_then(
            |(outcomes, fresh, lookups)| {
                shared.metrics.uuid_store_lookups.inc_by(lookups);
                // In the filter before the journal has them: from there they may reach the
                // store at any time.
                for &(_, _, h) in &fresh {
                    seen.add(h);
                }
                let seqs = journal.append(fresh.iter().map(|&(r, k, _)| {
                    let a = &ingests[r].alerts[k];
                    (a.received_at, a.body.as_str())
                }))?;
                Ok((outcomes, fresh, seqs))
            },
        );
        shared
            .metrics
            .store_commit_seconds
            .observe(t.elapsed().as_secs_f64());
        shared.metrics.store_batch_alerts.observe(n_alerts as f64);
        let (mut outcomes, fresh, seqs) = match result {
            Ok(r) => r,
            Err(e) => {
                shared.metrics.store_errors.inc();
                tracing::error!(error = %e, alerts = n_alerts, "journal write failed");
                for ic in ingests {
                    shared.release(ic.alerts.len());
                    let _ = ic.reply.send(Err(e.to_string()));
                }
                continue;
            }
        };
        for (&(r, k, _), &seq) in fresh.iter().zip(&seqs) {
            outcomes[r][k] = Inserted::New(seq);
        }
        in_flight.insert(
            fresh
                .iter()
                .zip(&seqs)
                .map(|(&(r, k, _), &seq)| (ingests[r].alerts[k].uuid.clone(), seq)),
        );
        for (ic, out) in ingests.into_iter().zip(outcomes) {
            for ((o, alert), row) in out.iter().zip(ic.parsed).zip(ic.alerts) {
                match o {
                    Inserted::New(seq) => {
                        let q = QueuedAlert {
                            id: *seq,
                            uuid: row.uuid.clone(),
                            alert,
                            row: Some(row),
                        };
                        // If analysis has stopped, the alert stays in the journal and is
                        // analysed at the next start.
                        if to_analysis.send(AnalysisMsg::Alert(Box::new(q))).is_err() {
                            shared.release(1);
                        }
                    }
                    Inserted::Duplicate => {
                        shared.metrics.alerts_duplicate.inc();
                        shared.release(1);
                    }
                }
            }
            // The handler may have gone (client disconnected): the alerts are kept anyway and
            // a redelivery will be a duplicate.
            let _ = ic.reply.send(Ok(out));
        }
    }
    if let Err(e) = journal.close() {
        tracing::error!(error = %e, "closing the journal");
    }
    tracing::debug!("ingest thread stopped");
}

/// What the ingest thread asks to tell a redelivery from a new alert: the alerts in flight,
/// the filter of stored uuids, and (when the filter cannot rule a uuid out) the store.
pub struct Dedup {
    pub store: Box<dyn Store>,
    pub in_flight: Arc<InFlight>,
    pub seen: Seen,
}

/// Per request, per alert: a duplicate (its uuid is in flight, already stored, or earlier in
/// the same group) or new (the sequence number is filled in once the append succeeds); and the
/// (request, alert, uuid hash) positions of the new ones. The store is asked only about uuids
/// the filter cannot rule out.
#[allow(clippy::type_complexity)]
fn find_duplicates(
    ingests: &[IngestCmd],
    in_flight: &InFlight,
    store: &dyn Store,
    seen: &Seen,
) -> Result<(Vec<Vec<Inserted>>, Vec<(usize, usize, u64)>, u64), fa_store::StoreError> {
    let m = in_flight.lock();
    let mut group: HashSet<&str> = HashSet::new();
    let mut lookups = 0u64;
    let mut outcomes = Vec::with_capacity(ingests.len());
    let mut fresh = Vec::new();
    for (r, ic) in ingests.iter().enumerate() {
        let mut out = Vec::with_capacity(ic.alerts.len());
        for (k, a) in ic.alerts.iter().enumerate() {
            let h = seen.hash(&a.uuid);
            let dup = m.contains_key(&a.uuid)
                || !group.insert(a.uuid.as_str())
                || (seen.may_be_stored(h) && {
                    lookups += 1;
                    store.alert_exists(&a.uuid)?
                });
            if dup {
                out.push(Inserted::Duplicate);
            } else {
                out.push(Inserted::New(0));
                fresh.push((r, k, h));
            }
        }
        outcomes.push(out);
    }
    Ok((outcomes, fresh, lookups))
}

fn journal_alerts_in(c: &JournalCmd) -> usize {
    match c {
        JournalCmd::Append(i) => i.alerts.len().max(1),
        _ => 1,
    }
}
