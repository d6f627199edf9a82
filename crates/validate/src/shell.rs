//! A small POSIX shell tokenizer: splits a script into simple commands and their words.
//!
//! It understands what a reader pastes: quotes, escapes, line continuations, comments, pipes and
//! lists (`|`, `&&`, `||`, `;`, `&`), redirections (their targets are not arguments), here-docs
//! (their bodies are skipped), `$(...)` and backticks (their insides are commands too), and
//! `<placeholder>` words. Nothing is ever executed or expanded.

/// Nesting depth for `$(...)` inside `$(...)`; deeper input is not looked into.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The word after quote removal.
    pub text: String,
    /// Part of it came from a variable, `$(...)` or backticks: its value is not known.
    pub dynamic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    pub words: Vec<Word>,
    /// 1-based line of the first word.
    pub line: usize,
    /// The command as written (trimmed), for findings.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub token: String,
    pub message: String,
    pub line: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Script {
    pub commands: Vec<SimpleCommand>,
    pub errors: Vec<SyntaxError>,
}

/// Reserved words that may start a command and are followed by the real command.
const PREFIX_KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "while", "until", "do", "!", "time", "{",
];
/// Reserved words whose command is shell syntax, not a program.
const SYNTAX_KEYWORDS: &[&str] = &[
    "for", "case", "esac", "fi", "done", "}", "in", "select", "function",
];

pub(crate) fn parse(src: &str) -> Script {
    let mut script = Script::default();
    parse_into(src, 1, 0, &mut script);
    script
}

/// The words of a command with leading reserved words and `VAR=value` assignments removed.
pub(crate) fn program_words(cmd: &SimpleCommand) -> &[Word] {
    let mut words = &cmd.words[..];
    while let Some(first) = words.first() {
        if PREFIX_KEYWORDS.contains(&first.text.as_str()) || is_assignment(&first.text) {
            words = &words[1..];
        } else {
            break;
        }
    }
    match words.first() {
        Some(first) if SYNTAX_KEYWORDS.contains(&first.text.as_str()) => &[],
        _ => words,
    }
}

fn is_assignment(word: &str) -> bool {
    match word.find('=') {
        Some(eq) if eq > 0 => {
            let name = &word[..eq];
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    }
}

struct Tokenizer<'a> {
    chars: Vec<char>,
    i: usize,
    line: usize,
    script: &'a mut Script,
    /// Command substitutions found, parsed after this level.
    nested: Vec<(String, usize)>,
    words: Vec<Word>,
    cmd_line: usize,
    cmd_start: usize,
    word: Option<Word>,
    word_line: usize,
    /// The next finished word is a redirection target (or a here-doc delimiter), not an argument.
    redirect: Option<Redirect>,
    heredocs: Vec<(String, bool)>,
}

#[derive(Clone, Copy)]
enum Redirect {
    File,
    HereDoc { strip_tabs: bool },
}

fn parse_into(src: &str, first_line: usize, depth: usize, script: &mut Script) {
    let mut t = Tokenizer {
        chars: src.chars().collect(),
        i: 0,
        line: first_line,
        script,
        nested: Vec::new(),
        words: Vec::new(),
        cmd_line: first_line,
        cmd_start: 0,
        word: None,
        word_line: first_line,
        redirect: None,
        heredocs: Vec::new(),
    };
    t.run();
    let nested = std::mem::take(&mut t.nested);
    if depth < MAX_DEPTH {
        for (inner, line) in nested {
            parse_into(&inner, line, depth + 1, script);
        }
    }
}

