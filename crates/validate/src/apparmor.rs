//! AppArmor profiles: a light check of the block structure (balanced braces, a profile header,
//! rules ending in commas). Rule semantics are left to `apparmor_parser`.

use crate::finding::Finding;

const CHECKER: &str = "apparmor";

pub(crate) fn check(src: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut depth: i64 = 0;
    let mut headers = 0;
    for (n, raw) in src.lines().enumerate() {
        let line_no = n + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty()
            || line.starts_with("include")
            || line.starts_with("abi ")
            || line.starts_with("@{")
        {
            continue;
        }
        let opens = line.matches('{').count() as i64;
        let closes = line.matches('}').count() as i64;
        if line.ends_with('{') && depth == 0 {
            headers += 1;
        }
        let rule_line = depth > 0 && opens == 0 && closes == 0;
        depth += opens - closes;
        if depth < 0 {
            out.push(
                Finding::new(CHECKER, src, "}", "closing brace without an open block")
                    .at_line(Some(line_no)),
            );
            depth = 0;
        }
        if rule_line && !line.ends_with(',') {
            out.push(
                Finding::new(CHECKER, src, line, "an AppArmor rule ends with a comma")
                    .at_line(Some(line_no)),
            );
        }
    }
    if depth > 0 {
        out.push(Finding::new(
            CHECKER,
            src,
            "{",
            "a profile block is not closed",
        ));
    }
    if headers == 0 {
        out.push(Finding::new(
            CHECKER,
            src,
            "",
            "no profile block (`profile NAME flags=(...) {` or `/path/to/binary {`)",
        ));
    }
    out
}

/// `#include` is a directive; other `#` start comments.
fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("#include") {
        return "include";
    }
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_profile() {
        let p = "#include <tunables/global>\nprofile k8s-nginx flags=(attach_disconnected) {\n  #include <abstractions/base>\n  network inet tcp,\n  deny /etc/shadow r,\n  /usr/sbin/nginx ix,\n  capability net_bind_service,\n}\n";
        assert_eq!(check(p), vec![]);
    }

    #[test]
    fn broken_profiles() {
        let missing_comma = "profile p {\n  network inet tcp\n}\n";
        assert_eq!(check(missing_comma)[0].token, "network inet tcp");
        let unclosed = "profile p {\n  network,\n";
        assert_eq!(check(unclosed)[0].token, "{");
        assert!(check("network,\n")[0].message.starts_with("no profile"));
    }
}
