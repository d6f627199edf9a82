//! Verdict weights and lists, from `kb/scoring.toml` (compiled in; overridable with a file),
//! and the attack evidence of `kb/evidence.toml`.

use crate::kb::KbError;
use crate::verdict::facts::{bind, Bound};
use crate::verdict::{EvidenceSet, FactSpec};
use fa_model::Priority;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const BUILTIN: &str = include_str!("../../../kb/scoring.toml");
/// The built-in kb/scoring.toml as written (for `kb lint`).
pub const BUILTIN_TEXT: &str = BUILTIN;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub malicious: f32,
    pub suspicious: f32,
    /// Benign evidence makes a verdict benign only below this score.
    pub benign: f32,
    /// Evidence at least this heavy is attack evidence: it forbids a benign verdict.
    pub attack_evidence: f32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseScoring {
    /// Added to the priority's base for a rule the knowledge base does not know.
    pub unknown_rule: f32,
}

/// When an activity's history makes it routine or new (`verdict::Prevalence`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrevalenceScoring {
    pub min_hosts: u32,
    pub min_workloads: u32,
    pub min_span_hours: f64,
    pub new_after_hours: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repetition {
    pub min_count: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentScoring {
    pub stages: Vec<Vec<String>>,
    pub two_stage_bonus: f32,
    pub three_stage_bonus: f32,
    pub distinct_rule_bonus: f32,
    pub distinct_rule_cap: f32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lists {
    shells: Vec<String>,
    services: Vec<String>,
    network_tools: Vec<String>,
    sensitive_namespaces: Vec<String>,
    mutable_tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoringFile {
    thresholds: Thresholds,
    priority_base: HashMap<String, f32>,
    base: BaseScoring,
    fact: Vec<FactSpec>,
    repetition: Repetition,
    prevalence: PrevalenceScoring,
    incident: IncidentScoring,
    lists: Lists,
}

#[derive(Debug, Clone)]
pub struct Scoring {
    pub thresholds: Thresholds,
    pub base: BaseScoring,
    /// The `[[fact]]` entries as written.
    pub facts: Vec<FactSpec>,
    /// Their weights and confidences in the fact table's order.
    bound: Vec<Bound>,
    pub evidence: EvidenceSet,
    pub repetition: Repetition,
    pub prevalence: PrevalenceScoring,
    pub incident: IncidentScoring,
    priority_base: HashMap<Priority, f32>,
    pub shells: NameSet,
    pub services: NameSet,
    pub network_tools: NameSet,
    pub sensitive_namespaces: NameSet,
    pub mutable_tags: NameSet,
}

/// A set of names the facts test alert values against, several times per alert: hashed with
/// one xxh3 call per name instead of SipHash. The sets are small and written by the operator,
/// so a weaker hash cannot be made to degrade them.
pub type NameSet = HashSet<String, BuildHasherDefault<NameHasher>>;

/// See [`NameSet`].
#[derive(Debug, Default)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.rotate_left(5) ^ xxhash_rust::xxh3::xxh3_64(bytes);
    }
}

impl Scoring {
    pub fn builtin() -> Result<Scoring, KbError> {
        Self::parse("kb/scoring.toml", BUILTIN)
    }

    /// Scoring from `text`, with the built-in attack evidence.
    pub fn parse(file: &str, text: &str) -> Result<Scoring, KbError> {
        let evidence = EvidenceSet::builtin().map_err(|e| KbError::Parse {
            file: "kb/evidence.toml".into(),
            message: e.to_string(),
        })?;
        Self::parse_with(file, text, evidence)
    }

    pub fn parse_with(file: &str, text: &str, evidence: EvidenceSet) -> Result<Scoring, KbError> {
        let f: ScoringFile = toml::from_str(text).map_err(|e| KbError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        let mut priority_base = HashMap::new();
        for (k, v) in f.priority_base {
            let p: Priority = k.parse().map_err(|e| KbError::Parse {
                file: file.to_string(),
                message: format!("priority_base: {e}"),
            })?;
            priority_base.insert(p, v);
        }
        if let Some(missing) = Priority::ALL
            .iter()
            .find(|p| !priority_base.contains_key(p))
        {
            return Err(KbError::Parse {
                file: file.to_string(),
                message: format!("priority_base: no value for {missing}"),
            });
        }
        let bound = bind(&f.fact).map_err(|message| KbError::Parse {
            file: file.to_string(),
            message,
        })?;
        let set = |v: Vec<String>| v.into_iter().collect::<NameSet>();
        Ok(Scoring {
            thresholds: f.thresholds,
            base: f.base,
            facts: f.fact,
            bound,
            evidence,
            repetition: f.repetition,
            prevalence: f.prevalence,
            incident: f.incident,
            priority_base,
            shells: set(f.lists.shells),
            services: set(f.lists.services),
            network_tools: set(f.lists.network_tools),
            sensitive_namespaces: set(f.lists.sensitive_namespaces),
            mutable_tags: set(f.lists.mutable_tags),
        })
    }

    /// Weight and confidence of the fact at `index` in the fact table.
    pub(crate) fn fact_bound(&self, index: usize) -> Bound {
        self.bound.get(index).copied().unwrap_or(Bound {
            weight: 0.0,
            confidence: 0.0,
        })
    }

    pub fn priority_base(&self, p: Priority) -> f32 {
        self.priority_base.get(&p).copied().unwrap_or(5.0)
    }

    /// 0-based stage index of a tactic slug, if it is in a stage.
    pub fn stage_of(&self, tactic_slug: &str) -> Option<usize> {
        self.incident
            .stages
            .iter()
            .position(|s| s.iter().any(|t| t == tactic_slug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn builtin_scoring_parses_and_has_every_priority() {
        let s = Scoring::builtin().unwrap();
        for p in Priority::ALL {
            assert!(s.priority_base(p) >= 0.0);
        }
        assert!(s.thresholds.malicious > s.thresholds.suspicious);
        assert_eq!(s.stage_of("execution"), Some(0));
        assert_eq!(s.stage_of("exfiltration"), Some(2));
    }
}
