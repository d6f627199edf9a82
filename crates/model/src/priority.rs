use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Falco's eight priorities, most severe first (the order Falco itself uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}` (expected one of Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug)")]
pub struct UnknownPriority(pub String);

impl Priority {
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// The capitalised long name Falco writes in its JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// 7 for Emergency down to 0 for Debug, so that "higher is worse" reads naturally in scoring.
    pub fn level(self) -> u8 {
        7 - self as u8
    }
}

impl FromStr for Priority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let p = if t.eq_ignore_ascii_case("emergency") || t.eq_ignore_ascii_case("emerg") {
            Priority::Emergency
        } else if t.eq_ignore_ascii_case("alert") {
            Priority::Alert
        } else if t.eq_ignore_ascii_case("critical") || t.eq_ignore_ascii_case("crit") {
            Priority::Critical
        } else if t.eq_ignore_ascii_case("error") || t.eq_ignore_ascii_case("err") {
            Priority::Error
        } else if t.eq_ignore_ascii_case("warning") || t.eq_ignore_ascii_case("warn") {
            Priority::Warning
        } else if t.eq_ignore_ascii_case("notice") {
            Priority::Notice
        } else if t.eq_ignore_ascii_case("informational") || t.eq_ignore_ascii_case("info") {
            Priority::Informational
        } else if t.eq_ignore_ascii_case("debug") {
            Priority::Debug
        } else {
            return Err(UnknownPriority(s.to_string()));
        };
        Ok(p)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let crate::fields::Lent(s) = crate::fields::Lent::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_priority_in_any_case() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(p.as_str().to_uppercase().parse::<Priority>(), Ok(p));
            assert_eq!(p.as_str().to_lowercase().parse::<Priority>(), Ok(p));
        }
        assert_eq!("INFO".parse::<Priority>(), Ok(Priority::Informational));
        assert_eq!("Info".parse::<Priority>(), Ok(Priority::Informational));
        assert!("Severe".parse::<Priority>().is_err());
    }

    #[test]
    fn ordering_puts_emergency_highest() {
        assert!(Priority::Emergency.level() > Priority::Critical.level());
        assert_eq!(Priority::Debug.level(), 0);
        assert_eq!(Priority::Emergency.level(), 7);
    }
}
