//! The on-disk form of knowledge-base files (`kb/rules/*.toml`, `kb/benign.toml`,
//! `kb/fallback.toml`, `kb/mitre.toml`). Unknown keys are errors so that typos surface.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub rule: Vec<RuleEntry>,
}

/// Everything the knowledge base knows about one Falco rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// The rule name exactly as Falco writes it in `rule`.
    pub name: String,
    /// Older names of the same rule (renamed across Falco releases).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `syscall`, `k8s_audit`, `aws_cloudtrail`, `gcp_auditlog`, `github`, `okta`, or a plugin's name.
    pub source: String,
    /// The upstream rules file, e.g. `falco_rules.yaml`; absent for user entries.
    #[serde(default)]
    pub rules_file: Option<String>,
    /// Priority as upstream declares it.
    pub priority: String,
    /// `stable`, `incubating`, `sandbox`, `deprecated`.
    #[serde(default)]
    pub maturity: Option<String>,
    /// 0 (noise) to 10 (almost always an attack): how bad a true positive of this rule is.
    pub severity: u8,
    /// What the rule detects and why it matters, in a few plain sentences.
    pub description: String,
    /// Where the rule is known to be noisy in practice.
    #[serde(default)]
    pub false_positives: Option<String>,
    /// The fixed start of the rule's output text, to recover the rule from plain-text alerts.
    #[serde(default)]
    pub output_hint: Option<String>,
    /// The output fields that matter most for this rule.
    #[serde(default)]
    pub key_fields: Vec<String>,
    /// Fields an exception for this rule is scoped by, narrowest evidence first.
    #[serde(default)]
    pub tuning_fields: Vec<String>,
    #[serde(default)]
    pub mitre: Vec<MitreEntry>,
    #[serde(default)]
    pub investigate: Vec<InvestigateEntry>,
    #[serde(default)]
    pub mitigate: Vec<MitigateEntry>,
    #[serde(default)]
    pub benign: Vec<SignatureEntry>,
    #[serde(default)]
    pub next_steps: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MitreEntry {
    /// Tactic slug as in Falco tags without the `mitre_` prefix, e.g. `execution`.
    pub tactic: String,
    /// Technique id, e.g. `T1059.004`.
    #[serde(default)]
    pub technique: Option<String>,
    /// Technique name, e.g. `Command and Scripting Interpreter: Unix Shell`.
    #[serde(default)]
    pub technique_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvestigateEntry {
    pub title: String,
    /// A command with `{falco.field}` placeholders filled from the alert.
    #[serde(default)]
    pub command: Option<String>,
    /// Which validator checks `command` (default `shell`).
    #[serde(default)]
    pub lang: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MitigateEntry {
    /// `prevent`, `detect` or `respond`.
    pub kind: String,
    pub title: String,
    pub text: String,
    /// Language of `example`: shell, docker, kubectl, k8s-yaml, falco-yaml, seccomp-json, apparmor, aws, gcloud, gh, text.
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub example: Option<String>,
}

/// A known-benign pattern: all `all` conditions hold and, if `any` is non-empty, one of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    pub id: String,
    /// Shown to the analyst as the reason, e.g. "matches Calico's CNI clean-up signature".
    pub reason: String,
    /// Where the fact that this activity is benign comes from (required: no unsourced knowledge).
    pub source: SignatureSource,
    #[serde(default)]
    pub kind: Option<SignatureKind>,
    /// Only in `kb/benign.toml`: the rules it applies to (empty = every rule).
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub all: Vec<Condition>,
    #[serde(default)]
    pub any: Vec<Condition>,
}

/// One test on one field. Exactly one operator must be set. `field` may be a Falco field or
/// `ancestry` (any of proc.pname, proc.aname[N], proc.pexepath, proc.pexe, proc.pcmdline).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub one_of: Option<Vec<String>>,
    #[serde(default)]
    pub glob: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    /// `true`: the field is missing, null, empty or `<NA>`; `false`: it has a value.
    #[serde(default)]
    pub absent: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BenignFile {
    /// Command-line evidence of an attack that vetoes the guarded signature kinds.
    #[serde(default)]
    pub attack_evidence: Option<AttackEvidence>,
    #[serde(default)]
    pub signature: Vec<SignatureEntry>,
}

/// Patterns that mark a command line as carrying attack evidence (a reverse shell, a download
/// piped into a shell...). A signature of one of `kinds` never matches an alert whose `fields`
/// match one of `patterns`: an agent or a controller's identity does not excuse what it runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackEvidence {
    /// Where the patterns come from.
    pub source: SignatureSource,
    pub kinds: Vec<SignatureKind>,
    pub fields: Vec<String>,
    pub patterns: Vec<AttackPattern>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackPattern {
    /// A regular expression (case-insensitive) searched anywhere in the field.
    pub regex: String,
    /// What it detects, shown when it vetoes a signature.
    pub means: String,
}

/// What kind of benign activity a signature describes; it sets how much the match lowers the
/// verdict score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureKind {
    /// Falco's own test tools firing rules on purpose.
    Test,
    /// Infrastructure cleaning up or maintaining its own state.
    Housekeeping,
    /// Container runtimes and their plumbing.
    Runtime,
    /// Image builds.
    Build,
    /// Health checks and probes.
    Probe,
    /// A person's routine administration.
    Admin,
    /// Kubernetes control-plane components acting under their own authenticated identity.
    ControlPlane,
    /// Node and cluster agents (CNI, CSI, logging, monitoring, cloud-provider agents).
    Agent,
    /// Something upstream's own allow-lists already treat as expected.
    Allowlist,
}

impl SignatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureKind::Test => "test",
            SignatureKind::Housekeeping => "housekeeping",
            SignatureKind::Runtime => "runtime",
            SignatureKind::Build => "build",
            SignatureKind::Probe => "probe",
            SignatureKind::Admin => "admin",
            SignatureKind::ControlPlane => "control-plane",
            SignatureKind::Agent => "agent",
            SignatureKind::Allowlist => "allowlist",
        }
    }
}

/// Where a signature's fact comes from: an upstream Falco macro or list (by name, checked
/// against `kb/upstream/*.yaml` by `kb lint`), or a public URL (vendor documentation, an issue
/// or pull request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureSource {
    Upstream(String),
    Url(String),
}

impl SignatureSource {
    pub fn parse(s: &str) -> Result<SignatureSource, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("https://") {
            if rest.contains('.') && !rest.contains(char::is_whitespace) {
                return Ok(SignatureSource::Url(s.to_string()));
            }
            return Err(format!("`{s}` is not a URL"));
        }
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Ok(SignatureSource::Upstream(s.to_string()));
        }
        Err(format!(
            "`{s}` is neither an upstream macro/list name nor an https:// URL"
        ))
    }
}

impl std::fmt::Display for SignatureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureSource::Upstream(n) => write!(f, "upstream `{n}`"),
            SignatureSource::Url(u) => f.write_str(u),
        }
    }
}

impl<'de> Deserialize<'de> for SignatureSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SignatureSource::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MitreFile {
    #[serde(default)]
    pub tactic: Vec<TacticEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TacticEntry {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub order: u8,
    /// Other slugs upstream tags use for this tactic.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// What a report says for a rule the knowledge base does not know, per source.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FallbackFile {
    #[serde(default)]
    pub source: Vec<FallbackSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSource {
    /// Source name, or `*` for any source not listed.
    pub name: String,
    #[serde(default)]
    pub tuning_fields: Vec<String>,
    #[serde(default)]
    pub investigate: Vec<InvestigateEntry>,
    #[serde(default)]
    pub next_steps: Vec<String>,
}
