use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The event source an alert came from. Unknown plugin sources are kept by name, never rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Syscall,
    K8sAudit,
    AwsCloudtrail,
    GcpAuditlog,
    Okta,
    Github,
    Other(String),
}

impl Source {
    pub fn parse(s: &str) -> Source {
        // Falcosidekick's own fixtures write the plural.
        const NAMES: [(&str, Source); 10] = [
            ("syscall", Source::Syscall),
            ("syscalls", Source::Syscall),
            ("k8s_audit", Source::K8sAudit),
            ("k8saudit", Source::K8sAudit),
            ("aws_cloudtrail", Source::AwsCloudtrail),
            ("cloudtrail", Source::AwsCloudtrail),
            ("gcp_auditlog", Source::GcpAuditlog),
            ("gcpaudit", Source::GcpAuditlog),
            ("okta", Source::Okta),
            ("github", Source::Github),
        ];
        let t = s.trim();
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(t))
            .map_or_else(|| Source::Other(s.to_string()), |(_, src)| src.clone())
    }

    pub fn as_str(&self) -> &str {
        match self {
            Source::Other(s) => s,
            known => known.known_name().unwrap_or_default(),
        }
    }

    /// The name of a source this crate knows; `None` for a plugin source named by the sender.
    pub fn known_name(&self) -> Option<&'static str> {
        Some(match self {
            Source::Syscall => "syscall",
            Source::K8sAudit => "k8s_audit",
            Source::AwsCloudtrail => "aws_cloudtrail",
            Source::GcpAuditlog => "gcp_auditlog",
            Source::Okta => "okta",
            Source::Github => "github",
            Source::Other(_) => return None,
        })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let crate::fields::Lent(s) = crate::fields::Lent::deserialize(d)?;
        Ok(Source::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn known_and_unknown_sources() {
        assert_eq!(Source::parse("syscalls"), Source::Syscall);
        assert_eq!(Source::parse("k8s_audit"), Source::K8sAudit);
        assert_eq!(
            Source::parse("my_plugin"),
            Source::Other("my_plugin".into())
        );
        assert_eq!(Source::parse("my_plugin").as_str(), "my_plugin");
    }
}
