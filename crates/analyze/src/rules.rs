//! The alert's rule as Falco's rules files write it: the upstream files are built in and
//! compiled once, on first use; the user's `--rules` files are loaded on top, in order, so
//! their appends, overrides and exceptions change the upstream rules as Falco's would. Each
//! reported alert's rule condition is evaluated over the alert's fields ([`RuleBook::check`]).

use crate::fingerprint::FingerprintHasher;
use crate::rulecheck::{Exclusion, ExclusionKind, RuleCheck, RuleOrigin, Tri};
use fa_condition::{compile, Compiled, FieldSource, LoadError, Lookup, Outcome, RuleSet, StepKind};
use fa_model::fields::FieldValueExt;
use fa_model::Alert;
use serde::Deserialize;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The upstream rules files, in the order they are loaded: plugin files, then the syscall files
/// with the stable one last, so a list or macro the syscall files repeat keeps its stable form.
const UPSTREAM: [(&str, &str); 9] = [
    (
        "aws_cloudtrail_rules.yaml",
        include_str!("../../../kb/upstream/aws_cloudtrail_rules.yaml"),
    ),
    (
        "gcp_auditlog_rules.yaml",
        include_str!("../../../kb/upstream/gcp_auditlog_rules.yaml"),
    ),
    (
        "github_rules.yaml",
        include_str!("../../../kb/upstream/github_rules.yaml"),
    ),
    (
        "k8s_audit_rules.yaml",
        include_str!("../../../kb/upstream/k8s_audit_rules.yaml"),
    ),
    (
        "okta_rules.yaml",
        include_str!("../../../kb/upstream/okta_rules.yaml"),
    ),
    (
        "falco-deprecated_rules.yaml",
        include_str!("../../../kb/upstream/falco-deprecated_rules.yaml"),
    ),
    (
        "falco-sandbox_rules.yaml",
        include_str!("../../../kb/upstream/falco-sandbox_rules.yaml"),
    ),
    (
        "falco-incubating_rules.yaml",
        include_str!("../../../kb/upstream/falco-incubating_rules.yaml"),
    ),
    (
        "falco_rules.yaml",
        include_str!("../../../kb/upstream/falco_rules.yaml"),
    ),
];

const RULE_FIELDS: &str = include_str!("../data/rule_fields.toml");

/// A rules file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("crates/analyze/data/rule_fields.toml: {0}")]
    Data(String),
}

#[derive(Debug, Deserialize)]
struct RuleFields {
    multi_valued: Vec<String>,
    narrowing: Vec<String>,
}

fn rule_fields() -> &'static RuleFields {
    static F: OnceLock<RuleFields> = OnceLock::new();
    F.get_or_init(|| {
        // A test (`rule_fields_data_loads`) keeps this file valid; an empty table is the
        // harmless fallback rather than a panic.
        toml::from_str(RULE_FIELDS).unwrap_or(RuleFields {
            multi_valued: Vec::new(),
            narrowing: Vec::new(),
        })
    })
}

/// Fields a proposed exception may be narrowed with, in the order tried (data file).
pub fn narrowing_fields() -> &'static [String] {
    &rule_fields().narrowing
}

fn upstream_set() -> Result<&'static RuleSet, RulesError> {
    static SET: OnceLock<Result<RuleSet, LoadError>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = RuleSet::new();
        for (name, text) in UPSTREAM {
            set.add_file(name, text, false)?;
        }
        Ok(set)
    })
    .as_ref()
    .map_err(|e| RulesError::Load(e.clone()))
}

/// The built-in upstream rules, compiled once.
pub fn upstream() -> Result<Arc<Compiled>, RulesError> {
    static C: OnceLock<Result<Arc<Compiled>, LoadError>> = OnceLock::new();
    let set = upstream_set()?;
    C.get_or_init(|| compile(set).map(Arc::new))
        .clone()
        .map_err(RulesError::Load)
}

/// Rule checks remembered per fingerprint, so a storm of one cluster is evaluated once.
const CACHE_LIMIT: usize = 10_000;

