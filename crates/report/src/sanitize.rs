//! Making attacker-chosen text safe to show: terminal control stripping (every format meant for
//! people) and Markdown escaping. HTML escaping is minijinja's autoescape.

use std::borrow::Cow;

/// Remove terminal control sequences and control characters, keeping tab and newline.
///
/// Whole ANSI sequences go (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, DCS/SOS/PM/APC
/// strings, two- and three-character escapes), as do the C1 forms (U+0080..U+009F), every other
/// C0 control, DEL, and the Unicode bidirectional overrides that reorder text on screen.
/// Carriage returns become newlines: a bare `\r` can make a terminal overwrite what was shown.
pub fn strip_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_stripping) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' | '\n' => out.push(c),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{1b}' => match chars.peek().copied() {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                Some(n) if (' '..='/').contains(&n) => {
                    // ESC, intermediates, one final byte (`ESC ( B`).
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next_if(|c| ('0'..='~').contains(c));
                }
                Some(n) if ('0'..='~').contains(&n) => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if needs_stripping(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_stripping(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings/overrides/isolates and the Arabic letter mark.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' => true,
        _ => false,
    }
}

/// Parameter and intermediate bytes up to and including the final byte.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        if ('\u{30}'..='\u{3f}').contains(&c) || ('\u{20}'..='\u{2f}').contains(&c) {
            chars.next();
        } else {
            if ('\u{40}'..='\u{7e}').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

/// An OSC/DCS-style string, ended by BEL, ESC `\`, or the C1 string terminator.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// How line breaks inside a piece of text are written in Markdown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Table cells must stay on one line: a break is shown as `␤`.
    Mark,
    /// Prose in a heading, list item or sentence: a break is a space.
    Space,
}

/// Characters with meaning somewhere in CommonMark/GFM inline syntax (emphasis, code, links,
/// autolinks and raw HTML, entities, strikethrough, table cells, headings).
fn is_md_special(c: char) -> bool {
    matches!(
        c,
        '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '&' | '~'
    )
}

