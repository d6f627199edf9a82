//! Seccomp profiles in the Docker / containerd JSON format (light structural check).

use crate::finding::Finding;
use crate::values::{contains, values};
use serde_json::Value;

const CHECKER: &str = "seccomp-json";

pub(crate) fn check(src: &str) -> Vec<Finding> {
    let v: Value = match serde_json::from_str(src) {
        Ok(v) => v,
        Err(e) => {
            return vec![
                Finding::new(CHECKER, src, "", format!("JSON does not parse: {e}"))
                    .at_line(Some(e.line())),
            ]
        }
    };
    check_value(src, &v)
}

pub(crate) fn check_value(src: &str, v: &Value) -> Vec<Finding> {
    let s = &values().seccomp;
    let mut out = Vec::new();
    let mut report = |token: &str, message: String| {
        out.push(Finding::new(CHECKER, src, token, message));
    };
    let Some(map) = v.as_object() else {
        report(
            "(document)",
            "a seccomp profile is a JSON object".to_string(),
        );
        return out;
    };
    for k in map.keys() {
        if !contains(&s.top_keys, k) {
            report(k, format!("unknown seccomp profile key `{k}`"));
        }
    }
    match map.get("defaultAction").and_then(Value::as_str) {
        Some(a) if contains(&s.actions, a) => {}
        Some(a) => report(
            a,
            format!("defaultAction must be one of {}", s.actions.join(", ")),
        ),
        None => report(
            "defaultAction",
            "a seccomp profile needs defaultAction".to_string(),
        ),
    }
    if let Some(arches) = map.get("architectures") {
        let ok = arches.as_array().is_some_and(|a| {
            a.iter()
                .all(|x| x.as_str().is_some_and(|s| s.starts_with("SCMP_ARCH_")))
        });
        if !ok {
            report(
                "architectures",
                "architectures is a list of SCMP_ARCH_* names".to_string(),
            );
        }
    }
    let Some(syscalls) = map.get("syscalls") else {
        return out;
    };
    let Some(list) = syscalls.as_array() else {
        report("syscalls", "syscalls must be a list".to_string());
        return out;
    };
    for (i, sc) in list.iter().enumerate() {
        let p = format!("syscalls[{i}]");
        let Some(m) = sc.as_object() else {
            report(&p, "each syscalls entry is an object".to_string());
            continue;
        };
        for k in m.keys() {
            if !contains(&s.syscall_keys, k) {
                report(
                    &format!("{p}.{k}"),
                    format!("unknown key `{k}` in a syscalls entry"),
                );
            }
        }
        let names_ok = match (m.get("names"), m.get("name")) {
            (Some(Value::Array(n)), _) => !n.is_empty() && n.iter().all(is_syscall_name),
            (None, Some(n)) => is_syscall_name(n),
            _ => false,
        };
        if !names_ok {
            report(
                &format!("{p}.names"),
                "names must be a non-empty list of syscall names".to_string(),
            );
        }
        match m.get("action").and_then(Value::as_str) {
            Some(a) if contains(&s.actions, a) => {}
            Some(a) => report(a, format!("action must be one of {}", s.actions.join(", "))),
            None => report(
                &format!("{p}.action"),
                "each syscalls entry needs an action".to_string(),
            ),
        }
        if let Some(Value::Array(args)) = m.get("args") {
            for a in args {
                match a.get("op").and_then(Value::as_str) {
                    Some(op) if contains(&s.arg_ops, op) => {}
                    other => report(
                        other.unwrap_or("op"),
                        format!("argument op must be one of {}", s.arg_ops.join(", ")),
                    ),
                }
            }
        }
    }
    out
}

fn is_syscall_name(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_profile() {
        let p = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
          "syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},
          {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#;
        assert_eq!(check(p), vec![]);
    }

    #[test]
    fn invalid_profiles() {
        let t = |s: &str| check(s).into_iter().map(|f| f.token).collect::<Vec<_>>();
        assert_eq!(
            t(r#"{"defaultAction":"SCMP_ACT_DENY"}"#),
            vec!["SCMP_ACT_DENY"]
        );
        assert_eq!(
            t(
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace"],"action":"BLOCK"}]}"#
            ),
            vec!["BLOCK"]
        );
        assert_eq!(t("{"), vec![""]);
    }
}
