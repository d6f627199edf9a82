//! NATS JetStream as the durable queue (`serve --nats URL`): several replicas share the work.
//!
//! ```text
//!  HTTP ingest ─┐ publish to PREFIX.alerts.<partition of the alert's entity>, 2xx on JetStream's ack
//!  falco.> ─────┴► router (any replica) ─► stream PREFIX_alerts (work queue, PREFIX.alerts.*)
//!                                                │  one durable consumer per partition
//!                  lease bucket PREFIX_leases ───┤  pN = the replica holding partition N
//!                                                ▼
//!            the lease holder's analysis thread ─► store (shared PostgreSQL) ─► ack
//! ```
//!
//! * The entity is the one incidents are correlated on ([`entity_of`]: container, else pod,
//!   else cloud actor, else host), so all alerts of one entity go to one partition, which one
//!   replica at a time analyses: correlation does not depend on which replica received an alert.
//! * A partition is held through a lease, key `pN` of the key-value bucket, created with
//!   `create` (fails if someone holds it) and renewed with `update` at the revision last written
//!   (fails if someone else wrote it). The bucket's `max_age` is the lease's TTL: a replica that
//!   dies stops renewing and its leases vanish after `lease_ttl`; the others take them at their
//!   next tick (takeover within `lease_ttl` + one tick). Replicas count each other by heartbeat
//!   keys `r.NAME` in the same bucket and each holds about `partitions / replicas`; a replica
//!   over its share hands partitions over once their alerts are stored.
//! * A new holder recreates the partition's consumer, so whatever the previous holder had not
//!   acknowledged is delivered again at once and in order; it takes up the partition's open
//!   incidents from the store. Messages that were pending at takeover, or delivered more than
//!   once, are looked up in the store first (by uuid): one stored before the previous holder
//!   died is acknowledged, not analysed twice. The store also refuses a uuid twice.
//! * A message is acknowledged only after its alert and analysis are committed.

use crate::config::NatsConfig;
use crate::pipeline::{
    count_received, new_alert_row, source_label, AnalysisMsg, IngestCmd, JournalCmd, QueuedAlert,
    Shared, WriteCmd,
};
use crate::queue::{Queue, QueueIo, QueueWorker};
use async_nats::jetstream::{self, consumer::pull, kv, stream};
use bytes::Bytes;
use fa_analyze::engine::Analyzer;
use fa_analyze::incident::entity_of;
use fa_model::Alert;
use fa_store::{to_nanos, Inserted, NewAlert, Store};
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header carrying when the alert was received (nanoseconds since the epoch).
const RECEIVED_AT: &str = "Fa-Received-At";
/// JetStream drops a message whose `Nats-Msg-Id` (the alert's uuid) it saw within this long:
/// a sender's retry of an acknowledged request is a duplicate.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// A message not acknowledged within this long is delivered again (to the same consumer).
const ACK_WAIT: Duration = Duration::from_secs(120);
const FETCH_BATCH: usize = 512;
const FETCH_WAIT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("connecting to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("JetStream: {what}: {message}")]
    JetStream { what: String, message: String },
    #[error("the analysis thread has stopped")]
    AnalysisStopped,
}

fn js_err(what: impl Into<String>) -> impl FnOnce(&dyn std::fmt::Display) -> NatsError {
    let what = what.into();
    move |e| NatsError::JetStream {
        what,
        message: e.to_string(),
    }
}

macro_rules! js {
    ($e:expr, $what:expr) => {
        $e.map_err(|e| js_err($what)(&e))
    };
}

