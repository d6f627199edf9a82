//! `fa-bench gen N FILE` writes N generated alerts (JSON Lines);
//! `fa-bench parse FILE` is the baseline: each line into `serde_json::Value`;
//! `fa-bench analyze FILE [--summary | --every-alert]` is the full pipeline to JSON reports
//! (one per cluster, as `analyze` does by default; or one per alert), or the storm summary. Each prints alerts/s and peak RSS (VmHWM) as one JSON line, so a
//! script can compare them in the same run. Run each under `taskset -c 0` for one core.

use anyhow::{bail, Context, Result};
use fa_analyze::engine::{Analyzer, Engine, EngineConfig};
use fa_report::Format;
use fa_sinks::{ReportSink, StreamSink};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() == 3 => gen(args[1].parse().context("N")?, &args[2]),
        Some("gen-real") if args.len() == 3 => gen_real(args[1].parse().context("N")?, &args[2]),
        Some("parse") if args.len() == 2 => parse(&args[1]),
        Some("compare") if args.len() >= 2 => compare(
            &args[1],
            args.get(2)
                .and_then(|r| r.strip_prefix("--rounds="))
                .map_or(Ok(5), str::parse)
                .context("--rounds=N")?,
        ),
        Some("analyze") if args.len() >= 2 => analyze(
            &args[1],
            args.iter().any(|a| a == "--summary"),
            args.iter().any(|a| a == "--every-alert"),
            args.iter().find_map(|a| a.strip_prefix("--out=")),
        ),
        _ => bail!(
            "usage: fa-bench gen N FILE | gen-real N FILE | parse FILE | analyze FILE [--summary | --every-alert] [--out=FILE] | compare FILE [--rounds=N]"
        ),
    }
}

/// CPU time this thread has run, in seconds (Linux schedstat, nanoseconds): on a shared machine
/// the wall-clock time of a run includes the time others held the core; this does not.
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or(f64::NAN)
}

