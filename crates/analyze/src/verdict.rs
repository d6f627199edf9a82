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
}

fn reason(field: Option<&str>, text: String, weight: f32) -> Reason {
    Reason {
        field: field.map(str::to_string),
        text,
        weight,
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
    let w = &scoring.weights;
    let mut reasons = Vec::new();
    match rule {
        Some(r) => reasons.push(reason(
            Some("rule"),
            format!(
                "rule `{}` has base severity {}/10 in the knowledge base",
                r.entry.name, r.entry.severity
            ),
            r.entry.severity as f32,
        )),
        None => {
            let p = alert.priority_or_default();
            reasons.push(reason(
                Some("priority"),
                format!(
                    "rule `{}` is not in the knowledge base; its priority {p} sets the base score",
                    alert.rule
                ),
                scoring.priority_base(p) + w.unknown_rule,
            ));
        }
    }

    let benign = kb.benign_matches(alert, rule);
    for m in &benign {
        reasons.push(signature_reason(m, scoring));
    }

    let proc_name = alert.field("proc.name");
    if alert.field("container.privileged").as_deref() == Some("true")
        || alert
            .field("ka.req.pod.containers.privileged")
            .is_some_and(|v| v.split(',').any(|x| x.trim() == "true"))
    {
        let f = if alert.field("container.privileged").is_some() {
            "container.privileged"
        } else {
            "ka.req.pod.containers.privileged"
        };
        reasons.push(reason(
            Some(f),
            "the container is privileged".into(),
            w.privileged_container,
        ));
    }
    if alert.field("user.uid").as_deref() == Some("0")
        || (alert.field("user.uid").is_none()
            && alert.field("user.name").as_deref() == Some("root"))
    {
        let f = if alert.field("user.uid").is_some() {
            "user.uid"
        } else {
            "user.name"
        };
        reasons.push(reason(Some(f), "runs as root".into(), w.root_user));
    }
    if let Some(tty) = alert.field("proc.tty") {
        if tty != "0" {
            reasons.push(reason(
                Some("proc.tty"),
                format!("an interactive terminal is attached (tty {tty})"),
                w.interactive_terminal,
            ));
        }
    }
    for f in ["k8s.ns.name", "ka.target.namespace"] {
        if let Some(ns) = alert.field(f) {
            if scoring.sensitive_namespaces.contains(ns.as_ref()) {
                reasons.push(reason(
                    Some(f),
                    format!("namespace `{ns}` is a sensitive system namespace"),
                    w.sensitive_namespace,
                ));
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
                reasons.push(reason(
                    Some("proc.pname"),
                    format!("shell `{name}` was started under `{svc}`, a service process, as remote code execution would be"),
                    w.shell_under_service,
                ));
            }
        }
        if scoring.network_tools.contains(name) {
            reasons.push(reason(
                Some("proc.name"),
                format!("`{name}` is a network tool often used for reverse shells and transfers"),
                w.network_tool,
            ));
        }
    }
    if let Some(tag) = alert.field("container.image.tag") {
        if scoring.mutable_tags.contains(tag.as_ref()) {
            reasons.push(reason(
                Some("container.image.tag"),
                format!("image tag `{tag}` is mutable: what runs cannot be pinned to a build"),
                w.mutable_image_tag,
            ));
        }
    }
    if ctx.cluster_count >= scoring.repetition.min_count {
        reasons.push(reason(
            Some("fingerprint"),
            format!(
                "the same activity repeated {} times: routine automation is more likely than hands-on activity",
                ctx.cluster_count
            ),
            w.repeated,
        ));
    }
    if let Some(desc) = &ctx.escalating_incident {
        reasons.push(reason(
            Some("incident"),
            desc.clone(),
            w.escalating_incident,
        ));
    }

    let score: f32 = reasons.iter().map(|r| r.weight).sum();
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
        reasons,
    }
}

fn signature_reason(m: &SignatureMatch<'_>, scoring: &Scoring) -> Reason {
    let w = &scoring.weights;
    let weight = match m.kind {
        Some("test") => w.benign_test,
        Some("housekeeping") | Some("runtime") => w.benign_housekeeping,
        _ => w.benign_other,
    };
    let field = m.evidence.first().map(|(f, _)| f.as_str());
    let evidence: Vec<String> = m.evidence.iter().map(|(f, v)| format!("{f}={v}")).collect();
    Reason {
        field: field.map(str::to_string),
        text: format!("{} ({})", m.reason, evidence.join(", ")),
        weight,
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
