//! `falco-analyst serve`: Falco and Falcosidekick post alerts here; every alert is appended to
//! the ingest journal before it is acknowledged, analysed from a bounded queue and stored with
//! its analysis, and what matters is sent to Slack or a webhook. See `docs/service.md`.
//!
//! [`start`] runs the service on the current tokio runtime and returns a handle (tests use it
//! in-process); [`run_blocking`] is what the CLI calls: its own runtime, logging, and a
//! graceful shutdown on SIGTERM or Ctrl-C.

pub mod app;
pub mod auth;
pub mod body;
pub mod config;
pub mod conn;
pub mod disk;
pub mod ingest;
pub mod metrics;
pub mod narration;
pub mod nats;
pub mod pipeline;
pub mod queue;
pub mod seen;
pub mod ui;

pub use config::{Config, ConfigError, LogFormat};

use anyhow::Context as _;
use app::{AppInner, ReadPool, StoreOpener};
use fa_analyze::engine::Analyzer;
use fa_llm::{FsCache, LlmConfig, NarrativeCache, Narrator};
use fa_sinks::notify::Notifier;
use fa_store::{
    journal, journal_dir, Journal, JournalSyncer, PgOptions, PgStore, PgUrl, SqliteOptions,
    SqliteStore, Store,
};
use pipeline::{AnalysisMsg, Correlator, InFlight, JournalCmd, Shared, WriteCmd, WriterConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// How long shutdown waits for narrations in progress.
const NARRATION_GRACE: Duration = Duration::from_secs(5);

/// A running service.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    pub tls: bool,
    shutdown: Arc<Notify>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
    shared: Arc<Shared>,
    disk: Arc<disk::DiskGuard>,
    max_connections: usize,
}

impl RunningServer {
    /// Begin a graceful shutdown: stop accepting, finish in-flight requests, drain the
    /// analysis queue (up to `server.shutdown_timeout`), commit, stop.
    pub fn shutdown(&self) {
        self.shutdown.notify_one();
    }

    /// Wait until the service has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the service task failed")?
    }

    /// Hold analysis off (alerts are still stored and queued) or let it resume.
    pub fn set_analysis_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    /// Alerts waiting for analysis.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue_depth()
    }

    /// Change the free-space reserve (`ingest.min_free_disk`) while running; it applies from
    /// the next measurement of free space (at most [`disk::CHECK_INTERVAL`] later).
    pub fn set_min_free_disk(&self, bytes: u64) {
        self.disk.set_min_free(bytes);
    }

    /// Connections allowed at once (`server.max_connections`, capped by the file limit).
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
}

fn sqlite_options(cfg: &Config) -> SqliteOptions {
    SqliteOptions {
        synchronous: cfg.store.synchronous,
        // The checkpointer thread keeps the WAL short; the writer steps in only past ~80 MiB.
        wal_autocheckpoint_pages: 20_000,
        // Lookups and inserts in the uuid index land on random pages: with 64 MiB (16 MiB per
        // reader) they stay cached instead of being read back through the kernel.
        cache_kib: 64 * 1024,
        ..SqliteOptions::default()
    }
}

/// How often the checkpointer flushes the journal to disk (the most a power failure can take
/// under `synchronous = normal`).
const JOURNAL_SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// How often it copies the WAL into the database. Pages written again and again (the ends of
/// indexes, clusters) are copied once per checkpoint, so fewer checkpoints copy fewer bytes: at
/// 20,000 alerts/s in requests of ten, nine runs each: median p99 20.4 ms every 250 ms, 15.9 ms
/// every 2 s, with a wide spread (10.4-26.7 ms); see BENCHMARKS.md.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// Passive checkpoints on their own connection until `stop`: the writer's commits then only
/// append to the WAL, and the copy into the database (with its fsyncs) runs beside them. The
/// journal's appends are flushed to disk here too (under `synchronous = normal`).
fn checkpointer(store: Option<SqliteStore>, journal: Option<JournalSyncer>, stop: Arc<AtomicBool>) {
    let mut checkpointed = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if checkpointed.elapsed() >= CHECKPOINT_INTERVAL {
            // PostgreSQL (no store here) checkpoints by itself.
            if let Some(Err(e)) = store.as_ref().map(|s| s.checkpoint_passive()) {
                tracing::warn!(error = %e, "background checkpoint");
            }
            checkpointed = std::time::Instant::now();
        }
        if let Some(Err(e)) = journal.as_ref().map(|j| j.sync()) {
            tracing::error!(error = %e, "flushing the journal to disk");
        }
        std::thread::sleep(JOURNAL_SYNC_INTERVAL);
    }
}