/// Names of everything this deployment uses in NATS, from `nats.prefix`.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_string(),
        }
    }
    pub fn stream(&self) -> String {
        format!("{}_alerts", self.prefix)
    }
    pub fn subjects(&self) -> String {
        format!("{}.alerts.*", self.prefix)
    }
    pub fn subject(&self, partition: u32) -> String {
        format!("{}.alerts.{partition}", self.prefix)
    }
    pub fn consumer(&self, partition: u32) -> String {
        format!("{}_p{partition}", self.prefix)
    }
    pub fn bucket(&self) -> String {
        format!("{}_leases", self.prefix)
    }
    pub fn falco_stream(&self) -> String {
        format!("{}_falco", self.prefix)
    }
    pub fn router(&self) -> String {
        format!("{}_router", self.prefix)
    }
    pub fn lease_key(partition: u32) -> String {
        format!("p{partition}")
    }
    pub fn heartbeat_key(replica: &str) -> String {
        format!("r.{replica}")
    }
}

/// The partition of an entity (`container:…`, `pod:…`, `actor:…`, `host:…`). Stable across
/// versions and machines: every replica must agree.
pub fn partition_of(entity: &str, partitions: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(entity.as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// The `[nats]` settings a replica runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub names: Names,
    pub partitions: u32,
    pub lease_ttl: Duration,
    pub falco_subjects: Option<String>,
    pub replica: String,
}

impl Settings {
    pub fn from_config(c: &NatsConfig) -> Option<Settings> {
        let url = c.url.clone()?;
        let replica = c.replica.clone().unwrap_or_else(default_replica_name);
        Some(Settings {
            url,
            names: Names::new(&c.prefix),
            partitions: c.partitions,
            lease_ttl: c.lease_ttl,
            falco_subjects: c.falco_subjects.clone(),
            replica,
        })
    }
}

/// Host name, process id and a random suffix: unique per process, readable in the bucket.
fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(16)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".into());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// Connect and make sure the stream(s) and the lease bucket exist (creating them is
/// idempotent, so replicas starting together agree).
pub async fn connect(
    s: &Settings,
) -> Result<(async_nats::Client, jetstream::Context, kv::Store), NatsError> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("falco-analyst {}", s.replica))
        .connect(s.url.as_str())
        .await
        .map_err(|e| NatsError::Connect {
            url: s.url.clone(),
            message: e.to_string(),
        })?;
    let js = jetstream::new(client.clone());
    js!(
        js.get_or_create_stream(stream::Config {
            name: s.names.stream(),
            subjects: vec![s.names.subjects()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            description: Some("falco-analyst: alerts by partition of their entity".into()),
            ..Default::default()
        })
        .await,
        format!("creating the stream {}", s.names.stream())
    )?;
    if let Some(subjects) = &s.falco_subjects {
        js!(
            js.get_or_create_stream(stream::Config {
                name: s.names.falco_stream(),
                subjects: vec![subjects.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                description: Some("falco-analyst: Falcosidekick's NATS output".into()),
                ..Default::default()
            })
            .await,
            format!("creating the stream {}", s.names.falco_stream())
        )?;
    }
    // The bucket's stream made here as `create_key_value` would make it: that call first asks
    // for the account's limits, whose answer from NATS 2.9 this client cannot read.
    let bucket = s.names.bucket();
    js!(
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("falco-analyst: partition leases and replica heartbeats".into()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: s.lease_ttl,
            duplicate_window: s.lease_ttl.min(Duration::from_secs(120)),
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        })
        .await,
        format!("creating the bucket {bucket}")
    )?;
    let kv = js!(
        js.get_key_value(bucket.clone()).await,
        format!("opening the bucket {bucket}")
    )?;
    Ok((client, js, kv))
}

/// Delete everything a prefix created (tests, and `serve` never calls it).
pub async fn delete_all(url: &str, prefix: &str) -> Result<(), NatsError> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| NatsError::Connect {
            url: url.into(),
            message: e.to_string(),
        })?;
    let js = jetstream::new(client.clone());
    let names = Names::new(prefix);
    let _ = js.delete_stream(names.stream()).await;
    let _ = js.delete_stream(names.falco_stream()).await;
    let _ = js.delete_stream(format!("KV_{}", names.bucket())).await;
    let _ = client.flush().await;
    Ok(())
}

