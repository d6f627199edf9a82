//! Verdict weights and lists, from `kb/scoring.toml` (compiled in; overridable with a file).

use crate::kb::KbError;
use fa_model::Priority;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

const BUILTIN: &str = include_str!("../../../kb/scoring.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub malicious: f32,
    pub suspicious: f32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub benign_test: f32,
    pub benign_housekeeping: f32,
    pub benign_other: f32,
    pub privileged_container: f32,
    pub root_user: f32,
    pub interactive_terminal: f32,
    pub sensitive_namespace: f32,
    pub shell_under_service: f32,
    pub network_tool: f32,
    pub mutable_image_tag: f32,
    pub repeated: f32,
    pub escalating_incident: f32,
    pub unknown_rule: f32,
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
    weights: Weights,
    repetition: Repetition,
    incident: IncidentScoring,
    lists: Lists,
}

#[derive(Debug, Clone)]
pub struct Scoring {
    pub thresholds: Thresholds,
    pub weights: Weights,
    pub repetition: Repetition,
    pub incident: IncidentScoring,
    priority_base: HashMap<Priority, f32>,
    pub shells: HashSet<String>,
    pub services: HashSet<String>,
    pub network_tools: HashSet<String>,
    pub sensitive_namespaces: HashSet<String>,
    pub mutable_tags: HashSet<String>,
}

impl Scoring {
    pub fn builtin() -> Result<Scoring, KbError> {
        Self::parse("kb/scoring.toml", BUILTIN)
    }

    pub fn parse(file: &str, text: &str) -> Result<Scoring, KbError> {
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
        let set = |v: Vec<String>| v.into_iter().collect::<HashSet<_>>();
        Ok(Scoring {
            thresholds: f.thresholds,
            weights: f.weights,
            repetition: f.repetition,
            incident: f.incident,
            priority_base,
            shells: set(f.lists.shells),
            services: set(f.lists.services),
            network_tools: set(f.lists.network_tools),
            sensitive_namespaces: set(f.lists.sensitive_namespaces),
            mutable_tags: set(f.lists.mutable_tags),
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
