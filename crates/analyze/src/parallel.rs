//! A stream of alerts through the engine on several threads, with the output of one.
//!
//! The input's own iterator (framing and parsing) runs on a thread of its own; each alert is
//! prepared ([`Analyzer::prepare`]: its rule, fingerprint, tactics, entity, rule checks, the
//! static part of its verdict, its report but the verdict; none of it depends on other alerts)
//! by that thread itself with 2 threads, by workers with more; the calling thread takes the
//! prepared alerts back in input order and runs what does depend on the stream (clusters,
//! incidents, prevalence, the verdict's context). Each alert's result is exactly what
//! [`Engine::process`] gives it, so the output is the same whatever the thread count
//! (tests/parallel.rs, and crates/cli/tests/threads.rs byte for byte).
//!
//! With 2 threads the reader prepares a batch when the calling thread has batches waiting, and
//! hands it over as read when the calling thread would otherwise wait (it then prepares it
//! itself): the work balances between the two without a third thread, whose hand-offs (each
//! alert's memory read on one more core) cost more than they bought on two cores (BENCHMARKS.md).

use crate::engine::{Analyzer, Emitted, Engine, PrepareScratch, Prepared};
use fa_model::Alert;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Items per batch handed between the stages: large enough that a channel operation and a
/// lock per batch cost nothing per alert, small enough to keep the stages close.
const BATCH: usize = 512;
/// Batches between the reader and the calling thread at most: memory stays bounded however
/// fast the reader and the workers run ahead (or however late one worker is).
const IN_FLIGHT: usize = 16;