/// The upstream rules plus the user's rules files.
pub struct RuleBook {
    /// Upstream with the user's files on top; None without user files.
    merged: Option<Compiled>,
    user_files: Vec<String>,
    /// Shared, not cloned: every repeat of a cluster reads the same checks.
    /// Keyed by fingerprint, which is already a hash: the map takes it as it is.
    cache: Mutex<HashMap<u64, Arc<[RuleCheck]>, BuildHasherDefault<FingerprintHasher>>>,
    /// Conditions evaluated (cache misses), for tests and statistics.
    evaluations: AtomicU64,
}

impl std::fmt::Debug for RuleBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleBook")
            .field("user_files", &self.user_files)
            .finish_non_exhaustive()
    }
}

impl Default for RuleBook {
    fn default() -> Self {
        Self::builtin()
    }
}

impl RuleBook {
    /// The upstream rules only (compiled on first use).
    pub fn builtin() -> Self {
        RuleBook {
            merged: None,
            user_files: Vec::new(),
            cache: Mutex::new(HashMap::default()),
            evaluations: AtomicU64::new(0),
        }
    }

    /// Upstream plus the given rules files, loaded in order on top of it. A file that cannot be
    /// read, parsed or compiled is an error naming the file, the item and the position.
    pub fn load(paths: &[PathBuf]) -> Result<Self, RulesError> {
        let mut texts = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|source| RulesError::Io {
                path: p.clone(),
                source,
            })?;
            texts.push((p.display().to_string(), text));
        }
        Self::from_texts(&texts)
    }

    /// [`RuleBook::load`] from (file name, text) pairs.
    pub fn from_texts(files: &[(String, String)]) -> Result<Self, RulesError> {
        if files.is_empty() {
            return Ok(Self::builtin());
        }
        let mut set = upstream_set()?.clone();
        for (name, text) in files {
            set.add_file(name, text, true)?;
        }
        Ok(RuleBook {
            merged: Some(compile(&set)?),
            user_files: files.iter().map(|(n, _)| n.clone()).collect(),
            cache: Mutex::new(HashMap::default()),
            evaluations: AtomicU64::new(0),
        })
    }

    /// How many alerts had their rule conditions evaluated (not answered from the cache).
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::Relaxed)
    }

    /// The user's rules files, in load order.
    pub fn user_files(&self) -> &[String] {
        &self.user_files
    }

    /// The rule conditions that apply to the alert, evaluated over its fields: the upstream
    /// rule, and the rule as the user's files make it when they define or change it.
    pub fn check(&self, alert: &Alert) -> Vec<RuleCheck> {
        if alert.rule.is_unknown() {
            return Vec::new();
        }
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        let name = alert.rule.as_str();
        let fields = AlertFields(alert);
        let mut out = Vec::new();
        if let Ok(up) = upstream() {
            if let Some(r) = up.rule(name) {
                out.push(rule_check(
                    RuleOrigin::Upstream,
                    &r.name,
                    r.condition.evaluate(&fields),
                ));
            }
        }
        if let Some(r) = self.merged.as_ref().and_then(|m| m.rule(name)) {
            if let Some(file) = r.user_files.last() {
                out.push(rule_check(
                    RuleOrigin::User { file: file.clone() },
                    &r.name,
                    r.condition.evaluate(&fields),
                ));
            }
        }
        out
    }

    /// [`RuleBook::check`], remembered by the alert's fingerprint.
    pub fn check_cached(&self, fingerprint: u64, alert: &Alert) -> Arc<[RuleCheck]> {
        self.check_cached_or(fingerprint, alert, None)
    }

    /// [`RuleBook::check_cached`], where `computed` (when given) is `check(alert)` worked out
    /// already (on another thread): it is kept only if the fingerprint has none yet.
    pub fn check_cached_or(
        &self,
        fingerprint: u64,
        alert: &Alert,
        computed: Option<Arc<[RuleCheck]>>,
    ) -> Arc<[RuleCheck]> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache.get(&fingerprint) {
                return Arc::clone(hit);
            }
        }
        let checks: Arc<[RuleCheck]> = computed.unwrap_or_else(|| self.check(alert).into());
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(fingerprint, Arc::clone(&checks));
        }
        checks
    }
}

