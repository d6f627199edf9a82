//! Verdicts on the labelled corpus of real published alerts (testdata/corpus, FORMAT.md there):
//! every line as published, read by the same readers `analyze` uses, judged one by one and as a
//! stream with the rest of its source. Prints the confusion matrices, per-class precision and
//! recall, and the lines read versus rejected (the table BENCHMARKS.md keeps):
//!
//!     cargo test -p falco-analyst --test corpus -- --nocapture

use fa_analyze::engine::{Analyzer, Engine, EngineConfig};
use fa_analyze::fingerprint::fingerprint;
use fa_analyze::incident::entity_of;
use fa_ingest::AlertReader;
use fa_model::{Alert, VerdictKind};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
struct SourceMeta {
    source: String,
    title: String,
    source_kind: String,
    falco_source: String,
    line: Vec<LineLabel>,
}

#[derive(Debug, Deserialize)]
struct LineLabel {
    n: usize,
    label: String,
    evidence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Label {
    Benign,
    Suspicious,
    Malicious,
}

impl Label {
    fn parse(s: &str) -> Option<Label> {
        match s {
            "benign" => Some(Label::Benign),
            "suspicious" => Some(Label::Suspicious),
            "malicious" => Some(Label::Malicious),
            _ => None,
        }
    }
    fn of(v: VerdictKind) -> Label {
        match v {
            VerdictKind::Benign => Label::Benign,
            VerdictKind::Suspicious => Label::Suspicious,
            VerdictKind::Malicious => Label::Malicious,
        }
    }
    const ALL: [Label; 3] = [Label::Benign, Label::Suspicious, Label::Malicious];
    fn name(self) -> &'static str {
        match self {
            Label::Benign => "benign",
            Label::Suspicious => "suspicious",
            Label::Malicious => "malicious",
        }
    }
}

/// One corpus source: its lines with labels.
struct Source {
    id: String,
    meta: SourceMeta,
    lines: Vec<(usize, String, Label)>,
}

fn sources() -> Vec<Source> {
    let dir = fa_testdata::corpus_dir();
    let mut tomls: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/corpus is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    tomls.sort();
    tomls.iter().map(|p| load(p)).collect()
}

fn load(toml_path: &Path) -> Source {
    let id = toml_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let meta: SourceMeta = toml::from_str(&fa_testdata::read_to_string(toml_path))
        .unwrap_or_else(|e| panic!("{}: {e}", toml_path.display()));
    let log = fa_testdata::read_to_string(&toml_path.with_extension("log"));
    let raw: Vec<&str> = log.split_terminator('\n').collect();
    let mut by_n: HashMap<usize, &LineLabel> = HashMap::new();
    for l in &meta.line {
        assert!(
            by_n.insert(l.n, l).is_none(),
            "{id}: line {} labelled twice",
            l.n
        );
    }
    let mut lines = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let n = i + 1;
        let l = by_n
            .get(&n)
            .unwrap_or_else(|| panic!("{id}.log line {n} has no [[line]] entry"));
        let label = Label::parse(&l.label)
            .unwrap_or_else(|| panic!("{id}: line {n}: unknown label {:?}", l.label));
        lines.push((n, text.to_string(), label));
    }
    assert_eq!(
        meta.line.len(),
        raw.len(),
        "{id}: every [[line]] entry names a line of the .log"
    );
    Source { id, meta, lines }
}

/// Reads one published line the way `analyze` reads a file.
fn read_line(origin: &str, line: &str) -> Result<Alert, String> {
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    let mut got = AlertReader::new(origin, &bytes[..]);
    match got.next() {
        Some(Ok(a)) => Ok(a),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("nothing read".into()),
    }
}

#[derive(Default)]
struct Matrix {
    /// (label, verdict) -> count
    cells: BTreeMap<(Label, Label), u32>,
}

