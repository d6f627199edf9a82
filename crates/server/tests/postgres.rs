//! `serve` on PostgreSQL, in-process over real HTTP on loopback: alerts posted are found
//! through the API, survive a restart, and two replicas sharing the database serve each
//! other's alerts. Each test uses a schema of its own (random name, dropped at the end) on the
//! server at `FA_TEST_POSTGRES_URL`; without that variable the tests are skipped with a notice.

use fa_server::{start, Config, RunningServer};
use fa_store::PgUrl;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789";
const PG_ENV: &str = "FA_TEST_POSTGRES_URL";

/// Run blocking PostgreSQL client code off the test's runtime (the synchronous client panics
/// on a runtime thread; the store itself runs its connections on threads of their own).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// A schema for one test, dropped when it ends.
struct Schema {
    admin: String,
    name: String,
    url: PgUrl,
}

impl Schema {
    fn create(test: &str) -> Option<Schema> {
        let Some(admin) = std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty()) else {
            eprintln!("{PG_ENV} is not set: skipping the PostgreSQL service test `{test}`");
            return None;
        };
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write(test.as_bytes());
        let name = format!("fa_svc_{:016x}", h.finish());
        off_runtime(|| {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls)
                .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL does not answer: {e}"));
            c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        });
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = PgUrl::parse(&format!("{admin}{sep}options=-c%20search_path%3D{name}")).unwrap();
        Some(Schema { admin, name, url })
    }

    /// The first column of every row `sql` returns.
    fn column(&self, sql: &str) -> Vec<i64> {
        off_runtime(|| {
            let mut c = postgres::Client::connect(self.url.expose(), postgres::NoTls).unwrap();
            c.query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        })
    }

    fn count(&self, sql: &str) -> i64 {
        self.column(sql)[0]
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        off_runtime(|| {
            if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
            }
        });
    }
}

struct Svc {
    srv: RunningServer,
    base: String,
    client: reqwest::Client,
}

impl Svc {
    /// `serve --db <url>`, its journal in `dir`.
    async fn start(url: &PgUrl, dir: &std::path::Path, tweak: impl FnOnce(&mut Config)) -> Svc {
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".into();
        cfg.auth.token = Some(TOKEN.into());
        // As `--db postgres://...` sets it; the path only places the journal.
        cfg.store.path = dir.join("fa.db");
        cfg.store.set_db(url.expose()).unwrap();
        cfg.server.shutdown_timeout = Duration::from_secs(10);
        tweak(&mut cfg);
        let srv = start(cfg).await.unwrap();
        let base = format!("http://{}", srv.local_addr);
        Svc {
            srv,
            base,
            client: reqwest::Client::new(),
        }
    }

