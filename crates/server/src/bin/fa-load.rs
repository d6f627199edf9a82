//! `fa-load`: a load generator for `falco-analyst serve`.
//!
//! N keep-alive HTTP/1.1 connections each post one Falco alert per request (as Falco's
//! `http_output` and Falcosidekick do) in a closed loop for a fixed time, and it reports
//! alerts/s and the latency distribution of acknowledged (2xx) requests. Every alert has a
//! unique uuid; rules, containers and commands repeat so clusters and incidents form as in a
//! real cluster.
//!
//! ```text
//! fa-load --url http://127.0.0.1:2802/api/v1/alerts --token "$TOKEN" --connections 32 --duration 20s
//! ```

use anyhow::{bail, Context as _};
use clap::Parser;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "fa-load", about = "Load generator for falco-analyst serve")]
struct Args {
    /// Ingest URL (http only)
    #[arg(long, default_value = "http://127.0.0.1:2802/api/v1/alerts")]
    url: String,
    /// Bearer token
    #[arg(long, env = "FALCO_ANALYST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Concurrent keep-alive connections
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to send (e.g. 10s, 1m)
    #[arg(long, default_value = "10s", value_parser = parse_secs)]
    duration: Duration,
    /// Not measured: sent first to warm the server up
    #[arg(long, default_value = "1s", value_parser = parse_secs)]
    warmup: Duration,
    /// Alerts per request (1 is what Falco and Falcosidekick send)
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Offer this many alerts per second in total (spread over the connections) instead of
    /// sending as fast as answers come back; latency then counts from when each request was
    /// due, so a stalled server is not hidden by the generator waiting for it
    #[arg(long)]
    rate: Option<f64>,
    /// Prefix of the generated uuids (make it unique per run to avoid duplicates)
    #[arg(long)]
    run_id: Option<String>,
    /// Print the result as one JSON object
    #[arg(long)]
    json: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    fa_sinks::notify::parse_duration(s)
}

const RULES: &[(&str, &str)] = &[
    ("Terminal shell in container", "Notice"),
    ("Read sensitive file untrusted", "Warning"),
    ("Drop and execute new binary in container", "Critical"),
    ("Contact K8S API Server From Container", "Notice"),
    ("Clear Log Activities", "Warning"),
];

/// splitmix64: a bijection on u64, so distinct inputs give distinct, random-looking outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One alert as Falco writes it. What varies from alert to alert varies as in a real storm, so
/// that what the store does with the bytes (indexes, compression) is measured on realistic
/// data: a random v4-style uuid, the event time, process ids, a command argument; rules,
/// hosts and containers repeat so that clusters and incidents form.
fn alert(run: &str, conn: usize, seq: u64, at: &Stamp) -> String {
    let i = (seq as usize).wrapping_mul(31).wrapping_add(conn);
    let (rule, prio) = RULES[i % RULES.len()];
    let container = format!("{:012x}", mix(0x5eed + (i % 64) as u64) >> 16);
    let name = i % 64;
    let host = i % 8;
    // Unique per (run, connection, sequence): the connection and sequence fill one u64.
    let a = mix(((conn as u64) << 40) | seq);
    let b = mix(run
        .bytes()
        .fold(0u64, |h, c| h.wrapping_mul(31).wrapping_add(u64::from(c)))
        ^ a);
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    );
    let (time, nanos) = (&at.time, at.nanos);
    let pid = 1000 + a % 60_000;
    let ppid = 1000 + b % 60_000;
    let arg = b >> 8;
    // Rendered with format! rather than a serde_json tree: the generator shares the machine
    // with the server, so every microsecond it spends per request is taken from the server.
    // Every interpolated value is plain ASCII without quotes or backslashes.
    format!(
        concat!(
            r#"{{"uuid":"{uuid}","hostname":"node-{host}","#,
            r#""output":"{time}: {prio} {rule} (user=root user_loginuid=-1 process=bash proc_exepath=/bin/bash parent=runc command=bash -c echo {arg:x} pid={pid} terminal=34816 container_id={container} container_name=web-{name} image=docker.io/library/nginx)","#,
            r#""priority":"{prio}","rule":"{rule}","source":"syscall","tags":["container","mitre_execution","shell","T1059"],"#,
            r#""time":"{time}","output_fields":{{"container.id":"{container}","#,
            r#""container.image.repository":"docker.io/library/nginx","container.image.tag":"1.25","container.name":"web-{name}","#,
            r#""evt.time":{nanos},"evt.type":"execve","fd.name":null,"k8s.ns.name":"shop","k8s.pod.name":"web-{name}","#,
            r#""proc.cmdline":"bash -c echo {arg:x}","proc.exepath":"/bin/bash","proc.name":"bash","proc.pid":{pid},"proc.pname":"runc","proc.ppid":{ppid},"#,
            r#""proc.tty":34816,"user.loginuid":-1,"user.name":"root","user.uid":0}}}}"#
        ),
        uuid = uuid,
        host = host,
        time = time,
        prio = prio,
        rule = rule,
        arg = arg,
        pid = pid,
        ppid = ppid,
        container = container,
        name = name,
        nanos = nanos,
    )
}

