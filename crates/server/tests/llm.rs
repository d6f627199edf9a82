//! The LLM narrative in the service, over real HTTP on loopback: the service in-process, and a
//! fake OpenAI-compatible API standing for the model.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fa_server::{start, Config, RunningServer};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789";

/// Values of the alerts below that must never reach the model at the standard level.
const RAW: &[&str] = &[
    "node-secret-7",
    "corp.example",
    "203.0.113.77",
    "10.42.7.19",
];

#[derive(Clone)]
struct Fake {
    /// `None`: answer; `Some(status)`: fail with it, always.
    fail: Option<u16>,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    async fn start(fail: Option<u16>) -> (Fake, String) {
        let fake = Fake {
            fail,
            bodies: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(fake.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.ok() });
        (fake, url)
    }

    fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

async fn answer(State(f): State<Fake>, body: String) -> Response {
    f.bodies.lock().unwrap().push(body);
    if let Some(status) = f.fail {
        return (StatusCode::from_u16(status).unwrap(), "upstream exploded").into_response();
    }
    let content = json!({
        "summary": "An interactive shell ran in a production container.",
        "analysis": "The parent process is a web server, which does not normally start shells.",
        "mitigations": [{
            "kind": "prevent",
            "title": "Forbid privilege escalation",
            "text": "Start containers so that no process can gain privileges.",
            "example": {"lang": "docker", "code": "docker run --security-opt no-new-privileges nginx"}
        }],
        "next_steps": ["Ask the workload's owners whether someone exec'd into the container."]
    });
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200}
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

struct Svc {
    srv: Option<RunningServer>,
    base: String,
    client: reqwest::Client,
}

impl Svc {
    async fn start(dir: &Path, llm_url: &str) -> Svc {
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".into();
        cfg.auth.token = Some(TOKEN.into());
        cfg.store.path = dir.join("fa.db");
        cfg.server.shutdown_timeout = Duration::from_secs(10);
        cfg.llm = fa_llm::LlmArgs {
            llm: Some("openai:test-model".into()),
            llm_base_url: Some(llm_url.into()),
            llm_timeout: Some(5.0),
            llm_rate: Some(1000.0),
            ..Default::default()
        };
        let srv = start(cfg).await.unwrap();
        Svc {
            base: format!("http://{}", srv.local_addr),
            srv: Some(srv),
            client: reqwest::Client::new(),
        }
    }

    fn srv(&self) -> &RunningServer {
        self.srv.as_ref().unwrap()
    }

