//! Notifiers against a fake receiver on loopback.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use fa_model::{Priority, VerdictKind};
use fa_sinks::notify::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Fake {
    /// Statuses to answer, in order; 200 once they run out.
    script: Vec<u16>,
    received: Vec<(HeaderMap, serde_json::Value)>,
}

async fn receiver(fake: Arc<Mutex<Fake>>) -> String {
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(f): State<Arc<Mutex<Fake>>>,
                 headers: HeaderMap,
                 Json(v): Json<serde_json::Value>| async move {
                    let mut f = f.lock().unwrap();
                    f.received.push((headers, v));
                    let code = if f.script.is_empty() {
                        200
                    } else {
                        f.script.remove(0)
                    };
                    StatusCode::from_u16(code).unwrap()
                },
            ),
        )
        .with_state(fake);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    format!("http://{addr}/hook")
}

fn sink(url: &str) -> SinkConfig {
    SinkConfig {
        url: url.into(),
        headers: BTreeMap::from([("Authorization".to_string(), "Bearer s3cret".to_string())]),
        filter: Filter {
            min_priority: Some(Priority::Warning),
            exclude_benign: true,
            incidents_only: false,
        },
        rate_limit: Duration::from_secs(3600),
        retries: 2,
        timeout: Duration::from_secs(5),
    }
}

fn note(key: &str, prio: Priority, v: VerdictKind) -> Notification {
    Notification {
        kind: NotificationKind::Alert,
        key: key.into(),
        verdict: v,
        confidence: 0.8,
        rule: "Read sensitive file untrusted".into(),
        priority: Some(prio),
        location: "container:abc".into(),
        summary: "cat read /etc/shadow".into(),
        reasons: vec!["reads /etc/shadow".into()],
        time: None,
        alert_uuid: Some("u1".into()),
        incident_id: None,
        link: Some("http://127.0.0.1:2802/api/v1/alerts/u1?format=html".into()),
        folded: 0,
    }
}

#[tokio::test]
async fn webhook_retries_server_errors_then_delivers_with_headers() {
    let fake = Arc::new(Mutex::new(Fake {
        script: vec![503, 500],
        ..Default::default()
    }));
    let url = receiver(fake.clone()).await;
    let mut n = Notifier::from_config(&NotifyConfig {
        slack: None,
        webhook: Some(sink(&url)),
    })
    .unwrap();
    n.min_backoff = Duration::from_millis(5);
    let out = n
        .notify(&note("fp1", Priority::Critical, VerdictKind::Malicious))
        .await;
    assert_eq!(
        out,
        vec![(SinkKind::Webhook, Outcome::Sent { attempts: 3 })]
    );
    let f = fake.lock().unwrap();
    assert_eq!(f.received.len(), 3);
    let (h, body) = &f.received[2];
    assert_eq!(h.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(body["type"], "falco_analyst_notification");
    assert_eq!(body["verdict"], "malicious");
    assert_eq!(body["rule"], "Read sensitive file untrusted");
}

#[tokio::test]
async fn client_errors_are_not_retried_and_give_up_after_the_retry_budget() {
    let fake = Arc::new(Mutex::new(Fake {
        script: vec![400, 500, 500, 500],
        ..Default::default()
    }));
    let url = receiver(fake.clone()).await;
    let mut n = Notifier::from_config(&NotifyConfig {
        slack: None,
        webhook: Some(sink(&url)),
    })
    .unwrap();
    n.min_backoff = Duration::from_millis(5);
    let out = n
        .notify(&note("a", Priority::Critical, VerdictKind::Malicious))
        .await;
    assert!(
        matches!(&out[0].1, Outcome::Failed { attempts: 1, .. }),
        "{out:?}"
    );
    let out = n
        .notify(&note("b", Priority::Critical, VerdictKind::Malicious))
        .await;
    assert!(
        matches!(&out[0].1, Outcome::Failed { attempts: 3, .. }),
        "{out:?}"
    );
    assert_eq!(fake.lock().unwrap().received.len(), 4);
}

#[tokio::test]
async fn slack_gets_block_kit_filtered_and_rate_limited_per_cluster() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let url = receiver(fake.clone()).await;
    let n = Notifier::from_config(&NotifyConfig {
        slack: Some(sink(&url)),
        webhook: None,
    })
    .unwrap();
    // Filtered: too low a priority, and benign.
    assert_eq!(
        n.notify(&note("fp", Priority::Notice, VerdictKind::Malicious))
            .await[0]
            .1,
        Outcome::Filtered
    );
    assert_eq!(
        n.notify(&note("fp", Priority::Critical, VerdictKind::Benign))
            .await[0]
            .1,
        Outcome::Filtered
    );
    assert!(!n.wants(
        NotificationKind::Alert,
        Some(Priority::Critical),
        VerdictKind::Benign
    ));
    assert!(n.wants(
        NotificationKind::Alert,
        Some(Priority::Critical),
        VerdictKind::Suspicious
    ));
    // One message per cluster per interval.
    assert!(matches!(
        n.notify(&note("fp", Priority::Critical, VerdictKind::Malicious))
            .await[0]
            .1,
        Outcome::Sent { .. }
    ));
    assert_eq!(
        n.notify(&note("fp", Priority::Critical, VerdictKind::Malicious))
            .await[0]
            .1,
        Outcome::Folded
    );
    assert!(matches!(
        n.notify(&note("fp2", Priority::Error, VerdictKind::Suspicious))
            .await[0]
            .1,
        Outcome::Sent { .. }
    ));
    let f = fake.lock().unwrap();
    assert_eq!(f.received.len(), 2);
    let (_, body) = &f.received[0];
    assert!(body["blocks"].as_array().unwrap().len() >= 3);
    assert!(body["text"]
        .as_str()
        .unwrap()
        .contains("MALICIOUS alert: Read sensitive file untrusted"));
    let all = body.to_string();
    assert!(all.contains("container:abc"));
    assert!(all.contains("reads /etc/shadow"));
    assert!(all.contains("Full report"));
}
