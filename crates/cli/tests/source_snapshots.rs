//! Snapshot reports (Markdown) for an alert of each source: the knowledge sections must be there
//! for every source the knowledge base covers, and the fallback must be honest for the others.

use fa_analyze::engine::Analyzer;
use fa_model::Alert;
use fa_report::Format;

fn examples() -> Vec<Alert> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/alerts.jsonl");
    std::fs::read_to_string(path)
        .expect("examples")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("example alert"))
        .collect()
}

fn gcp_alert() -> Alert {
    serde_json::from_value(serde_json::json!({
        "time": "2026-03-14T11:00:00Z", "rule": "GCP Bucket configured to be public", "priority": "Warning",
        "source": "gcp_auditlog", "hostname": "falco-gcp",
        "output_fields": {"gcp.user": "deployer@example-project.iam.gserviceaccount.com", "gcp.methodName": "storage.setIamPermissions",
            "gcp.projectId": "example-project", "gcp.storage.bucket": "public-exports"}
    }))
    .expect("gcp alert")
}

#[test]
fn one_report_per_source() {
    let analyzer = Analyzer::load(&[]).expect("kb");
    let mut seen = std::collections::BTreeSet::new();
    let mut alerts = examples();
    alerts.push(gcp_alert());
    for a in alerts {
        let source = a
            .source
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "none".into());
        if !seen.insert(source.clone()) {
            continue;
        }
        let r = analyzer.report(&a);
        let md = fa_report::render(&r, Format::Markdown);
        let curated = r.knowledge.as_ref().is_some_and(|k| k.curated);
        if source == "vault_audit" {
            assert!(
                !curated && md.contains("not in falco-analyst's knowledge base"),
                "{md}"
            );
        } else {
            assert!(curated, "{source}: {}", a.rule);
            for section in [
                "## Verdict",
                "## MITRE ATT&CK",
                "## Investigation",
                "## Mitigations",
                "## Next steps",
            ] {
                assert!(md.contains(section), "{source}: missing {section}\n{md}");
            }
        }
        insta::assert_snapshot!(format!("report_{source}"), md);
    }
    assert!(seen.len() >= 7, "{seen:?}");
}
