//! The analysis thread (batches of queued alerts through the correlator to the writer) and the backlog a previous run left.

use super::*;

/// The analysis thread: batches of queued alerts through the correlator, analyses to the
/// writer, permits back to the queue.
pub fn analysis_loop(
    rx: std_mpsc::Receiver<AnalysisMsg>,
    writer: mpsc::Sender<WriteCmd>,
    mut c: Correlator,
    shared: Arc<Shared>,
) {
    const BATCH: usize = 512;
    // Analyses are handed to the writer every `store_interval` (1 s by default): each
    // hand-over is a commit, and the fewer and larger the commits, the fewer index pages the
    // writer rewrites per alert (100 ms wrote 2.4x the WAL bytes of 1 s at 20,000 alerts/s).
    // Nobody waits for them: the alerts are already acknowledged.
    let hand_over = c.cfg.store_interval;
    // Or sooner when a quarter of the queue waits for it: the queue's room comes back only
    // once the analyses are stored.
    let hand_over_max = (shared.queue_capacity / 4).clamp(1, 65_536);
    let flush_every = Duration::from_millis(500);
    let mut last_flush = Instant::now();
    let mut stop = false;
    let mut analyses: Vec<Analysis> = Vec::new();
    let mut incidents: Vec<IncidentRow> = Vec::new();
    let mut pending_since: Option<Instant> = None;
    c.resume_incidents();
    let held = |shared: &Shared| {
        while shared.paused.load(Ordering::Relaxed) && !shared.abort.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
        shared.abort.load(Ordering::Relaxed)
    };
    while !stop {
        if held(&shared) {
            break;
        }
        // Changed incidents are written soon after the stream goes quiet.
        let mut wait = if c.has_dirty() {
            Duration::from_millis(50)
        } else {
            flush_every
        };
        if let Some(t) = pending_since {
            wait = wait.min(hand_over.saturating_sub(t.elapsed()));
        }
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let idle = first.is_none();
        let mut msgs = Vec::new();
        if let Some(m) = first {
            msgs.push(m);
            while msgs.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
        }
        // Paused while waiting: hold these; on abort they stay unanalysed in the store.
        if held(&shared) {
            break;
        }
        for m in msgs {
            match m {
                AnalysisMsg::Stop => stop = true,
                AnalysisMsg::TakeOver(mine) => {
                    c.take_over(&*mine);
                }
                AnalysisMsg::Forget(gone) => c.forget(&*gone),
                AnalysisMsg::Alert(q) => {
                    let a = c.analyze(*q, &mut incidents);
                    shared
                        .metrics
                        .reports
                        .get_or_create(&VerdictLabel {
                            verdict: a.verdict.as_str(),
                        })
                        .inc();
                    analyses.push(a);
                }
            }
        }
        if pending_since.is_none() && !analyses.is_empty() {
            pending_since = Some(Instant::now());
        }
        let due = stop
            || idle
            || analyses.len() >= hand_over_max
            || pending_since.is_some_and(|t| t.elapsed() >= hand_over);
        // A hand-over carries the incidents as its analyses left them: the two are committed
        // together, so a crash never leaves stored alerts missing from their incident.
        if due || last_flush.elapsed() >= flush_every {
            c.flush_incidents(&mut incidents);
            last_flush = Instant::now();
        }
        if pending_since.is_none() && !incidents.is_empty() {
            pending_since = Some(Instant::now());
        }
        if !due {
            continue;
        }
        pending_since = None;
        let n = analyses.len();
        if (n > 0 || !incidents.is_empty())
            && writer
                .blocking_send(WriteCmd::Analyses {
                    // Sized like this batch: growing it alert by alert moved every analysis
                    // several times.
                    analyses: std::mem::replace(&mut analyses, Vec::with_capacity(n)),
                    incidents: std::mem::take(&mut incidents),
                })
                .is_err()
        {
            tracing::error!(
                "the writer has stopped; {n} analyses are lost and will be redone at the next start"
            );
            // Redone at the next start, narrations included.
            c.pending_narrations.clear();
            shared.release(n);
        }
        // The writer gives the queue permits back once the analyses are stored.
        c.dispatch_narrations(&shared.metrics);
        let notes = c.take_notifications();
        if let Some((_, tx)) = &c.notifier {
            for note in notes {
                if tx.try_send(note).is_err() {
                    shared.metrics.notifications_dropped.inc();
                    tracing::warn!("notification queue full: a notification was dropped (the alert itself is stored)");
                }
            }
        }
    }
    // Analyses not handed over yet, and whatever the tracker still holds open, are written
    // as they stand.
    c.flush_incidents(&mut incidents);
    let n = analyses.len();
    if n > 0 || !incidents.is_empty() {
        match writer.blocking_send(WriteCmd::Analyses {
            analyses,
            incidents,
        }) {
            Ok(()) => c.dispatch_narrations(&shared.metrics),
            Err(_) => shared.release(n),
        }
    }
    tracing::debug!("analysis stopped");
}