impl Matrix {
    fn add(&mut self, label: Label, got: Label) {
        *self.cells.entry((label, got)).or_default() += 1;
    }
    fn get(&self, label: Label, got: Label) -> u32 {
        self.cells.get(&(label, got)).copied().unwrap_or(0)
    }
    fn row(&self, label: Label) -> u32 {
        Label::ALL.iter().map(|g| self.get(label, *g)).sum()
    }
    fn col(&self, got: Label) -> u32 {
        Label::ALL.iter().map(|l| self.get(*l, got)).sum()
    }
    fn ratio(n: u32, d: u32) -> String {
        if d == 0 {
            "n/a".into()
        } else {
            format!("{:.2}", n as f64 / d as f64)
        }
    }
    fn print(&self, title: &str) {
        println!("\n{title}\n");
        println!("| label \\ verdict | benign | suspicious | malicious | recall |");
        println!("|---|---:|---:|---:|---:|");
        for l in Label::ALL {
            println!(
                "| {} ({}) | {} | {} | {} | {} |",
                l.name(),
                self.row(l),
                self.get(l, Label::Benign),
                self.get(l, Label::Suspicious),
                self.get(l, Label::Malicious),
                Self::ratio(self.get(l, l), self.row(l))
            );
        }
        println!(
            "| precision | {} | {} | {} | |",
            Self::ratio(
                self.get(Label::Benign, Label::Benign),
                self.col(Label::Benign)
            ),
            Self::ratio(
                self.get(Label::Suspicious, Label::Suspicious),
                self.col(Label::Suspicious)
            ),
            Self::ratio(
                self.get(Label::Malicious, Label::Malicious),
                self.col(Label::Malicious)
            ),
        );
    }
}

/// What the whole corpus gave.
struct Outcome {
    lines: u32,
    rejected: Vec<String>,
    alone: Matrix,
    stream: Matrix,
    wrong: Vec<String>,
}

