//! The deterministic verdict: a score from the rule's base severity plus weighted facts about
//! the alert and its context, every fact kept as a reason naming the field behind it.

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
    /// The rule's own condition evaluated over the alert (upstream and the user's rules files).
    pub rule_checks: Vec<crate::rulecheck::RuleCheck>,
}

/// Reasons as they are found. Without `explain` only the score is kept: the engine judges
/// every alert of a storm but writes reasons only for the alerts it reports.
struct Reasons {
    explain: bool,
    list: Vec<Reason>,
    score: f32,
}

impl Reasons {
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
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Score one alert. `rule` is its knowledge-base entry when there is one.
pub fn judge(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
) -> Verdict {
    judge_with(kb, scoring, alert, rule, ctx, true)
}

/// [`judge`] without the reasons: the same kind, confidence and score, and an empty `reasons`.
pub fn judge_score(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
) -> Verdict {
    judge_with(kb, scoring, alert, rule, ctx, false)
}

fn judge_with(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
    explain: bool,
) -> Verdict {
    let w = &scoring.weights;
    let mut reasons = Reasons {
        explain,
        list: Vec::new(),
        score: 0.0,
    };
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
            reasons.add(
                Some("priority"),
                || {
                    format!(
                        "rule `{}` is not in the knowledge base; its priority {p} sets the base score",
                        alert.rule
                    )
                },
                scoring.priority_base(p) + w.unknown_rule,
            );
        }
    }

    let benign = kb.benign_matches(alert, rule);
    for m in &benign {
        let (weight, text) = signature_reason(m, scoring);
        let field = m.evidence.first().map(|(f, _)| f.as_str());
        reasons.add(field, text, weight);
    }

    let proc_name = alert.field("proc.name");
    let privileged = alert.field("container.privileged");
    if privileged.as_deref() == Some("true")
        || alert
            .field("ka.req.pod.containers.privileged")
            .is_some_and(|v| v.split(',').any(|x| x.trim() == "true"))
    {
        let f = if privileged.is_some() {
            "container.privileged"
        } else {
            "ka.req.pod.containers.privileged"
        };
        reasons.add(
            Some(f),
            || "the container is privileged".into(),
            w.privileged_container,
        );
    }
    let uid = alert.field("user.uid");
    if uid.as_deref() == Some("0")
        || (uid.is_none() && alert.field("user.name").as_deref() == Some("root"))
    {
        let f = if uid.is_some() {
            "user.uid"
        } else {
            "user.name"
        };
        reasons.add(Some(f), || "runs as root".into(), w.root_user);
    }
    if let Some(tty) = alert.field("proc.tty") {
        if tty != "0" {
            reasons.add(
                Some("proc.tty"),
                || format!("an interactive terminal is attached (tty {tty})"),
                w.interactive_terminal,
            );
        }
    }
    for f in ["k8s.ns.name", "ka.target.namespace"] {
        if let Some(ns) = alert.field(f) {
            if scoring.sensitive_namespaces.contains(ns.as_ref()) {
                reasons.add(
                    Some(f),
                    || format!("namespace `{ns}` is a sensitive system namespace"),
                    w.sensitive_namespace,
                );
                break;
            }
        }
    }
    if let Some(name) = proc_name.as_deref() {
        if scoring.shells.contains(name) {
            let ancestors = alert.ancestors();
            if let Some(svc) = ancestors
                .iter()
                .find(|a| scoring.services.contains(basename(a)))
            {
                reasons.add(
                    Some("proc.pname"),
                    || format!("shell `{name}` was started under `{svc}`, a service process, as remote code execution would be"),
                    w.shell_under_service,
                );
            }
        }
        if scoring.network_tools.contains(name) {
            reasons.add(
                Some("proc.name"),
                || {
                    format!(
                        "`{name}` is a network tool often used for reverse shells and transfers"
                    )
                },
                w.network_tool,
            );
        }
    }
    if let Some(tag) = alert.field("container.image.tag") {
        if scoring.mutable_tags.contains(tag.as_ref()) {
            reasons.add(
                Some("container.image.tag"),
                || format!("image tag `{tag}` is mutable: what runs cannot be pinned to a build"),
                w.mutable_image_tag,
            );
        }
    }
    if ctx.cluster_count >= scoring.repetition.min_count {
        reasons.add(
            Some("fingerprint"),
            || format!(
                "the same activity repeated {} times: routine automation is more likely than hands-on activity",
                ctx.cluster_count
            ),
            w.repeated,
        );
    }
    if let Some(desc) = &ctx.escalating_incident {
        reasons.add(Some("incident"), || desc.clone(), w.escalating_incident);
    }

    let score = reasons.score;
    let t = &scoring.thresholds;
    // Without a benign signature nothing is called benign: unknown-benign is never assumed.
    let (kind, confidence) = if score >= t.malicious {
        (VerdictKind::Malicious, 0.6 + 0.05 * (score - t.malicious))
    } else if let Some(best) = benign.first() {
        let c = match best.kind {
            Some("test") => 0.95,
            Some("housekeeping") | Some("runtime") => 0.85,
            _ => 0.7,
        };
        (VerdictKind::Benign, c)
    } else if rule.is_none() {
        (VerdictKind::Suspicious, 0.4)
    } else if score >= t.suspicious {
        (VerdictKind::Suspicious, 0.5 + 0.04 * (score - t.suspicious))
    } else {
        (VerdictKind::Suspicious, 0.35)
    };
    Verdict {
        kind,
        confidence: Confidence::new(confidence.min(0.95)),
        score: (score * 100.0).round() / 100.0,
        reasons: reasons.list,
    }
}

/// A benign signature's weight, and its reason text made on demand.
fn signature_reason<'m>(
    m: &'m SignatureMatch<'_>,
    scoring: &Scoring,
) -> (f32, impl FnOnce() -> String + 'm) {
    let w = &scoring.weights;
    let weight = match m.kind {
        Some("test") => w.benign_test,
        Some("housekeeping") | Some("runtime") => w.benign_housekeeping,
        _ => w.benign_other,
    };
    (weight, move || {
        let evidence: Vec<String> = m.evidence.iter().map(|(f, v)| format!("{f}={v}")).collect();
        format!("{} ({})", m.reason, evidence.join(", "))
    })
}

/// The more severe of two verdicts: a later stage (an LLM, an incident) can raise, never lower.
pub fn raise(base: &Verdict, other: &Verdict) -> Verdict {
    if other.kind > base.kind {
        other.clone()
    } else {
        base.clone()
    }
}
