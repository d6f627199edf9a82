use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    Benign,
    Suspicious,
    Malicious,
}

impl VerdictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Benign => "benign",
            VerdictKind::Suspicious => "suspicious",
            VerdictKind::Malicious => "malicious",
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VerdictKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "benign" => Ok(VerdictKind::Benign),
            "suspicious" => Ok(VerdictKind::Suspicious),
            "malicious" => Ok(VerdictKind::Malicious),
            _ => Err(format!(
                "unknown verdict `{s}` (benign, suspicious, malicious)"
            )),
        }
    }
}

/// Confidence in a verdict, 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Confidence(f32);

impl Confidence {
    pub fn new(v: f32) -> Self {
        Confidence(if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) })
    }
    pub fn get(self) -> f32 {
        self.0
    }
    pub fn label(self) -> &'static str {
        if self.0 >= 0.8 {
            "high"
        } else if self.0 >= 0.5 {
            "medium"
        } else {
            "low"
        }
    }
}

/// One fact behind a verdict: what was seen, in which field, and how it moved the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// The alert field (or pseudo-field such as `rule`) that caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub text: String,
    /// Signed contribution to the score; negative pushes towards benign.
    pub weight: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub kind: VerdictKind,
    pub confidence: Confidence,
    pub score: f32,
    pub reasons: Vec<Reason>,
}