/// Append `s` as escaped Markdown text on one line. Control characters are stripped first.
pub fn md_inline(out: &mut String, s: &str, lines: Lines) {
    let clean = strip_controls(s);
    let text = clean.trim();
    // A table cell cannot open a block, so only prose needs its first character guarded.
    let rest = match lines {
        Lines::Space => escape_line_start(out, text),
        Lines::Mark => text,
    };
    let mut prev_break = false;
    for c in rest.chars() {
        match c {
            '\n' => {
                match lines {
                    Lines::Mark => out.push('␤'),
                    Lines::Space if !prev_break => out.push(' '),
                    Lines::Space => {}
                }
                prev_break = true;
                continue;
            }
            c if is_md_special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        prev_break = false;
    }
}

/// Like [`md_inline`], but text between a pair of backticks on one line becomes a code span
/// (made by [`md_code_span`], so its content cannot break out). Our own sentences quote rule
/// names and values that way; everything outside the spans is escaped as by `md_inline`. A
/// string that starts with a backtick is escaped whole, so no line can start with a fence.
pub fn md_inline_code(out: &mut String, s: &str, lines: Lines) {
    let clean = strip_controls(s);
    let text = clean.trim();
    if text.starts_with('`') || !text.contains('`') {
        md_inline(out, text, lines);
        return;
    }
    let mut rest = text;
    let mut first = true;
    loop {
        let span = rest.find('`').and_then(|a| {
            let inner = &rest[a + 1..];
            inner
                .find('`')
                .filter(|&len| len > 0 && !inner[..len].contains('\n'))
                .map(|len| (a, len))
        });
        let Some((a, len)) = span else {
            escape_text(out, rest, lines, first);
            break;
        };
        escape_text(out, &rest[..a], lines, first);
        // Two spans side by side would merge their delimiters into one backtick run, and the
        // parser could then pair them differently: keep them apart.
        if out.ends_with('`') {
            out.push(' ');
        }
        md_code_span(out, &rest[a + 1..a + 1 + len]);
        rest = &rest[a + 2 + len..];
        first = false;
    }
}

/// The escaping loop of [`md_inline`] without trimming: a piece of a line.
fn escape_text(out: &mut String, s: &str, lines: Lines, line_start: bool) {
    let s = if line_start && matches!(lines, Lines::Space) {
        escape_line_start(out, s)
    } else {
        s
    };
    for c in s.chars() {
        match c {
            '\n' => match lines {
                Lines::Mark => out.push('␤'),
                Lines::Space => out.push(' '),
            },
            c if is_md_special(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Append multi-line prose: paragraphs (blank-line separated) are kept, every line is trimmed
/// and escaped so no line can start a heading, list, quote, code block, table or HTML block.
pub fn md_block(out: &mut String, s: &str) {
    let clean = strip_controls(s);
    let mut blank = true; // suppress leading blank lines
    for line in clean.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !blank {
                out.push('\n');
                blank = true;
            }
            continue;
        }
        md_inline_code(out, line, Lines::Space);
        out.push('\n');
        blank = false;
    }
}

/// Would this text, at the start of a line, open a block (list item, setext underline)?
/// The characters escaped everywhere (`#`, `>`, `|`, backtick, `~`, `<`, `*`, `_`) are handled
/// by `md_inline` itself.
fn starts_block(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    match first {
        '-' | '+' | '=' => true,
        '0'..='9' => {
            let rest = text.trim_start_matches(|c: char| c.is_ascii_digit());
            rest.starts_with('.') || rest.starts_with(')')
        }
        _ => false,
    }
}

/// Write the escaped start of `text` if it would open a block, and return what is left.
fn escape_line_start<'t>(out: &mut String, text: &'t str) -> &'t str {
    if !starts_block(text) {
        return text;
    }
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    // `1.` becomes `1\.`; `-`, `+`, `=` get their own backslash. All are one byte.
    out.push_str(&text[..digits]);
    out.push('\\');
    out.push_str(&text[digits..digits + 1]);
    &text[digits + 1..]
}

/// Longest run of `ch` in `s`.
fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == ch {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// An inline code span whose backtick delimiters are longer than any run inside; line breaks
/// become spaces (a code span cannot hold one), controls are stripped.
pub fn md_code_span(out: &mut String, s: &str) {
    let clean = strip_controls(s);
    let text: Cow<'_, str> = if clean.contains('\n') {
        Cow::Owned(clean.replace('\n', " "))
    } else {
        clean
    };
    let ticks = longest_run(&text, '`') + 1;
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' '));
    push_n(out, '`', ticks);
    if pad {
        out.push(' ');
    }
    out.push_str(&text);
    if pad {
        out.push(' ');
    }
    push_n(out, '`', ticks);
}

/// A fenced code block at the start of a line. The fence is longer than any backtick run in
/// the code, and the info string is reduced to `[A-Za-z0-9_+-]` so it cannot carry markup.
pub fn md_fence(out: &mut String, info: &str, code: &str) {
    let clean = strip_controls(code);
    let ticks = (longest_run(&clean, '`') + 1).max(3);
    push_n(out, '`', ticks);
    out.extend(
        info.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')),
    );
    out.push('\n');
    let body = clean.trim_end_matches('\n');
    out.push_str(body);
    if !body.is_empty() {
        out.push('\n');
    }
    push_n(out, '`', ticks);
    out.push('\n');
}

