//! The web console in a real browser (headless Chromium through chromedriver, driven with
//! fantoccini) against a real service on 127.0.0.1 with thousands of alerts: sign in, the
//! overview, filtering incidents, an incident, an alert's report, acknowledging, marking a
//! cluster false positive, the tuning file, live updates, signing out; hostile alert content
//! stays inert. Screenshots of each page go to docs/screenshots/.
//!
//! Skipped, with a notice, when /usr/bin/chromedriver is not installed
//! (`apt-get install -y chromium chromium-driver`).

mod console_support;

use console_support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that failed never closed its session: the browser it started (known by its
        // own fresh profile directory) would outlive chromedriver.
        let profile = format!("--user-data-dir={}", self._profile.path().display());
        for pid in browser_pids(&profile) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

/// Processes whose command line names this profile directory.
fn browser_pids(profile: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        cmd.contains(profile).then_some(pid)
    })
    .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    }
}

async fn browser(d: &Driver) -> Client {
    let profile = d._profile.path().display().to_string();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={profile}"),
                "--window-size=1400,1000",
            ],
        }),
    );
    ClientBuilder::rustls()
        .expect("TLS roots")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a WebDriver session")
}

/// Counts connections: every URL in the hostile payloads points here, so any count above
/// zero is a request that left the page.
async fn canary() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, hits)
}

