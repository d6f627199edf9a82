//! The web console and the triage API over plain HTTP, against a real service on 127.0.0.1:
//! sign-in, roles, CSRF on every state change, rate limits, escaping, stored triage.

mod console_support;

use console_support::*;
use std::time::Duration;

async fn first_incident(b: &Browser, verdict: &str) -> String {
    let (st, html) = b.get(&format!("/ui/incidents?verdict={verdict}")).await;
    assert_eq!(st, 200);
    let i = html
        .find("href=\"/ui/incidents/")
        .unwrap_or_else(|| panic!("no incident link in {html}"));
    let rest = &html[i + "href=\"/ui/incidents/".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn cluster_fp(b: &Browser, verdict: &str) -> String {
    let (st, html) = b.get(&format!("/ui/clusters?verdict={verdict}")).await;
    assert_eq!(st, 200);
    let i = html.find("href=\"/ui/clusters/").expect("a cluster link");
    let rest = &html[i + "href=\"/ui/clusters/".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn pages_need_a_session_and_state_changes_need_its_csrf_token_and_role() {
    let s = Svc::start(|_| {}).await;
    s.ingest(&realistic(200, None)).await;
    s.settle().await;
    let c = &s.client;

    // `/` sends a browser to the console, the console to the sign-in page.
    let r = c.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/");
    let r = c
        .get(format!("{}/ui/incidents", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login?next=%2Fui%2Fincidents");
    // Posting alerts to `/` still works (the API is unchanged).
    let r = c
        .post(format!("{}/", s.base))
        .bearer_auth(TOKEN)
        .body(realistic(0, None)[0].clone())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    // Wrong password: refused, and no cookie.
    let r = c
        .post(format!("{}/ui/login", s.base))
        .form_(&[("user", "alice"), ("password", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());

    let alice = s.login("alice").await;
    let victor = s.login("victor").await;
    let r = c
        .get(format!("{}/ui/", s.base))
        .header("cookie", &alice.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<svg class=\"chart\""),
        "the overview draws its charts"
    );
    assert!(!html.contains("style=\""), "no inline style attribute");
    assert!(!html.contains("<script>"), "no inline script");

    let inc = first_incident(&alice, "malicious").await;
    let patch = |who: Option<&Browser>, csrf: Option<&str>, origin: Option<&str>| {
        let mut rq = c
            .patch(format!("{}/api/v1/incidents/{inc}/triage", s.base))
            .header("content-type", "application/json")
            .body(r#"{"status":"acknowledged","assignee":"alice","note":"on it"}"#);
        if let Some(b) = who {
            rq = rq.header("cookie", &b.cookie);
        }
        if let Some(t) = csrf {
            rq = rq.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            rq = rq.header("origin", o);
        }
        rq.send()
    };
    // No session, no token: 401. A session without (or with a wrong) CSRF token: 403.
    assert_eq!(patch(None, None, None).await.unwrap().status(), 401);
    assert_eq!(patch(Some(&alice), None, None).await.unwrap().status(), 403);
    assert_eq!(
        patch(Some(&alice), Some("0123456789abcdef"), None)
            .await
            .unwrap()
            .status(),
        403
    );
    // Another session's token is not this session's.
    assert_eq!(
        patch(Some(&alice), Some(&victor.csrf), None)
            .await
            .unwrap()
            .status(),
        403
    );
    // From another site: 403 even with the token.
    assert_eq!(
        patch(Some(&alice), Some(&alice.csrf), Some("http://evil.example"))
            .await
            .unwrap()
            .status(),
        403
    );
    // A viewer reads but does not change.
    assert_eq!(
        patch(Some(&victor), Some(&victor.csrf), None)
            .await
            .unwrap()
            .status(),
        403
    );
    let r = patch(Some(&alice), Some(&alice.csrf), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["triage"]["status"], "acknowledged");
    assert_eq!(v["triage"]["updated_by"], "alice");

    // The form on the page: without the CSRF field refused, with it applied.
    let form_url = format!("{}/ui/incidents/{inc}/triage", s.base);
    let r = c
        .post(&form_url)
        .header("cookie", &alice.cookie)
        .form_(&[("status", "resolved")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(&form_url)
        .header("cookie", &victor.cookie)
        .form_(&[("status", "resolved"), ("csrf", victor.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "viewer");
    let r = c
        .post(&form_url)
        .header("cookie", &alice.cookie)
        .form_(&[
            ("status", "resolved"),
            ("csrf", alice.csrf.as_str()),
            ("note", "<b>contained</b>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // The API token works for machines and is named in the audit trail.
    let r = c
        .patch(format!("{}/api/v1/incidents/{inc}/triage", s.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"assignee": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let audit: serde_json::Value = c
        .get(format!("{}/api/v1/incidents/{inc}/audit", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let who: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["actor"].as_str().unwrap(), a["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        who,
        vec![
            ("api-token", "assignee"),
            ("alice", "note"),
            ("alice", "status"),
            ("alice", "note"),
            ("alice", "assignee"),
            ("alice", "status"),
        ]
    );
    // The page shows the note escaped.
    let (_, page) = alice.get(&format!("/ui/incidents/{inc}")).await;
    assert!(
        page.contains("&lt;b&gt;contained&lt;&#x2f;b&gt;")
            || page.contains("&lt;b&gt;contained&lt;/b&gt;"),
        "note escaped"
    );
    // Bad bodies are refused with a reason.
    let r = c
        .patch(format!("{}/api/v1/incidents/{inc}/triage", s.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .patch(format!("{}/api/v1/incidents/nope/triage", s.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"status": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A cluster marked false positive: muted, and its exception offered.
    let fp = cluster_fp(&alice, "benign").await;
    let r = c
        .patch(format!("{}/api/v1/clusters/{fp}/triage", s.base))
        .header("cookie", &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .json(&serde_json::json!({"status": "false_positive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["exception"]
            .as_str()
            .unwrap_or("")
            .contains("exceptions:"),
        "{v}"
    );
    let (_, page) = alice.get(&format!("/ui/clusters/{fp}")).await;
    assert!(page.contains("notifications muted"));
    let (st, yaml) = alice
        .get(&format!("/ui/tuning/falco-exceptions.yaml?fp={fp}"))
        .await;
    assert_eq!(st, 200);
    assert!(
        yaml.contains("- rule:") && yaml.contains("override:"),
        "{yaml}"
    );

    // Logout needs the CSRF token too; afterwards the session is gone.
    let r = c
        .post(format!("{}/ui/logout", s.base))
        .header("cookie", &alice.cookie)
        .form_(&[])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{}/ui/logout", s.base))
        .header("cookie", &alice.cookie)
        .form_(&[("csrf", alice.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(alice.get("/ui/").await.0, 303);
    let r = c
        .patch(format!("{}/api/v1/incidents/{inc}/triage", s.base))
        .header("cookie", &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .json(&serde_json::json!({"status": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a dead session changes nothing");

    // Triage survives a restart.
    let dir = s.stop().await;
    let s = Svc::start_in(dir, |_| {}).await;
    let v: serde_json::Value = s
        .client
        .get(format!("{}/api/v1/clusters/{fp}/triage", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["triage"]["status"], "false_positive");
    let v: serde_json::Value = s
        .client
        .get(format!("{}/api/v1/incidents/{inc}/triage", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["triage"]["status"], "resolved");
    s.stop().await;
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_address_and_user() {
    let s = Svc::start(|_| {}).await;
    let try_login = |user: &'static str, pw: &'static str| {
        s.client
            .post(format!("{}/ui/login", s.base))
            .form_(&[("user", user), ("password", pw)])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(try_login("alice", "wrong").await.unwrap().status(), 401);
    }
    // The sixth try is refused before the password is even checked, right or wrong.
    let r = try_login("alice", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The address is blocked for other names too.
    assert_eq!(try_login("root", PASSWORD).await.unwrap().status(), 429);
    s.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle() {
    let s = Svc::start(|c| c.ui.session_idle = Duration::from_millis(300)).await;
    let b = s.login("victor").await;
    assert_eq!(b.get("/ui/incidents").await.0, 200);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(b.get("/ui/incidents").await.0, 303, "idle too long");
    s.stop().await;
}

#[tokio::test]
async fn without_users_the_console_explains_and_the_api_is_unchanged() {
    let s = Svc::start(|c| c.ui.users.clear()).await;
    let r = s
        .client
        .get(format!("{}/ui/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("no users yet") && html.contains("hash-password"),
        "{html}"
    );
    let r = s
        .client
        .post(format!("{}/ui/login", s.base))
        .form_(&[("user", "admin"), ("password", "admin")])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no default account"
    );
    assert_eq!(s.stats().await["store"]["alerts"], 0);
    s.stop().await;
}

#[tokio::test]
async fn hostile_alert_content_is_escaped_on_every_page() {
    let canary = "127.0.0.1:9";
    let s = Svc::start(|_| {}).await;
    s.ingest(&hostile(canary)).await;
    s.settle().await;
    let b = s.login("victor").await;
    let mut pages = vec![
        "/ui/".to_string(),
        "/ui/incidents".into(),
        "/ui/clusters".into(),
        "/ui/alerts".into(),
        "/ui/alerts?q=script".into(),
        "/ui/tuning".into(),
    ];
    let (_, list) = b.get("/ui/incidents").await;
    for part in list.split("href=\"/ui/incidents/").skip(1) {
        pages.push(format!(
            "/ui/incidents/{}",
            &part[..part.find('"').unwrap()]
        ));
    }
    let (_, list) = b.get("/ui/clusters").await;
    for part in list.split("href=\"/ui/clusters/").skip(1) {
        pages.push(format!("/ui/clusters/{}", &part[..part.find('"').unwrap()]));
    }
    let (_, list) = b.get("/ui/alerts").await;
    for part in list.split("href=\"/ui/alerts/").skip(1).take(5) {
        let uuid = &part[..part.find('"').unwrap()];
        pages.push(format!("/ui/alerts/{uuid}"));
        pages.push(format!("/ui/alerts/{uuid}/report"));
    }
    assert!(pages.len() > 12, "{pages:?}");
    for p in &pages {
        let (st, html) = b.get(p).await;
        assert_eq!(st, 200, "{p}");
        for bad in [
            "<script>window",
            "<img src",
            "onerror=\"",
            "<svg onload",
            "<iframe src=\"http",
            "<style>body",
            "<link rel=stylesheet",
            "href=\"javascript:",
            "</title><script>",
        ] {
            assert!(!html.contains(bad), "{p} contains `{bad}`");
        }
    }
    s.stop().await;
}