fn push_n(out: &mut String, c: char, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(s: &str, lines: Lines) -> String {
        let mut o = String::new();
        md_inline(&mut o, s, lines);
        o
    }

    #[test]
    fn strips_ansi_sequences_and_controls() {
        assert_eq!(strip_controls("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(strip_controls("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(
            strip_controls("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(strip_controls("a\u{1b}(Bb\u{1b}cc"), "abc");
        assert_eq!(
            strip_controls("a\u{9b}2Jb\u{85}c\u{0}d\u{7f}e\u{8}f"),
            "abcdef"
        );
        assert_eq!(strip_controls("safe\rEVIL"), "safe\nEVIL");
        assert_eq!(strip_controls("x\r\ny\tz"), "x\ny\tz");
        assert_eq!(strip_controls("ab\u{202e}cd\u{2066}"), "abcd");
        assert!(matches!(strip_controls("plain ü text"), Cow::Borrowed(_)));
        assert_eq!(strip_controls("\u{1b}"), "");
        assert_eq!(strip_controls("\u{1b}[31"), "");
    }

    #[test]
    fn inline_escapes_markdown_and_table_breakers() {
        assert_eq!(inline("a|b", Lines::Mark), "a\\|b");
        assert_eq!(inline("a\\|b", Lines::Mark), "a\\\\\\|b");
        assert_eq!(
            inline("[x](javascript:alert(1))", Lines::Space),
            "\\[x\\](javascript:alert(1))"
        );
        assert_eq!(inline("<script>", Lines::Space), "\\<script\\>");
        assert_eq!(
            inline("*a* _b_ `c` #d ~e~ &amp;", Lines::Space),
            "\\*a\\* \\_b\\_ \\`c\\` \\#d \\~e\\~ \\&amp;"
        );
        assert_eq!(inline("one\ntwo", Lines::Mark), "one␤two");
        assert_eq!(inline("one\n\ntwo", Lines::Space), "one two");
        assert_eq!(inline("- item", Lines::Space), "\\- item");
        assert_eq!(inline("=====", Lines::Space), "\\=====");
        assert_eq!(inline("1. x", Lines::Space), "1\\. x");
        assert_eq!(inline("12) x", Lines::Space), "12\\) x");
        assert_eq!(inline("-1", Lines::Mark), "-1");
        assert_eq!(inline("\u{1b}[31mred", Lines::Space), "red");
    }

    #[test]
    fn fences_outlast_backtick_runs() {
        let mut o = String::new();
        md_fence(&mut o, "sh`x", "echo ````\n");
        assert_eq!(o, "`````shx\necho ````\n`````\n");
        let mut s = String::new();
        md_code_span(&mut s, "a``b");
        assert_eq!(s, "```a``b```");
        let mut s = String::new();
        md_code_span(&mut s, "`x");
        assert_eq!(s, "`` `x ``");
    }

    #[test]
    fn block_keeps_paragraphs_but_no_block_syntax() {
        let mut o = String::new();
        md_block(&mut o, "\n\n# Title\n    code\n> quote\n\n\n---\nend");
        assert_eq!(o, "\\# Title\ncode\n\\> quote\n\n\\---\nend\n");
    }
}

#[cfg(test)]
mod inline_code_tests {
    use super::*;

    fn render(s: &str) -> String {
        let mut out = String::new();
        md_inline_code(&mut out, s, Lines::Space);
        out
    }

    #[test]
    fn backtick_pairs_become_code_spans_and_the_rest_stays_escaped() {
        assert_eq!(
            render("rule `Terminal shell in container` has *severity*"),
            "rule `Terminal shell in container` has \\*severity\\*"
        );
        // Hostile content inside a pair cannot close the span early or inject markup.
        assert_eq!(render("shell `a``b<img>` ran"), "shell `a` `b<img>` ran");
        // Whatever the backticks, no raw HTML reaches a Markdown renderer.
        for hostile in [
            "x `a```b`c<img src=x>`` y",
            "`a` `` `<b>` ``` <i>",
            "run `a`b`<script>`",
            "p `x\\` <u>` q",
        ] {
            let md = render(hostile);
            for ev in pulldown_cmark::Parser::new(&md) {
                assert!(
                    !matches!(
                        ev,
                        pulldown_cmark::Event::Html(_) | pulldown_cmark::Event::InlineHtml(_)
                    ),
                    "{hostile:?} -> {md:?} gives raw HTML: {ev:?}"
                );
            }
        }
        // An unpaired backtick is escaped.
        assert_eq!(render("it `ran"), "it \\`ran");
        // A leading backtick never opens a fence: the whole line is escaped.
        assert_eq!(render("```x```"), "\\`\\`\\`x\\`\\`\\`");
        // A list marker at the start stays escaped.
        assert!(render("- `x` y").starts_with("\\-"));
    }
}
