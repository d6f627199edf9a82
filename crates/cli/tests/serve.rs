//! `falco-analyst serve` as a real process: refusal without credentials, and the crash test
//! (alerts under load, `kill -9` mid-stream, restart: every acknowledged uuid is stored and
//! analysed), then a graceful SIGTERM.

use fa_store::{SqliteOptions, SqliteStore, Store};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_falco-analyst");
const TOKEN: &str = "crash-test-token-0123456789";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(db: &Path, port: u16, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(db)
        .env("FALCO_ANALYST_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str, child: &mut Child) {
    let t = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited during start-up"
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alert(uuid: &str, i: usize) -> String {
    serde_json::json!({
        "uuid": uuid,
        "rule": if i.is_multiple_of(3) { "Terminal shell in container" } else { "Read sensitive file untrusted" },
        "priority": if i.is_multiple_of(3) { "Notice" } else { "Warning" },
        "source": "syscall",
        "hostname": format!("node-{}", i % 4),
        "time": "2024-05-07T18:54:19.341081180Z",
        "output": "18:54:19.341081180: Warning Sensitive file opened for reading (file=/etc/shadow)",
        "output_fields": {
            "container.id": format!("c{}", i % 16),
            "proc.name": "cat",
            "proc.cmdline": format!("cat /etc/shadow {i}"),
            "fd.name": "/etc/shadow",
            "user.name": "root"
        }
    })
    .to_string()
}

#[test]
fn serve_refuses_to_start_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("x.db"))
        .env_remove("FALCO_ANALYST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no authentication configured"), "{err}");
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure-no-auth",
            "--db",
        ])
        .arg(dir.path().join("x.db"))
        .env_remove("FALCO_ANALYST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn serve_refuses_an_llm_dry_run_and_a_public_api_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--llm",
            "ollama:llama3.1:8b",
            "--llm-dry-run",
            "--db",
        ])
        .arg(dir.path().join("x.db"))
        .env("FALCO_ANALYST_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--llm-dry-run") && err.contains("falco-analyst analyze"),
        "{err}"
    );
    assert!(!dir.path().join("x.db").exists(), "nothing was started");

    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--llm",
            "openai:gpt-4o-mini",
            "--db",
        ])
        .arg(dir.path().join("y.db"))
        .env("FALCO_ANALYST_TOKEN", TOKEN)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OPENAI_API_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_alert_survives_kill_9_and_is_analysed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fa.db");
    let log = dir.path().join("server.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut child = spawn(&db, port, &log);
    wait_ready(&client, &base, &mut child).await;

    // Eight senders post one alert per request as fast as they can.
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let mut senders = Vec::new();
    for s in 0..8 {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let uuid = format!("crash-{s}-{i}");
                let r = client
                    .post(format!("{base}/api/v1/alerts"))
                    .bearer_auth(TOKEN)
                    .body(alert(&uuid, i))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        acked.lock().unwrap().insert(uuid);
                    }
                    Ok(r) if r.status() == 429 || r.status() == 503 => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // The server is gone (killed): stop.
                    _ => break,
                }
            }
        }));
    }
    // Let a good number through, then kill -9 mid-stream.
    let t = Instant::now();
    while acked.lock().unwrap().len() < 2000 && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 2000,
        "only {} alerts acknowledged before the kill",
        acked.len()
    );

    // Restart on the same database: what was acknowledged is there and gets analysed.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(&db, port, &log);
    wait_ready(&client, &base, &mut child).await;
    let t = Instant::now();
    loop {
        let st: serde_json::Value = client
            .get(format!("{base}/api/v1/stats"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["backlog_queued"] == true && st["store"]["unanalyzed"] == 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "analysis after restart did not finish: {st}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = SqliteStore::open_reader(&db, &SqliteOptions::default()).unwrap();
    let mut missing = Vec::new();
    let mut unanalysed = Vec::new();
    for uuid in &acked {
        match store.get_alert(uuid).unwrap() {
            None => missing.push(uuid.clone()),
            Some(rec) if !rec.row.analyzed => unanalysed.push(uuid.clone()),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged alerts lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        unanalysed.is_empty(),
        "{} alerts never analysed",
        unanalysed.len()
    );
    // One of them through the API, with its report.
    let one = acked.iter().next().unwrap();
    let r: serde_json::Value = client
        .get(format!("{base}/api/v1/alerts/{one}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["analyzed"], true);
    assert!(r["report"]["verdict"]["kind"].is_string());

    // SIGTERM: a graceful stop with exit status 0.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("SIGTERM received"), "{logs}");
}