    async fn post(&self, body: String) -> u16 {
        self.client
            .post(format!("{}/api/v1/alerts", self.base))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The alert once analysed and stored (the API answers 202 while it is pending).
    async fn analysed(&self, uuid: &str) -> serde_json::Value {
        let t = Instant::now();
        loop {
            let (status, a) = self.get(&format!("/api/v1/alerts/{uuid}")).await;
            if status == 200 && a["analyzed"] == true {
                return a;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{uuid}: {status} {a}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn uuids(&self) -> Vec<String> {
        let (status, list) = self.get("/api/v1/alerts?limit=100").await;
        assert_eq!(status, 200, "{list}");
        let mut u: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["uuid"].as_str().unwrap().to_owned())
            .collect();
        u.sort();
        u
    }

    async fn stop(self) {
        self.srv.shutdown();
        self.srv.wait().await.unwrap();
    }
}

fn alert(uuid: &str, rule: &str, container: &str) -> String {
    serde_json::json!({
        "uuid": uuid,
        "rule": rule,
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-1",
        "time": "2024-05-07T18:54:19.341081180Z",
        "output": format!("18:54:19.341081180: Notice {rule} (user=root)"),
        "output_fields": {
            "container.id": container,
            "proc.name": "bash",
            "proc.cmdline": "bash -i",
            "proc.pname": "nginx",
            "user.name": "root",
            "k8s.ns.name": "web",
            "k8s.pod.name": "web-1"
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_posted_are_served_from_postgresql_and_survive_a_restart() {
    let Some(db) = Schema::create("alerts_survive_a_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Svc::start(&db.url, dir.path(), |_| {}).await;
    for (uuid, c) in [("pg-1", "c1"), ("pg-2", "c1"), ("pg-1", "c1")] {
        assert_eq!(
            s.post(alert(uuid, "Terminal shell in container", c)).await,
            200
        );
    }
    let a = s.analysed("pg-1").await;
    assert_eq!(a["report"]["id"], "pg-1");
    s.analysed("pg-2").await;
    assert_eq!(s.uuids().await, ["pg-1", "pg-2"]);
    let (_, clusters) = s.get("/api/v1/clusters").await;
    assert_eq!(clusters["items"][0]["count"], 2, "{clusters}");
    // The alerts are in PostgreSQL, and no SQLite database was created.
    assert_eq!(db.count("SELECT count(*) FROM alerts"), 2);
    assert!(!dir.path().join("fa.db").exists());
    s.stop().await;

    let s = Svc::start(&db.url, dir.path(), |_| {}).await;
    assert_eq!(s.uuids().await, ["pg-1", "pg-2"]);
    assert_eq!(s.analysed("pg-2").await["report"]["id"], "pg-2");
    // The restarted writer numbers new alerts in a block above the first run's ids.
    assert_eq!(
        s.post(alert("pg-3", "Terminal shell in container", "c1"))
            .await,
        200
    );
    s.analysed("pg-3").await;
    let ids = db.column("SELECT id FROM alerts ORDER BY id");
    assert!(ids[2] > 1 << fa_store::ID_BLOCK_BITS, "{ids:?}");
    assert_eq!(s.uuids().await, ["pg-1", "pg-2", "pg-3"]);
    s.stop().await;
}

/// Alerts acknowledged but not analysed when the service stopped (its journal) are analysed
/// and stored in PostgreSQL at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_backlog_is_stored_after_a_restart() {
    let Some(db) = Schema::create("a_journal_backlog_is_stored_after_a_restart") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Svc::start(&db.url, dir.path(), |c| {
        c.server.shutdown_timeout = Duration::from_millis(200)
    })
    .await;
    s.srv.set_analysis_paused(true);
    for i in 0..5 {
        assert_eq!(
            s.post(alert(&format!("j{i}"), "R", &format!("c{i}"))).await,
            200
        );
    }
    s.stop().await;
    assert_eq!(db.count("SELECT count(*) FROM alerts"), 0);
    let s = Svc::start(&db.url, dir.path(), |_| {}).await;
    for i in 0..5 {
        s.analysed(&format!("j{i}")).await;
    }
    assert_eq!(db.count("SELECT count(*) FROM alerts"), 5);
    s.stop().await;
}

/// Two replicas on one database: each serves the alerts the other received, and an alert
/// delivered to both is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_store() {
    let Some(db) = Schema::create("two_replicas_share_the_store") else {
        return;
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = tokio::join!(
        Svc::start(&db.url, d1.path(), |_| {}),
        Svc::start(&db.url, d2.path(), |_| {})
    );
    assert_eq!(a.post(alert("from-a", "R", "c1")).await, 200);
    assert_eq!(b.post(alert("from-b", "R", "c2")).await, 200);
    assert_eq!(a.post(alert("both", "R", "c3")).await, 200);
    assert_eq!(b.post(alert("both", "R", "c3")).await, 200);
    b.analysed("from-a").await;
    a.analysed("from-b").await;
    a.analysed("both").await;
    b.analysed("both").await;
    assert_eq!(a.uuids().await, ["both", "from-a", "from-b"]);
    assert_eq!(b.uuids().await, ["both", "from-a", "from-b"]);
    assert_eq!(
        db.count("SELECT count(*) FROM alerts WHERE uuid = 'both'"),
        1
    );
    assert_eq!(db.count("SELECT sum(count)::BIGINT FROM clusters"), 3);
    let (da, db_) = (a.srv.local_addr, b.srv.local_addr);
    assert_ne!(da, db_);
    a.stop().await;
    b.stop().await;
}

/// `FALCO_ANALYST_DB` (as `--db`) selects the backend by its form, keeps the journal's place,
/// and the configuration never shows the password.
#[test]
fn the_database_setting_selects_the_backend_and_hides_the_password() {
    let mut cfg = Config::default();
    cfg.apply_env(|k| {
        (k == "FALCO_ANALYST_DB").then(|| "postgres://fa:hunter2-pw@db.example:5432/fa".to_string())
    })
    .unwrap();
    let url = cfg.store.url.as_ref().unwrap();
    assert_eq!(url.expose(), "postgres://fa:hunter2-pw@db.example:5432/fa");
    assert_eq!(cfg.store.path, Config::default().store.path);
    let shown = format!("{cfg:?} {}", cfg.store.location());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("postgres://fa:***@db.example:5432/fa"),
        "{shown}"
    );
    cfg.store.set_db("sqlite:/var/lib/fa/fa.db").unwrap();
    assert!(cfg.store.url.is_none());
    assert_eq!(
        cfg.store.path,
        std::path::PathBuf::from("/var/lib/fa/fa.db")
    );
    assert!(cfg.store.set_db(" ").is_err());

    // The configuration file's `[store] url`.
    let file = Config::from_toml(
        "[store]\nurl = \"postgresql://fa:hunter2-pw@db/fa\"\n",
        "fa.toml",
    )
    .unwrap();
    assert_eq!(
        file.store.location().to_string(),
        "postgresql://fa:***@db/fa"
    );
    // (A TOML error quotes the offending line, as it does for every key: not asserted here.)
    let bad = Config::from_toml("[store]\nurl = \"mysql://db/fa\"\n", "fa.toml")
        .unwrap_err()
        .to_string();
    assert!(bad.contains("postgres://"), "{bad}");
}