/// The event time of the alerts of one request: formatted once per request, since formatting
/// it per alert was a tenth of the generator's CPU (the alerts of one body happen together).
struct Stamp {
    time: String,
    nanos: i64,
}

impl Stamp {
    fn now() -> Stamp {
        let now = chrono::Utc::now();
        Stamp {
            time: now.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
            nanos: now.timestamp_nanos_opt().unwrap_or_default(),
        }
    }
}

#[derive(Default)]
struct Tally {
    lat_us: Vec<u32>,
    ok: u64,
    throttled: u64,
    other: u64,
    errors: u64,
}

/// What one connection needs to build its requests.
struct Target {
    /// host:port, connected to and sent as the Host header.
    addr: String,
    path: String,
    auth: Option<String>,
    run: String,
    batch: usize,
    /// Time between two requests of one connection, when the rate is fixed.
    interval: Option<Duration>,
    warm_until: Instant,
    stop_at: Instant,
}

/// A status and a body length, parsed from the head of an HTTP/1.1 response.
fn parse_head(head: &[u8]) -> anyhow::Result<(u16, usize)> {
    let text = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .with_context(|| format!("bad status line `{status_line}`"))?;
    let mut len = 0usize;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            len = value.trim().parse().context("bad content-length")?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by fa-load");
        }
    }
    Ok((status, len))
}

