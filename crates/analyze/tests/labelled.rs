//! Verdicts against the labels `testdata/alerts/README.md` gives: every alert of
//! elastic-falco-pipeline-test.jsonl is an event-generator test event, and both alerts of
//! robot-dreams-petclinic-readme.jsonl are runc's benign memfd self-exec. The test prints the
//! confusion matrix (for BENCHMARKS.md) and requires no false positive on the labelled alerts.

use fa_analyze::engine::Analyzer;
use fa_model::{Alert, VerdictKind};

/// (file, label: true = malicious or suspicious activity, false = benign)
const LABELLED: &[(&str, bool)] = &[
    ("elastic-falco-pipeline-test.jsonl", false),
    ("robot-dreams-petclinic-readme.jsonl", false),
];

fn alerts(file: &str) -> Vec<Alert> {
    let text = fa_testdata::read_to_string(&fa_testdata::alerts(file));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn verdicts_against_the_labelled_alerts() {
    let a = Analyzer::load(&[]).expect("knowledge base loads");
    // Positive = the verdict says suspicious or malicious.
    let (mut tp, mut fp, mut tn, mut fn_) = (0u32, 0u32, 0u32, 0u32);
    let mut wrong = Vec::new();
    for (file, label) in LABELLED {
        let list = alerts(file);
        assert!(!list.is_empty(), "{file} has alerts");
        for alert in list {
            let kind = a.report(&alert).verdict.map(|v| v.kind);
            let positive = kind != Some(VerdictKind::Benign);
            match (positive, *label) {
                (true, true) => tp += 1,
                (true, false) => {
                    fp += 1;
                    wrong.push(format!("{file}: {} -> {kind:?}", alert.rule));
                }
                (false, false) => tn += 1,
                (false, true) => fn_ += 1,
            }
        }
    }
    let ratio = |n: u32, d: u32| {
        if d == 0 {
            "n/a (no such alerts)".to_string()
        } else {
            format!("{:.3}", n as f64 / d as f64)
        }
    };
    println!(
        "labelled alerts: {} | TP {tp} FP {fp} TN {tn} FN {fn_} | precision {} recall {} specificity {}",
        tp + fp + tn + fn_,
        ratio(tp, tp + fp),
        ratio(tp, tp + fn_),
        ratio(tn, tn + fp),
    );
    assert_eq!(
        fp, 0,
        "labelled-benign alerts called suspicious or malicious: {wrong:#?}"
    );
    assert_eq!(fn_, 0);
    assert_eq!(tn, 14, "all 14 labelled alerts are counted");
}