/// Peak resident set size of this process, in MiB (Linux VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn report(kind: &str, n: u64, secs: f64, extra: serde_json::Value) {
    let mut v = serde_json::json!({
        "bench": kind, "alerts": n, "seconds": (secs * 1000.0).round() / 1000.0,
        "alerts_per_sec": (n as f64 / secs).round(), "peak_rss_mib": (peak_rss_mib() * 10.0).round() / 10.0,
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    println!("{v}");
}

/// (a) and (b) alternately in one process, `rounds` times each; the best time of each is the
/// figure (on a shared machine the best run is the one least disturbed by neighbours).
fn compare(path: &str, rounds: usize) -> Result<()> {
    let mut best_parse = f64::MAX;
    let mut best_analyze = f64::MAX;
    let mut n = 0;
    for _ in 0..rounds.max(1) {
        let (k, secs) = time_parse(path)?;
        n = k;
        best_parse = best_parse.min(secs);
        let (_, secs) = time_analyze(path)?;
        best_analyze = best_analyze.min(secs);
    }
    let p = n as f64 / best_parse;
    let a = n as f64 / best_analyze;
    println!(
        "{}",
        serde_json::json!({
            "bench": "compare", "alerts": n, "rounds": rounds,
            "parse_value_per_sec": p.round(), "analyze_json_clusters_per_sec": a.round(),
            "ratio": (a / p * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// (a): each line into a `serde_json::Value`. Returns (values, seconds).
fn time_parse(path: &str) -> Result<(u64, f64)> {
    let f = BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
    let start = Instant::now();
    let mut n = 0u64;
    for line in f.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&line)?;
        std::hint::black_box(&v);
        n += 1;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

/// (b): the default `analyze --format json` path (one report per cluster, incidents), timed.
fn time_analyze(path: &str) -> Result<(u64, f64)> {
    let run = run_analyze(path, false, false, None)?;
    Ok((run.alerts, run.seconds))
}

fn parse(path: &str) -> Result<()> {
    let (n, secs) = time_parse(path)?;
    report("parse_value", n, secs, serde_json::json!({}));
    Ok(())
}

/// What one timed analysis run did.
struct Run {
    alerts: u64,
    rejected: u64,
    seconds: f64,
    /// CPU time of the timed part (this thread).
    cpu_seconds: f64,
    reports: u64,
    output_bytes: u64,
    clusters: u64,
}

/// The pipeline from file to a counting JSON sink: reports as the engine emits them, then the
/// clusters' reports and incidents (or the storm summary). Loading the knowledge base is not
/// timed.
/// `out`: also write the reports there (to compare two builds' output, not for timing).
fn run_analyze(path: &str, summary: bool, every_alert: bool, out: Option<&str>) -> Result<Run> {
    let copy = out
        .map(std::fs::File::create)
        .transpose()
        .context("--out file")?;
    let analyzer = Analyzer::load(&[])?;
    let cfg = EngineConfig {
        every_alert,
        keep_reports: !summary,
        ..Default::default()
    };
    let mut engine = Engine::new(analyzer, cfg);
    let mut sink = StreamSink::new(
        BufWriter::with_capacity(256 * 1024, CountingSink(0, copy)),
        Format::Json,
    );
    let input = fa_ingest::open_input(path)?;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut rejected = 0u64;
    for item in input.into_alerts() {
        match item {
            Ok(a) => {
                for e in engine.process(a) {
                    sink.report(&e.report)?;
                }
            }
            Err(_) => rejected += 1,
        }
    }
    let done = engine.finish(rejected);
    if summary {
        sink.summary(&done.summary)?;
    } else {
        for e in &done.reports {
            sink.report(&e.report)?;
        }
        for i in &done.incidents {
            sink.incident(i)?;
        }
    }
    sink.finish()?;
    let reports = sink.written();
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = thread_cpu_seconds() - cpu_start;
    let output_bytes = sink.into_inner().into_inner().map(|c| c.0).unwrap_or(0);
    Ok(Run {
        alerts: done.stats.alerts,
        rejected,
        seconds,
        cpu_seconds,
        reports,
        output_bytes,
        clusters: done.summary.clusters,
    })
}

fn analyze(path: &str, summary: bool, every_alert: bool, out: Option<&str>) -> Result<()> {
    let run = run_analyze(path, summary, every_alert, out)?;
    report(
        if summary {
            "analyze_summary"
        } else if every_alert {
            "analyze_json_every_alert"
        } else {
            "analyze_json_clusters"
        },
        run.alerts,
        run.seconds,
        serde_json::json!({"cpu_seconds": (run.cpu_seconds * 1000.0).round() / 1000.0, "alerts_per_cpu_sec": (run.alerts as f64 / run.cpu_seconds).round(), "rejected": run.rejected, "reports": run.reports, "output_mib": (run.output_bytes as f64 / 1048576.0).round(), "clusters": run.clusters}),
    );
    Ok(())
}

/// Counts output, and discards it unless a file to keep it in is given.
struct CountingSink(u64, Option<std::fs::File>);
impl Write for CountingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = &mut self.1 {
            f.write_all(b)?;
        }
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.1 {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Real-shaped alerts from many containers: the JSON alerts of testdata/alerts and
/// testdata/corpus (published by real Falco installations) over and over, each copy in one of
/// 20,000 containers (its id, name and pod changed), with its own pid and time.
fn gen_real(n: u64, path: &str) -> Result<()> {
    let mut base: Vec<serde_json::Value> = Vec::new();
    for dir in [fa_testdata::alerts_dir(), fa_testdata::corpus_dir()] {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("{}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl" || x == "log"))
            .collect();
        files.sort();
        for f in files {
            // The JSON lines (the corpus's text lines are left out: this file is JSON).
            for line in std::fs::read_to_string(&f)?.lines() {
                match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(v) if v.get("output_fields").is_some_and(|o| o.is_object()) => base.push(v),
                    _ => {}
                }
            }
        }
    }
    anyhow::ensure!(!base.is_empty(), "no JSON alerts with output_fields found");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x2545F4914F6CDD1D);
    let t0: i64 = 1_767_225_600;
    for i in 0..n {
        let mut a = base[(i % base.len() as u64) as usize].clone();
        let c = rng.below(20_000);
        let t = t0 + (i as i64) / 20;
        let time = format!("{}.{:09}Z", chrono_like(t), rng.below(1_000_000_000));
        a["time"] = serde_json::json!(time);
        if let Some(o) = a["output_fields"].as_object_mut() {
            if o.get("container.id").is_some_and(|v| v != "host") {
                o.insert(
                    "container.id".into(),
                    serde_json::json!(format!("{:012x}", 0x5eed_0000_0000u64 + c * 7919)),
                );
                o.insert(
                    "container.name".into(),
                    serde_json::json!(format!("work-{c}")),
                );
            }
            if o.contains_key("k8s.pod.name") {
                o.insert(
                    "k8s.pod.name".into(),
                    serde_json::json!(format!("work-{c}-5c8d7")),
                );
            }
            if o.contains_key("proc.pid") {
                o.insert(
                    "proc.pid".into(),
                    serde_json::json!(1000 + rng.below(60_000)),
                );
            }
            if o.contains_key("evt.time") {
                o.insert(
                    "evt.time".into(),
                    serde_json::json!((t as u64) * 1_000_000_000),
                );
            }
        }
        serde_json::to_writer(&mut w, &a)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    eprintln!(
        "wrote {n} alerts ({} real alerts as templates) to {path}",
        base.len()
    );
    Ok(())
}

/// A realistic mix: mostly syscall rules from a pool of containers, some k8s audit and
/// CloudTrail, repeats with varying pids and times, a little event-generator and Calico noise.
fn gen(n: u64, path: &str) -> Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let t0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let images = [
        "nginx",
        "registry.example.com/shop/api",
        "redis",
        "postgres",
        "busybox",
        "alpine",
        "python",
    ];
    let shells = [
        ("bash", "bash -c id"),
        ("sh", "sh -c ls /tmp"),
        ("sh", "sh -c cat /etc/hostname"),
    ];
    for i in 0..n {
        let t = t0 + (i as i64) / 50;
        let ns = rng.below(1_000_000_000);
        let time = format!("{}.{:09}Z", chrono_like(t), ns);
        let c = rng.below(400);
        let cid = format!("{:012x}", 0xabc000000000u64 + c * 7919);
        let img = images[(c % images.len() as u64) as usize];
        let pid = 1000 + rng.below(60000);
        let line = match rng.below(10) {
            0..=3 => {
                let (sh, cmd) = shells[rng.below(3) as usize];
                serde_json::json!({"hostname": format!("node-{}", c % 20), "output": format!("{time}: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root process={sh} command={cmd}"),
                  "priority": "Notice", "rule": "Terminal shell in container", "source": "syscall", "tags": ["T1059", "container", "maturity_stable", "mitre_execution", "shell"], "time": time,
                  "output_fields": {"container.id": cid, "container.image.repository": img, "container.image.tag": "1.2", "container.name": format!("app-{c}"), "evt.type": "execve", "k8s.ns.name": "shop", "k8s.pod.name": format!("app-{c}-7d9f8"), "proc.cmdline": cmd, "proc.exepath": format!("/bin/{sh}"), "proc.name": sh, "proc.pid": pid, "proc.pname": "runc", "proc.tty": 34816, "user.loginuid": -1, "user.name": "root", "user.uid": 0}})
            }
            4..=5 => {
                serde_json::json!({"hostname": format!("node-{}", c % 20), "output": format!("{time}: Warning Sensitive file opened for reading by non-trusted program | file=/etc/shadow process=cat"),
                  "priority": "Warning", "rule": "Read sensitive file untrusted", "source": "syscall", "tags": ["T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access"], "time": time,
                  "output_fields": {"container.id": cid, "container.image.repository": img, "evt.type": "openat", "fd.name": "/etc/shadow", "proc.cmdline": "cat /etc/shadow", "proc.exepath": "/bin/cat", "proc.name": "cat", "proc.pid": pid, "proc.pname": "bash", "proc.aname[2]": "runc", "user.name": "root", "user.uid": 0}})
            }
            6 => {
                serde_json::json!({"hostname": format!("node-{}", c % 20), "output": format!("{time}: Notice Shell spawned by untrusted binary"),
                  "priority": "Notice", "rule": "Run shell untrusted", "source": "syscall", "tags": ["T1059.004", "mitre_execution"], "time": time,
                  "output_fields": {"proc.cmdline": "sh -c ip link del calico_tmp_A || true", "proc.name": "sh", "proc.exepath": "/bin/sh", "proc.pname": "calico", "proc.pexepath": "/opt/cni/bin/calico", "proc.pid": pid, "user.name": "root", "user.uid": 0, "container.id": "host"}})
            }
            7 => {
                serde_json::json!({"hostname": "k8s-audit", "output": format!("{time}: Warning Pod started with privileged container"),
                  "priority": "Warning", "rule": "Create Privileged Pod", "source": "k8s_audit", "tags": ["k8s", "mitre_privilege_escalation", "T1610"], "time": time,
                  "output_fields": {"ka.user.name": format!("system:serviceaccount:ci:deployer-{}", c % 5), "ka.target.namespace": "ci", "ka.resp.name": format!("build-{pid}"), "ka.req.pod.containers.image": img, "ka.req.pod.containers.privileged": true, "ka.verb": "create", "ka.target.resource": "pods"}})
            }
            8 => {
                serde_json::json!({"hostname": "cloudtrail", "output": format!("{time}: Critical Detected a console login without MFA"),
                  "priority": "Critical", "rule": "Console Login Without MFA", "source": "aws_cloudtrail", "tags": ["cloud", "aws", "aws_console", "aws_iam"], "time": time,
                  "output_fields": {"ct.user": format!("dev-{}", c % 30), "ct.name": "ConsoleLogin", "ct.region": "eu-west-1", "ct.srcip": format!("198.51.100.{}", c % 250), "ct.user.identitytype": "IAMUser"}})
            }
            _ => {
                serde_json::json!({"hostname": format!("node-{}", c % 20), "output": format!("{time}: Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow process=event-generator)"),
                  "priority": "Warning", "rule": "Read sensitive file untrusted", "source": "syscall", "tags": ["T1555", "mitre_credential_access"], "time": time,
                  "output_fields": {"container.id": "9656db3bb358", "container.image.repository": "falcosecurity/event-generator", "evt.type": "openat", "fd.name": "/etc/shadow", "proc.cmdline": "event-generator run --loop", "proc.exepath": "/bin/event-generator", "proc.name": "event-generator", "proc.pid": pid, "proc.pname": "containerd-shim", "user.name": "root", "user.uid": 0}})
            }
        };
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    eprintln!("wrote {n} alerts to {path}");
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS` for a Unix time (UTC), without pulling a date crate into the generator.
fn chrono_like(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::chrono_like(0), "1970-01-01T00:00:00");
        assert_eq!(super::chrono_like(1_767_225_600), "2026-01-01T00:00:00");
        assert_eq!(super::chrono_like(1_709_251_199), "2024-02-29T23:59:59");
    }
}
