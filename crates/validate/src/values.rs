//! The closed value sets in `data/values.toml`, parsed once.

use serde::Deserialize;
use std::sync::OnceLock;

const VALUES_TOML: &str = include_str!("../data/values.toml");

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Values {
    pub capabilities: Vec<String>,
    pub docker: DockerValues,
    pub falco: FalcoValues,
    pub k8s: K8sValues,
    pub seccomp: SeccompValues,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DockerValues {
    pub security_opt_keys: Vec<String>,
    pub security_opt_label_prefixes: Vec<String>,
    pub security_opt_label_words: Vec<String>,
    pub security_opt_podman_only: Vec<String>,
    pub restart_policies: Vec<String>,
    pub network_modes: Vec<String>,
    pub cgroupns: Vec<String>,
    pub pid_modes: Vec<String>,
    pub ipc_modes: Vec<String>,
    pub uts_modes: Vec<String>,
    pub userns_modes: Vec<String>,
    pub pull: Vec<String>,
    pub ulimits: Vec<String>,
    pub tmpfs_options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FalcoValues {
    pub operators: Vec<String>,
    pub list_operators: Vec<String>,
    pub transformers: Vec<String>,
    pub priorities: Vec<String>,
    pub field_classes: Vec<String>,
    pub rule_keys: Vec<String>,
    pub macro_keys: Vec<String>,
    pub list_keys: Vec<String>,
    pub rule_override_append: Vec<String>,
    pub rule_override_replace: Vec<String>,
    pub exception_keys: Vec<String>,
    pub output_placeholders: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct K8sValues {
    pub psa_modes: Vec<String>,
    pub psa_levels: Vec<String>,
    pub seccomp_types: Vec<String>,
    pub apparmor_types: Vec<String>,
    pub apparmor_annotation_prefix: String,
    pub seccomp_annotation_keys: Vec<String>,
    pub seccomp_annotation_container_prefix: String,
    pub rbac_verbs: Vec<String>,
    pub json_patch_ops: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SeccompValues {
    pub actions: Vec<String>,
    pub arg_ops: Vec<String>,
    pub top_keys: Vec<String>,
    pub syscall_keys: Vec<String>,
}

pub(crate) fn parse_values() -> Result<Values, toml::de::Error> {
    toml::from_str(VALUES_TOML)
}

/// The value sets. A broken embedded file (a build defect the tests catch) yields empty sets, so
/// checks that need them stay silent rather than panic.
pub(crate) fn values() -> &'static Values {
    static VALUES: OnceLock<Values> = OnceLock::new();
    VALUES.get_or_init(|| parse_values().unwrap_or_default())
}

pub(crate) fn contains(set: &[String], s: &str) -> bool {
    set.iter().any(|v| v == s)
}

pub(crate) fn contains_ci(set: &[String], s: &str) -> bool {
    set.iter().any(|v| v.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_values_parse_and_are_filled() {
        let v = parse_values().expect("values.toml parses");
        assert!(contains(&v.capabilities, "NET_BIND_SERVICE"));
        assert!(contains(&v.docker.security_opt_keys, "no-new-privileges"));
        assert!(contains(&v.falco.operators, "pmatch"));
        assert!(contains(&v.k8s.psa_levels, "restricted"));
        assert!(contains(&v.seccomp.actions, "SCMP_ACT_ERRNO"));
        assert!(!v.docker.tmpfs_options.is_empty());
    }
}