fn evaluate() -> Outcome {
    let analyzer = Analyzer::load(&[]).expect("knowledge base loads");
    let mut out = Outcome {
        lines: 0,
        rejected: Vec::new(),
        alone: Matrix::default(),
        stream: Matrix::default(),
        wrong: Vec::new(),
    };
    for src in sources() {
        let mut read: Vec<(usize, Alert, Label)> = Vec::new();
        for (n, text, label) in &src.lines {
            out.lines += 1;
            match read_line(&format!("{}.log:{n}", src.id), text) {
                Ok(a) => read.push((*n, a, *label)),
                Err(e) => out.rejected.push(format!("{}.log:{n}: {e}", src.id)),
            }
        }
        // One by one: each alert with no context.
        let mut alone = Vec::new();
        for (_, a, label) in &read {
            let got = analyzer
                .report(a)
                .verdict
                .map(|v| Label::of(v.kind))
                .unwrap_or(Label::Suspicious);
            out.alone.add(*label, got);
            alone.push(got);
        }
        // As a stream: the source's alerts in order through the engine (a report per alert),
        // each verdict then raised to the final verdict of the incident it belongs to.
        let mut engine = Engine::new(
            analyzer.clone(),
            EngineConfig {
                every_alert: true,
                ..EngineConfig::default()
            },
        );
        let mut own = Vec::new();
        for (_, a, _) in &read {
            let emitted = engine.process(a.clone());
            let v = emitted
                .iter()
                .filter_map(|e| e.report.verdict.as_ref())
                .map(|v| Label::of(v.kind))
                .max()
                .unwrap_or(Label::Suspicious);
            own.push(v);
        }
        let done = engine.finish(0);
        let mut incident_of: HashMap<(String, String), Label> = HashMap::new();
        for inc in &done.incidents {
            for t in &inc.timeline {
                if let Some(fp) = &t.cluster {
                    let k = (inc.entity.clone(), fp.clone());
                    let v = Label::of(inc.verdict.kind);
                    let e = incident_of.entry(k).or_insert(v);
                    *e = (*e).max(v);
                }
            }
        }
        for (i, (n, a, label)) in read.iter().enumerate() {
            // The engine fingerprints a text alert after naming its rule: key it the same way.
            let mut named = a.clone();
            analyzer.name_rule(&mut named);
            let key = (entity_of(&named), fingerprint(&named).to_string());
            let got = own[i].max(incident_of.get(&key).copied().unwrap_or(own[i]));
            out.stream.add(*label, got);
            if got != *label || alone[i] != *label {
                let rule = analyzer
                    .rule_for(a)
                    .map(|r| r.entry.name.clone())
                    .unwrap_or_else(|| format!("{} (not in the knowledge base)", a.rule));
                out.wrong.push(format!(
                    "{}.log:{n} [{}] label {} | alone {} | stream {} | {rule}",
                    src.id,
                    src.meta.falco_source,
                    label.name(),
                    alone[i].name(),
                    got.name(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_corpus_line_has_a_source_and_evidence() {
    let all = sources();
    assert!(!all.is_empty(), "the corpus has sources");
    for s in &all {
        assert!(
            s.meta.source.starts_with("https://"),
            "{}: source is a public address",
            s.id
        );
        assert!(!s.meta.title.trim().is_empty(), "{}: title", s.id);
        assert!(
            !s.meta.source_kind.trim().is_empty(),
            "{}: source_kind",
            s.id
        );
        for l in &s.meta.line {
            assert!(
                l.evidence.trim().len() >= 10,
                "{}: line {} needs the evidence for its label",
                s.id,
                l.n
            );
        }
    }
}

#[test]
fn verdicts_on_the_labelled_corpus() {
    let all = sources();
    let mut by_source: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    for s in &all {
        let e = by_source.entry(s.meta.falco_source.clone()).or_default();
        for (_, _, l) in &s.lines {
            match l {
                Label::Benign => e.0 += 1,
                Label::Suspicious => e.1 += 1,
                Label::Malicious => e.2 += 1,
            }
        }
    }
    let o = evaluate();
    println!(
        "corpus: {} sources, {} lines; read {}, rejected {}",
        all.len(),
        o.lines,
        o.lines - o.rejected.len() as u32,
        o.rejected.len()
    );
    println!("\n| falco source | benign | suspicious | malicious |\n|---|---:|---:|---:|");
    for (k, (b, s, m)) in &by_source {
        println!("| {k} | {b} | {s} | {m} |");
    }
    o.alone.print("One by one (each line on its own):");
    o.stream
        .print("As a stream (each source's lines together; incidents raise):");
    for r in &o.rejected {
        println!("rejected: {r}");
    }
    for w in &o.wrong {
        println!("differs: {w}");
    }

    let benign = o.alone.row(Label::Benign);
    let attacks = o.alone.row(Label::Malicious);
    let share = |n: u32, d: u32| n as f64 / d.max(1) as f64;
    println!(
        "\ngoals: benign recall {:.2} (>= 0.70) | attacks malicious one by one {:.2} (>= 0.50), as a stream {:.2} (>= 0.80)",
        share(o.alone.get(Label::Benign, Label::Benign), benign),
        share(o.alone.get(Label::Malicious, Label::Malicious), attacks),
        share(o.stream.get(Label::Malicious, Label::Malicious), attacks),
    );
    // The goals, asserted: a change that loses ground below them fails.
    assert!(
        o.rejected.is_empty(),
        "every line is read: {:?}",
        o.rejected
    );
    for m in [&o.alone, &o.stream] {
        assert_eq!(
            m.get(Label::Malicious, Label::Benign),
            0,
            "no attack alert is called benign"
        );
        assert!(
            m.get(Label::Benign, Label::Malicious) * 20 <= benign,
            "at most 1 in 20 benign alerts is called malicious"
        );
    }
    assert!(
        share(o.alone.get(Label::Benign, Label::Benign), benign) >= 0.70,
        "benign recall fell below the goal of 0.70"
    );
    assert!(
        share(o.alone.get(Label::Malicious, Label::Malicious), attacks) >= 0.50,
        "attacks called malicious one by one fell below the goal of 0.50"
    );
    assert!(
        share(o.stream.get(Label::Malicious, Label::Malicious), attacks) >= 0.80,
        "attacks called malicious as a stream fell below the goal of 0.80"
    );
}
