//! What a checker reports: one wrong thing in one snippet.

use std::fmt;

/// The longest excerpt a finding repeats of its snippet, in characters.
const EXCERPT_CHARS: usize = 120;

/// One problem in a command or configuration: which snippet, which token, why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// The snippet's first line or a short excerpt of the command that holds the problem.
    pub snippet: String,
    /// The offending token: a flag, a value, a field name, a YAML path.
    pub token: String,
    /// Why it is wrong, in a sentence a reader can act on.
    pub message: String,
    /// Which checker found it: `docker`, `kubectl`, `shell`, `k8s-yaml`, `falco-yaml`...
    pub checker: &'static str,
    /// 1-based line in the snippet or document, when known.
    pub line: Option<usize>,
}

impl Finding {
    pub(crate) fn new(
        checker: &'static str,
        snippet: &str,
        token: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            snippet: excerpt(snippet),
            token: token.into(),
            message: message.into(),
            checker,
            line: None,
        }
    }

    pub(crate) fn at_line(mut self, line: Option<usize>) -> Finding {
        self.line = line;
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "[{}] line {}: ", self.checker, line)?,
            None => write!(f, "[{}] ", self.checker)?,
        }
        write!(
            f,
            "`{}`: {} (in `{}`)",
            self.token, self.message, self.snippet
        )
    }
}

/// The first non-empty line of `text`, cut to a readable length.
pub(crate) fn excerpt(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut out: String = first.chars().take(EXCERPT_CHARS).collect();
    if first.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_checker_line_token_and_snippet() {
        let f = Finding::new(
            "docker",
            "docker run --no-pid x",
            "--no-pid",
            "unknown flag",
        )
        .at_line(Some(3));
        assert_eq!(
            f.to_string(),
            "[docker] line 3: `--no-pid`: unknown flag (in `docker run --no-pid x`)"
        );
    }

    #[test]
    fn excerpt_takes_first_non_empty_line_and_truncates() {
        assert_eq!(excerpt("\n  \n  abc\ndef"), "abc");
        let long = "x".repeat(200);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }
}