/// JetStream as the queue: a connection, the analyser (for the entity of text alerts), a store
/// reader (redelivery checks), the writer (dead letters of the router).
pub struct JetStreamQueue {
    pub settings: Settings,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub kv: kv::Store,
    pub analyzer: Analyzer,
    pub reader: Box<dyn Store>,
    pub writer: tokio::sync::mpsc::Sender<WriteCmd>,
    /// Ids this replica gives its alerts start above this (a block no other replica uses).
    pub id_floor: i64,
}

impl Queue for JetStreamQueue {
    fn name(&self) -> &'static str {
        "jetstream"
    }

    fn spawn(self: Box<Self>, io: QueueIo) -> std::io::Result<QueueWorker> {
        Ok(QueueWorker::Task(tokio::spawn(run(*self, io))))
    }
}

type Pending = Mutex<HashMap<i64, (u32, jetstream::Message)>>;

struct Ctx {
    s: Settings,
    js: jetstream::Context,
    kv: kv::Store,
    analyzer: Analyzer,
    reader: Arc<Mutex<Box<dyn Store>>>,
    to_analysis: std::sync::mpsc::Sender<AnalysisMsg>,
    shared: Arc<Shared>,
    /// Messages analysed and not yet stored, by alert id: acknowledged once stored.
    pending: Pending,
    next_id: AtomicI64,
}

impl Ctx {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (u32, jetstream::Message)>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn has_pending(&self, partition: u32) -> bool {
        self.pending().values().any(|(p, _)| *p == partition)
    }

    /// The partition of an alert: of its entity once the rule is named (a text alert's fields,
    /// and with them its entity, come from its rule).
    fn partition(&self, alert: &mut Alert) -> u32 {
        self.analyzer.name_rule(alert);
        partition_of(&entity_of(alert), self.s.partitions)
    }

    async fn publish(
        &self,
        partition: u32,
        row: NewAlert,
    ) -> Result<jetstream::context::PublishAckFuture, NatsError> {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", row.uuid.as_str());
        h.insert(RECEIVED_AT, row.received_at.to_string().as_str());
        js!(
            self.js
                .publish_with_headers(self.s.names.subject(partition), h, Bytes::from(row.body))
                .await,
            "publishing an alert"
        )
    }
}

