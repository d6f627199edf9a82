//! Value forms of Docker flags whose set is closed: `--security-opt`, `--cap-add`, `--user`,
//! `--restart`, `-p`, `--tmpfs`... The sets live in `data/values.toml`.

use crate::values::{contains, contains_ci, values};

/// Why `value` is wrong for the validator named in the flag table, or None when it is fine.
/// The message continues the flag name: "`--security-opt` does not know `nonewuid`...".
pub(crate) fn check_value(validator: &str, value: &str) -> Option<String> {
    match validator {
        "security-opt" => security_opt(value),
        "capability" => capability(value),
        "user" => user(value),
        "restart" => restart(value),
        "network" => network(value),
        "port" => port_spec(value),
        "tmpfs" => tmpfs(value),
        "cgroupns" => mode(value, &values().docker.cgroupns, false),
        "pid-mode" => mode(value, &values().docker.pid_modes, true),
        "ipc-mode" => mode(value, &values().docker.ipc_modes, true),
        "uts-mode" => mode(value, &values().docker.uts_modes, false),
        "userns-mode" => mode(value, &values().docker.userns_modes, false),
        "ulimit" => ulimit(value),
        "pull" => mode(value, &values().docker.pull, false),
        _ => None,
    }
}

fn parse_bool(v: &str) -> bool {
    // Go's strconv.ParseBool
    matches!(
        v,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    )
}

fn security_opt(value: &str) -> Option<String> {
    let d = &values().docker;
    if value == "no-new-privileges" {
        return None;
    }
    let split = value.split_once('=').or_else(|| value.split_once(':'));
    let Some((key, val)) = split else {
        return Some(format!(
            "does not know `{value}`: use no-new-privileges[:true|false], seccomp=PROFILE|unconfined, \
             apparmor=PROFILE|unconfined, label=..., systempaths=unconfined or writable-cgroups=true|false"
        ));
    };
    if contains(&d.security_opt_podman_only, key) {
        return Some(format!("`{key}=` is a Podman option; Docker rejects it"));
    }
    if !contains(&d.security_opt_keys, key) {
        return Some(format!(
            "has no key `{key}` (Docker knows {})",
            d.security_opt_keys.join(", ")
        ));
    }
    match key {
        "no-new-privileges" | "writable-cgroups" if !parse_bool(val) => {
            Some(format!("`{key}` takes true or false, not `{val}`"))
        }
        "systempaths" if val != "unconfined" => Some(format!(
            "`systempaths` only accepts `unconfined`, not `{val}`"
        )),
        "seccomp" | "apparmor" if val.is_empty() => Some(format!(
            "`{key}=` needs a profile name, path or `unconfined`"
        )),
        "label" => {
            let ok = d.security_opt_label_words.iter().any(|w| w == val)
                || d.security_opt_label_prefixes
                    .iter()
                    .any(|p| val.starts_with(p.as_str()) && val.len() > p.len());
            (!ok).then(|| {
                format!("`label=` takes user:, role:, type:, level: or disable, not `{val}`")
            })
        }
        _ => None,
    }
}