/// Queue what a previous run acknowledged and did not analyse, oldest first, taking queue
/// permits like ingest does: alerts stored unanalysed by an older version (`id <= up_to`),
/// then the journal's records (read back at start-up, those already in the store left out).
pub fn feed_backlog(
    reader: Box<dyn Store>,
    up_to: i64,
    journal: Vec<JournalRecord>,
    tx: std_mpsc::Sender<AnalysisMsg>,
    shared: Arc<Shared>,
) {
    let total = feed_backlog_inner(reader.as_ref(), up_to, journal, &tx, &shared);
    if total > 0 {
        tracing::info!(
            alerts = total,
            "queued alerts left unanalysed by the previous run"
        );
    }
    shared.backlog_queued.store(true, Ordering::Relaxed);
}

fn feed_backlog_inner(
    reader: &dyn Store,
    up_to: i64,
    journal: Vec<JournalRecord>,
    tx: &std_mpsc::Sender<AnalysisMsg>,
    shared: &Shared,
) -> u64 {
    let mut total = 0u64;
    // Stored unanalysed by a version before the journal.
    let mut after = 0i64;
    loop {
        let rows = match reader.unanalyzed(after, up_to, 512) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading unanalysed alerts");
                break;
            }
        };
        if rows.is_empty() {
            break;
        }
        for r in rows {
            after = r.id;
            let Some(alert) = read_back(&r.uuid, &r.body, shared) else {
                continue;
            };
            let q = QueuedAlert {
                id: r.id,
                uuid: r.uuid,
                alert,
                row: None,
            };
            if !queue_backlogged(q, tx, shared) {
                return total;
            }
            total += 1;
        }
    }
    for rec in journal {
        let label = format!("journal record {}", rec.seq);
        let Some(alert) = read_back(&label, &rec.body, shared) else {
            continue;
        };
        let uuid = alert.uuid.clone().unwrap_or_default();
        let row = new_alert_row(&alert, uuid.clone(), rec.received_at, rec.body);
        let q = QueuedAlert {
            id: rec.seq,
            uuid,
            alert,
            row: Some(row),
        };
        if !queue_backlogged(q, tx, shared) {
            return total;
        }
        total += 1;
    }
    total
}

fn read_back(what: &str, body: &str, shared: &Shared) -> Option<Alert> {
    match serde_json::from_str(body) {
        Ok(a) => Some(a),
        Err(e) => {
            shared.metrics.analysis_errors.inc();
            tracing::error!(alert = %what, error = %e, "a stored alert cannot be read back; left unanalysed");
            None
        }
    }
}

/// Queue an alert for analysis once a queue permit is free. False when the service stops.
fn queue_backlogged(q: QueuedAlert, tx: &std_mpsc::Sender<AnalysisMsg>, shared: &Shared) -> bool {
    loop {
        if shared.draining.load(Ordering::Relaxed) {
            return false;
        }
        match shared.queue.try_acquire() {
            Ok(p) => {
                p.forget();
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    if tx.send(AnalysisMsg::Alert(Box::new(q))).is_err() {
        shared.release(1);
        return false;
    }
    true
}