/// Feed `items` through `engine` and hand each result to `each`, in input order: an alert's
/// emitted reports, or the input's error for a record it could not read. `threads` counts the
/// threads in all: below 2 everything runs on the calling thread; 2 is the calling thread and
/// a reader that also prepares; each one more is a worker that prepares. Stops early when `each`
/// breaks, returning its value.
pub fn run<I, E, B>(
    engine: &mut Engine,
    items: I,
    threads: usize,
    mut each: impl FnMut(Result<Vec<Emitted>, E>) -> ControlFlow<B>,
) -> Option<B>
where
    I: Iterator<Item = Result<Alert, E>> + Send,
    E: Send,
{
    if threads < 2 {
        for item in items {
            if let ControlFlow::Break(b) = each(item.map(|a| engine.process(a))) {
                return Some(b);
            }
        }
        return None;
    }
    let workers = threads - 2;
    let analyzer = engine.analyzer.clone();
    let cfg = engine.config().clone();
    // Batches sent to the calling thread and not taken up yet: how far behind it is.
    let waiting = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let (raw_tx, raw_rx) = sync_channel::<(u64, Vec<Result<Alert, E>>)>(IN_FLIGHT);
        let (done_tx, done_rx) = sync_channel::<(u64, Batch<'_, E>)>(IN_FLIGHT);
        let waiting = &waiting;
        // A permit per batch in flight: the reader takes one before sending, the calling
        // thread gives it back once the batch is processed.
        let (permit_tx, permit_rx) = sync_channel::<()>(IN_FLIGHT);
        // Alerts done with go back to the reader, which made them, to be freed there: a free on
        // the allocating thread is cheap, one from another thread costs the in-order stage.
        let (spent_tx, spent_rx) = sync_channel::<Vec<Alert>>(IN_FLIGHT);
        let raw_rx = Arc::new(Mutex::new(raw_rx));

        let (reader_done, analyzer_ref, cfg_ref) = (done_tx.clone(), &analyzer, &cfg);
        s.spawn(move || {
            let mut seq = 0u64;
            let mut batch = Vec::with_capacity(BATCH);
            // Without workers, this thread prepares its batches itself.
            let mut own = (workers == 0).then(|| PrepareScratch::new(cfg_ref));
            let mut send = |batch: Vec<Result<Alert, E>>, seq: &mut u64| -> bool {
                if permit_tx.send(()).is_err() {
                    return false;
                }
                // Alerts the calling thread is done with are freed here, a batch at a time.
                while spent_rx.try_recv().is_ok() {}
                let sent = match &mut own {
                    // The calling thread has batches waiting: this thread has time to spare,
                    // and prepares the batch. Else the calling thread would wait for this one:
                    // it gets the batch as read and prepares it itself.
                    Some(scratch) if waiting.load(Ordering::Relaxed) >= 1 => {
                        let prepared = prepare_batch(analyzer_ref, scratch, batch);
                        hand_over(&reader_done, waiting, *seq, prepared)
                    }
                    Some(_) => hand_over(&reader_done, waiting, *seq, Batch::Read(batch)),
                    None => raw_tx.send((*seq, batch)).is_ok(),
                };
                *seq += 1;
                sent
            };
            for item in items {
                batch.push(item);
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if !send(full, &mut seq) {
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                send(batch, &mut seq);
            }
        });

        for _ in 0..workers {
            let raw_rx = Arc::clone(&raw_rx);
            let done_tx = done_tx.clone();
            let analyzer = &analyzer;
            let cfg = &cfg;
            s.spawn(move || {
                let mut scratch = PrepareScratch::new(cfg);
                loop {
                    // The lock is held only to take a batch, not while preparing it.
                    let next = match raw_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, batch)) = next else { return };
                    let prepared = prepare_batch(analyzer, &mut scratch, batch);
                    if !hand_over(&done_tx, waiting, seq, prepared) {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        engine.collect_spent(true);
        let out = in_order(engine, done_rx, waiting, permit_rx, spent_tx, &mut each);
        engine.collect_spent(false);
        out
        // Returning drops the receivers: the workers and the reader stop at their next send.
    })
}

/// A batch for the calling thread: prepared ahead, or as read (it prepares those itself).
enum Batch<'a, E> {
    Prepared(Vec<Result<Prepared<'a>, E>>),
    Read(Vec<Result<Alert, E>>),
}

fn prepare_batch<'a, E>(
    analyzer: &'a Analyzer,
    scratch: &mut PrepareScratch,
    batch: Vec<Result<Alert, E>>,
) -> Batch<'a, E> {
    Batch::Prepared(
        batch
            .into_iter()
            .map(|item| item.map(|a| analyzer.prepare(a, Some(scratch))))
            .collect(),
    )
}

/// Send a batch to the calling thread, counted as waiting; false once it is gone.
fn hand_over<'a, E>(
    to: &SyncSender<(u64, Batch<'a, E>)>,
    waiting: &AtomicUsize,
    seq: u64,
    batch: Batch<'a, E>,
) -> bool {
    waiting.fetch_add(1, Ordering::Relaxed);
    to.send((seq, batch)).is_ok()
}

/// Each item through `step` and its result to `each`, until `each` breaks.
fn each_item<T, E, B>(
    items: Vec<Result<T, E>>,
    mut step: impl FnMut(T) -> Vec<Emitted>,
    each: &mut impl FnMut(Result<Vec<Emitted>, E>) -> ControlFlow<B>,
) -> Option<B> {
    for item in items {
        if let ControlFlow::Break(b) = each(item.map(&mut step)) {
            return Some(b);
        }
    }
    None
}

/// The calling thread's stage: prepared batches put back in input order, each alert through
/// the engine's stream state.
fn in_order<E, B>(
    engine: &mut Engine,
    done: Receiver<(u64, Batch<'_, E>)>,
    waiting: &AtomicUsize,
    permits: Receiver<()>,
    spent: SyncSender<Vec<Alert>>,
    each: &mut impl FnMut(Result<Vec<Emitted>, E>) -> ControlFlow<B>,
) -> Option<B> {
    let mut next = 0u64;
    let mut early: BTreeMap<u64, Batch<'_, E>> = BTreeMap::new();
    for (seq, batch) in done.iter() {
        early.insert(seq, batch);
        while let Some(batch) = early.remove(&next) {
            next += 1;
            waiting.fetch_sub(1, Ordering::Relaxed);
            let stopped = match batch {
                Batch::Prepared(items) => each_item(items, |p| engine.process_prepared(p), each),
                Batch::Read(items) => each_item(items, |a| engine.process(a), each),
            };
            if stopped.is_some() {
                return stopped;
            }
            // The batch is done: the reader may send another, and free its alerts (unless it
            // is busy: they are freed here then, and never pile up).
            let _ = permits.recv();
            match spent.try_send(engine.take_spent()) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(v)) => drop(v),
            }
        }
    }
    None
}