async fn run(q: JetStreamQueue, io: QueueIo) {
    let QueueIo {
        mut cmds,
        to_analysis,
        shared,
    } = io;
    let ctx = Arc::new(Ctx {
        s: q.settings,
        js: q.js,
        kv: q.kv,
        analyzer: q.analyzer,
        reader: Arc::new(Mutex::new(q.reader)),
        to_analysis,
        shared,
        pending: Mutex::new(HashMap::new()),
        next_id: AtomicI64::new(q.id_floor),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let leases = tokio::spawn(lease_loop(ctx.clone(), stop.clone()));
    let router = ctx
        .s
        .falco_subjects
        .is_some()
        .then(|| tokio::spawn(route_loop(ctx.clone(), q.writer.clone())));
    while let Some(cmd) = cmds.recv().await {
        match cmd {
            JournalCmd::Append(ic) => {
                let ctx = ctx.clone();
                // Each request waits for its own acknowledgements; requests publish side by side.
                tokio::spawn(async move { publish_request(&ctx, ic).await });
            }
            JournalCmd::Remove(done) => acknowledge(&ctx, &done).await,
            JournalCmd::Stop => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(r) = router {
        r.abort();
    }
    let _ = leases.await;
    if let Err(e) = q.client.flush().await {
        tracing::warn!(error = %e, "flushing the last acknowledgements to NATS");
    }
    tracing::debug!("JetStream queue stopped");
}

/// Publish a request's alerts, each to its partition, and answer once JetStream has them all.
async fn publish_request(ctx: &Ctx, ic: IngestCmd) {
    let IngestCmd {
        alerts,
        parsed,
        reply,
    } = ic;
    let n = alerts.len();
    let result = publish_all(ctx, alerts, parsed).await;
    // JetStream holds them now; analysis takes queue room of its own when it reads them.
    ctx.shared.release(n);
    let _ = reply.send(result.map_err(|e| e.to_string()));
}

async fn publish_all(
    ctx: &Ctx,
    rows: Vec<NewAlert>,
    parsed: Vec<Alert>,
) -> Result<Vec<Inserted>, NatsError> {
    let mut acks = Vec::with_capacity(rows.len());
    for (row, mut alert) in rows.into_iter().zip(parsed) {
        let p = ctx.partition(&mut alert);
        acks.push(ctx.publish(p, row).await?);
    }
    let mut out = Vec::with_capacity(acks.len());
    for f in acks {
        let ack = js!(f.await, "waiting for a publish acknowledgement")?;
        out.push(if ack.duplicate {
            Inserted::Duplicate
        } else {
            Inserted::New(i64::try_from(ack.sequence).unwrap_or(i64::MAX))
        });
    }
    Ok(out)
}

/// The store has these alerts: their messages can go.
async fn acknowledge(ctx: &Ctx, done: &[(i64, String)]) {
    let msgs: Vec<jetstream::Message> = {
        let mut p = ctx.pending();
        done.iter()
            .filter_map(|(id, _)| p.remove(id).map(|(_, m)| m))
            .collect()
    };
    for m in msgs {
        // A lost acknowledgement means one more delivery, which the store check absorbs.
        if let Err(e) = m.ack().await {
            tracing::warn!(error = %e, "acknowledging a stored alert");
        }
    }
}

struct Held {
    revision: u64,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    releasing: bool,
}

fn entity_filter(partitions: u32, partition: u32) -> crate::pipeline::EntityFilter {
    Box::new(move |e: &str| partition_of(e, partitions) == partition)
}

/// Hold this replica's share of the partition leases: renew, take free ones up to the share,
/// hand extra ones over once their alerts are stored, release everything at shutdown.
async fn lease_loop(ctx: Arc<Ctx>, stop: Arc<AtomicBool>) {
    let s = &ctx.s;
    let n = s.partitions;
    let tick = (s.lease_ttl / 4).max(Duration::from_millis(250));
    let me = Bytes::from(s.replica.clone());
    let heartbeat = Names::heartbeat_key(&s.replica);
    // Replicas start their search at different partitions, so they rarely race for one.
    let start = partition_of(&s.replica, n);
    let mut held: BTreeMap<u32, Held> = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = ctx.kv.put(&heartbeat, me.clone()).await {
            tracing::warn!(error = %e, "NATS: writing this replica's heartbeat");
        }
        let mut lost = Vec::new();
        for (p, h) in held.iter_mut() {
            match ctx
                .kv
                .update(Names::lease_key(*p), me.clone(), h.revision)
                .await
            {
                Ok(r) => h.revision = r,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "NATS: partition lease lost");
                    lost.push(*p);
                }
            }
        }
        for p in lost {
            if let Some(h) = held.remove(&p) {
                h.stop.store(true, Ordering::Relaxed);
                // Its messages in analysis are stored but not acknowledged here: the new
                // holder finds them stored.
                ctx.pending().retain(|_, (q, _)| *q != p);
                let _ = ctx
                    .to_analysis
                    .send(AnalysisMsg::Forget(entity_filter(n, p)));
            }
        }
        // A consumer that failed gives its partition up, so that it is taken again afresh.
        let draining = ctx.shared.draining.load(Ordering::Relaxed);
        for (p, h) in held.iter_mut() {
            if !h.releasing && h.task.is_finished() {
                if !draining {
                    tracing::warn!(
                        partition = p,
                        "NATS: partition consumer stopped; handing it over"
                    );
                }
                h.releasing = true;
            }
        }
        let released: Vec<u32> = held
            .iter()
            .filter(|(p, h)| h.releasing && h.task.is_finished() && !ctx.has_pending(**p))
            .map(|(p, _)| *p)
            .collect();
        for p in released {
            if let Some(h) = held.remove(&p) {
                let _ = ctx
                    .to_analysis
                    .send(AnalysisMsg::Forget(entity_filter(n, p)));
                if let Err(e) = ctx
                    .kv
                    .delete_expect_revision(Names::lease_key(p), Some(h.revision))
                    .await
                {
                    tracing::warn!(partition = p, error = %e, "NATS: releasing a lease");
                }
                tracing::info!(partition = p, "NATS: partition handed over");
            }
        }
        if !draining {
            let live = live_replicas(&ctx.kv).await.max(1);
            let share = n.div_ceil(live) as usize;
            let active = held.values().filter(|h| !h.releasing).count();
            if active < share {
                let mut have = active;
                for i in 0..n {
                    let p = (start + i) % n;
                    if have >= share || held.contains_key(&p) {
                        continue;
                    }
                    if let Ok(revision) = ctx.kv.create(Names::lease_key(p), me.clone()).await {
                        tracing::info!(partition = p, "NATS: partition taken");
                        ctx.shared.metrics.nats_partitions_taken.inc();
                        let stop = Arc::new(AtomicBool::new(false));
                        let task = tokio::spawn(consume(ctx.clone(), p, stop.clone()));
                        held.insert(
                            p,
                            Held {
                                revision,
                                stop,
                                task,
                                releasing: false,
                            },
                        );
                        have += 1;
                    }
                }
            } else if active > share {
                for h in held
                    .values_mut()
                    .rev()
                    .filter(|h| !h.releasing)
                    .take(active - share)
                {
                    h.stop.store(true, Ordering::Relaxed);
                    h.releasing = true;
                }
            }
        }
        ctx.shared
            .metrics
            .nats_partitions_held
            .set(held.values().filter(|h| !h.releasing).count() as i64);
        tokio::time::sleep(tick).await;
    }
    ctx.shared.metrics.nats_partitions_held.set(0);
    // Shutdown: analysis and the writer have finished, the stored alerts are acknowledged;
    // the leases go at once so that the others need not wait for them to expire.
    for (p, h) in held {
        h.stop.store(true, Ordering::Relaxed);
        let _ = h.task.await;
        let _ = ctx
            .kv
            .delete_expect_revision(Names::lease_key(p), Some(h.revision))
            .await;
    }
    let _ = ctx.kv.delete(&heartbeat).await;
}

/// Replicas whose heartbeat has not expired.
async fn live_replicas(kv: &kv::Store) -> u32 {
    let mut n = 0;
    match kv.keys().await {
        Ok(mut keys) => {
            while let Some(k) = keys.next().await {
                if k.is_ok_and(|k| k.starts_with("r.")) {
                    n += 1;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "NATS: listing replicas"),
    }
    n
}

/// Analyse one partition while this replica holds it.
async fn consume(ctx: Arc<Ctx>, partition: u32, stop: Arc<AtomicBool>) {
    if let Err(e) = consume_inner(&ctx, partition, &stop).await {
        tracing::error!(partition, error = %e, "NATS: consuming a partition");
    }
}

async fn consume_inner(ctx: &Ctx, p: u32, stop: &AtomicBool) -> Result<(), NatsError> {
    let s = &ctx.s;
    // Before any of its alerts: state held about these entities may be stale.
    ctx.to_analysis
        .send(AnalysisMsg::TakeOver(entity_filter(s.partitions, p)))
        .map_err(|_| NatsError::AnalysisStopped)?;
    let stream = js!(
        ctx.js.get_stream(s.names.stream()).await,
        "the alert stream"
    )?;
    let name = s.names.consumer(p);
    // What the previous holder had not acknowledged is delivered again now, in order, rather
    // than after the acknowledgement wait.
    let _ = stream.delete_consumer(&name).await;
    let mut consumer: jetstream::consumer::PullConsumer = js!(
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: s.names.subject(p),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: i64::try_from(ctx.shared.queue_capacity).unwrap_or(i64::MAX),
                ..Default::default()
            })
            .await,
        format!("creating the consumer {name}")
    )?;
    // Messages already there may have been stored by the previous holder.
    let mut catch_up = js!(consumer.info().await, "consumer info")?.num_pending;
    // A batch takes its queue room at once: never more than the queue holds.
    let fetch = FETCH_BATCH.min(ctx.shared.queue_capacity).max(1);
    while !stop.load(Ordering::Relaxed) && !ctx.shared.draining.load(Ordering::Relaxed) {
        let mut batch = js!(
            consumer
                .fetch()
                .max_messages(fetch)
                .expires(FETCH_WAIT)
                .messages()
                .await,
            "fetching"
        )?;
        let mut msgs = Vec::new();
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => msgs.push(m),
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "NATS: fetching");
                    break;
                }
            }
        }
        if msgs.is_empty() {
            continue;
        }
        let mut decoded = Vec::with_capacity(msgs.len());
        for m in msgs {
            let check = catch_up > 0 || m.info().is_ok_and(|i| i.delivered > 1);
            catch_up = catch_up.saturating_sub(1);
            match decode(&m) {
                Some((alert, row)) => decoded.push((m, alert, row, check)),
                None => {
                    // Not an alert this service wrote: kept nowhere else, so not dropped
                    // silently (the log names it) but never retried either.
                    ctx.shared.metrics.analysis_errors.inc();
                    let _ = m.ack_with(jetstream::AckKind::Term).await;
                }
            }
        }
        let stored = already_stored(ctx, &decoded).await?;
        let mut fresh = Vec::with_capacity(decoded.len());
        for ((m, alert, row, _), s) in decoded.into_iter().zip(stored) {
            if s {
                ctx.shared.metrics.alerts_duplicate.inc();
                let _ = m.ack().await;
            } else {
                fresh.push((m, alert, row));
            }
        }
        if fresh.is_empty() {
            continue;
        }
        // Room in the analysis queue, given back by the writer once stored.
        let k = u32::try_from(fresh.len()).unwrap_or(u32::MAX);
        match ctx.shared.queue.clone().acquire_many_owned(k).await {
            Ok(permit) => permit.forget(),
            Err(_) => return Ok(()),
        }
        for (m, alert, row) in fresh {
            let id = ctx.next_id.fetch_add(1, Ordering::Relaxed) + 1;
            let uuid = row.uuid.clone();
            ctx.pending().insert(id, (p, m));
            let q = QueuedAlert {
                id,
                uuid,
                alert,
                row: Some(row),
            };
            if ctx
                .to_analysis
                .send(AnalysisMsg::Alert(Box::new(q)))
                .is_err()
            {
                ctx.shared.release(1);
                ctx.pending().remove(&id);
                return Err(NatsError::AnalysisStopped);
            }
        }
    }
    Ok(())
}