impl Tokenizer<'_> {
    fn peek(&self, off: usize) -> Option<char> {
        self.chars.get(self.i + off).copied()
    }

    fn word_mut(&mut self) -> &mut Word {
        if self.word.is_none() {
            self.word_line = self.line;
            if self.words.is_empty() && self.redirect.is_none() {
                self.cmd_line = self.line;
                self.cmd_start = self.i;
            }
        }
        self.word.get_or_insert_with(|| Word {
            text: String::new(),
            dynamic: false,
        })
    }

    fn push_char(&mut self, c: char) {
        self.word_mut().text.push(c);
    }

    fn end_word(&mut self) {
        let Some(word) = self.word.take() else { return };
        match self.redirect.take() {
            Some(Redirect::File) => {}
            Some(Redirect::HereDoc { strip_tabs }) => self.heredocs.push((word.text, strip_tabs)),
            None => {
                if self.words.is_empty() {
                    self.cmd_line = self.word_line;
                }
                self.words.push(word);
            }
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        if !self.words.is_empty() {
            let end = self.i.min(self.chars.len());
            let start = self.cmd_start.min(end);
            let source: String = self.chars[start..end].iter().collect();
            self.script.commands.push(SimpleCommand {
                words: std::mem::take(&mut self.words),
                line: self.cmd_line,
                source: source.trim().to_string(),
            });
        }
        self.redirect = None;
    }

    fn error(&mut self, token: &str, message: &str) {
        let line = self.line;
        self.script.errors.push(SyntaxError {
            token: token.to_string(),
            message: message.to_string(),
            line,
        });
    }

    fn run(&mut self) {
        while self.i < self.chars.len() {
            let c = self.chars[self.i];
            match c {
                '\\' => match self.peek(1) {
                    Some('\n') => {
                        self.i += 2;
                        self.line += 1;
                        continue;
                    }
                    Some(next) => {
                        self.push_char(next);
                        self.i += 2;
                        continue;
                    }
                    None => {
                        self.i += 1;
                        continue;
                    }
                },
                '\'' => {
                    self.word_mut();
                    self.i += 1;
                    let start_line = self.line;
                    let mut closed = false;
                    while self.i < self.chars.len() {
                        let ch = self.chars[self.i];
                        self.i += 1;
                        if ch == '\'' {
                            closed = true;
                            break;
                        }
                        if ch == '\n' {
                            self.line += 1;
                        }
                        self.push_char(ch);
                    }
                    if !closed {
                        self.line = start_line;
                        self.error("'", "unterminated single quote");
                    }
                    continue;
                }
                '"' => {
                    self.word_mut();
                    self.i += 1;
                    self.double_quoted();
                    continue;
                }
                '$' => {
                    self.dollar();
                    continue;
                }
                '`' => {
                    self.i += 1;
                    self.backtick();
                    continue;
                }
                '#' if self.word.is_none() => {
                    while self.i < self.chars.len() && self.chars[self.i] != '\n' {
                        self.i += 1;
                    }
                    continue;
                }
                ' ' | '\t' | '\r' => self.end_word(),
                '\n' => {
                    self.end_command();
                    self.i += 1;
                    self.line += 1;
                    self.skip_heredocs();
                    continue;
                }
                ';' | '|' | '(' | ')' => self.end_command(),
                '&' => {
                    if self.peek(1) == Some('>') {
                        self.end_word();
                        self.i += if self.peek(2) == Some('>') { 3 } else { 2 };
                        self.redirect = Some(Redirect::File);
                        continue;
                    }
                    self.end_command();
                }
                '<' if self.placeholder_len().is_some() => {
                    let n = self.placeholder_len().unwrap_or(1);
                    for _ in 0..n {
                        let ch = self.chars[self.i];
                        self.push_char(ch);
                        self.i += 1;
                    }
                    continue;
                }
                '<' | '>' => {
                    self.redirection();
                    continue;
                }
                _ => self.push_char(c),
            }
            self.i += 1;
        }
        self.end_command();
    }

    /// `<container-id>` style placeholder: length through the closing `>`.
    fn placeholder_len(&self) -> Option<usize> {
        let mut n = 1;
        loop {
            let ch = self.peek(n)?;
            if ch == '>' {
                return (n > 1).then_some(n + 1);
            }
            if !(ch.is_alphanumeric() || "_-.:/{}|=".contains(ch)) {
                return None;
            }
            n += 1;
        }
    }

    fn redirection(&mut self) {
        // An all-digit word right before the operator is the file descriptor, not an argument.
        if let Some(w) = &self.word {
            if !w.text.is_empty() && w.text.chars().all(|c| c.is_ascii_digit()) {
                self.word = None;
            }
        }
        self.end_word();
        let c = self.chars[self.i];
        self.i += 1;
        let mut kind = Redirect::File;
        if c == '<' && self.peek(0) == Some('<') {
            self.i += 1;
            if self.peek(0) == Some('<') {
                self.i += 1; // here-string: the next word is data
            } else {
                let strip_tabs = self.peek(0) == Some('-');
                if strip_tabs {
                    self.i += 1;
                }
                kind = Redirect::HereDoc { strip_tabs };
            }
        } else if matches!(self.peek(0), Some('>') | Some('&') | Some('|')) {
            self.i += 1;
        }
        self.redirect = Some(kind);
    }

    fn skip_heredocs(&mut self) {
        let pending = std::mem::take(&mut self.heredocs);
        for (delim, strip_tabs) in pending {
            loop {
                if self.i >= self.chars.len() {
                    return;
                }
                let start = self.i;
                while self.i < self.chars.len() && self.chars[self.i] != '\n' {
                    self.i += 1;
                }
                let line: String = self.chars[start..self.i].iter().collect();
                if self.i < self.chars.len() {
                    self.i += 1;
                }
                self.line += 1;
                let candidate = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    &line
                };
                if candidate.trim_end() == delim {
                    break;
                }
            }
        }
    }

    fn double_quoted(&mut self) {
        let start_line = self.line;
        while self.i < self.chars.len() {
            let c = self.chars[self.i];
            match c {
                '"' => {
                    self.i += 1;
                    return;
                }
                '\\' => {
                    match self.peek(1) {
                        Some(n @ ('$' | '`' | '"' | '\\')) => self.push_char(n),
                        Some('\n') => self.line += 1,
                        Some(n) => {
                            self.push_char('\\');
                            self.push_char(n);
                        }
                        None => {}
                    }
                    self.i += 2;
                }
                '$' => self.dollar(),
                '`' => {
                    self.i += 1;
                    self.backtick();
                }
                _ => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    self.push_char(c);
                    self.i += 1;
                }
            }
        }
        self.line = start_line;
        self.error("\"", "unterminated double quote");
    }

    /// At a `$`: variables, `${...}`, `$((...))` and `$(...)`.
    fn dollar(&mut self) {
        let line = self.line;
        match self.peek(1) {
            Some('(') if self.peek(2) == Some('(') => {
                self.i += 1;
                let inner = self.balanced('(', ')');
                let w = self.word_mut();
                w.dynamic = true;
                w.text.push('$');
                w.text.push_str(&inner);
            }
            Some('(') => {
                self.i += 1;
                let inner = self.balanced('(', ')');
                let body: String = inner
                    .strip_prefix('(')
                    .and_then(|s| s.strip_suffix(')'))
                    .unwrap_or(&inner)
                    .to_string();
                self.nested.push((body, line));
                let w = self.word_mut();
                w.dynamic = true;
                w.text.push('$');
                w.text.push_str(&inner);
            }
            Some('{') => {
                self.i += 1;
                let inner = self.balanced('{', '}');
                let w = self.word_mut();
                w.dynamic = true;
                w.text.push('$');
                w.text.push_str(&inner);
            }
            Some(n) if n.is_alphanumeric() || "_?@*#$!-".contains(n) => {
                let w = self.word_mut();
                w.dynamic = true;
                w.text.push('$');
                self.i += 1;
                if n.is_ascii_digit() || "?@*#$!-".contains(n) {
                    self.push_char(n);
                    self.i += 1;
                } else {
                    while let Some(ch) = self.peek(0) {
                        if ch.is_alphanumeric() || ch == '_' {
                            self.push_char(ch);
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            _ => {
                self.push_char('$');
                self.i += 1;
            }
        }
    }

    /// From an opening bracket at `self.i`, the text through its matching close (quotes respected).
    fn balanced(&mut self, open: char, close: char) -> String {
        let start = self.i;
        let start_line = self.line;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        while self.i < self.chars.len() {
            let c = self.chars[self.i];
            if c == '\n' {
                self.line += 1;
            }
            match quote {
                Some(q) => {
                    if c == '\\' && q == '"' {
                        self.i += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => {
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                    } else if c == '\\' {
                        self.i += 1;
                    } else if c == open {
                        depth += 1;
                    } else if c == close {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            self.i += 1;
                            return self.chars[start..self.i].iter().collect();
                        }
                    }
                }
            }
            self.i += 1;
        }
        self.i = self.i.min(self.chars.len());
        let line = self.line;
        self.line = start_line;
        self.error(&format!("${open}"), &format!("no matching `{close}`"));
        self.line = line;
        self.chars[start.min(self.chars.len())..].iter().collect()
    }

    fn backtick(&mut self) {
        let line = self.line;
        let mut inner = String::new();
        let mut closed = false;
        while self.i < self.chars.len() {
            let c = self.chars[self.i];
            self.i += 1;
            match c {
                '`' => {
                    closed = true;
                    break;
                }
                '\\' => {
                    if let Some(n) = self.chars.get(self.i).copied() {
                        inner.push(n);
                        self.i += 1;
                    }
                }
                _ => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    inner.push(c);
                }
            }
        }
        if !closed {
            self.error("`", "unterminated backquote");
        }
        self.nested.push((inner.clone(), line));
        let w = self.word_mut();
        w.dynamic = true;
        w.text.push('`');
        w.text.push_str(&inner);
        w.text.push('`');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<Vec<String>> {
        parse(s)
            .commands
            .iter()
            .map(|c| c.words.iter().map(|w| w.text.clone()).collect())
            .collect()
    }

    #[test]
    fn quotes_escapes_and_continuations() {
        assert_eq!(
            texts("docker run --rm \\\n  -e 'A B' \"x\\\"y\" my_image"),
            vec![vec![
                "docker", "run", "--rm", "-e", "A B", "x\"y", "my_image"
            ]]
        );
    }

    #[test]
    fn lists_pipes_and_comments_split_commands() {
        assert_eq!(
            texts("# setup\nip link show | grep eth0 && echo ok; true # trailing\n"),
            vec![
                vec!["ip", "link", "show"],
                vec!["grep", "eth0"],
                vec!["echo", "ok"],
                vec!["true"],
            ]
        );
    }

    #[test]
    fn redirection_targets_are_not_arguments() {
        assert_eq!(
            texts("journalctl -u falco > /tmp/out 2>&1 < /dev/null"),
            vec![vec!["journalctl", "-u", "falco"]]
        );
        assert_eq!(texts("cat &> log x"), vec![vec!["cat", "x"]]);
    }

    #[test]
    fn substitutions_are_commands_too() {
        let s = parse("kubectl logs $(kubectl get pods -l app=x -o name) `id -u`");
        let words: Vec<Vec<String>> = s
            .commands
            .iter()
            .map(|c| c.words.iter().map(|w| w.text.clone()).collect())
            .collect();
        assert_eq!(words.len(), 3);
        assert_eq!(
            words[1],
            vec!["kubectl", "get", "pods", "-l", "app=x", "-o", "name"]
        );
        assert_eq!(words[2], vec!["id", "-u"]);
        assert!(s.commands[0].words[2].dynamic);
    }

    #[test]
    fn heredoc_bodies_are_skipped() {
        assert_eq!(
            texts("kubectl apply -f - <<EOF\napiVersion: v1\nkind: Pod\nEOF\necho done"),
            vec![vec!["kubectl", "apply", "-f", "-"], vec!["echo", "done"]]
        );
    }

    #[test]
    fn placeholders_are_words() {
        assert_eq!(
            texts("docker logs <container-id>"),
            vec![vec!["docker", "logs", "<container-id>"]]
        );
    }

    #[test]
    fn line_numbers_and_sources() {
        let s = parse("\n\ndocker ps\n  kubectl get pods");
        assert_eq!(s.commands[0].line, 3);
        assert_eq!(s.commands[1].line, 4);
        assert_eq!(s.commands[1].source, "kubectl get pods");
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let s = parse("echo 'abc");
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].message, "unterminated single quote");
    }

    #[test]
    fn keywords_and_assignments_are_stripped() {
        let s = parse("if FOO=1 sudo id; then echo; fi");
        assert_eq!(program_words(&s.commands[0])[0].text, "sudo");
        assert!(program_words(&s.commands[2]).is_empty());
    }
}