    async fn post(&self, body: String) -> reqwest::StatusCode {
        self.client
            .post(format!("{}/api/v1/alerts", self.base))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn get_json(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }

    async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

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

    /// The alert's report once `done` holds for it.
    async fn report_when(&self, uuid: &str, done: impl Fn(&Value) -> bool) -> Value {
        let t = Instant::now();
        loop {
            let a = self.get_json(&format!("/api/v1/alerts/{uuid}")).await;
            if a["analyzed"] == true && done(&a["report"]) {
                return a;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the report of {uuid} did not get there: {a}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        let srv = self.srv.take().unwrap();
        srv.shutdown();
        srv.wait().await.unwrap();
    }
}

/// Cluster "shell": a shell under nginx; cluster "read": a sensitive file read. Host names and
/// addresses are in the alert's fields and in its output text.
fn alert(uuid: &str, cluster: &str) -> String {
    let (rule, prio, proc_name, cmdline, pname) = match cluster {
        "shell" => (
            "Terminal shell in container",
            "Notice",
            "bash",
            "bash -i",
            "nginx",
        ),
        _ => (
            "Read sensitive file untrusted",
            "Critical",
            "cat",
            "cat /etc/shadow",
            "bash",
        ),
    };
    json!({
        "uuid": uuid,
        "rule": rule,
        "priority": prio,
        "source": "syscall",
        "hostname": "node-secret-7.corp.example",
        "time": "2024-05-07T18:54:19.341081180Z",
        "output": format!("18:54:19.341081180: {prio} {rule} (user=root host=node-secret-7.corp.example connection=10.42.7.19:443->203.0.113.77:51514)"),
        "output_fields": {
            "container.id": "abc123def456",
            "container.image.repository": "docker.io/library/nginx",
            "proc.name": proc_name,
            "proc.cmdline": cmdline,
            "proc.pname": pname,
            "fd.name": "/etc/shadow",
            "fd.sip": "203.0.113.77",
            "fd.cip": "10.42.7.19",
            "user.name": "root",
            "proc.tty": 34816,
            "k8s.ns.name": "web",
            "k8s.pod.name": "web-1"
        }
    })
    .to_string()
}

fn metric(m: &str, line_start: &str) -> f64 {
    m.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn kept_reports_get_a_narrative_one_request_per_cluster_redacted_and_cached_in_the_store() {
    let (fake, url) = Fake::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let s = Svc::start(dir.path(), &url).await;
    let mut uuids = Vec::new();
    for i in 0..4 {
        for cluster in ["shell", "read"] {
            let uuid = format!("{cluster}-{i}");
            assert_eq!(s.post(alert(&uuid, cluster)).await, 200);
            uuids.push(uuid);
        }
    }
    s.settle().await;

    // Every report the service keeps gets the narrative; the verdict is the deterministic one.
    let mut narrated = 0;
    for uuid in &uuids {
        let first = uuid.ends_with("-0");
        let a = s
            .report_when(uuid, |r| {
                !r["narrative"].is_null() || (!first && r["verdict"]["kind"] == "benign")
            })
            .await;
        let r = &a["report"];
        assert_eq!(r["verdict"]["kind"], a["verdict"], "{a}");
        if r["narrative"].is_null() {
            continue;
        }
        narrated += 1;
        let n = &r["narrative"];
        assert_eq!(n["provider"], "openai");
        assert_eq!(n["model"], "test-model");
        assert_eq!(
            n["summary"],
            "An interactive shell ran in a production container."
        );
        assert_eq!(
            n["mitigations"][0]["example"]["code"],
            "docker run --security-opt no-new-privileges nginx"
        );
        let notes = r["notes"].to_string();
        assert!(!notes.contains("unavailable"), "{notes}");
    }
    assert!(narrated >= 2, "{narrated}");

    // One request per cluster, and no host name or address of the alerts in them.
    assert_eq!(fake.count(), 2);
    for body in fake.bodies.lock().unwrap().iter() {
        for raw in RAW {
            assert!(!body.contains(raw), "{raw} was sent: {body}");
        }
        assert!(
            body.contains("[HOST_1]") || body.contains("[IP_1]"),
            "{body}"
        );
    }
    let m = s.metrics().await;
    assert_eq!(
        metric(&m, "falco_analyst_llm_requests_total{outcome=\"ok\"}"),
        2.0,
        "{m}"
    );
    // Only stored reports are narrated (a cluster's first alert, and any alert that worsens
    // its cluster's verdict); the other repeats show their cluster's narrative.
    assert!(
        metric(
            &m,
            "falco_analyst_llm_requests_total{outcome=\"cache_hit\"}"
        ) <= f64::from(narrated - 2),
        "{m}"
    );
    assert_eq!(
        metric(&m, "falco_analyst_llm_request_seconds_count"),
        2.0,
        "{m}"
    );
    s.stop().await;

    // After a restart the cluster and its narrative come from the store: a new alert of a
    // known cluster shows that narrative and costs no request.
    let s = Svc::start(dir.path(), &url).await;
    let first_read = s.get_json("/api/v1/alerts/read-0").await;
    assert!(!first_read["report"]["narrative"].is_null());
    assert_eq!(s.post(alert("read-after-restart", "read")).await, 200);
    s.settle().await;
    let a = s
        .report_when("read-after-restart", |r| !r["narrative"].is_null())
        .await;
    assert_eq!(a["report"]["cluster"]["count"], 5, "{a}");
    assert_eq!(
        a["report"]["narrative"], first_read["report"]["narrative"],
        "{a}"
    );
    assert_eq!(fake.count(), 2, "the cluster's answer was not reused");
    s.stop().await;
}

#[tokio::test]
async fn a_failing_llm_leaves_deterministic_reports_with_a_note_and_ingest_answers() {
    let (fake, url) = Fake::start(Some(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let s = Svc::start(dir.path(), &url).await;
    for i in 0..3 {
        for cluster in ["shell", "read"] {
            assert_eq!(s.post(alert(&format!("{cluster}-{i}"), cluster)).await, 200);
        }
    }
    s.settle().await;
    // While the model fails (and retries), ingest and analysis go on.
    let t = Instant::now();
    for i in 3..6 {
        assert_eq!(s.post(alert(&format!("read-{i}"), "read")).await, 200);
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    s.settle().await;

    for uuid in ["shell-0", "read-0"] {
        let a = s
            .report_when(uuid, |r| {
                r["notes"].as_array().is_some_and(|n| {
                    n.iter().any(|n| {
                        n.as_str()
                            .is_some_and(|n| n.starts_with("LLM narrative unavailable"))
                    })
                })
            })
            .await;
        let r = &a["report"];
        assert!(r["narrative"].is_null(), "{r}");
        assert_eq!(r["verdict"]["kind"], a["verdict"]);
        assert!(r["summary"].as_str().is_some_and(|s| !s.is_empty()));
        let notes = r["notes"].to_string();
        assert!(notes.contains("HTTP 500"), "{notes}");
    }
    // Retries of one request per cluster, not one per alert.
    assert!(fake.count() <= 8, "{}", fake.count());
    let m = s.metrics().await;
    assert!(
        metric(
            &m,
            "falco_analyst_llm_requests_total{outcome=\"server_error\"}"
        ) >= 2.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "falco_analyst_llm_requests_total{outcome=\"ok\"}"),
        0.0
    );
    s.stop().await;
}