/// One keep-alive connection posting in a closed loop. HTTP/1.1 is written and read by hand
/// on the socket: the generator shares the machine with the server it measures, and a full
/// client stack costs it several times the CPU per request.
async fn connection(t: Arc<Target>, conn: usize) -> anyhow::Result<Tally> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(&t.addr)
        .await
        .with_context(|| format!("connecting to {}", t.addr))?;
    stream.set_nodelay(true)?;
    let mut tally = Tally::default();
    let mut seq = 0u64;
    let mut req: Vec<u8> = Vec::with_capacity(1400 * t.batch + 256);
    let mut body = String::with_capacity(1300 * t.batch);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // Connections start spread over one interval rather than all at once.
    let mut due = t
        .interval
        .map(|i| Instant::now() + i.mul_f64((conn as f64 * 0.618_034) % 1.0));
    loop {
        if Instant::now() >= t.stop_at {
            break;
        }
        if let (Some(d), Some(i)) = (due, t.interval) {
            tokio::time::sleep_until(d.into()).await;
            due = Some(d + i);
        }
        body.clear();
        let at = Stamp::now();
        for _ in 0..t.batch {
            body.push_str(&alert(&t.run, conn, seq, &at));
            body.push('\n');
            seq += 1;
        }
        req.clear();
        write!(
            req,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            t.path,
            t.addr,
            body.len()
        )?;
        if let Some(a) = &t.auth {
            write!(req, "Authorization: {a}\r\n")?;
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body.as_bytes());
        // With a fixed rate, from when the request was due (a late send is the server's delay
        // as much as a slow answer).
        let start = match (due, t.interval) {
            (Some(d), Some(i)) => (d - i).min(Instant::now()),
            _ => Instant::now(),
        };
        if stream.write_all(&req).await.is_err() {
            tally.errors += 1;
            break;
        }
        // Read the head, then exactly the body, so the next response starts clean.
        buf.clear();
        let (status, head_end, len) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let (status, len) = parse_head(&buf[..end])?;
                break (status, end + 4, len);
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server closed the connection mid-response");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let us = start.elapsed().as_micros().min(u32::MAX as u128) as u32;
        if start < t.warm_until {
            continue;
        }
        if (200..300).contains(&status) {
            tally.ok += 1;
            tally.lat_us.push(us);
        } else if status == 429 || status == 503 {
            tally.throttled += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else {
            tally.other += 1;
        }
    }
    Ok(tally)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

// One thread: the generator should take as little of the machine as it can.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let Some(rest) = a.url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported (measure TLS with a terminating proxy or wrk)");
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let run = a
        .run_id
        .clone()
        .unwrap_or_else(|| format!("load{}", chrono::Utc::now().timestamp_millis()));
    let auth = a.token.as_ref().map(|t| format!("Bearer {t}"));
    let t0 = Instant::now();
    let target = Arc::new(Target {
        addr: hostport.to_string(),
        path: path.to_string(),
        auth,
        run,
        batch: a.batch.max(1),
        interval: match a.rate {
            Some(r) if r > 0.0 => Some(Duration::from_secs_f64(
                a.connections as f64 * a.batch.max(1) as f64 / r,
            )),
            Some(_) => bail!("--rate must be positive"),
            None => None,
        },
        warm_until: t0 + a.warmup,
        stop_at: t0 + a.warmup + a.duration,
    });
    let mut tasks = Vec::new();
    for c in 0..a.connections {
        tasks.push(tokio::spawn(connection(target.clone(), c)));
    }
    let mut all = Tally::default();
    for t in tasks {
        let r = t.await??;
        all.lat_us.extend(r.lat_us);
        all.ok += r.ok;
        all.throttled += r.throttled;
        all.other += r.other;
        all.errors += r.errors;
    }
    all.lat_us.sort_unstable();
    let secs = a.duration.as_secs_f64();
    let alerts = all.ok * a.batch.max(1) as u64;
    let rate = alerts as f64 / secs;
    let (p50, p90, p99, max) = (
        pct(&all.lat_us, 0.5),
        pct(&all.lat_us, 0.9),
        pct(&all.lat_us, 0.99),
        pct(&all.lat_us, 1.0),
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "connections": a.connections, "batch": a.batch, "seconds": secs,
                "offered_alerts_per_second": a.rate,
                "requests_ok": all.ok, "alerts_ok": alerts, "alerts_per_second": rate.round(),
                "throttled": all.throttled, "other_status": all.other, "errors": all.errors,
                "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "max": max},
            })
        );
    } else {
        println!(
            "{} connections, {} alert(s) per request, {:.0} s measured",
            a.connections, a.batch, secs
        );
        println!(
            "acknowledged: {alerts} alerts in {} requests = {rate:.0} alerts/s",
            all.ok
        );
        println!(
            "throttled (429/503): {}, other status: {}, connection errors: {}",
            all.throttled, all.other, all.errors
        );
        println!("latency of acknowledged requests: p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_give_status_and_body_length() {
        let head = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nContent-Length: 42\r\nretry-after: 1";
        assert_eq!(parse_head(head).unwrap(), (429, 42));
        assert_eq!(parse_head(b"HTTP/1.1 204 No Content").unwrap(), (204, 0));
        assert!(parse_head(b"garbage").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked").is_err());
    }

    #[test]
    fn generated_alerts_are_falco_alerts_with_their_own_uuid() {
        let mut uuids = std::collections::HashSet::new();
        for conn in 0..4 {
            for seq in 0..500 {
                let text = alert("run", conn, seq, &Stamp::now());
                let a: fa_model::Alert = serde_json::from_str(&text).expect("valid alert JSON");
                let uuid = a.uuid.clone().expect("a uuid");
                assert_eq!(uuid.len(), 36, "{uuid}");
                assert!(uuids.insert(uuid), "uuids are unique");
                assert!(a.time.is_some());
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert!(v["output_fields"]["proc.cmdline"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("bash -c echo ")));
                assert!(RULES.iter().any(|(r, _)| v["rule"] == *r));
            }
        }
        // Another run gives other uuids.
        assert!(!uuids.contains(
            serde_json::from_str::<fa_model::Alert>(&alert("run2", 0, 0, &Stamp::now()))
                .unwrap()
                .uuid
                .as_deref()
                .unwrap()
        ));
    }
}
