//! Hostile clients against a real service on loopback, with fixed bounds.
//!
//! The memory and file-descriptor cases run the service in a child process (this test binary
//! started again with `--ignored --exact child_server`), so that its peak memory
//! (`/proc/PID/status` VmHWM) and its file limit (set to 256 before it starts) are its own.
//! The other cases start the service in-process. The cases run one at a time (their timing
//! bounds assume the machine's cores are theirs).
//!
//! Run: `cargo test -p fa-server --test hostile` (BENCHMARKS.md "Attack figures" lists what it
//! measured).

use fa_server::{start, Config, RunningServer};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "hostile-token-0123456789";
const SECRET: &str = "hostile-hmac-secret-0123";
const CHILD_CONFIG: &str = "FA_HOSTILE_CHILD_CONFIG";
const CHILD_ADDR: &str = "FA_HOSTILE_CHILD_ADDR";

/// Peak memory allowed to the service under the memory attacks.
const MAX_PEAK_RSS_KB: u64 = 300 * 1024;
/// Size of the store (database, WAL, journal) allowed after the dead-letter attack.
const MAX_STORE_BYTES: u64 = 100 * 1024 * 1024;
/// A normal client's answer while an attack runs.
const MAX_NORMAL_LATENCY: Duration = Duration::from_secs(5);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The service process the other tests start; does nothing unless started by one of them.
#[test]
#[ignore = "the server process started by the other tests of this file"]
fn child_server() {
    let (Some(cfg), Some(addr_file)) =
        (std::env::var_os(CHILD_CONFIG), std::env::var_os(CHILD_ADDR))
    else {
        return;
    };
    let cfg = Config::load(Path::new(&cfg)).expect("child config");
    fa_server::init_logging(&cfg.log);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let srv = start(cfg).await.expect("start");
        let tmp = PathBuf::from(&addr_file).with_extension("tmp");
        std::fs::write(&tmp, srv.local_addr.to_string()).expect("addr file");
        std::fs::rename(&tmp, &addr_file).expect("addr file");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal");
        term.recv().await;
        srv.shutdown();
        srv.wait().await.expect("clean stop");
    });
}

struct ChildServer {
    child: Child,
    addr: SocketAddr,
    base: String,
    dir: tempfile::TempDir,
}

impl ChildServer {
    /// Start the service in a child process with `extra` TOML appended to a base config and,
    /// when given, its file limit (soft and hard) set to `nofile` before it starts.
    fn spawn(extra: &str, nofile: Option<u64>) -> ChildServer {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("fa.db");
        let cfg = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"10s\"\n{extra}\n[auth]\ntoken = \"{TOKEN}\"\nhmac_secret = \"{SECRET}\"\n[store]\npath = {:?}\n[log]\nlevel = \"warn\"\n",
            db.display().to_string()
        );
        let cfg_path = dir.path().join("config.toml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let addr_file = dir.path().join("addr");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--ignored",
            "--exact",
            "child_server",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_CONFIG, &cfg_path)
        .env(CHILD_ADDR, &addr_file)
        .stdout(Stdio::null())
        .stderr(stderr);
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().unwrap();
        let t = Instant::now();
        let addr: SocketAddr = loop {
            if let Ok(s) = std::fs::read_to_string(&addr_file) {
                break s.trim().parse().unwrap();
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the child server did not start: {}",
                std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        ChildServer {
            child,
            addr,
            base: format!("http://{addr}"),
            dir,
        }
    }

    fn status(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} not in /proc status"))
    }