impl crate::verdict::Context {
    /// A context holding only rule checks; the engine fills in the rest field by field.
    pub fn with_rule_checks(rule_checks: impl Into<Arc<[RuleCheck]>>) -> Self {
        crate::verdict::Context {
            rule_checks: rule_checks.into(),
            ..Default::default()
        }
    }
}

fn rule_check(origin: RuleOrigin, rule: &str, out: Outcome) -> RuleCheck {
    let fires = match out.value {
        fa_condition::Tri::True => Tri::True,
        fa_condition::Tri::False => Tri::False,
        fa_condition::Tri::Unknown => Tri::Unknown,
    };
    // Only an allow-list that holds (a negated macro, list or exception) excludes the alert; a
    // positive term that is false means the alert is not what this rule looks for (an older
    // rule of another meaning fired), which says nothing about whether it is benign.
    let excluded_by = if fires == Tri::False && out.excluded {
        out.because
            .into_iter()
            .map(|s| Exclusion {
                kind: match s.kind {
                    StepKind::Macro => ExclusionKind::Macro,
                    StepKind::List => ExclusionKind::List,
                    StepKind::Exception => ExclusionKind::Exception,
                    StepKind::Comparison => ExclusionKind::Condition,
                },
                name: s.name,
                field: s.field,
                value: s.value,
            })
            .collect()
    } else {
        Vec::new()
    };
    RuleCheck {
        origin,
        rule: rule.to_string(),
        fires,
        excluded_by,
    }
}

fn multi_valued(name: &str) -> bool {
    rule_fields().multi_valued.iter().any(|p| {
        if p.ends_with('.') {
            name.starts_with(p.as_str())
        } else {
            name == p
        }
    })
}

/// An alert's fields as a condition sees them. The alert carries only its rule's output
/// fields (and the top-level hostname and source): anything else is unknown.
pub struct AlertFields<'a>(pub &'a Alert);

impl AlertFields<'_> {
    /// The first word of a command-line field, as the process name it starts with.
    fn first_word(&self, key: &str) -> Lookup {
        match self.raw(key) {
            Lookup::Known(v) => Lookup::Known(
                v.first()
                    .and_then(|c| c.split_whitespace().next())
                    .map(|w| vec![w.to_string()])
                    .unwrap_or_default(),
            ),
            l => l,
        }
    }

    fn raw(&self, key: &str) -> Lookup {
        let alert = self.0;
        match alert.output_fields.get(key) {
            Some(serde_json::Value::Null) => Lookup::Known(Vec::new()),
            Some(serde_json::Value::Array(items)) => Lookup::Known(
                items
                    .iter()
                    .filter_map(|v| v.as_text().map(|t| t.into_owned()))
                    .collect(),
            ),
            Some(serde_json::Value::String(s)) if s == "<NA>" => Lookup::Known(Vec::new()),
            Some(serde_json::Value::String(s)) if multi_valued(key) => {
                let inner = s
                    .strip_prefix('(')
                    .and_then(|x| x.strip_suffix(')'))
                    .unwrap_or(s);
                Lookup::Known(if inner.is_empty() {
                    Vec::new()
                } else {
                    inner.split(',').map(|x| x.trim().to_string()).collect()
                })
            }
            Some(serde_json::Value::String(s)) => Lookup::Known(vec![s.clone()]),
            Some(v) => Lookup::Known(v.as_text().map(|t| t.into_owned()).into_iter().collect()),
            None => match key {
                "hostname" | "evt.hostname" => alert
                    .hostname
                    .as_ref()
                    .map_or(Lookup::Unknown, |h| Lookup::Known(vec![h.clone()])),
                "evt.source" => alert.source.as_ref().map_or(Lookup::Unknown, |s| {
                    Lookup::Known(vec![s.as_str().to_string()])
                }),
                _ => Lookup::Unknown,
            },
        }
    }
}

/// Apply `f` to each known value (values it maps to None are dropped).
fn map_known(l: Lookup, f: impl Fn(&str) -> Option<String>) -> Lookup {
    match l {
        Lookup::Known(v) => Lookup::Known(v.iter().filter_map(|x| f(x)).collect()),
        Lookup::Partial(v) => Lookup::Partial(v.iter().filter_map(|x| f(x)).collect()),
        Lookup::Unknown => Lookup::Unknown,
    }
}

