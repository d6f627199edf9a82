//! Every report produced for the real alerts in testdata/alerts passes `check` with zero
//! findings, and carries the knowledge sections when its rule is in the knowledge base.

use fa_analyze::engine::Analyzer;
use fa_model::Alert;
use fa_report::Format;

fn shared_alerts() -> Vec<(String, Alert)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(fa_testdata::alerts_dir())
        .expect("shared alerts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for path in files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
    {
        let input = fa_ingest::open_input(&path.display().to_string()).expect("open");
        for item in input.into_alerts() {
            let a = item.unwrap_or_else(|r| panic!("every shared alert is well-formed: {r}"));
            out.push((path.display().to_string(), a));
        }
    }
    out
}

#[test]
fn every_report_for_the_shared_alerts_passes_check() {
    let analyzer = Analyzer::load(&[]).expect("kb");
    let alerts = shared_alerts();
    assert!(alerts.len() >= 20, "{} alerts", alerts.len());
    for (file, a) in &alerts {
        let r = analyzer.report(a);
        for format in [Format::Markdown, Format::Html] {
            let text = fa_report::render(&r, format);
            let findings = fa_validate::check_document(&text);
            assert!(
                findings.is_empty(),
                "{file}: {} ({format}): {findings:#?}",
                a.rule
            );
        }
        assert!(r.verdict.is_some());
        if analyzer.rule_for(a).is_some() {
            assert!(
                r.knowledge.as_ref().is_some_and(|k| k.curated),
                "{}",
                a.rule
            );
            assert!(
                !r.investigation.is_empty() && !r.mitigations.is_empty(),
                "{}: knowledge sections",
                a.rule
            );
        }
    }
}
