//! The knowledge base: one curated entry per Falco rule, compiled into the binary from
//! `kb/*.toml`, extendable and overridable with user directories (`--kb DIR`).

mod enrich;
mod matcher;
pub mod recover;
pub mod schema;

pub(crate) use enrich::is_placeholder;
pub use enrich::{
    fill_placeholders, scope_values, shell_quote, tuning, yaml_flow_item, yaml_quote, Filled,
};
pub use matcher::{AttackGuard, Signature, SignatureMatch, Veto, ANCESTRY_PREFIX};
pub use schema::*;

use fa_model::{Alert, Priority, RuleName};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The built-in files, compiled in. Paths are relative to this file.
const BUILTIN_RULES: &[(&str, &str)] = &[
    (
        "kb/rules/falco_rules.toml",
        include_str!("../../../../kb/rules/falco_rules.toml"),
    ),
    (
        "kb/rules/falco-incubating_rules.toml",
        include_str!("../../../../kb/rules/falco-incubating_rules.toml"),
    ),
    (
        "kb/rules/falco-sandbox_rules.toml",
        include_str!("../../../../kb/rules/falco-sandbox_rules.toml"),
    ),
    (
        "kb/rules/falco-deprecated_rules.toml",
        include_str!("../../../../kb/rules/falco-deprecated_rules.toml"),
    ),
    (
        "kb/rules/k8s_audit_rules.toml",
        include_str!("../../../../kb/rules/k8s_audit_rules.toml"),
    ),
    (
        "kb/rules/aws_cloudtrail_rules.toml",
        include_str!("../../../../kb/rules/aws_cloudtrail_rules.toml"),
    ),
    (
        "kb/rules/gcp_auditlog_rules.toml",
        include_str!("../../../../kb/rules/gcp_auditlog_rules.toml"),
    ),
    (
        "kb/rules/github_rules.toml",
        include_str!("../../../../kb/rules/github_rules.toml"),
    ),
    (
        "kb/rules/okta_rules.toml",
        include_str!("../../../../kb/rules/okta_rules.toml"),
    ),
    (
        "kb/rules/removed_rules.toml",
        include_str!("../../../../kb/rules/removed_rules.toml"),
    ),
    (
        "kb/rules/falco_internal.toml",
        include_str!("../../../../kb/rules/falco_internal.toml"),
    ),
];
const BUILTIN_BENIGN: &str = include_str!("../../../../kb/benign.toml");
const BUILTIN_MITRE: &str = include_str!("../../../../kb/mitre.toml");
const BUILTIN_FALLBACK: &str = include_str!("../../../../kb/fallback.toml");

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: rule `{rule}`: {field}: {problem}")]
    Invalid {
        file: String,
        rule: String,
        field: String,
        problem: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One rule's knowledge, validated and with its signatures compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub entry: RuleEntry,
    pub priority: Priority,
    pub signatures: Vec<Signature>,
    /// The file the entry came from (built-in path or user file).
    pub origin: String,
}

#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    rules: Vec<Rule>,
    index: HashMap<String, usize>,
    index_folded: HashMap<String, usize>,
    hints: Vec<(String, usize)>,
    global: Vec<Signature>,
    guard: AttackGuard,
    tactics: Vec<TacticEntry>,
    fallback: FallbackFile,
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, KbError> {
    toml::from_str(text).map_err(|e| KbError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })
}

impl KnowledgeBase {
    /// The compiled-in knowledge base alone.
    pub fn builtin() -> Result<KnowledgeBase, KbError> {
        Self::load(&[])
    }