/// The alert a message carries, with its store row.
fn decode(m: &jetstream::Message) -> Option<(Alert, NewAlert)> {
    let received_at = m
        .headers
        .as_ref()
        .and_then(|h| h.get(RECEIVED_AT))
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or_else(|| to_nanos(chrono::Utc::now()));
    let body = match std::str::from_utf8(&m.payload) {
        Ok(b) => b.to_string(),
        Err(e) => {
            tracing::error!(subject = %m.subject, error = %e, "NATS: a message is not UTF-8");
            return None;
        }
    };
    let alert: Alert = match serde_json::from_str(&body) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(subject = %m.subject, error = %e, "NATS: a message is not an alert");
            return None;
        }
    };
    let Some(uuid) = alert.uuid.clone() else {
        tracing::error!(subject = %m.subject, "NATS: an alert without uuid");
        return None;
    };
    let row = new_alert_row(&alert, uuid, received_at, body);
    Some((alert, row))
}

/// For each decoded message, whether the store has its uuid (only those marked are looked up).
async fn already_stored(
    ctx: &Ctx,
    decoded: &[(jetstream::Message, Alert, NewAlert, bool)],
) -> Result<Vec<bool>, NatsError> {
    let asks: Vec<Option<String>> = decoded
        .iter()
        .map(|(_, _, r, check)| check.then(|| r.uuid.clone()))
        .collect();
    if asks.iter().all(Option::is_none) {
        return Ok(vec![false; decoded.len()]);
    }
    let reader = ctx.reader.clone();
    let r = tokio::task::spawn_blocking(move || {
        let store = reader.lock().unwrap_or_else(|p| p.into_inner());
        asks.iter()
            .map(|a| match a {
                Some(u) => store.alert_exists(u),
                None => Ok(false),
            })
            .collect::<Result<Vec<bool>, _>>()
    })
    .await
    .map_err(|e| js_err("store lookup")(&e))?;
    r.map_err(|e| js_err("store lookup")(&e))
}

