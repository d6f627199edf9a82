//! The service over real HTTP on loopback, in-process.

use fa_server::{start, Config, RunningServer};
use fa_store::{SqliteOptions, SqliteStore, Store};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789";

fn shared(name: &str) -> String {
    fa_testdata::read_to_string(&fa_testdata::alerts(name))
}

struct Svc {
    srv: Option<RunningServer>,
    base: String,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Svc {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Svc {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, tweak).await
    }

    async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Svc {
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".into();
        cfg.auth.token = Some(TOKEN.into());
        cfg.store.path = dir.path().join("fa.db");
        cfg.server.shutdown_timeout = Duration::from_secs(10);
        tweak(&mut cfg);
        let srv = start(cfg).await.unwrap();
        let scheme = if srv.tls { "https" } else { "http" };
        let base = format!("{scheme}://{}", srv.local_addr);
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Svc {
            srv: Some(srv),
            base,
            client,
            dir,
        }
    }

    fn srv(&self) -> &RunningServer {
        self.srv.as_ref().unwrap()
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    /// Wait until nothing is waiting for analysis.
    async fn settle(&self) {
        let t = Instant::now();
        while self.srv().queue_depth() > 0 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "analysis did not finish"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Permits come back when analyses are handed to the writer; wait for its commit.
        while self.get_json("/api/v1/stats").await["store"]["unanalyzed"] != 0 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "analysis was not stored"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) -> tempfile::TempDir {
        let srv = self.srv.take().unwrap();
        srv.shutdown();
        srv.wait().await.unwrap();
        self.dir
    }
}

fn db(dir: &Path) -> SqliteStore {
    SqliteStore::open_reader(&dir.join("fa.db"), &SqliteOptions::default()).unwrap()
}

fn alert(uuid: &str, rule: &str, prio: &str, container: &str) -> String {
    serde_json::json!({
        "uuid": uuid,
        "rule": rule,
        "priority": prio,
        "source": "syscall",
        "hostname": "node-1",
        "time": "2024-05-07T18:54:19.341081180Z",
        "output": format!("18:54:19.341081180: {prio} {rule} (user=root)"),
        "output_fields": {
            "container.id": container,
            "container.image.repository": "docker.io/library/nginx",
            "proc.name": "bash",
            "proc.cmdline": "bash -i",
            "proc.pname": "nginx",
            "user.name": "root",
            "proc.tty": 34816,
            "k8s.ns.name": "web",
            "k8s.pod.name": "web-1"
        }
    })
    .to_string()
}

#[tokio::test]
async fn authentication_is_required_and_can_be_a_token_basic_auth_or_a_signature() {
    let s = Svc::start(|c| c.auth.hmac_secret = Some("the-hmac-secret".into())).await;
    let body = alert("a1", "Terminal shell in container", "Notice", "c1");
    let url = format!("{}/api/v1/alerts", s.base);
    let r = s.client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("credentials"));
    let r = s
        .client
        .post(&url)
        .bearer_auth("wrong-token-0123456789")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401, "reading needs the token too");
    // A bad signature is refused and nothing is stored.
    let r = s
        .client
        .post(&url)
        .header("x-falco-analyst-signature", "sha256=00")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = s
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Falco's http_output: the token as the password of a URL's user info.
    let r = s
        .client
        .post(&url)
        .basic_auth("falco", Some(TOKEN))
        .body(alert("a2", "R", "Notice", "c1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b3 = alert("a3", "R", "Notice", "c1");
    let sig = fa_server::auth::sign("the-hmac-secret", b3.as_bytes());
    let r = s
        .client
        .post(&url)
        .header("x-falco-analyst-signature", sig)
        .body(b3)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Health endpoints are open.
    assert_eq!(
        s.client
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let m = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("falco_analyst_unauthorized_requests_total 4"),
        "{m}"
    );
    let dir = s.stop().await;
    assert_eq!(db(dir.path()).stats().unwrap().alerts, 3);
}

#[tokio::test]
async fn refuses_to_start_without_credentials_off_loopback() {
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    let e = start(cfg.clone()).await.err().unwrap();
    assert!(e.to_string().contains("no authentication"), "{e}");
    cfg.server.listen = "0.0.0.0:0".into();
    cfg.server.insecure_no_auth = true;
    let e = start(cfg).await.err().unwrap();
    assert!(e.to_string().contains("loopback"), "{e}");
}

#[tokio::test]
async fn garbage_gets_400_with_the_problem_and_is_dead_lettered() {
    let s = Svc::start(|_| {}).await;
    let r = s.post("/", "this is not json {").await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("rejected"), "{e}");
    assert_eq!(e["rejected"][0]["reason"], "unrecognised_line");

    // A mixed body: the good record is stored, the bad one dead-lettered, the answer says so.
    let mixed = format!(
        "{}\n{{\"rule\": \"x\", \"priority\": \"Loud\"}}\n",
        alert("m1", "R", "Notice", "c")
    );
    let r = s.post("/api/v1/alerts", mixed).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["accepted"], 1);
    assert_eq!(e["rejected"][0]["reason"], "invalid_field");
    assert!(e["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .contains("priority"));

    // Bad gzip, unsupported encoding, empty body, too large.
    let r = s
        .client
        .post(format!("{}/", s.base))
        .bearer_auth(TOKEN)
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("gzip"));
    let r = s
        .client
        .post(format!("{}/", s.base))
        .bearer_auth(TOKEN)
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(s.post("/", "  \n").await.status(), 400);
    let big = "x".repeat(5 * 1024 * 1024);
    let r = s.post("/", big).await;
    assert_eq!(r.status(), 413);

    let dl = s.get_json("/api/v1/dead-letters?limit=10").await;
    let items = dl["items"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["reason_kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "body_too_large",
            "unsupported_encoding",
            "bad_gzip",
            "invalid_field",
            "unrecognised_line"
        ]
    );
    assert_eq!(items[4]["raw"], "this is not json {");
    assert_eq!(items[3]["raw"], "{\"rule\": \"x\", \"priority\": \"Loud\"}");
    let m = s.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("falco_analyst_alerts_rejected_total{reason=\"unrecognised_line\"} 1"),
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_stores_nothing() {
    let s = Svc::start(|c| c.analysis.queue_capacity = 5).await;
    s.srv().set_analysis_paused(true);
    let lines: String = (0..4)
        .map(|i| alert(&format!("q{i}"), "R", "Notice", "c") + "\n")
        .collect();
    assert_eq!(s.post("/", lines).await.status(), 200);
    let more: String = (4..6)
        .map(|i| alert(&format!("q{i}"), "R", "Notice", "c") + "\n")
        .collect();
    let r = s.post("/", more.clone()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let e: serde_json::Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("nothing was stored"));
    // More alerts in one body than the queue holds at all: 413, never a retry loop.
    let huge: String = (0..6)
        .map(|i| alert(&format!("h{i}"), "R", "Notice", "c") + "\n")
        .collect();
    assert_eq!(s.post("/", huge).await.status(), 413);
    assert_eq!(s.get_json("/api/v1/stats").await["store"]["alerts"], 4);
    // Back-pressure, not loss: once analysis runs, the retry goes through.
    s.srv().set_analysis_paused(false);
    s.settle().await;
    assert_eq!(s.post("/", more).await.status(), 200);
    s.settle().await;
    let st = s.get_json("/api/v1/stats").await;
    assert_eq!(st["store"]["alerts"], 6);
    assert_eq!(st["store"]["unanalyzed"], 0);
    let m = s.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("falco_analyst_ingest_throttled_total{reason=\"queue_full\"} 1"),
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn redelivery_does_not_duplicate_with_or_without_a_uuid() {
    let s = Svc::start(|_| {}).await;
    let r: serde_json::Value = s
        .post("/", alert("dup-1", "R", "Notice", "c"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    let r: serde_json::Value = s
        .post("/", alert("dup-1", "R", "Notice", "c"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    // Falco's http_output sends no uuid: one is derived from the content.
    let falco = r#"{"output":"18:54:19.341081180: Warning Sensitive file opened (file=/etc/shadow)","priority":"Warning","rule":"Read sensitive file untrusted","time":"2024-05-07T18:54:19.341081180Z","output_fields":{"fd.name":"/etc/shadow","proc.name":"cat"},"hostname":"node-2","source":"syscall","tags":[]}"#;
    let a: serde_json::Value = s.post("/", falco).await.json().await.unwrap();
    let b: serde_json::Value = s.post("/", falco).await.json().await.unwrap();
    assert_eq!(a["accepted"], 1);
    assert_eq!(b["duplicates"], 1);
    assert_eq!(a["uuids"][0], b["uuids"][0]);
    let uuid = a["uuids"][0].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    s.settle().await;
    let got = s.get_json(&format!("/api/v1/alerts/{uuid}")).await;
    assert_eq!(got["alert"]["uuid"], uuid);
    assert_eq!(s.get_json("/api/v1/stats").await["store"]["alerts"], 2);
    s.stop().await;
}

#[tokio::test]
async fn an_alert_waiting_for_analysis_is_known_and_never_kept_twice() {
    let s = Svc::start(|_| {}).await;
    s.srv().set_analysis_paused(true);
    let counts = |r: serde_json::Value| (r["accepted"].as_u64(), r["duplicates"].as_u64());
    let body = alert("wait-1", "R", "Notice", "c");
    let r = s.post("/", body.clone()).await.json().await.unwrap();
    assert_eq!(counts(r), (Some(1), Some(0)));
    // Redelivered while it waits in the journal: a duplicate, in the same body or another.
    let r = s.post("/", body.clone()).await.json().await.unwrap();
    assert_eq!(counts(r), (Some(0), Some(1)));
    let twice = format!(
        "{}\n{}\n",
        alert("wait-2", "R", "Notice", "c"),
        alert("wait-2", "R", "Notice", "c")
    );
    let r = s.post("/", twice).await.json().await.unwrap();
    assert_eq!(counts(r), (Some(1), Some(1)));
    // The API knows it is there: 202 until it is analysed.
    let g = s.get("/api/v1/alerts/wait-1").await;
    assert_eq!(g.status(), 202);
    assert_eq!(g.headers()["retry-after"], "1");
    let g: serde_json::Value = g.json().await.unwrap();
    assert_eq!(g["analyzed"], false);
    let st = s.get_json("/api/v1/stats").await;
    assert_eq!(
        (
            st["store"]["alerts"].as_u64(),
            st["store"]["unanalyzed"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(s.get("/api/v1/alerts/never-sent").await.status(), 404);

    s.srv().set_analysis_paused(false);
    s.settle().await;
    let g = s.get("/api/v1/alerts/wait-1").await;
    assert_eq!(g.status(), 200);
    let g: serde_json::Value = g.json().await.unwrap();
    assert_eq!(g["analyzed"], true);
    // Now in the store: still a duplicate.
    let r = s.post("/", body).await.json().await.unwrap();
    assert_eq!(counts(r), (Some(0), Some(1)));
    let st = s.get_json("/api/v1/stats").await;
    assert_eq!(
        (
            st["store"]["alerts"].as_u64(),
            st["store"]["unanalyzed"].as_u64()
        ),
        (Some(2), Some(0))
    );
    s.stop().await;
}

/// The value of an unlabelled metric in a Prometheus text page.
fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{page}"))
}

/// Analysis commits while alerts keep arriving 25 ms apart, with this `store_interval`.
async fn analysis_commits_during_a_stream(interval: Duration) -> u64 {
    let s = Svc::start(|c| c.analysis.store_interval = interval).await;
    let commits = "falco_analyst_store_analysis_commit_seconds_count";
    for i in 0..40 {
        let r = s
            .post("/", alert(&format!("st{i}"), "R", "Notice", "c"))
            .await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let during = metric(&s.get("/metrics").await.text().await.unwrap(), commits);
    // Once the stream stops, what is waiting is stored without waiting for the interval.
    s.settle().await;
    s.stop().await;
    during
}

/// Under a steady stream, analyses are committed once per `store_interval`, not per batch.
#[tokio::test]
async fn analyses_are_committed_once_per_store_interval_under_a_stream() {
    let every_ms = analysis_commits_during_a_stream(Duration::from_millis(1)).await;
    let hourly = analysis_commits_during_a_stream(Duration::from_secs(3600)).await;
    assert!(every_ms >= 20, "1 ms interval: {every_ms} commits");
    // Only a pause of 50 ms or more in the stream (a slow test machine) hands over early.
    assert!(hourly <= 5, "1 h interval: {hourly} commits");
}

/// Once the filter of stored uuids is built, new alerts are not looked up in the store, and a
/// redelivery of a stored alert still is (and is a duplicate).
#[tokio::test]
async fn new_uuids_skip_the_store_lookup_once_the_filter_is_built() {
    let s = Svc::start(|_| {}).await;
    let lookups = "falco_analyst_uuid_store_lookups_total";
    // The filter is built in the background after the first request; until then (and for the
    // request that finds it ready) every uuid is looked up.
    let mut i = 0;
    loop {
        let r = s
            .post("/", alert(&format!("warm-{i}"), "R", "Notice", "c"))
            .await;
        assert_eq!(r.status(), 200);
        i += 1;
        let m = s.get("/metrics").await.text().await.unwrap();
        if metric(&m, "falco_analyst_uuid_filter_ready") == 1 {
            break;
        }
        assert!(i < 200, "the uuid filter was never built");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.settle().await;
    let before = metric(&s.get("/metrics").await.text().await.unwrap(), lookups);
    let fresh: String = (0..20)
        .map(|k| alert(&format!("fresh-{k}"), "R", "Notice", "c") + "\n")
        .collect();
    let r: serde_json::Value = s.post("/", fresh).await.json().await.unwrap();
    assert_eq!(r["accepted"], 20);
    let after_fresh = metric(&s.get("/metrics").await.text().await.unwrap(), lookups);
    assert_eq!(after_fresh, before, "new uuids went to the store");
    // warm-0 is in the store: the filter says "maybe", the store says yes.
    let r: serde_json::Value = s
        .post("/", alert("warm-0", "R", "Notice", "c"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["duplicates"], 1);
    let after_dup = metric(&s.get("/metrics").await.text().await.unwrap(), lookups);
    assert_eq!(after_dup, after_fresh + 1);
    s.stop().await;
}

#[tokio::test]
async fn accepts_every_shape_falco_and_falcosidekick_send_and_gzip() {
    let s = Svc::start(|_| {}).await;
    // Falcosidekick webhook payloads, one per request.
    for line in shared("falcosidekick-test-payloads.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let r = s.post("/", line.to_string()).await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    // Falco json_output lines as JSON Lines, gzip-compressed.
    let elastic = shared("elastic-falco-pipeline-test.jsonl");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(elastic.as_bytes()).unwrap();
    let r = s
        .client
        .post(format!("{}/api/v1/alerts", s.base))
        .bearer_auth(TOKEN)
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: serde_json::Value = r.json().await.unwrap();
    let n_elastic = elastic.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    assert_eq!(
        r["accepted"].as_u64().unwrap() + r["duplicates"].as_u64().unwrap(),
        n_elastic
    );
    // A JSON array.
    let arr = format!(
        "[{}, {}]",
        alert("arr-1", "R", "Notice", "c"),
        alert("arr-2", "R", "Notice", "c")
    );
    let r: serde_json::Value = s.post("/", arr).await.json().await.unwrap();
    assert_eq!(r["uuids"], serde_json::json!(["arr-1", "arr-2"]));
    s.stop().await;
}

/// Once the alerts are stored, the store writer, having nothing else to do, indexes them for
/// the console's search.
#[tokio::test]
async fn the_store_writer_indexes_stored_alerts_for_search_when_idle() {
    let s = Svc::start(|_| {}).await;
    for i in 0..5 {
        let a = alert(
            &format!("ix-{i}"),
            "Terminal shell in container",
            "Notice",
            "abc123",
        );
        assert_eq!(s.post("/", a).await.status(), 200);
    }
    s.settle().await;
    let dir = s.dir.path().to_path_buf();
    let store = db(&dir);
    let last = store.max_alert_id().unwrap();
    assert!(last > 0);
    // Indexing follows the write it comes after: wait for it, at most 30 s.
    let mut indexed = 0;
    for _ in 0..300 {
        indexed = store.search_indexed_upto().unwrap();
        if indexed >= last {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(indexed, last);
}

#[tokio::test]
async fn alerts_are_analysed_and_served_with_reports_clusters_and_incidents() {
    let s = Svc::start(|_| {}).await;
    for i in 0..3 {
        assert_eq!(
            s.post(
                "/",
                alert(
                    &format!("sh-{i}"),
                    "Terminal shell in container",
                    "Notice",
                    "abc123"
                )
            )
            .await
            .status(),
            200
        );
    }
    assert_eq!(
        s.post(
            "/",
            alert(
                "crit-1",
                "Read sensitive file untrusted",
                "Critical",
                "abc123"
            )
        )
        .await
        .status(),
        200
    );
    s.settle().await;

    let a = s.get_json("/api/v1/alerts/sh-0").await;
    assert_eq!(a["analyzed"], true);
    assert!(a["report"]["verdict"]["kind"].is_string(), "{a}");
    assert_eq!(a["report"]["id"], "sh-0");
    assert_eq!(a["report"]["cluster"]["count"], 3);
    // A repeat whose report was not kept is rebuilt from the stored alert and verdict.
    let b = s.get_json("/api/v1/alerts/sh-2").await;
    assert_eq!(b["report"]["event"]["rule"], "Terminal shell in container");
    assert!(b["report"]["verdict"]["kind"].is_string(), "{b}");
    assert_eq!(b["report"]["cluster"]["count"], 3);

    let md = s.get("/api/v1/alerts/sh-0?format=markdown").await;
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    assert!(md
        .text()
        .await
        .unwrap()
        .contains("Terminal shell in container"));
    let html = s.get("/api/v1/alerts/sh-0?format=html").await;
    assert!(html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert!(html.text().await.unwrap().contains("<html"));
    assert_eq!(s.get("/api/v1/alerts/nope").await.status(), 404);
    assert_eq!(s.get("/api/v1/alerts/sh-0?format=pdf").await.status(), 400);

    let list = s.get_json("/api/v1/alerts?min_priority=Error").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["uuid"], "crit-1");
    let list = s.get_json("/api/v1/alerts?rule=Terminal%20shell%20in%20container&namespace=web&host=node-1&limit=2").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let next = list["next_cursor"].as_str().unwrap();
    let rest = s
        .get_json(&format!(
            "/api/v1/alerts?rule=Terminal%20shell%20in%20container&limit=2&cursor={next}"
        ))
        .await;
    assert_eq!(rest["items"][0]["uuid"], "sh-0");
    assert!(rest.get("next_cursor").is_none());
    let r = s.get("/api/v1/alerts?priority=Loud").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("`priority`"));
    assert_eq!(s.get("/api/v1/alerts?colour=red").await.status(), 400);
    let window = s
        .get_json(
            "/api/v1/alerts?since=2024-05-07T00:00:00Z&until=2024-05-08T00:00:00Z&analyzed=true",
        )
        .await;
    assert_eq!(window["items"].as_array().unwrap().len(), 4);

    let clusters = s.get_json("/api/v1/clusters").await;
    let c = clusters["items"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    let shell = c
        .iter()
        .find(|c| c["rule"] == "Terminal shell in container")
        .unwrap();
    assert_eq!(shell["count"], 3);
    assert_eq!(shell["representative_uuid"], "sh-0");
    let fp = shell["fingerprint"].as_str().unwrap();
    assert_eq!(
        s.get_json(&format!("/api/v1/clusters/{fp}")).await["count"],
        3
    );
    assert_eq!(
        s.get_json(&format!("/api/v1/alerts?fingerprint={fp}"))
            .await["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Four alerts on one container within the window: an incident with a timeline.
    let mut incs = s.get_json("/api/v1/incidents").await;
    let t = Instant::now();
    while incs["items"].as_array().unwrap().is_empty() && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        incs = s.get_json("/api/v1/incidents").await;
    }
    let items = incs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{incs}");
    assert_eq!(items[0]["entity"], "container:abc123");
    assert_eq!(items[0]["alert_count"], 4);
    let id = items[0]["id"].as_str().unwrap();
    let inc = s.get_json(&format!("/api/v1/incidents/{id}")).await;
    // Repeats of one activity fold into one timeline entry with their count.
    let timeline = inc["timeline"].as_array().unwrap();
    let counts: u64 = timeline.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(counts, 4, "{inc}");
    assert!(timeline.len() < 4, "{inc}");
    let md = s
        .get(&format!("/api/v1/incidents/{id}?format=markdown"))
        .await
        .text()
        .await
        .unwrap();
    assert!(md.contains("container:abc123"));

    let m = s.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("falco_analyst_alerts_received_total{priority=\"Notice\",source=\"syscall\"} 3"),
        "{m}"
    );
    assert!(m.contains("falco_analyst_reports_total{verdict="));
    assert!(m.contains("falco_analyst_queue_depth 0"));
    assert!(m.contains("falco_analyst_store_commit_seconds_bucket"));
    s.stop().await;
}

#[tokio::test]
async fn restart_analyses_what_was_stored_but_not_analysed() {
    let s = Svc::start(|c| c.server.shutdown_timeout = Duration::from_millis(200)).await;
    s.srv().set_analysis_paused(true);
    for i in 0..20 {
        assert_eq!(
            s.post(
                "/",
                alert(&format!("r{i}"), "R", "Notice", &format!("c{i}"))
            )
            .await
            .status(),
            200
        );
    }
    // Shutdown cannot drain a paused queue: it times out and leaves the alerts unanalysed.
    let dir = s.stop().await;
    // Acknowledged, so kept: in the journal, not yet in the store.
    let kept =
        fa_store::journal::read_journal(&fa_store::journal_dir(&dir.path().join("fa.db"))).unwrap();
    assert_eq!(kept.len(), 20);
    assert_eq!(db(dir.path()).stats().unwrap().alerts, 0);
    let s = Svc::start_in(dir, |_| {}).await;
    s.settle().await;
    let t = Instant::now();
    loop {
        let st = s.get_json("/api/v1/stats").await;
        if st["store"]["unanalyzed"] == 0 && st["backlog_queued"] == true {
            assert_eq!(st["store"]["alerts"], 20);
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

/// The one incident stored, once it has `count` alerts.
async fn only_incident(s: &Svc, count: u64) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let incs = s.get_json("/api/v1/incidents").await;
        let items = incs["items"].as_array().unwrap();
        if items.len() == 1 && items[0]["alert_count"] == count
            || t.elapsed() > Duration::from_secs(10)
        {
            assert_eq!(items.len(), 1, "{incs}");
            assert_eq!(items[0]["alert_count"], count, "{incs}");
            let id = items[0]["id"].as_str().unwrap();
            return s.get_json(&format!("/api/v1/incidents/{id}")).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Post one Warning alert per (uuid, rule) on container abc123, each acknowledged.
async fn post_on_abc123(s: &Svc, alerts: &[(&str, &str)]) {
    for (uuid, rule) in alerts {
        let r = s.post("/", alert(uuid, rule, "Warning", "abc123")).await;
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn an_open_incident_continues_across_a_restart() {
    let s = Svc::start(|_| {}).await;
    post_on_abc123(
        &s,
        &[
            ("i0", "Terminal shell in container"),
            ("i1", "Read sensitive file untrusted"),
        ],
    )
    .await;
    s.settle().await;
    let before = only_incident(&s, 2).await;
    let dir = s.stop().await;

    // A version whose timeline entries did not name their cluster wrote this incident: the
    // restarted service finds each entry's cluster from its first alert.
    let mut legacy = before.clone();
    for e in legacy["timeline"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("cluster");
    }
    let mut store =
        SqliteStore::open(&dir.path().join("fa.db"), &SqliteOptions::default()).unwrap();
    let mut row = store
        .get_incident(before["id"].as_str().unwrap())
        .unwrap()
        .unwrap();
    row.body = legacy.to_string();
    store
        .write(&fa_store::WriteBatch {
            incidents: vec![row],
            ..Default::default()
        })
        .unwrap();
    drop(store);

    let s = Svc::start_in(dir, |_| {}).await;
    // A repeat of the first activity and a new one, on the same container.
    post_on_abc123(
        &s,
        &[
            ("i2", "Terminal shell in container"),
            ("i3", "Clear Log Activities"),
        ],
    )
    .await;
    s.settle().await;
    let after = only_incident(&s, 4).await;
    assert_eq!(after["id"], before["id"], "{after}");
    let timeline = after["timeline"].as_array().unwrap();
    let counts: Vec<u64> = timeline
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [2, 1, 1], "{after}");
    assert_eq!(timeline[0]["report_id"], "i0");
    assert_eq!(timeline[2]["report_id"], "i3");
    s.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_drains_queued_analysis() {
    let s = Svc::start(|_| {}).await;
    s.srv().set_analysis_paused(true);
    let body: String = (0..50)
        .map(|i| alert(&format!("g{i}"), "R", "Notice", "c") + "\n")
        .collect();
    assert_eq!(s.post("/", body).await.status(), 200);
    s.srv().set_analysis_paused(false);
    let dir = s.stop().await;
    let st = db(dir.path()).stats().unwrap();
    assert_eq!((st.alerts, st.unanalyzed), (50, 0));
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let s = Svc::start(|_| {}).await;
    let r = s
        .client
        .get(format!("{}/api/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/",
        "/api/v1/alerts",
        "/api/v1/alerts/{uuid}",
        "/api/v1/clusters",
        "/api/v1/clusters/{fingerprint}",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/dead-letters",
        "/api/v1/stats",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    // Every $ref points at a schema that exists.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
    }
    s.stop().await;
}

#[tokio::test]
async fn serves_tls_when_given_a_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make a test certificate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Svc::start_in(dir, |c| {
        c.server.tls_cert = Some(cert.clone());
        c.server.tls_key = Some(key.clone());
    })
    .await;
    assert!(s.base.starts_with("https://"));
    assert_eq!(
        s.post("/", alert("tls-1", "R", "Notice", "c"))
            .await
            .status(),
        200
    );
    // Plain HTTP to a TLS port does not get through.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", s.srv().local_addr))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    s.stop().await;
}

#[tokio::test]
async fn malicious_alerts_are_sent_to_the_webhook_with_a_link() {
    use axum::routing::post;
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let r2 = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let r = r2.clone();
            async move {
                r.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.ok() });

    let s = Svc::start(|c| {
        c.server.public_url = Some("https://fa.example".into());
        let mut w = fa_sinks::notify::SinkConfig::new(hook);
        w.filter.min_priority = Some(fa_model::Priority::Warning);
        c.notify.webhook = Some(w);
    })
    .await;
    // Noise below the minimum priority is not sent; three repeats of a critical alert on one
    // cluster make one message.
    assert_eq!(
        s.post(
            "/",
            alert("n-low", "Terminal shell in container", "Notice", "x1")
        )
        .await
        .status(),
        200
    );
    for i in 0..3 {
        assert_eq!(
            s.post(
                "/",
                alert(
                    &format!("n-crit-{i}"),
                    "Read sensitive file untrusted",
                    "Critical",
                    "x2"
                )
            )
            .await
            .status(),
            200
        );
    }
    s.settle().await;
    let t = Instant::now();
    while received.lock().unwrap().is_empty() && t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = received.lock().unwrap().clone();
    let alerts: Vec<&serde_json::Value> = got.iter().filter(|n| n["kind"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "{got:?}");
    let n = alerts[0];
    assert_eq!(n["rule"], "Read sensitive file untrusted");
    assert_ne!(n["verdict"], "benign");
    assert_eq!(
        n["link"],
        "https://fa.example/api/v1/alerts/n-crit-0?format=html"
    );
    assert_eq!(n["location"], "container:x2");
    s.stop().await;
}

/// An inventory agent's routine call home, from container `c` on host `h` at `time`.
fn agent_call(uuid: &str, h: u32, c: u32, time: &str) -> String {
    serde_json::json!({
        "uuid": uuid, "time": time, "rule": "Unexpected outbound connection destination",
        "priority": "Notice", "source": "syscall", "hostname": format!("node-{h}"),
        "output": "Disallowed outbound connection destination",
        "output_fields": {
            "container.id": format!("a1b2c3d4e5{c:02}"),
            "container.image.repository": "registry.example.com/ops/inventory-agent",
            "container.image.tag": "3.1.0", "proc.name": "inventory-agent",
            "proc.exepath": "/usr/bin/inventory-agent", "proc.cmdline": "inventory-agent --sync",
            "fd.name": "10.0.0.5:41000->10.96.0.1:443", "k8s.ns.name": "ops", "user.uid": 1000,
            "proc.tty": 0
        }
    })
    .to_string()
}

fn reason_texts(alert: &serde_json::Value) -> Vec<String> {
    alert["report"]["verdict"]["reasons"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Prevalence over days comes from the store: after a restart, one more alert of an activity
/// the store saw on six hosts over three days is judged routine, which the alert alone is not.
#[tokio::test]
async fn serve_reads_an_activitys_prevalence_from_the_store_across_a_restart() {
    let s = Svc::start(|_| {}).await;
    for i in 0..12u32 {
        let t = format!("2026-03-{:02}T{:02}:00:00Z", 1 + i / 4, i % 24);
        let r = s
            .post("/", agent_call(&format!("p{i}"), i % 6, i, &t))
            .await;
        assert_eq!(r.status(), 200);
    }
    s.settle().await;
    let dir = s.stop().await;

    let s = Svc::start_in(dir, |_| {}).await;
    let r = s
        .post("/", agent_call("p-after", 7, 40, "2026-03-04T12:00:00Z"))
        .await;
    assert_eq!(r.status(), 200);
    s.settle().await;
    let a = s.get_json("/api/v1/alerts/p-after").await;
    let reasons = reason_texts(&a);
    assert!(
        reasons.iter().any(|t| t.starts_with("routine")),
        "the stored history should make it routine: {a}"
    );
    s.stop().await;

    // The same alert in a fresh store has no history: not routine.
    let fresh = Svc::start(|_| {}).await;
    let r = fresh
        .post("/", agent_call("p-alone", 7, 40, "2026-03-04T12:00:00Z"))
        .await;
    assert_eq!(r.status(), 200);
    fresh.settle().await;
    let a = fresh.get_json("/api/v1/alerts/p-alone").await;
    assert!(
        !reason_texts(&a).iter().any(|t| t.starts_with("routine")),
        "{a}"
    );
    fresh.stop().await;
}

/// `serve` judges with the user's rules files: an exception in their local rules is named in
/// the verdict, as `analyze --rules` names it.
#[tokio::test]
async fn serve_judges_with_the_users_rules_files() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("falco_rules.local.yaml");
    std::fs::write(
        &rules,
        r#"
- rule: Terminal shell in container
  exceptions:
    - name: our_debug_image
      fields: [container.image.repository]
      values: [[docker.io/library/nginx]]
  override:
    exceptions: append
"#,
    )
    .unwrap();
    let s = Svc::start(|c| c.analysis.rules_files = vec![rules.clone()]).await;
    // `kubectl exec -it` into the container: the shell's parent is runc.
    let exec = alert("r-0", "Terminal shell in container", "Notice", "abc123")
        .replace(r#""proc.pname":"nginx""#, r#""proc.pname":"runc""#);
    assert!(exec.contains("runc"), "{exec}");
    let r = s.post("/", exec).await;
    assert_eq!(r.status(), 200);
    s.settle().await;
    let a = s.get_json("/api/v1/alerts/r-0").await;
    assert!(
        reason_texts(&a)
            .iter()
            .any(|t| t.contains("falco_rules.local.yaml") && t.contains("our_debug_image")),
        "{a}"
    );
    s.stop().await;
}