fn screenshots_dir() -> PathBuf {
    let d = fa_testdata::repo("docs/screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Nothing hostile ran: no flag set, the title is ours.
async fn inert(c: &Client, hits: &AtomicUsize, where_: &str) {
    let pwned = c
        .execute(
            "return window.__pwned === undefined ? null : window.__pwned;",
            vec![],
        )
        .await
        .unwrap();
    assert!(pwned.is_null(), "script ran on {where_}: {pwned}");
    let title = c.title().await.unwrap();
    assert!(
        // The payloads set the title to `pwned`; shown as text it stays inside ours.
        title.ends_with("· falco-analyst"),
        "title changed on {where_}: {title}"
    );
    // Resource loads the page made: all from this origin.
    let foreign = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(foreign, serde_json::json!([]), "requests left {where_}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the canary was reached from {where_}"
    );
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e,
        Err(e) => panic!("`{css}` did not appear: {e}; {}", where_now(c).await),
    }
}

/// Where the browser is and what it shows, for a failure message.
async fn where_now(c: &Client) -> String {
    let url = c.current_url().await.map(|u| u.to_string());
    let text = c
        .execute(
            "return document.body ? document.body.innerText.slice(0, 600) : null;",
            vec![],
        )
        .await;
    format!("at {url:?}, showing {text:?}")
}

/// Submit a form by its button and wait until the page shows `css` with `text` in it (any
/// text when empty). After 10 s without it, the button is clicked once more if it is still
/// there (as a person would: a click in a real browser now and then starts no submission);
/// a second miss fails with where the browser is and what it shows.
async fn submit_and_wait(c: &Client, button: &str, css: &str, text: &str) {
    let shown = "const e = document.querySelector(arguments[0]); \
                 return !!e && e.innerText.includes(arguments[1]);";
    for attempt in 0..2 {
        // The first time the button must be there; after a miss, only while it still is.
        match c.find(Locator::Css(button)).await {
            Ok(b) => {
                if let Err(e) = b.click().await {
                    eprintln!("clicking `{button}`: {e}");
                }
            }
            Err(e) if attempt == 0 => panic!("`{button}`: {e}"),
            Err(_) => {}
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            let args = vec![serde_json::json!(css), serde_json::json!(text)];
            // Between documents the script fails: look again.
            if let Ok(serde_json::Value::Bool(true)) = c.execute(shown, args).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "`{css}` with {text:?} not there 10 s after clicking `{button}` (attempt {}): {}",
            attempt + 1,
            where_now(c).await
        );
    }
    panic!(
        "`{css}` with {text:?} did not appear after `{button}`: {}",
        where_now(c).await
    );
}

/// The element's visible text, read in the page by a script: a reference held across a
/// navigation or a live update goes stale, a query made at the moment of reading does not.
async fn text_of(c: &Client, css: &str) -> String {
    let t = Instant::now();
    let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;";
    loop {
        match c.execute(script, vec![serde_json::json!(css)]).await {
            Ok(serde_json::Value::String(text)) => return text,
            // Not there yet (or the page is between documents): look again.
            Ok(_) | Err(_) if t.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(v) => panic!("`{css}` did not appear: {v}"),
            Err(e) => panic!("`{css}`: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED the_console_in_a_real_browser: {CHROMEDRIVER} or {CHROMIUM} is missing \
             (apt-get install -y chromium chromium-driver)"
        );
        return;
    }
    let (canary_addr, hits) = canary().await;
    // Many sign-ins come from 127.0.0.1 in this test: the limiter must not get in the way.
    let s = Svc::start(|c| c.ui.login_failures = 1000).await;
    s.ingest(&realistic(2000, Some(&canary_addr))).await;
    s.ingest(&rejected(&canary_addr)).await;
    s.settle().await;
    let stats = s.stats().await;
    assert!(stats["store"]["alerts"].as_u64().unwrap() > 3000, "{stats}");

    let d = driver().await;
    let c = browser(&d).await;
    let shots = screenshots_dir();
    let base = s.base.clone();

    // Sign in: `/` leads to the sign-in page.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for(&c, "#user").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/ui/login"));
    shot(&c, &shots, "login").await;
    c.find(Locator::Css("#user"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys("wrong password")
        .await
        .unwrap();
    submit_and_wait(&c, "#login", "#login-error", "wrong user name or password").await;
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    submit_and_wait(&c, "#login", "#open-incidents", "").await;

    // The overview: charts, open incidents, top rules, noisy benign clusters, health.
    wait_for(&c, "#open-incidents").await;
    assert!(text_of(&c, "#open-incidents")
        .await
        .contains("open malicious incident"));
    assert_eq!(
        c.find_all(Locator::Css("svg.chart")).await.unwrap().len(),
        2
    );
    assert!(text_of(&c, "#top-rules")
        .await
        .contains("Read sensitive file untrusted"));
    assert!(text_of(&c, "#noisy")
        .await
        .contains("Read sensitive file untrusted"));
    assert!(text_of(&c, "#health").await.contains("Analysis queue"));
    inert(&c, &hits, "the overview").await;
    shot(&c, &shots, "overview").await;

    // The worst incident in three clicks: the malicious card, the first row, done.
    c.find(Locator::Css("a.card.v-malicious"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#incident-rows").await;
    let url = c.current_url().await.unwrap();
    assert!(
        url.query().unwrap_or("").contains("verdict=malicious"),
        "{url}"
    );
    // Filters without reload: choose a tactic; the results change in place.
    c.execute("document.body.dataset.marker = 'same-page';", vec![])
        .await
        .unwrap();
    let tactic = c.find(Locator::Css("input[name=tactic]")).await.unwrap();
    tactic.send_keys("execution").await.unwrap();
    c.execute(
        "document.querySelector('input[name=tactic]').dispatchEvent(new Event('change', {bubbles: true}));",
        vec![],
    )
    .await
    .unwrap();
    let t = Instant::now();
    loop {
        let u = c.current_url().await.unwrap();
        if u.query().unwrap_or("").contains("tactic=execution") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the filter did not apply"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let marker = c
        .execute("return document.body.dataset.marker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, "same-page", "the filter reloaded the page");
    let verdicts = c
        .execute(
            "return Array.from(document.querySelectorAll('#incident-rows tbody tr td:first-child')).map(td => td.textContent.trim());",
            vec![],
        )
        .await
        .unwrap();
    let verdicts = verdicts.as_array().unwrap();
    assert!(!verdicts.is_empty());
    assert!(verdicts.iter().all(|v| v == "malicious"), "{verdicts:?}");
    inert(&c, &hits, "the incident list").await;
    shot(&c, &shots, "incidents").await;

    // The incident: timeline, tactic chain, verdict with reasons.
    c.find(Locator::Css("#incident-rows a.incident-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#timeline").await;
    let chain = text_of(&c, "#tactic-chain").await;
    assert!(chain.to_lowercase().contains("execution"), "{chain}");
    assert!(text_of(&c, "#incident-verdict").await.contains("malicious"));
    let incident_url = c.current_url().await.unwrap();
    inert(&c, &hits, "the incident").await;
    shot(&c, &shots, "incident").await;

    // Acknowledge it.
    c.find(Locator::Css("#triage-status"))
        .await
        .unwrap()
        .select_by_value("acknowledged")
        .await
        .unwrap();
    c.find(Locator::Css("textarea[name=note]"))
        .await
        .unwrap()
        .send_keys("isolating the pod")
        .await
        .unwrap();
    submit_and_wait(&c, "#triage-save", "#incident-status", "acknowledged").await;
    assert!(c.source().await.unwrap().contains("isolating the pod"));

    // An alert's report, and its raw JSON one click away.
    c.find(Locator::Css("#timeline a.report-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#report-frame").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#raw-json"))
        .await
        .unwrap();
    // Let the framed report load before the picture.
    tokio::time::sleep(Duration::from_millis(800)).await;
    inert(&c, &hits, "the alert").await;
    shot(&c, &shots, "alert").await;
    let raw = c
        .find(Locator::Css("#raw-json"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    c.goto(&format!("{base}{raw}")).await.unwrap();
    assert!(c.source().await.unwrap().contains("output_fields"));
    c.goto(incident_url.as_str()).await.unwrap();
    wait_for(&c, "#timeline").await;

    // Mark the event-generator cluster false positive: its exception is offered.
    c.goto(&format!(
        "{base}/ui/clusters?verdict=benign&q=event-generator"
    ))
    .await
    .unwrap();
    c.find(Locator::Css("#cluster-rows a.cluster-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&c, "#triage-status")
        .await
        .select_by_value("false_positive")
        .await
        .unwrap();
    submit_and_wait(&c, "#triage-save", "#cluster-status", "notifications muted").await;
    let offer = text_of(&c, "#exception").await;
    assert!(
        offer.contains("false positive") && offer.contains("exceptions:"),
        "{offer}"
    );
    inert(&c, &hits, "the cluster").await;
    shot(&c, &shots, "cluster").await;

    // Tuning: choose every exception and download the rules file.
    c.goto(&format!("{base}/ui/tuning")).await.unwrap();
    wait_for(&c, "#tuning-rows").await;
    c.find(Locator::Css("#select-all"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let picked = c
        .execute(
            "return Array.from(document.querySelectorAll('input.pick')).filter(c => c.checked).length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(picked.as_u64().unwrap() >= 1, "{picked}");
    inert(&c, &hits, "tuning").await;
    shot(&c, &shots, "tuning").await;
    let yaml = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const f = document.getElementById('tuning-form');
             const q = new URLSearchParams(new FormData(f)).toString();
             fetch(f.getAttribute('action') + '?' + q, {credentials: 'same-origin'})
               .then(r => r.text()).then(done, e => done('ERROR ' + e));",
            vec![],
        )
        .await
        .unwrap();
    let yaml = yaml.as_str().unwrap();
    assert!(
        yaml.contains("- rule:")
            && yaml.contains("exceptions:")
            && yaml.contains("event-generator"),
        "{yaml}"
    );

    // Dead letters: the rejected bytes, escaped.
    c.goto(&format!("{base}/ui/dead-letters")).await.unwrap();
    wait_for(&c, "#dead-letters").await;
    c.execute(
        "document.querySelectorAll('details').forEach(d => d.open = true);",
        vec![],
    )
    .await
    .unwrap();
    assert!(c
        .source()
        .await
        .unwrap()
        .contains("&lt;script&gt;window.__pwned=7"));
    inert(&c, &hits, "dead letters").await;
    shot(&c, &shots, "dead-letters").await;

    // Every page with hostile content: searched, listed, opened.
    for path in [
        "/ui/alerts?q=pwned",
        "/ui/incidents?tactic=execution",
        "/ui/clusters?q=pwned",
        "/ui/alerts?min_priority=Critical",
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        wait_for(&c, "#results").await;
        inert(&c, &hits, path).await;
    }
    c.goto(&format!("{base}/ui/alerts?q=pwned")).await.unwrap();
    let links: Vec<String> = {
        let mut v = Vec::new();
        for a in c
            .find_all(Locator::Css("a.alert-link"))
            .await
            .unwrap()
            .iter()
            .take(6)
        {
            v.push(a.attr("href").await.unwrap().unwrap());
        }
        v
    };
    assert!(links.len() >= 4, "the hostile alerts are found: {links:?}");
    for l in &links {
        c.goto(&format!("{base}{l}")).await.unwrap();
        wait_for(&c, "#report-frame").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        inert(&c, &hits, l).await;
        c.goto(&format!("{base}{l}/report")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pwned = c
            .execute(
                "return window.__pwned === undefined ? null : window.__pwned;",
                vec![],
            )
            .await
            .unwrap();
        assert!(pwned.is_null(), "script ran in the report of {l}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the report of {l} reached the canary"
        );
    }
    let (_, hostile_incidents) = {
        c.goto(&format!("{base}/ui/incidents?verdict=malicious"))
            .await
            .unwrap();
        wait_for(&c, "#results").await;
        (
            0,
            c.find_all(Locator::Css("a.incident-link")).await.unwrap(),
        )
    };
    let mut hrefs = Vec::new();
    for a in hostile_incidents.iter().take(8) {
        hrefs.push(a.attr("href").await.unwrap().unwrap());
    }
    for h in &hrefs {
        c.goto(&format!("{base}{h}")).await.unwrap();
        wait_for(&c, "#timeline").await;
        inert(&c, &hits, h).await;
    }

    // Live: a new attack appears on the incident list without a reload.
    c.goto(&format!("{base}/ui/incidents")).await.unwrap();
    wait_for(&c, "#incident-rows").await;
    c.execute("document.body.dataset.marker = 'live';", vec![])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh: Vec<String> = realistic(0, None)
        .into_iter()
        .take(3)
        .map(|l| {
            l.replace("00000000-0000-4000-8000-", "44444444-0000-4000-8000-")
                .replace("a0c0ffee0000", "f00dfeedf00d")
        })
        .collect();
    s.ingest(&fresh).await;
    let t = Instant::now();
    loop {
        let n = c
            .execute(
                "return document.querySelectorAll('#live-feed li').length;",
                vec![],
            )
            .await
            .unwrap();
        if n.as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no live update arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.source().await.unwrap().contains("f00dfeedf00d"));
    let marker = c
        .execute("return document.body.dataset.marker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, "live", "the live update reloaded the page");

    // Sign out: back to the sign-in page, and the console is closed again.
    submit_and_wait(&c, "#logout", "#user", "").await;
    c.goto(&format!("{base}/ui/incidents")).await.unwrap();
    wait_for(&c, "#user").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/ui/login"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    c.close().await.unwrap();
    drop(d);
    s.stop().await;
}