    /// Built-in entries, then every `*.toml` in each user directory (sorted by name); a user
    /// entry with the name of an existing rule replaces it. A user file may hold `[[rule]]`
    /// entries and `[[signature]]` entries.
    pub fn load(user_dirs: &[PathBuf]) -> Result<KnowledgeBase, KbError> {
        let mitre: MitreFile = parse_toml("kb/mitre.toml", BUILTIN_MITRE)?;
        let fallback: FallbackFile = parse_toml("kb/fallback.toml", BUILTIN_FALLBACK)?;
        recover::builtin_aliases()?;
        let mut kb = KnowledgeBase {
            rules: Vec::new(),
            index: HashMap::new(),
            index_folded: HashMap::new(),
            hints: Vec::new(),
            global: Vec::new(),
            guard: AttackGuard::default(),
            tactics: mitre.tactic,
            fallback,
        };
        for (file, text) in BUILTIN_RULES {
            let parsed: RulesFile = parse_toml(file, text)?;
            for entry in parsed.rule {
                kb.insert(file, entry, false)?;
            }
        }
        let benign: BenignFile = parse_toml("kb/benign.toml", BUILTIN_BENIGN)?;
        if let Some(ev) = &benign.attack_evidence {
            kb.guard = AttackGuard::compile(ev).map_err(|problem| KbError::Invalid {
                file: "kb/benign.toml".into(),
                rule: String::new(),
                field: "attack_evidence".into(),
                problem,
            })?;
        }
        kb.add_global("kb/benign.toml", benign.signature)?;
        for dir in user_dirs {
            for path in toml_files(dir)? {
                let text = std::fs::read_to_string(&path).map_err(|source| KbError::Io {
                    path: path.clone(),
                    source,
                })?;
                let name = path.display().to_string();
                let parsed: UserFile = parse_toml(&name, &text)?;
                for entry in parsed.rule {
                    kb.insert(&name, entry, true)?;
                }
                kb.add_global(&name, parsed.signature)?;
            }
        }
        kb.reindex();
        Ok(kb)
    }

    fn add_global(&mut self, file: &str, sigs: Vec<SignatureEntry>) -> Result<(), KbError> {
        for s in sigs {
            let compiled = Signature::compile(&s).map_err(|problem| KbError::Invalid {
                file: file.to_string(),
                rule: s.rules.join(", "),
                field: format!("signature `{}`", s.id),
                problem,
            })?;
            self.global.push(compiled);
        }
        Ok(())
    }

    fn insert(&mut self, file: &str, entry: RuleEntry, user: bool) -> Result<(), KbError> {
        let rule = self.validate(file, entry)?;
        if let Some(&i) = self.index.get(&rule.entry.name) {
            if !user {
                return Err(KbError::Invalid {
                    file: file.to_string(),
                    rule: rule.entry.name.clone(),
                    field: "name".into(),
                    problem: format!("duplicate entry (also in {})", self.rules[i].origin),
                });
            }
            self.rules[i] = rule;
        } else {
            self.index.insert(rule.entry.name.clone(), self.rules.len());
            self.rules.push(rule);
        }
        Ok(())
    }

    fn validate(&self, file: &str, entry: RuleEntry) -> Result<Rule, KbError> {
        let err = |field: &str, problem: String| KbError::Invalid {
            file: file.to_string(),
            rule: entry.name.clone(),
            field: field.to_string(),
            problem,
        };
        if entry.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        let priority: Priority = entry
            .priority
            .parse()
            .map_err(|e| err("priority", format!("{e}")))?;
        if entry.severity > 10 {
            return Err(err(
                "severity",
                format!("{} is outside 0..=10", entry.severity),
            ));
        }
        if entry.description.trim().is_empty() {
            return Err(err("description", "must not be empty".into()));
        }
        for (i, m) in entry.mitre.iter().enumerate() {
            if self.tactic_by_slug(&m.tactic).is_none() {
                return Err(err(
                    &format!("mitre[{i}].tactic"),
                    format!("unknown tactic `{}`", m.tactic),
                ));
            }
            if let Some(t) = &m.technique {
                if !is_technique_id(t) {
                    return Err(err(
                        &format!("mitre[{i}].technique"),
                        format!("`{t}` is not a technique id like T1059 or T1059.004"),
                    ));
                }
            }
        }
        for (i, m) in entry.mitigate.iter().enumerate() {
            if !matches!(m.kind.as_str(), "prevent" | "detect" | "respond") {
                return Err(err(
                    &format!("mitigate[{i}].kind"),
                    format!("`{}` is not one of prevent, detect, respond", m.kind),
                ));
            }
            if m.example.is_some() && m.lang.is_none() {
                return Err(err(
                    &format!("mitigate[{i}].lang"),
                    "an example needs a lang".into(),
                ));
            }
        }
        let mut signatures = Vec::new();
        for (i, s) in entry.benign.iter().enumerate() {
            if !s.rules.is_empty() {
                return Err(err(
                    &format!("benign[{i}].rules"),
                    "only global signatures name rules".into(),
                ));
            }
            signatures.push(Signature::compile(s).map_err(|p| err(&format!("benign[{i}]"), p))?);
        }
        Ok(Rule {
            entry,
            priority,
            signatures,
            origin: file.to_string(),
        })
    }