/// Falcosidekick's NATS output publishes each alert to `falco.<priority>.<rule>`: any replica
/// moves them to their partitions (shared durable consumer: each message goes to one).
async fn route_loop(ctx: Arc<Ctx>, writer: tokio::sync::mpsc::Sender<WriteCmd>) {
    while !ctx.shared.draining.load(Ordering::Relaxed) {
        if let Err(e) = route(&ctx, &writer).await {
            tracing::error!(error = %e, "NATS: routing Falcosidekick's alerts; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn route(ctx: &Ctx, writer: &tokio::sync::mpsc::Sender<WriteCmd>) -> Result<(), NatsError> {
    let s = &ctx.s;
    let stream = js!(
        ctx.js.get_stream(s.names.falco_stream()).await,
        "the Falcosidekick stream"
    )?;
    let consumer: jetstream::consumer::PullConsumer = js!(
        stream
            .get_or_create_consumer(
                &s.names.router(),
                pull::Config {
                    durable_name: Some(s.names.router()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await,
        "the router consumer"
    )?;
    while !ctx.shared.draining.load(Ordering::Relaxed) {
        let mut batch = js!(
            consumer
                .fetch()
                .max_messages(FETCH_BATCH)
                .expires(FETCH_WAIT)
                .messages()
                .await,
            "fetching"
        )?;
        let mut acks = Vec::new();
        while let Some(m) = batch.next().await {
            let Ok(m) = m else { break };
            match fa_ingest::alert_from_bytes(&m.payload) {
                Ok(mut a) => {
                    let (uuid, body) = match crate::ingest::identify(&mut a, m.payload.len() + 64) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, "NATS: re-encoding an alert");
                            continue;
                        }
                    };
                    count_received(
                        &ctx.shared.metrics,
                        a.priority,
                        source_label(a.source.as_ref()),
                    );
                    let row = new_alert_row(&a, uuid, to_nanos(chrono::Utc::now()), body);
                    let p = ctx.partition(&mut a);
                    acks.push((m, ctx.publish(p, row).await?));
                }
                Err(e) => {
                    ctx.shared.metrics.rejected("invalid_json");
                    let letter = crate::ingest::dead_letter(
                        &format!("nats:{}", m.subject),
                        "invalid_json",
                        &e.to_string(),
                        m.payload.to_vec(),
                    );
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let kept = writer
                        .send(WriteCmd::DeadLetters {
                            dead: vec![letter],
                            reply: tx,
                        })
                        .await
                        .is_ok()
                        && matches!(rx.await, Ok(Ok(())));
                    if kept {
                        let _ = m.ack().await;
                    }
                }
            }
        }
        for (m, f) in acks {
            // Acknowledged once its partition has it; otherwise delivered again.
            match f.await {
                Ok(_) => {
                    let _ = m.ack().await;
                }
                Err(e) => tracing::warn!(error = %e, "NATS: routing an alert to its partition"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_always_has_the_same_partition_and_entities_spread() {
        assert_eq!(
            partition_of("container:abc", 16),
            partition_of("container:abc", 16)
        );
        // Fixed across versions and machines: replicas of different builds must agree.
        assert_eq!(partition_of("container:abc", 16), {
            (xxhash_rust::xxh3::xxh3_64(b"container:abc") % 16) as u32
        });
        let used: std::collections::HashSet<u32> = (0..200)
            .map(|i| partition_of(&format!("container:{i:012x}"), 16))
            .collect();
        assert_eq!(used.len(), 16);
    }
}