/// Open the store for writing: the SQLite file, or the PostgreSQL database when a URL is set.
fn open_writer(
    path: &std::path::Path,
    url: Option<&PgUrl>,
    opts: &SqliteOptions,
) -> anyhow::Result<Box<dyn Store>> {
    Ok(match url {
        Some(u) => Box::new(
            PgStore::open(u, &PgOptions::default())
                .with_context(|| format!("opening the store {u}"))?,
        ),
        None => Box::new(
            SqliteStore::open(path, opts)
                .with_context(|| format!("opening the store {}", path.display()))?,
        ),
    })
}

/// Start the service on the current runtime.
pub async fn start(cfg: Config) -> anyhow::Result<RunningServer> {
    cfg.validate()?;
    let addr = cfg.listen_addr()?;
    // Connections are budgeted from the file limit; first make it as large as allowed.
    let fd_limit = conn::raise_fd_limit();
    let retention = cfg.retention.policy()?;
    // Checked before anything starts: a missing API key or a bad URL is a start-up error.
    let llm = LlmConfig::from_args(&cfg.llm).context("LLM configuration")?;
    let kb_dirs = cfg.analysis.kb_dirs.clone();
    let analyzer = tokio::task::spawn_blocking(move || Analyzer::load(&kb_dirs))
        .await?
        .context("loading the knowledge base")?;
    let rules_files = cfg.analysis.rules_files.clone();
    let rules =
        tokio::task::spawn_blocking(move || fa_analyze::rules::RuleBook::load(&rules_files))
            .await?
            .context("loading the rules files")?;
    let analyzer = analyzer.with_rules(rules);

    // With NATS, JetStream is the durable queue and the journal is not used.
    let nats_settings = nats::Settings::from_config(&cfg.nats);
    let nats_conn = match &nats_settings {
        Some(s) => Some(nats::connect(s).await?),
        None => None,
    };
    let use_journal = nats_conn.is_none();

    let path = cfg.store.path.clone();
    let pg_url = cfg.store.url.clone();
    let opts = sqlite_options(&cfg);
    let synchronous = cfg.store.synchronous;
    let (writer_store, journal, backlog, in_flight, max_id) = {
        let (path, opts, pg_url) = (path.clone(), opts.clone(), pg_url.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut s = open_writer(&path, pg_url.as_ref(), &opts)?;
            // Where this writer's journal numbers new alerts from (on PostgreSQL, a range no
            // other replica uses).
            let max = s.claim_id_floor()?;
            if !use_journal {
                return Ok((s, None, Vec::new(), InFlight::default(), max));
            }
            let dir = journal_dir(&path);
            let (mut journal, records) =
                Journal::open(&dir, synchronous, journal::DEFAULT_SEGMENT_BYTES, max)
                    .with_context(|| format!("opening the journal {}", dir.display()))?;
            // A crash between the store's commit and the journal's clean-up leaves records
            // that are already stored.
            let mut stored = Vec::new();
            let mut backlog = Vec::new();
            for r in records {
                if s.alert_id_exists(r.seq)? {
                    stored.push(r.seq);
                } else {
                    backlog.push(r);
                }
            }
            journal.done(&stored)?;
            let in_flight = InFlight::default();
            in_flight.insert(backlog.iter().filter_map(|r| {
                #[derive(serde::Deserialize)]
                struct Id {
                    uuid: Option<String>,
                }
                let id: Id = serde_json::from_str(&r.body).ok()?;
                Some((id.uuid?, r.seq))
            }));
            Ok((s, Some(journal), backlog, in_flight, max))
        })
        .await??
    };
    let in_flight = Arc::new(in_flight);

    let opener: StoreOpener = {
        let (path, opts, pg_url) = (path.clone(), opts.clone(), pg_url.clone());
        Arc::new(move || match &pg_url {
            Some(u) => PgStore::open_reader(u, &PgOptions::default())
                .map(|s| Box::new(s) as Box<dyn Store>),
            None => SqliteStore::open_reader(&path, &opts).map(|s| Box::new(s) as Box<dyn Store>),
        })
    };
    let readers = Arc::new(ReadPool::new(opener.clone(), cfg.store.readers));

    let shared = Arc::new(Shared::new(cfg.analysis.queue_capacity));
    // Clusters acknowledged or marked false positive in the console do not notify.
    let muted = Arc::new(ui::Muted::load(readers.open_one()?.as_ref()));
    let (wtx, wrx) = mpsc::channel::<WriteCmd>(cfg.store.write_queue);
    let (itx, irx) = mpsc::channel::<JournalCmd>(cfg.store.write_queue);
    let (atx, arx) = std_mpsc::channel::<AnalysisMsg>();

    let notifier = Notifier::from_config(&cfg.notify).context("configuring notifications")?;
    let mut notify_task = None;
    let notify_pair = if notifier.is_empty() {
        None
    } else {
        let n = Arc::new(notifier);
        let (ntx, nrx) = mpsc::channel(10_000);
        notify_task = Some(tokio::spawn(notify_loop(
            n.clone(),
            nrx,
            shared.clone(),
            muted.clone(),
        )));
        Some((n, ntx))
    };

    let checkpoint_stop = Arc::new(AtomicBool::new(false));
    let checkpoint_thread = {
        let (path, opts, sqlite) = (path.clone(), opts.clone(), pg_url.is_none());
        let store = tokio::task::spawn_blocking(move || {
            sqlite
                .then(|| SqliteStore::open_checkpointer(&path, &opts))
                .transpose()
        })
        .await?
        .context("opening the checkpoint connection")?;
        let syncer = journal.as_ref().map(|j| j.syncer());
        let stop = checkpoint_stop.clone();
        std::thread::Builder::new()
            .name("fa-checkpoint".into())
            .spawn(move || {
                pipeline::background_priority();
                checkpointer(store, syncer, stop)
            })?
    };
    // The durable queue: the journal on one node, or JetStream shared by replicas.
    let queue: Box<dyn queue::Queue> = match (journal, nats_conn, nats_settings) {
        (Some(journal), _, _) => Box::new(queue::JournalQueue {
            journal,
            dedup: pipeline::Dedup {
                store: readers.open_one()?,
                in_flight: in_flight.clone(),
                seen: seen::Seen::new(opener.clone(), seen::MIN_CAPACITY),
            },
            max_batch: cfg.store.max_batch,
        }),
        (None, Some((client, js, kv)), Some(settings)) => {
            tracing::info!(url = %settings.url, replica = %settings.replica, partitions = settings.partitions, "NATS JetStream is the queue");
            Box::new(nats::JetStreamQueue {
                settings,
                client,
                js,
                kv,
                analyzer: analyzer.clone(),
                reader: readers.open_one()?,
                writer: wtx.clone(),
                id_floor: max_id,
            })
        }
        _ => anyhow::bail!("no queue configured"),
    };
    let queue_name = queue.name();
    let queue_worker = queue.spawn(queue::QueueIo {
        cmds: irx,
        to_analysis: atx.clone(),
        shared: shared.clone(),
    })?;
    let writer = {
        let (shared, itx) = (shared.clone(), itx.clone());
        let wcfg = WriterConfig {
            max_batch: cfg.store.max_batch,
            retention,
            retention_chunk: 2000,
        };
        std::thread::Builder::new()
            .name("fa-writer".into())
            .spawn(move || {
                pipeline::background_priority();
                pipeline::writer_loop(writer_store, wrx, itx, shared, wcfg)
            })?
    };
    let mut narration_task = None;
    let mut budget_task = None;
    let mut narration_tx = None;
    if let Some(llm) = llm {
        // `--llm-cache DIR` keeps answers in that directory as analyze does; by default they
        // go in the database, next to the reports they belong to.
        let cache: Box<dyn NarrativeCache> = match &cfg.llm.llm_cache {
            Some(dir) => Box::new(
                FsCache::open(dir)
                    .with_context(|| format!("opening the LLM cache {}", dir.display()))?,
            ),
            None => Box::new(narration::StoreCache::new(readers.open_one()?, wtx.clone())),
        };
        tracing::info!(
            model = %llm.label(),
            base_url = %llm.base_url,
            redaction = llm.redaction.as_str(),
            "LLM narrative enabled"
        );
        let narrator = Arc::new(Narrator::new(llm, cache).context("LLM client")?);
        let (ntx, nrx) = mpsc::channel(narration::QUEUE_CAPACITY);
        narration_tx = Some(ntx);
        narration_task = Some(tokio::spawn(narration::run(
            narrator.clone(),
            nrx,
            wtx.clone(),
            shared.clone(),
        )));
        // The request and token budgets are per day for a service, not per run.
        budget_task = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(narration::BUDGET_PERIOD);
            tick.tick().await;
            loop {
                tick.tick().await;
                narrator.start_budget_period();
            }
        }));
    }
    let correlator = Correlator::new(
        analyzer.clone(),
        readers.open_one()?,
        notify_pair,
        pipeline::AnalysisConfig {
            window: chrono::Duration::from_std(cfg.analysis.incident_window)
                .unwrap_or_else(|_| chrono::Duration::minutes(10)),
            max_open_incidents: cfg.analysis.max_open_incidents,
            public_url: cfg.server.public_url.clone(),
            store_interval: cfg.analysis.store_interval,
        },
    );
    let correlator = match narration_tx {
        Some(tx) => correlator.with_narration(tx),
        None => correlator,
    };
    let analysis = {
        let (shared, wtx) = (shared.clone(), wtx.clone());
        std::thread::Builder::new()
            .name("fa-analysis".into())
            .spawn(move || {
                pipeline::background_priority();
                pipeline::analysis_loop(arx, wtx, correlator, shared)
            })?
    };
    {
        let (shared, atx, reader) = (shared.clone(), atx.clone(), readers.open_one()?);
        std::thread::Builder::new()
            .name("fa-backlog".into())
            .spawn(move || {
                pipeline::background_priority();
                pipeline::feed_backlog(reader, max_id, backlog, atx, shared)
            })?;
    }
    let retention_task = {
        let (wtx, every) = (wtx.clone(), cfg.retention.interval);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
            loop {
                tick.tick().await;
                if wtx.try_send(WriteCmd::Retention).is_err() && wtx.is_closed() {
                    break;
                }
            }
        })
    };

    let disk = disk::DiskGuard::new(&path, cfg.ingest.min_free_disk.0);
    disk.check(&shared);
    let disk_task = tokio::spawn(disk.clone().watch(shared.clone()));
    let budget_kib = u32::try_from(cfg.ingest.max_body_memory.0 / 1024).unwrap_or(u32::MAX);
    let state = Arc::new(AppInner {
        shared: shared.clone(),
        journal: itx.clone(),
        in_flight: in_flight.clone(),
        writer: wtx.clone(),
        readers,
        analyzer,
        auth: auth::Auth::new(cfg.auth.token.as_deref(), cfg.auth.hmac_secret.as_deref()),
        max_body: cfg.server.max_body_bytes,
        limits: app::IngestLimits {
            max_dead_letters: cfg.ingest.max_dead_letters_per_request,
            max_alerts: cfg.ingest.max_alerts_per_request,
            pace: ingest::BodyPace {
                grace: cfg.server.body_timeout,
                min_rate: cfg.server.min_body_rate,
            },
            body_budget_kib: budget_kib,
        },
        body_budget: Arc::new(tokio::sync::Semaphore::new(budget_kib as usize)),
        unauthenticated: Arc::new(tokio::sync::Semaphore::new(
            cfg.ingest.max_unauthenticated_bodies,
        )),
        disk: disk.clone(),
    });
    let max_connections =
        conn::connection_budget(cfg.server.max_connections, fd_limit, cfg.store.readers);
    if max_connections < cfg.server.max_connections {
        tracing::info!(
            max_connections,
            configured = cfg.server.max_connections,
            fd_limit,
            "connections capped by the file-descriptor limit (the store and journal keep their share)"
        );
    }
    let limiter = conn::ConnLimiter::new(max_connections, shared.clone());
    let (idle_timeout, tls_on) = (cfg.server.idle_timeout, cfg.server.tls_cert.is_some());
    let limited = |limiter: &Arc<conn::ConnLimiter>| conn::LimitedAcceptor {
        inner: (),
        limiter: limiter.clone(),
        idle_timeout,
        tls: tls_on,
    };
    let header_timeout = cfg.server.header_read_timeout;
    let console = {
        let (db, opts, pg_url) = (path.clone(), opts.clone(), pg_url.clone());
        // Triage lives in the store; on PostgreSQL the console's store methods are not
        // implemented yet and answer "unsupported" (docs/service.md).
        let triage_store =
            tokio::task::spawn_blocking(move || open_writer(&db, pg_url.as_ref(), &opts)).await??;
        ui::Console::new(
            state.clone(),
            &cfg.ui,
            triage_store,
            muted,
            cfg.server.tls_cert.is_some(),
            path.clone(),
        )?
    };
    let app = app::router(state)
        .merge(ui::router(Arc::new(console)))
        .into_make_service_with_connect_info::<SocketAddr>();

    let handle = axum_server::Handle::<SocketAddr>::new();
    let tls = cfg.server.tls_cert.is_some();
    let (local_addr, serve) = if cfg.nats.no_listen {
        // Consume only: alerts come through NATS, nothing listens.
        (addr, None)
    } else {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let serve = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
            (Some(cert), Some(key)) => {
                let tls_cfg = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "loading the TLS certificate {} and key {}",
                            cert.display(),
                            key.display()
                        )
                    })?;
                let mut server = axum_server::from_tcp_rustls(listener, tls_cfg)?
                    .map(|inner| limited(&limiter).with_inner(inner))
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout);
                tokio::spawn(async move { server.serve(app).await })
            }
            _ => {
                let mut server = axum_server::from_tcp(listener)?
                    .acceptor(limited(&limiter).with_inner(axum_server::accept::DefaultAcceptor))
                    .handle(handle.clone());
                server
                    .http_builder()
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout);
                tokio::spawn(async move { server.serve(app).await })
            }
        };
        (local_addr, Some(serve))
    };
    shared.ready.store(true, Ordering::Relaxed);
    tracing::info!(%local_addr, listening = serve.is_some(), tls, db = %cfg.store.location(), queue = queue_name, queue_capacity = cfg.analysis.queue_capacity, "falco-analyst serving");

    let shutdown = Arc::new(Notify::new());
    let timeout = cfg.server.shutdown_timeout;
    let done = {
        let (shutdown, shared) = (shutdown.clone(), shared.clone());
        tokio::spawn(async move {
            shutdown.notified().await;
            tracing::info!("shutting down: finishing in-flight requests");
            shared.ready.store(false, Ordering::Relaxed);
            shared.draining.store(true, Ordering::Relaxed);
            handle.graceful_shutdown(Some(timeout));
            if let Some(serve) = serve {
                match serve.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "server error"),
                    Err(e) => tracing::error!(error = %e, "server task failed"),
                }
            }
            // In-flight work: what is queued for analysis is analysed, within the timeout.
            let deadline = Instant::now() + timeout;
            while shared.queue_depth() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let left = shared.queue_depth();
            if left > 0 {
                tracing::warn!(
                    alerts = left,
                    "shutdown timeout: alerts left unanalysed will be analysed at the next start"
                );
                shared.abort.store(true, Ordering::Relaxed);
            }
            let _ = atx.send(AnalysisMsg::Stop);
            drop(atx);
            tokio::task::spawn_blocking(move || analysis.join())
                .await
                .ok();
            // The analysis thread held the narration queue's sender: the task now finishes
            // what is queued. Narration is best effort; what is not done in time keeps its
            // deterministic report.
            if let Some(t) = budget_task {
                t.abort();
            }
            if let Some(t) = narration_task {
                let abort = t.abort_handle();
                if tokio::time::timeout(NARRATION_GRACE, t).await.is_err() {
                    abort.abort();
                    tracing::warn!("LLM narrations still pending at shutdown were dropped; their reports stay deterministic");
                }
            }
            retention_task.abort();
            disk_task.abort();
            let _ = wtx.send(WriteCmd::Stop).await;
            drop(wtx);
            tokio::task::spawn_blocking(move || writer.join())
                .await
                .ok();
            // After the writer: its last removals are applied before the ingest thread stops.
            let _ = itx.send(JournalCmd::Stop).await;
            drop(itx);
            queue_worker.join().await;
            checkpoint_stop.store(true, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || checkpoint_thread.join())
                .await
                .ok();
            if let Some(t) = notify_task {
                if tokio::time::timeout(Duration::from_secs(5), t)
                    .await
                    .is_err()
                {
                    tracing::warn!("notifications still pending at shutdown were dropped");
                }
            }
            tracing::info!("stopped");
            Ok(())
        })
    };
    Ok(RunningServer {
        local_addr,
        tls,
        shutdown,
        done,
        shared,
        disk,
        max_connections,
    })
}

async fn notify_loop(
    n: Arc<Notifier>,
    mut rx: mpsc::Receiver<fa_sinks::notify::Notification>,
    shared: Arc<Shared>,
    muted: Arc<ui::Muted>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let outcomes = tokio::select! {
            msg = rx.recv() => match msg {
                Some(note) if muted.holds(&note) => continue,
                Some(note) => n.notify(&note).await,
                None => break,
            },
            _ = tick.tick() => n.flush_due().await,
        };
        for (sink, o) in outcomes {
            pipeline::count_notification(&shared.metrics, sink.as_str(), o.label());
            if let fa_sinks::notify::Outcome::Failed { attempts, error } = &o {
                tracing::warn!(sink = sink.as_str(), attempts, error = %error, "notification failed");
            }
        }
    }
}

/// Install the tracing subscriber: text or JSON lines on stderr, filtered by `RUST_LOG` or
/// the configured level.
pub fn init_logging(cfg: &config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Run until SIGTERM or Ctrl-C, then shut down gracefully. For the CLI.
pub fn run_blocking(cfg: Config) -> anyhow::Result<()> {
    init_logging(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = start(cfg).await?;
        wait_for_signal().await;
        server.shutdown();
        server.wait().await
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