    fn reindex(&mut self) {
        self.index.clear();
        self.index_folded.clear();
        self.hints.clear();
        for (i, r) in self.rules.iter().enumerate() {
            for n in std::iter::once(&r.entry.name).chain(r.entry.aliases.iter()) {
                self.index.entry(n.clone()).or_insert(i);
                self.index_folded.entry(n.to_lowercase()).or_insert(i);
            }
            if let Some(h) = &r.entry.output_hint {
                if h.trim().len() >= 8 {
                    self.hints.push((h.trim().to_lowercase(), i));
                }
            }
        }
        // Old names and every upstream version's output text (kb/aliases.toml); checked to
        // parse in `load`.
        if let Ok(table) = recover::builtin_aliases() {
            recover::add_aliases(
                table,
                &mut self.index,
                &mut self.index_folded,
                &mut self.hints,
            );
        }
        // Longest hint first so a specific message wins over a prefix of it.
        self.hints
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The entry for a rule name or one of its aliases (exact, then case-insensitive).
    pub fn lookup(&self, rule: &RuleName) -> Option<&Rule> {
        self.lookup_str(rule.as_str())
    }

    pub fn lookup_str(&self, name: &str) -> Option<&Rule> {
        if let Some(&i) = self.index.get(name) {
            return Some(&self.rules[i]);
        }
        self.index_folded
            .get(&name.trim().to_lowercase())
            .map(|&i| &self.rules[i])
    }

    /// For plain-text alerts: the rule whose fixed output text starts the message.
    pub fn recover_rule(&self, message: &str) -> Option<&Rule> {
        let m = message.trim_start().to_lowercase();
        self.hints
            .iter()
            .find(|(h, _)| m.starts_with(h.as_str()))
            .map(|&(_, i)| &self.rules[i])
    }

    /// Every known-benign signature the alert matches: the rule's own, then global ones. A
    /// signature whose kind the attack guard covers does not match when the alert's command
    /// line carries attack evidence.
    pub fn benign_matches<'a>(
        &'a self,
        alert: &Alert,
        rule: Option<&'a Rule>,
    ) -> Vec<SignatureMatch<'a>> {
        let name = rule
            .map(|r| r.entry.name.as_str())
            .unwrap_or(alert.rule.as_str());
        let own = rule.into_iter().flat_map(|r| r.signatures.iter());
        let global = self.global.iter().filter(|s| s.applies_to(name));
        // The guard's verdict is the same for every guarded signature: compute it once.
        let mut vetoed: Option<bool> = None;
        own.chain(global)
            .filter_map(|s| s.matches(alert).map(|m| (s, m)))
            .filter(|(s, _)| {
                !self.guard.guards(s.kind)
                    || !*vetoed.get_or_insert_with(|| self.guard.evidence(alert).is_some())
            })
            .map(|(_, m)| m)
            .collect()
    }

    /// The command-line attack evidence that vetoes agent and control-plane signatures.
    pub fn attack_guard(&self) -> &AttackGuard {
        &self.guard
    }

    pub fn global_signatures(&self) -> &[Signature] {
        &self.global
    }

    pub fn tactics(&self) -> &[TacticEntry] {
        &self.tactics
    }

    pub fn tactic_by_slug(&self, slug: &str) -> Option<&TacticEntry> {
        let s = slug.strip_prefix("mitre_").unwrap_or(slug);
        self.tactics
            .iter()
            .find(|t| t.slug == s || t.id == s || t.aliases.iter().any(|a| a == s))
    }

    pub fn fallback_for(&self, source: &str) -> Option<&FallbackSource> {
        self.fallback
            .source
            .iter()
            .find(|f| f.name == source)
            .or_else(|| self.fallback.source.iter().find(|f| f.name == "*"))
    }

    pub fn fallback(&self) -> &FallbackFile {
        &self.fallback
    }
}

/// A user directory's file: rule entries and global signatures side by side.
#[derive(Debug, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UserFile {
    #[serde(default)]
    rule: Vec<RuleEntry>,
    #[serde(default)]
    signature: Vec<SignatureEntry>,
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, KbError> {
    let rd = std::fs::read_dir(dir).map_err(|source| KbError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    out.sort();
    Ok(out)
}

/// `T1234` or `T1234.001`.
pub fn is_technique_id(s: &str) -> bool {
    let b = s.as_bytes();
    let base = b.len() >= 5 && b[0] == b'T' && b[1..5].iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => base,
        9 => base && b[5] == b'.' && b[6..9].iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// `TA0001`.
pub fn is_tactic_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6 && b.starts_with(b"TA") && b[2..].iter().all(u8::is_ascii_digit)
}
