//! The durable queue in front of analysis, behind one small trait so the pipeline reads the
//! same whichever engine holds the alerts:
//!
//! ```text
//!  ingest handler ──QueueCmd::Append──► Queue ──AnalysisMsg──► analysis thread ──► store writer
//!       (2xx once the queue has them)     ▲                                              │
//!                                         └──────────── QueueCmd::Remove (stored) ◄──────┘
//! ```
//!
//! * [`JournalQueue`]: the local journal (one node; `crates/store/src/journal.rs`). Append =
//!   group commit to the journal; Remove = the segment can go.
//! * [`crate::nats::JetStreamQueue`]: NATS JetStream (several replicas). Append = publish to
//!   the alert's partition and wait for JetStream's acknowledgement; the alerts reach analysis
//!   through the partitions this replica holds a lease on; Remove = acknowledge the messages.
//!
//! Whatever the queue, an alert leaves it only once the store has it with its analysis.

pub mod journal;

use crate::pipeline::{AnalysisMsg, JournalCmd, Shared};
use fa_store::Journal;
use journal::{journal_loop, Dedup};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the ingest handlers and the store writer tell the queue (the journal's commands).
pub type QueueCmd = JournalCmd;

/// The queue's ends: commands in, alerts out to analysis.
pub struct QueueIo {
    pub cmds: mpsc::Receiver<QueueCmd>,
    pub to_analysis: std_mpsc::Sender<AnalysisMsg>,
    pub shared: Arc<Shared>,
}

/// A running queue: a thread (the journal does blocking file I/O) or a task (JetStream).
pub enum QueueWorker {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

impl QueueWorker {
    /// Wait for the queue to stop (after [`QueueCmd::Stop`]).
    pub async fn join(self) {
        match self {
            QueueWorker::Thread(t) => {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
            QueueWorker::Task(t) => {
                let _ = t.await;
            }
        }
    }
}

/// A durable queue engine.
pub trait Queue: Send {
    /// For logs: `journal` or `jetstream`.
    fn name(&self) -> &'static str;
    /// Start handling `io.cmds` until [`QueueCmd::Stop`].
    fn spawn(self: Box<Self>, io: QueueIo) -> std::io::Result<QueueWorker>;
}

/// The local journal: what a single node runs.
pub struct JournalQueue {
    pub journal: Journal,
    pub dedup: Dedup,
    pub max_batch: usize,
}

impl Queue for JournalQueue {
    fn name(&self) -> &'static str {
        "journal"
    }

    fn spawn(self: Box<Self>, io: QueueIo) -> std::io::Result<QueueWorker> {
        let JournalQueue {
            journal,
            dedup,
            max_batch,
        } = *self;
        let t = std::thread::Builder::new()
            .name("fa-ingest".into())
            .spawn(move || {
                journal_loop(
                    journal,
                    dedup,
                    io.cmds,
                    io.to_analysis,
                    io.shared,
                    max_batch,
                )
            })?;
        Ok(QueueWorker::Thread(t))
    }
}