    /// Peak resident memory so far, KiB.
    fn peak_rss_kb(&self) -> u64 {
        self.status("VmHWM:")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) -> tempfile::TempDir {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(
                    st.success(),
                    "the service did not stop cleanly: {}",
                    self.stderr()
                );
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("the service did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

fn alert(uuid: &str) -> String {
    serde_json::json!({
        "uuid": uuid,
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-1",
        "time": "2024-05-07T18:54:19.341081180Z",
        "output": "18:54:19.341081180: Notice A shell was spawned in a container (user=root)",
        "output_fields": {"container.id": "c1", "proc.name": "bash", "proc.cmdline": "bash -i"}
    })
    .to_string()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Post one alert as a normal client; its latency. Panics unless acknowledged (2xx).
async fn normal_post(base: &str, uuid: &str) -> Duration {
    let t = Instant::now();
    let r = client()
        .post(format!("{base}/api/v1/alerts"))
        .bearer_auth(TOKEN)
        .body(alert(uuid))
        .send()
        .await
        .unwrap_or_else(|e| panic!("normal client: {e}"));
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "normal client got {status}: {body}");
    t.elapsed()
}

/// Every acknowledged alert is known to the service (stored, or kept and pending).
async fn assert_kept(base: &str, uuids: &[String]) {
    let c = client();
    for u in uuids {
        let r = c
            .get(format!("{base}/api/v1/alerts/{u}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 200 || r.status() == 202,
            "acknowledged alert {u} lost: {}",
            r.status()
        );
    }
}

/// A raw HTTP/1.1 request declaring a `declared`-byte body, of which `body_len` bytes of
/// `fill` are sent in 64 KiB writes (stopping at the first write error: the server answered
/// and closed). The status line's code, or None when the connection was closed without an
/// answer that could be read.
async fn raw_post(
    addr: SocketAddr,
    headers: &str,
    declared: usize,
    body_len: usize,
    fill: u8,
) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let head = format!(
        "POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\ncontent-length: {declared}\r\n{headers}\r\n"
    );
    s.write_all(head.as_bytes()).await.ok()?;
    let chunk = vec![fill; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        if s.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Issue cases 1 and 2: a flood of bad lines and bodies with fake signatures, against one
/// service process. Before: ~1 GB per bad-lines body and a 785 MB store; 200 fake-signature
/// bodies took 1.16 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_store_stay_bounded_under_bad_lines_and_fake_signatures() {
    let _serial = SERIAL.lock().await;
    let srv = ChildServer::spawn("", None);
    let base = srv.base.clone();
    let mut acked = Vec::new();

    // Case 1: three authenticated 4 MiB bodies of two million one-byte bad lines at once.
    let body = "x\n".repeat(2 * 1024 * 1024).into_bytes();
    let floods: Vec<_> = (0..3)
        .map(|_| {
            let (base, body) = (base.clone(), body.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let r = client()
                    .post(format!("{base}/api/v1/alerts"))
                    .bearer_auth(TOKEN)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let v: serde_json::Value = r.json().await.unwrap();
                (status, v, t.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let latency = normal_post(&base, "normal-during-flood").await;
    acked.push("normal-during-flood".to_string());
    assert!(
        latency < MAX_NORMAL_LATENCY,
        "a normal client waited {latency:?} during the flood"
    );
    let mut flood_secs = Vec::new();
    for f in floods {
        let (status, v, took) = f.await.unwrap();
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["rejected_count"], 2 * 1024 * 1024, "{v}");
        assert_eq!(v["dead_letters_kept"], 100, "{v}");
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("max_dead_letters_per_request"));
        flood_secs.push(took.as_secs_f64());
    }
    let peak_flood = srv.peak_rss_kb();

    // Case 2: 200 connections with a fake signature, each sending 4 MiB.
    let fake = format!("x-falco-analyst-signature: sha256={}\r\n", "0".repeat(64));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let fake = fake.clone();
            let addr = srv.addr;
            tokio::spawn(async move {
                raw_post(addr, &fake, 4 * 1024 * 1024, 4 * 1024 * 1024, b'{').await
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert!(
        statuses
            .keys()
            .all(|s| matches!(s, Some(401) | Some(503) | None)),
        "a fake signature was let through: {statuses:?}"
    );
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("limit_rejections_total{limit=\"max_unauthenticated_bodies\"}"),
        "the cap on unverified bodies was not reached: {statuses:?}"
    );
    let latency_sig = normal_post(&base, "normal-after-signatures").await;
    acked.push("normal-after-signatures".to_string());
    let peak = srv.peak_rss_kb();

    assert_kept(&base, &acked).await;
    let dead: serde_json::Value = client()
        .get(format!("{base}/api/v1/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = srv.stop();
    let store = dir_bytes(dir.path());
    println!(
        "attack figures: bad-lines floods took {flood_secs:?} s; normal client {:.0} ms during them, \
         {:.0} ms after 200 fake signatures {statuses:?}; peak RSS {} MB after the floods, {} MB after \
         the signatures; store {:.1} MB; stats {}",
        latency.as_secs_f64() * 1000.0,
        latency_sig.as_secs_f64() * 1000.0,
        peak_flood / 1024,
        peak / 1024,
        store as f64 / 1e6,
        dead["store"]
    );
    assert!(
        peak < MAX_PEAK_RSS_KB,
        "peak RSS {} MB (bound {} MB)",
        peak / 1024,
        MAX_PEAK_RSS_KB / 1024
    );
    assert!(store < MAX_STORE_BYTES, "store {store} bytes");
}

/// Issue case 3: 300 half-open connections trickling their headers, with a file limit of 256.
/// Before: every normal request timed out and the journal's fsync failed with "Too many open
/// files".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_and_a_small_file_limit_do_not_lock_out_a_normal_client() {
    let _serial = SERIAL.lock().await;
    let srv = ChildServer::spawn("", Some(256));
    let base = srv.base.clone();
    let addr = srv.addr;
    // Held open for the whole test: each sends one header byte a second.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slow = Vec::new();
    for _ in 0..300 {
        let stop = stop.clone();
        slow.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return;
            };
            if s.write_all(b"POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\n")
                .await
                .is_err()
            {
                return;
            }
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if s.write_all(b"x").await.is_err() {
                    // Closed by the server: come back, as an attacker would.
                    match TcpStream::connect(addr).await {
                        Ok(n) => s = n,
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut acked = Vec::new();
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let uuid = format!("normal-under-slowloris-{i}");
        let took = normal_post(&base, &uuid).await;
        worst = worst.max(took);
        acked.push(uuid);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_kept(&base, &acked).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in slow {
        let _ = t.await;
    }
    let metrics = client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stderr = srv.stderr();
    let _dir = srv.stop();
    println!(
        "attack figures: 300 slow connections, file limit 256: worst normal request {:.0} ms",
        worst.as_secs_f64() * 1000.0
    );
    assert!(
        worst < MAX_NORMAL_LATENCY,
        "a normal client waited {worst:?}"
    );
    assert!(
        !stderr.contains("Too many open files"),
        "the service ran out of file descriptors:\n{stderr}"
    );
    assert!(
        metrics.contains(
            "falco_analyst_limit_rejections_total{limit=\"max_connections_evicted_idle\"}"
        ),
        "idle connections were not evicted:\n{metrics}"
    );
}

struct InProc {
    srv: Option<RunningServer>,
    base: String,
    _dir: tempfile::TempDir,
}

async fn in_process(tweak: impl FnOnce(&mut Config)) -> InProc {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.auth.token = Some(TOKEN.into());
    cfg.store.path = dir.path().join("fa.db");
    cfg.server.shutdown_timeout = Duration::from_secs(10);
    tweak(&mut cfg);
    let srv = start(cfg).await.unwrap();
    let base = format!("http://{}", srv.local_addr);
    InProc {
        srv: Some(srv),
        base,
        _dir: dir,
    }
}

impl InProc {
    fn srv(&self) -> &RunningServer {
        self.srv.as_ref().unwrap()
    }

    fn addr(&self) -> SocketAddr {
        self.srv().local_addr
    }

    async fn stop(mut self) {
        let s = self.srv.take().unwrap();
        s.shutdown();
        s.wait().await.unwrap();
    }
}

/// Issue case 4: below the free-space reserve ingest answers 503 before writing anything,
/// says so exactly, /readyz is not ready, and ingest is back within seconds of the space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_disk_reserve_nothing_is_written_and_ingest_comes_back_with_the_space() {
    let _serial = SERIAL.lock().await;
    let s = in_process(|c| c.ingest.min_free_disk = fa_server::config::ByteSize(u64::MAX)).await;
    let c = client();
    let r = c
        .post(format!("{}/api/v1/alerts", s.base))
        .bearer_auth(TOKEN)
        .body(format!("{}\nnot an alert\n", alert("disk-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["stored_alerts"], serde_json::json!([]), "{v}");
    assert_eq!(v["dead_letters_kept"], 0, "{v}");
    assert!(v["error"].as_str().unwrap().contains("min_free_disk"));
    let ready = c.get(format!("{}/readyz", s.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let rv: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(rv["disk_low"], true);
    // Nothing of it was kept: no alert, no dead letter.
    let get = |p: &str| c.get(format!("{}{p}", s.base)).bearer_auth(TOKEN).send();
    assert_eq!(get("/api/v1/alerts/disk-1").await.unwrap().status(), 404);
    let dl: serde_json::Value = get("/api/v1/dead-letters")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dl["items"], serde_json::json!([]));

    // The space comes back (the reserve is given back): ingest within 5 s.
    s.srv().set_min_free_disk(0);
    let t = Instant::now();
    let mut acked = Vec::new();
    loop {
        let r = c
            .post(format!("{}/api/v1/alerts", s.base))
            .bearer_auth(TOKEN)
            .body(alert("disk-2"))
            .send()
            .await
            .unwrap();
        if r.status().is_success() {
            acked.push("disk-2".to_string());
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "ingest did not come back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back = t.elapsed();
    println!(
        "attack figures: ingest back {:.0} ms after the disk reserve was given back",
        back.as_secs_f64() * 1000.0
    );
    assert_eq!(
        c.get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_kept(&s.base, &acked).await;
    s.stop().await;
}

/// Issue case 7: a one-character HMAC secret is refused off loopback (tokens already needed
/// 16 characters).
#[tokio::test]
async fn a_short_hmac_secret_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    // Refused by validation, before anything is bound.
    cfg.server.listen = "0.0.0.0:0".into();
    cfg.auth.hmac_secret = Some("x".into());
    cfg.store.path = dir.path().join("fa.db");
    let e = start(cfg)
        .await
        .err()
        .expect("a short secret must be refused");
    assert!(e.to_string().contains("HMAC secret"), "{e}");
}

/// Issue case 8: every error answer is the documented JSON, axum's own rejections included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_json() {
    let _serial = SERIAL.lock().await;
    let s = in_process(|c| c.server.max_body_bytes = 1024).await;
    let c = client();
    // Raw bytes: an invalid UTF-8 path id cannot be sent through a URL type.
    for (req, want) in [
        ("GET /api/v1/alerts/%FF%FE HTTP/1.1", 400),
        ("GET /api/v1/clusters/%C3%28 HTTP/1.1", 400),
        ("GET /no/such/route HTTP/1.1", 404),
        ("DELETE /api/v1/alerts HTTP/1.1", 405),
    ] {
        let mut st = std::net::TcpStream::connect(s.addr()).unwrap();
        write!(
            st,
            "{req}\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        st.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(&format!("HTTP/1.1 {want}")),
            "{req}: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{req}: {head}"
        );
        let v: serde_json::Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("{req}: not JSON ({e}): {body}"));
        assert!(
            v["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{req}: {v}"
        );
    }
    let r = c
        .post(format!("{}/api/v1/alerts", s.base))
        .bearer_auth(TOKEN)
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("max_body_bytes"));
    s.stop().await;
}

/// Issue case 3, the timeouts: slow headers, a stalled body and an idle connection are cut
/// off; with every connection busy, a new one gets a 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_stalled_bodies_and_idle_connections_are_cut_off() {
    let _serial = SERIAL.lock().await;
    let s = in_process(|c| {
        c.server.header_read_timeout = Duration::from_secs(1);
        c.server.idle_timeout = Duration::from_secs(1);
        c.server.body_timeout = Duration::from_secs(1);
        c.server.min_body_rate = 1024;
        c.server.max_connections = 4;
    })
    .await;
    let addr = s.addr();
    let closed_within = |mut st: TcpStream, limit: Duration| async move {
        let mut buf = Vec::new();
        let t = Instant::now();
        let r = tokio::time::timeout(limit, st.read_to_end(&mut buf)).await;
        (
            r.is_ok(),
            t.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    };
    // Headers that never finish.
    let mut st = TcpStream::connect(addr).await.unwrap();
    st.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let (closed, took, _) = closed_within(st, Duration::from_secs(5)).await;
    assert!(closed, "a slow-header connection stayed open");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // A body that stops: 408 once it falls behind.
    let mut st = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 100000\r\n\r\n{{\"rule\""
    );
    st.write_all(head.as_bytes()).await.unwrap();
    let (closed, took, text) = closed_within(st, Duration::from_secs(6)).await;
    assert!(closed, "a stalled body kept its connection");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Four busy connections (bodies arriving) fill the service: the fifth gets a 503 at once.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut st = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 100000\r\n\r\n["
        );
        st.write_all(head.as_bytes()).await.unwrap();
        busy.push(st);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = TcpStream::connect(addr).await.unwrap();
    let (closed, took, text) = closed_within(st, Duration::from_secs(2)).await;
    assert!(closed && took < Duration::from_secs(1), "{took:?}");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("max_connections"), "{text}");
    drop(busy);
    // Four idle connections do not keep a real client out.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    normal_post(&s.base, "after-idle").await;
    s.stop().await;
}

/// Issue case 2, the bound itself: the signature is checked as the body streams in, a body
/// without a well-formed signature is refused before it is read, and a good one still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_bodies_are_verified_as_they_stream_and_unsigned_ones_are_not_read() {
    let _serial = SERIAL.lock().await;
    let s = in_process(|c| {
        c.auth.hmac_secret = Some(SECRET.into());
        c.ingest.max_unauthenticated_bodies = 1;
    })
    .await;
    let body = alert("signed-1");
    let sig = fa_server::auth::sign(SECRET, body.as_bytes());
    let r = client()
        .post(format!("{}/api/v1/alerts", s.base))
        .header("x-falco-analyst-signature", &sig)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A malformed signature: 401 before a byte of the body is read (none is sent: the answer
    // comes without it).
    let bad = "x-falco-analyst-signature: sha256=abcd\r\n";
    assert_eq!(raw_post(s.addr(), bad, 1 << 20, 0, b'x').await, Some(401));
    // One signed body in flight at most: a second at the same time gets a 503 at once.
    let fake = format!("x-falco-analyst-signature: sha256={}\r\n", "0".repeat(64));
    let mut first = TcpStream::connect(s.addr()).await.unwrap();
    first
        .write_all(
            format!(
                "POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n{fake}\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(raw_post(s.addr(), &fake, 10, 0, b'x').await, Some(503));
    drop(first);
    assert_kept(&s.base, &["signed-1".to_string()]).await;
    s.stop().await;
}