fn capability(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("ALL") {
        return None;
    }
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if contains(&values().capabilities, name) {
        return None;
    }
    if value.contains(',') {
        return Some(format!(
            "takes one capability per flag; `{value}` is not a capability (repeat the flag)"
        ));
    }
    Some(format!("`{value}` is not a Linux capability"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@')
}

fn user(value: &str) -> Option<String> {
    let (u, g) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    let part_ok = |p: &str| !p.is_empty() && p.chars().all(is_name_char);
    if part_ok(u) && g.is_none_or(part_ok) {
        None
    } else {
        Some(format!("takes NAME|UID[:GROUP|GID], not `{value}`"))
    }
}

fn restart(value: &str) -> Option<String> {
    let (policy, count) = match value.split_once(':') {
        Some((p, c)) => (p, Some(c)),
        None => (value, None),
    };
    if !contains(&values().docker.restart_policies, policy) {
        return Some(format!(
            "takes {}, not `{value}`",
            values().docker.restart_policies.join(", ")
        ));
    }
    match count {
        Some(c) if policy != "on-failure" || c.parse::<u32>().is_err() => Some(format!(
            "only on-failure takes a retry count (on-failure:N), not `{value}`"
        )),
        _ => None,
    }
}

fn network(value: &str) -> Option<String> {
    if contains(&values().docker.network_modes, value) {
        return None;
    }
    if let Some(name) = value.strip_prefix("container:") {
        return (name.is_empty() || !name.chars().all(is_name_char))
            .then(|| format!("`container:` needs a container name, not `{value}`"));
    }
    // A user-defined network name; extra options come as name=...,alias=...
    let name = value.split(',').next().unwrap_or(value);
    let name = name.strip_prefix("name=").unwrap_or(name);
    (name.is_empty() || !name.chars().all(is_name_char)).then(|| {
        format!("takes bridge, host, none, container:NAME or a network name, not `{value}`")
    })
}

fn port_range(p: &str, allow_zero: bool) -> bool {
    let ok = |s: &str| {
        s.parse::<u32>()
            .is_ok_and(|n| n <= 65535 && (allow_zero || n > 0))
    };
    match p.split_once('-') {
        Some((a, b)) => ok(a) && ok(b),
        None => ok(p),
    }
}

fn port_spec(value: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "takes [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp], not `{value}`"
        ))
    };
    let (rest, proto) = match value.rsplit_once('/') {
        Some((r, p)) => (r, Some(p)),
        None => (value, None),
    };
    if let Some(p) = proto {
        if !matches!(p, "tcp" | "udp" | "sctp") {
            return Some(format!(
                "protocol must be tcp, udp or sctp, not `{p}` (in `{value}`)"
            ));
        }
    }
    // Strip a leading [IPv6] address.
    let rest = match rest.strip_prefix('[') {
        Some(r) => match r.split_once("]:") {
            Some((_, after)) => after,
            None => return bad(),
        },
        None => rest,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let ok = match parts.as_slice() {
        [c] => port_range(c, false),
        [h, c] => (h.is_empty() || port_range(h, true)) && port_range(c, false),
        [ip, h, c] => {
            !ip.is_empty()
                && ip.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.')
                && (h.is_empty() || port_range(h, true))
                && port_range(c, false)
        }
        _ => false,
    };
    if ok {
        None
    } else {
        bad()
    }
}

fn tmpfs(value: &str) -> Option<String> {
    let (path, opts) = match value.split_once(':') {
        Some((p, o)) => (p, Some(o)),
        None => (value, None),
    };
    if !path.starts_with('/') {
        return Some(format!("takes an absolute path[:options], not `{value}`"));
    }
    for opt in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        let key = opt.split('=').next().unwrap_or(opt);
        if !contains(&values().docker.tmpfs_options, key) {
            return Some(format!("has no tmpfs mount option `{key}` (in `{value}`)"));
        }
    }
    None
}

fn mode(value: &str, set: &[String], container_ok: bool) -> Option<String> {
    if contains(set, value) {
        return None;
    }
    if container_ok {
        if let Some(name) = value.strip_prefix("container:") {
            if !name.is_empty() {
                return None;
            }
        }
    }
    let mut choices = set.join(", ");
    if container_ok {
        choices.push_str(", container:NAME");
    }
    Some(format!("takes {choices}, not `{value}`"))
}

fn ulimit(value: &str) -> Option<String> {
    let Some((name, limits)) = value.split_once('=') else {
        return Some(format!("takes NAME=SOFT[:HARD], not `{value}`"));
    };
    if !contains_ci(&values().docker.ulimits, name) {
        return Some(format!("has no limit `{name}`"));
    }
    let num = |s: &str| s == "unlimited" || s.parse::<i64>().is_ok();
    let ok = match limits.split_once(':') {
        Some((s, h)) => num(s) && num(h),
        None => num(limits),
    };
    (!ok).then(|| format!("limits must be integers, not `{limits}`"))
}

