//! Falco field names from `kb/falco_fields.txt` (repository root).

use std::collections::BTreeSet;
use std::sync::OnceLock;

const FIELDS_TXT: &str = include_str!("../../../kb/falco_fields.txt");

struct FieldTable {
    /// Plain field names: `proc.name`.
    plain: BTreeSet<String>,
    /// Fields that take an argument (`proc.aname[]` in the file), stored without the suffix.
    with_arg: BTreeSet<String>,
}

fn table() -> &'static FieldTable {
    static TABLE: OnceLock<FieldTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut plain = BTreeSet::new();
        let mut with_arg = BTreeSet::new();
        for line in FIELDS_TXT.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.strip_suffix("[]") {
                Some(name) => {
                    with_arg.insert(name.to_string());
                }
                None => {
                    plain.insert(line.to_string());
                }
            }
        }
        FieldTable { plain, with_arg }
    })
}

/// True when `name` is a Falco field: `proc.name`, `proc.aname[3]`, `evt.arg.flags`, `evt.arg[0]`,
/// `k8s.pod.label.app`, `json.value[/user/name]`. Fields that take an argument accept it in
/// brackets or, like Falco, after a dot.
pub fn is_falco_field(name: &str) -> bool {
    let t = table();
    let name = name.trim();
    if name.is_empty() {
        return false;
    }
    if t.plain.contains(name) || t.with_arg.contains(name) {
        return true;
    }
    // name[ARG]
    if let Some(open) = name.find('[') {
        if name.ends_with(']') && open + 1 < name.len() {
            return t.with_arg.contains(&name[..open]);
        }
        return false;
    }
    // name.ARG: the longest prefix that is an argument field
    let mut end = name.len();
    while let Some(dot) = name[..end].rfind('.') {
        let prefix = &name[..dot];
        if t.with_arg.contains(prefix) && dot + 1 < name.len() {
            return true;
        }
        end = dot;
    }
    false
}

/// Every field line of the table (`[]` kept).
#[cfg(test)]
pub(crate) fn field_lines() -> impl Iterator<Item = &'static str> {
    FIELDS_TXT
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_indexed_and_dotted_argument_fields() {
        assert!(is_falco_field("proc.name"));
        assert!(is_falco_field("proc.aname"));
        assert!(is_falco_field("proc.aname[3]"));
        assert!(is_falco_field("proc.aexepath[2]"));
        assert!(is_falco_field("evt.arg.flags"));
        assert!(is_falco_field("evt.arg[0]"));
        assert!(is_falco_field("k8s.pod.label.app.kubernetes.io/name"));
        assert!(is_falco_field("ka.req.pod.containers.image[0]"));
        assert!(is_falco_field("ka.uri.param[pretty]"));
        assert!(is_falco_field("json.value[/user/name]"));
        assert!(is_falco_field("okta.mfa.failure.countlast[60]"));
    }

    #[test]
    fn invented_fields_and_misplaced_arguments_are_rejected() {
        assert!(!is_falco_field("proc.parent_name"));
        assert!(!is_falco_field("container.secure"));
        assert!(!is_falco_field("proc.name[1]"));
        assert!(!is_falco_field("proc.aname["));
        assert!(!is_falco_field("evt.arg."));
        assert!(!is_falco_field(""));
        assert!(!is_falco_field("user.account.lock"));
    }

    #[test]
    fn table_has_every_requested_class() {
        for class in [
            "evt.",
            "proc.",
            "thread.",
            "user.",
            "group.",
            "container.",
            "k8s.",
            "fd.",
            "fs.path.",
            "fdlist.",
            "syscall.",
            "ka.",
            "jevt.",
            "ct.",
            "s3.",
            "ec2.",
            "gcp.",
            "github.",
            "okta.",
        ] {
            assert!(
                field_lines().any(|l| l.starts_with(class)),
                "no field of class {class}"
            );
        }
    }
}
