//! The store writer: alerts with their analyses, incidents, dead letters, narrated reports and the LLM cache, in large transactions; search indexing and retention between them.

use super::*;

pub struct WriterConfig {
    pub max_batch: usize,
    pub retention: RetentionPolicy,
    pub retention_chunk: usize,
}

/// The store writer thread: analyses (with the alerts they belong to), incidents, dead
/// letters, narrated reports and the LLM cache, in large transactions nobody acknowledging
/// an alert waits for.
pub fn writer_loop(
    mut store: Box<dyn Store>,
    mut rx: mpsc::Receiver<WriteCmd>,
    journal_tx: mpsc::Sender<JournalCmd>,
    shared: Arc<Shared>,
    cfg: WriterConfig,
) {
    let mut retention_pending = false;
    // The alert search index is filled while there is nothing to store (fa-store
    // `index_pending`), so a storm is stored first and indexed after.
    let mut index_pending = true;
    let mut stopping = false;
    loop {
        let first = match rx.try_recv() {
            Ok(c) => c,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if retention_pending {
                    retention_pending = run_retention(store.as_mut(), &shared, &cfg);
                    continue;
                }
                if stopping {
                    break;
                }
                // Not in a storm: the alerts waiting to be stored come first.
                if index_pending && shared.queue_depth() < SEARCH_INDEX_MAX_QUEUE {
                    index_pending = index_search(store.as_mut(), &shared);
                    continue;
                }
                match rx.blocking_recv() {
                    Some(c) => c,
                    None => break,
                }
            }
        };
        let mut cmds = vec![first];
        let mut n_alerts = alerts_in(&cmds[0]);
        while n_alerts < cfg.max_batch {
            match rx.try_recv() {
                Ok(c) => {
                    n_alerts += alerts_in(&c);
                    cmds.push(c);
                }
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::default();
        let mut replies: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        for c in cmds {
            match c {
                WriteCmd::DeadLetters { dead, reply } => {
                    batch.dead_letters.extend(dead);
                    replies.push(reply);
                }
                WriteCmd::Analyses {
                    analyses,
                    incidents,
                } => {
                    batch.analyses.extend(analyses);
                    batch.incidents.extend(incidents);
                }
                WriteCmd::ReportUpdate(r) => batch.report_updates.push(r),
                WriteCmd::LlmCache(e) => batch.llm_cache.push(e),
                WriteCmd::Retention => retention_pending = true,
                WriteCmd::Stop => stopping = true,
            }
        }
        if batch.is_empty() {
            for r in replies {
                let _ = r.send(Ok(()));
            }
            continue;
        }
        // A failed transaction is tried again (the disk may come back) rather than dropped:
        // the queue permits of its alerts come back only once they are stored, so while the
        // store fails, the queue fills and ingest answers 429 instead of piling up
        // acknowledged alerts. Dead letters are answered at once (their sender gets a 503).
        let mut backoff = Duration::from_millis(100);
        loop {
            let t = Instant::now();
            let result = store.write(&batch);
            shared
                .metrics
                .analysis_commit_seconds
                .observe(t.elapsed().as_secs_f64());
            match result {
                Ok(_) => {
                    index_pending = true;
                    break;
                }
                Err(e) => {
                    shared.metrics.store_errors.inc();
                    tracing::error!(error = %e, analyses = batch.analyses.len(), retry_in = ?backoff, "store write failed; the alerts stay in the journal");
                    for r in replies.drain(..) {
                        let _ = r.send(Err(e.to_string()));
                    }
                    batch.dead_letters.clear();
                    if shared.abort.load(Ordering::Relaxed) {
                        // Shutdown gave up waiting: analysed again at the next start.
                        shared.release(batch.analyses.len());
                        batch = WriteBatch::default();
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        for r in replies {
            let _ = r.send(Ok(()));
        }
        let done: Vec<(i64, String)> = batch
            .analyses
            .iter()
            .filter_map(|a| a.row.as_ref().map(|r| (a.alert_id, r.uuid.clone())))
            .collect();
        // Stored: the queue has room again.
        shared.release(batch.analyses.len());
        shared.metrics.queue_depth.set(shared.queue_depth() as i64);
        // Stays in the journal if that thread has gone: dropped at the next start.
        if !done.is_empty() {
            let _ = journal_tx.blocking_send(JournalCmd::Remove(done));
        }
    }
    tracing::debug!("writer stopped");
}

fn alerts_in(c: &WriteCmd) -> usize {
    match c {
        WriteCmd::Analyses { analyses, .. } => analyses.len().max(1),
        _ => 1,
    }
}

/// Alerts indexed for search per call: a chunk takes tens of milliseconds, the longest the
/// next batch waits for it.
const SEARCH_INDEX_CHUNK: usize = 1000;
/// Search indexing waits while more alerts than this wait to be stored (a storm); a search
/// reads the alerts not indexed yet.
const SEARCH_INDEX_MAX_QUEUE: usize = 1000;

/// One chunk of search indexing; true when more may remain.
fn index_search(store: &mut dyn Store, shared: &Shared) -> bool {
    match store.index_pending(SEARCH_INDEX_CHUNK) {
        Ok(n) => n > 0,
        Err(e) => {
            shared.metrics.store_errors.inc();
            tracing::warn!(error = %e, "indexing alerts for search failed; will try after the next write");
            false
        }
    }
}

/// One chunk of retention; true when more remains.
fn run_retention(store: &mut dyn Store, shared: &Shared, cfg: &WriterConfig) -> bool {
    match store.apply_retention(
        &cfg.retention,
        to_nanos(chrono::Utc::now()),
        cfg.retention_chunk,
    ) {
        Ok(o) => {
            shared.metrics.retention_deleted.inc_by(o.alerts_deleted);
            if o.alerts_deleted + o.dead_letters_deleted + o.incidents_deleted + o.clusters_deleted
                > 0
            {
                tracing::info!(
                    alerts = o.alerts_deleted,
                    dead_letters = o.dead_letters_deleted,
                    clusters = o.clusters_deleted,
                    incidents = o.incidents_deleted,
                    "retention"
                );
            }
            o.more
        }
        Err(e) => {
            shared.metrics.store_errors.inc();
            tracing::error!(error = %e, "retention failed");
            false
        }
    }
}