/// Go `time.ParseDuration` syntax: 300ms, 1.5h, 2h45m, 0.
pub(crate) fn is_go_duration(v: &str) -> bool {
    let s = v.strip_prefix(['-', '+']).unwrap_or(v);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    let mut parts = 0;
    while !rest.is_empty() {
        let num_len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        if num_len == 0 || rest[..num_len].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(*u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
        parts += 1;
    }
    parts > 0
}

/// Docker's `RAMInBytes` syntax: 1024, 512m, 1g, 1.5GiB; -1 means unlimited where allowed.
pub(crate) fn is_byte_size(v: &str) -> bool {
    if v == "-1" {
        return true;
    }
    let digits = v
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(v.len(), |(i, _)| i);
    if digits == 0 || v[..digits].parse::<f64>().is_err() {
        return false;
    }
    let unit = v[digits..].trim().to_ascii_lowercase();
    matches!(
        unit.as_str(),
        "" | "b"
            | "k"
            | "kb"
            | "kib"
            | "m"
            | "mb"
            | "mib"
            | "g"
            | "gb"
            | "gib"
            | "t"
            | "tb"
            | "tib"
            | "p"
            | "pb"
            | "pib"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_opt_forms() {
        for ok in [
            "no-new-privileges",
            "no-new-privileges:true",
            "no-new-privileges=false",
            "seccomp=unconfined",
            "seccomp=/etc/docker/seccomp.json",
            "apparmor=docker-default",
            "label=disable",
            "label=type:container_t",
            "systempaths=unconfined",
            "writable-cgroups=true",
        ] {
            assert_eq!(security_opt(ok), None, "{ok}");
        }
        for bad in [
            "nonewuid",
            "nosuid,noexec",
            "no-new-privileges:yes",
            "systempaths=all",
            "mask=/proc",
            "seccomp=",
        ] {
            assert!(security_opt(bad).is_some(), "{bad}");
        }
        assert!(security_opt("mask=/proc")
            .unwrap_or_default()
            .contains("Podman"));
    }

    #[test]
    fn capabilities_with_or_without_prefix_any_case() {
        for ok in [
            "ALL",
            "all",
            "NET_BIND_SERVICE",
            "net_bind_service",
            "CAP_SYS_ADMIN",
            "cap_chown",
        ] {
            assert_eq!(capability(ok), None, "{ok}");
        }
        for bad in ["NET_BIND", "capAdd", "NET_ADMIN,SYS_TIME"] {
            assert!(capability(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn user_restart_network_port_tmpfs() {
        assert_eq!(user("1000:1000"), None);
        assert_eq!(user("www-data"), None);
        assert!(user("1000:").is_some());
        assert_eq!(restart("on-failure:3"), None);
        assert_eq!(restart("unless-stopped"), None);
        assert!(restart("sometimes").is_some());
        assert!(restart("always:3").is_some());
        assert_eq!(network("host"), None);
        assert_eq!(network("container:web"), None);
        assert_eq!(network("my-net"), None);
        assert!(network("container:").is_some());
        for ok in [
            "8080:22/udp",
            "80",
            "127.0.0.1:8080:80",
            "127.0.0.1::80",
            "[::1]:80:80",
            "8000-8010:8000-8010/tcp",
        ] {
            assert_eq!(port_spec(ok), None, "{ok}");
        }
        for bad in ["8080:22/icmp", "http", "70000:80", "a:b:c:d"] {
            assert!(port_spec(bad).is_some(), "{bad}");
        }
        assert_eq!(tmpfs("/tmp"), None);
        assert_eq!(tmpfs("/run:rw,noexec,nosuid,size=64m"), None);
        assert!(tmpfs("tmp").is_some());
        assert!(tmpfs("/tmp:bogus").is_some());
    }

    #[test]
    fn modes_and_ulimits() {
        assert_eq!(check_value("pid-mode", "host"), None);
        assert_eq!(check_value("pid-mode", "container:db"), None);
        assert!(check_value("pid-mode", "private").is_some());
        assert_eq!(check_value("ulimit", "nofile=1024:2048"), None);
        assert!(check_value("ulimit", "files=10").is_some());
    }

    #[test]
    fn durations_and_sizes() {
        for ok in ["10s", "1m30s", "1.5h", "300ms", "0"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["10", "ten", "1x", ""] {
            assert!(!is_go_duration(bad), "{bad}");
        }
        for ok in ["512m", "1g", "1024", "1.5GiB", "-1", "100k"] {
            assert!(is_byte_size(ok), "{ok}");
        }
        for bad in ["big", "10q", ""] {
            assert!(!is_byte_size(bad), "{bad}");
        }
    }
}