/// An image reference without its tag or digest ([`fa_model::fields::split_image`]).
fn repository(image: &str) -> String {
    fa_model::fields::split_image(image).0.to_string()
}

impl FieldSource for AlertFields<'_> {
    fn field(&self, name: &str, arg: Option<&str>) -> Lookup {
        match (name, arg) {
            // Any ancestor: the alert prints some of them at most.
            ("proc.aname", None) => {
                let anc: Vec<String> = self
                    .0
                    .ancestors()
                    .into_iter()
                    .map(|a| a.into_owned())
                    .collect();
                if anc.is_empty() {
                    Lookup::Unknown
                } else {
                    Lookup::Partial(anc)
                }
            }
            ("proc.aname", Some("0")) => self.raw("proc.name"),
            ("proc.aname", Some("1")) => match self.raw("proc.aname[1]") {
                Lookup::Unknown => self.raw("proc.pname"),
                l => l,
            },
            ("proc.pname", None) => match self.raw("proc.pname") {
                Lookup::Unknown => match self.raw("proc.aname[1]") {
                    Lookup::Unknown => self.first_word("proc.pcmdline"),
                    l => l,
                },
                l => l,
            },
            // Falco's `proc.cmdline` is `proc.name` followed by the arguments, so an alert that
            // prints only the command line (most text outputs) still names its process.
            ("proc.name", None) => match self.raw("proc.name") {
                Lookup::Unknown => self.first_word("proc.cmdline"),
                l => l,
            },
            // Fields Falco derives from others: an alert that prints `fd.name` names its
            // directory too (upstream macros such as `ufw_writing_conf` test fd.directory).
            ("fd.directory", None) => match self.raw("fd.directory") {
                Lookup::Unknown => map_known(self.raw("fd.name"), |v| {
                    v.rsplit_once('/').map(|(d, _)| {
                        if d.is_empty() {
                            "/".to_string()
                        } else {
                            d.to_string()
                        }
                    })
                }),
                l => l,
            },
            ("fd.filename", None) => match self.raw("fd.filename") {
                Lookup::Unknown => map_known(self.raw("fd.name"), |v| {
                    v.rsplit_once('/').map(|(_, f)| f.to_string())
                }),
                l => l,
            },
            // A repository is an image reference without its tag or digest; text outputs often
            // print `image=registry/name:tag` under the repository's key.
            ("container.image.repository", None) => match self.raw("container.image.repository") {
                Lookup::Unknown => map_known(self.raw("container.image"), |v| Some(repository(v))),
                l => map_known(l, |v| Some(repository(v))),
            },
            ("ka.req.pod.containers.image.repository", None) => {
                match self.raw("ka.req.pod.containers.image.repository") {
                    Lookup::Unknown => map_known(self.raw("ka.req.pod.containers.image"), |v| {
                        Some(repository(v))
                    }),
                    l => map_known(l, |v| Some(repository(v))),
                }
            }
            (_, Some(a)) => {
                let l = self.raw(&format!("{name}[{a}]"));
                // `evt.arg.flags` and `evt.arg[flags]` are the same field.
                match (l, name) {
                    (Lookup::Unknown, "evt.arg") => self.raw(&format!("evt.arg.{a}")),
                    (l, _) => l,
                }
            }
            (_, None) => self.raw(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(json: &str) -> Alert {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rule_fields_data_loads() {
        let f: RuleFields = toml::from_str(RULE_FIELDS).unwrap();
        assert!(!f.multi_valued.is_empty() && !f.narrowing.is_empty());
    }

    #[test]
    fn upstream_compiles_all_rules() {
        assert_eq!(upstream().unwrap().len(), 242);
    }

    /// An old rule fired on a Falco image; today's upstream rule excludes it by its macro.
    #[test]
    fn upstream_rule_excludes_by_macro_with_field_and_value() {
        let a = alert(
            r#"{"rule":"Launch Privileged Container","priority":"Info","output_fields":{
                "container.id":"0123456789ab","container.privileged":true,
                "container.image.repository":"docker.io/falcosecurity/falco","proc.name":"falco"}}"#,
        );
        let checks = RuleBook::builtin().check(&a);
        assert_eq!(checks.len(), 1);
        let c = &checks[0];
        assert_eq!(c.origin, RuleOrigin::Upstream);
        assert_eq!(c.fires, Tri::False, "{c:?}");
        let first = &c.excluded_by[0];
        assert_eq!(first.kind, ExclusionKind::Macro);
        assert_eq!(first.name, "falco_privileged_containers");
        assert_eq!(first.field.as_deref(), Some("container.image.repository"));
        assert_eq!(
            first.value.as_deref(),
            Some("docker.io/falcosecurity/falco")
        );
        assert!(c
            .excluded_by
            .iter()
            .any(|e| e.kind == ExclusionKind::List && e.name == "falco_privileged_images"));
    }

    /// Falco derives fd.directory from fd.name, and a repository is the image without its tag:
    /// an alert that prints only fd.name, or `image=name:tag`, still meets upstream's macros.
    #[test]
    fn derived_fields_reach_upstream_allow_lists() {
        let a = alert(
            r#"{"rule":"Write below etc","priority":"Error","output_fields":{
                "proc.name":"ufw","proc.cmdline":"ufw /usr/sbin/ufw disable",
                "fd.name":"/etc/ufw/ufw.conf","user.name":"root"}}"#,
        );
        let c = &RuleBook::builtin().check(&a)[0];
        assert_eq!(c.fires, Tri::False, "{c:?}");
        assert_eq!(c.excluded_by[0].name, "ufw_writing_conf", "{c:?}");
        let p = alert(
            r#"{"rule":"Create Privileged Pod","priority":"Warning","output_fields":{
                "ka.user.name":"system:serviceaccount:kube-system:daemon-set-controller",
                "ka.req.pod.containers.image":"docker.io/falcosecurity/falco:0.24.0"}}"#,
        );
        let c = &RuleBook::builtin().check(&p)[0];
        assert_eq!(c.fires, Tri::False, "{c:?}");
        assert!(
            c.excluded_by
                .iter()
                .any(|e| e.name == "k8s_audit_privileged_images"),
            "{c:?}"
        );
        assert_eq!(
            repository("registry:5000/a/b:1.2@sha256:ff"),
            "registry:5000/a/b"
        );
        assert_eq!(repository("alpine"), "alpine");
    }

    #[test]
    fn missing_event_fields_leave_it_unknown() {
        let a = alert(
            r#"{"rule":"Launch Privileged Container","priority":"Info","output_fields":{
                "container.id":"0123456789ab","container.privileged":true,
                "container.image.repository":"docker.io/evil/miner"}}"#,
        );
        let c = &RuleBook::builtin().check(&a)[0];
        assert_eq!(c.fires, Tri::Unknown);
        assert!(c.excluded_by.is_empty());
    }

    #[test]
    fn user_files_change_upstream_rules_and_add_custom_ones() {
        let book = RuleBook::from_texts(&[(
            "my_rules.yaml".into(),
            r#"
- list: falco_privileged_images
  items: [docker.io/acme/agent]
  override:
    items: append
- rule: Acme custom
  desc: d
  condition: proc.name = nc and not user.name in (ops)
  output: o
  priority: WARNING
"#
            .into(),
        )])
        .unwrap();
        let a = alert(
            r#"{"rule":"Launch Privileged Container","priority":"Info","output_fields":{
                "container.id":"0123456789ab","container.privileged":true,
                "container.image.repository":"docker.io/acme/agent"}}"#,
        );
        let checks = book.check(&a);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].fires, Tri::Unknown);
        assert_eq!(
            checks[1].origin,
            RuleOrigin::User {
                file: "my_rules.yaml".into()
            }
        );
        assert_eq!(checks[1].fires, Tri::False);
        let custom = alert(
            r#"{"rule":"Acme custom","priority":"Warning","output_fields":{"proc.name":"nc","user.name":"ops"}}"#,
        );
        let checks = book.check(&custom);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].fires, Tri::False);
        assert_eq!(checks[0].excluded_by[0].field.as_deref(), Some("user.name"));
    }

    #[test]
    fn bad_user_file_names_file_item_and_position() {
        let e = RuleBook::from_texts(&[(
            "bad.yaml".into(),
            "- rule: Mine\n  condition: proc.name = x and (fd.name = y\n  output: o\n  priority: INFO\n".into(),
        )])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("bad.yaml:1") && e.contains("rule `Mine`") && e.contains("column"),
            "{e}"
        );
        let e = RuleBook::load(&[PathBuf::from("/nonexistent/rules.yaml")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/rules.yaml"), "{e}");
    }

    #[test]
    fn alert_fields_lookup() {
        let a = alert(
            r#"{"rule":"r","priority":"Info","hostname":"node-1","output_fields":{
                "proc.pname":"bash","proc.aname[2]":"sshd","k8s.ns.name":null,"fd.name":"<NA>",
                "ka.req.pod.containers.privileged":"(false,true)","evt.arg.flags":"O_RDONLY"}}"#,
        );
        let f = AlertFields(&a);
        assert_eq!(
            f.field("proc.aname", None),
            Lookup::Partial(vec!["bash".into(), "sshd".into()])
        );
        assert_eq!(
            f.field("proc.aname", Some("1")),
            Lookup::Known(vec!["bash".into()])
        );
        assert_eq!(f.field("k8s.ns.name", None), Lookup::Known(vec![]));
        assert_eq!(f.field("fd.name", None), Lookup::Known(vec![]));
        assert_eq!(f.field("proc.name", None), Lookup::Unknown);
        assert_eq!(
            f.field("hostname", None),
            Lookup::Known(vec!["node-1".into()])
        );
        assert_eq!(
            f.field("ka.req.pod.containers.privileged", None),
            Lookup::Known(vec!["false".into(), "true".into()])
        );
        assert_eq!(
            f.field("evt.arg", Some("flags")),
            Lookup::Known(vec!["O_RDONLY".into()])
        );
    }

    #[test]
    fn cache_evaluates_once_per_fingerprint() {
        let book = RuleBook::builtin();
        let a = alert(
            r#"{"rule":"Launch Privileged Container","priority":"Info","output_fields":{"container.image.repository":"docker.io/falcosecurity/falco","container.id":"x","container.privileged":true}}"#,
        );
        let first = book.check_cached(7, &a);
        // A different alert under the same fingerprint gets the remembered result.
        let b = alert(r#"{"rule":"Launch Privileged Container","priority":"Info"}"#);
        assert_eq!(book.check_cached(7, &b), first);
        assert!(Arc::ptr_eq(&book.check_cached(7, &b), &first));
        assert_ne!(book.check(&b)[..], first[..]);
    }

    #[test]
    fn a_text_alert_names_its_process_through_its_command_line() {
        // falcosecurity/falco#439: GKE's fluentd scaler runs kubectl, which caches discovery
        // data under /root/.kube. The text output prints `command=` and `file=`, no proc.name;
        // the upstream rule excludes it through macro `kubectl_writing_state`.
        let line = "16:06:27.084969768: Error File below / or /root opened for writing (user=root command=kubectl get scalingpolicies -n kube-system fluentd-gcp-scaling-policy parent=kubectl file=/root/.kube/cache/discovery/10.7.240.1_443/v1/serverresources.json.668007090)";
        let mut a = fa_ingest::parse_plain_line(line).expect("a Falco text line");
        a.rule = fa_model::RuleName::from("Write below root");
        let f = AlertFields(&a);
        assert_eq!(
            f.field("proc.name", None),
            Lookup::Known(vec!["kubectl".into()])
        );
        let checks = RuleBook::builtin().check(&a);
        let up = checks
            .iter()
            .find(|c| c.origin == RuleOrigin::Upstream)
            .expect("the upstream rule is checked");
        assert_eq!(up.fires, Tri::False, "{up:?}");
        assert!(
            up.excluded_by
                .iter()
                .any(|e| e.name == "kubectl_writing_state"),
            "{:?}",
            up.excluded_by
        );
    }
}
