//! Splitting a byte stream into records: top-level JSON values (and the elements of a
//! top-level array), plain-text lines, and the malformed pieces in between.
//!
//! The framer reads the input in segments of at most one line (long lines are cut into
//! `SEGMENT_MAX` pieces), so memory is bounded by the segment, the reader's own buffer and one
//! value of at most `max` bytes.
//!
//! Two paths:
//! - fast: a whole line that starts with `{` and ends with `}` is handed out as a *candidate*
//!   and parsed in place. This is what JSON Lines input takes for every good line.
//! - slow: a byte-level scanner that follows strings, escapes and nesting depth. It splits
//!   several values on one line, joins values pretty-printed over many lines, descends into a
//!   top-level array, and resynchronises after garbage. A candidate that fails to parse is
//!   scanned again on this path, so a line holding two objects is still read correctly.

use crate::error::{Incomplete, IngestError};
use std::io::{self, BufRead};

/// Default cap on one record (value or line): larger ones are rejected, keeping their prefix.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 << 20;

/// Longest piece of a line held at once; longer lines go through the slow path in pieces.
const SEGMENT_MAX: usize = 1 << 20;

#[derive(Debug)]
pub(crate) enum FrameKind {
    /// A whole line that looks like one JSON object. The caller parses it and then calls
    /// `accept` (it was one alert) or `decline` (scan it again on the slow path).
    Candidate,
    /// One complete JSON value (syntactically balanced; not yet validated).
    Json,
    /// One line that is not JSON: a plain-text alert candidate.
    Text,
    /// A malformed or oversized piece; `bytes` is its raw content.
    Bad(IngestError),
}

#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// 1-based line where the record starts.
    pub line: u64,
    /// 0-based byte column where the record starts on that line.
    pub col: u64,
    pub kind: FrameKind,
    pub bytes: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between values, at the top level or inside the top-level array.
    Between(Ctx),
    /// Inside a JSON value that started in this context.
    Value(Ctx),
    /// The rest of a line: plain text, or garbage after a value (`Some((found, column))`).
    Text(Option<(char, u64)>),
}

/// Where a finished frame's bytes live.
enum Src {
    Seg(usize, usize),
    Acc,
}

pub(crate) struct Framer<R> {
    reader: R,
    max: usize,
    seg: Vec<u8>,
    seg_pos: usize,
    /// The segment starts at the beginning of a line.
    seg_line_start: bool,
    /// The segment ends with a newline or at the end of input.
    seg_complete: bool,
    /// The fast path may be tried on the current segment.
    fast_ok: bool,
    /// A candidate was handed out and neither accepted nor declined yet.
    candidate: bool,
    eof: bool,
    finished: bool,
    first_segment: bool,
    bytes_read: u64,
    /// Line and 0-based column of `seg[seg_pos]`.
    line: u64,
    col: u64,
    /// A non-whitespace byte was seen on the current line.
    seen_non_ws: bool,
    mode: Mode,
    acc: Vec<u8>,
    acc_stale: bool,
    overflow: bool,
    v_line: u64,
    v_col: u64,
    depth: u32,
    in_str: bool,
    esc: bool,
    scalar: bool,
    array_line: u64,
    array_col: u64,
    /// The open value is the first thing on its line (only whitespace before it).
    v_alone: bool,
    /// Blank lines skipped between top-level records.
    blank: u64,
}

impl<R: BufRead> Framer<R> {
    pub(crate) fn new(reader: R, max: usize) -> Self {
        Framer {
            reader,
            max: max.max(1),
            seg: Vec::new(),
            seg_pos: 0,
            seg_line_start: true,
            seg_complete: false,
            fast_ok: false,
            candidate: false,
            eof: false,
            finished: false,
            first_segment: true,
            bytes_read: 0,
            line: 1,
            col: 0,
            seen_non_ws: false,
            mode: Mode::Between(Ctx::Top),
            acc: Vec::new(),
            acc_stale: false,
            overflow: false,
            v_line: 1,
            v_col: 0,
            depth: 0,
            in_str: false,
            esc: false,
            scalar: false,
            array_line: 1,
            array_col: 0,
            v_alone: false,
            blank: 0,
        }
    }

    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    /// Bytes taken from the reader so far (after decompression).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The line the framer is currently on.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// Blank lines skipped between top-level records.
    pub(crate) fn blank_lines(&self) -> u64 {
        self.blank
    }

    /// The last candidate was one alert: move past its line.
    pub(crate) fn accept(&mut self) {
        if self.candidate {
            self.candidate = false;
            let ends_line = self.seg.last() == Some(&b'\n');
            self.seg_pos = self.seg.len();
            if ends_line {
                self.newline();
            }
        }
    }

    /// The last candidate was not one alert: scan its line on the slow path.
    pub(crate) fn decline(&mut self) {
        if self.candidate {
            self.candidate = false;
            self.fast_ok = false;
        }
    }

    pub(crate) fn next_frame(&mut self) -> Option<Frame<'_>> {
        if self.candidate {
            self.decline();
        }
        if self.acc_stale {
            self.acc.clear();
            self.acc_stale = false;
            self.overflow = false;
        }
        loop {
            if self.finished {
                return None;
            }
            if self.seg_pos >= self.seg.len() {
                match self.read_segment() {
                    Ok(true) => continue,
                    Ok(false) => {
                        let (line, col, kind) = self.at_end()?;
                        return Some(self.frame(line, col, kind, Src::Acc));
                    }
                    Err(e) => {
                        self.finished = true;
                        let (line, col) = (self.line, self.col);
                        self.acc.clear();
                        return Some(self.frame(line, col, FrameKind::Bad(e.into()), Src::Acc));
                    }
                }
            }
            if self.fast_ok {
                self.fast_ok = false;
                if let Some((line, col, kind, src)) = self.fast_path() {
                    return Some(self.frame(line, col, kind, src));
                }
                if self.seg_pos >= self.seg.len() {
                    continue; // a blank line
                }
            }
            if let Some((line, col, kind)) = self.scan() {
                return Some(self.frame(line, col, kind, Src::Acc));
            }
        }
    }

    fn frame(&mut self, line: u64, col: u64, kind: FrameKind, src: Src) -> Frame<'_> {
        let bytes = match src {
            Src::Seg(a, b) => &self.seg[a..b],
            Src::Acc => {
                self.acc_stale = true;
                &self.acc[..]
            }
        };
        Frame {
            line,
            col,
            kind,
            bytes,
        }
    }

    /// Read the next segment: up to and including the next newline, at most `SEGMENT_MAX`
    /// bytes. `Ok(false)` at the end of input.
    fn read_segment(&mut self) -> io::Result<bool> {
        self.seg.clear();
        self.seg_pos = 0;
        self.seg_line_start = self.col == 0;
        self.seg_complete = false;
        if self.eof {
            return Ok(false);
        }
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                self.eof = true;
                self.seg_complete = true;
                break;
            }
            let room = SEGMENT_MAX - self.seg.len();
            let window = &chunk[..chunk.len().min(room)];
            match memchr::memchr(b'\n', window) {
                Some(n) => {
                    self.seg.extend_from_slice(&window[..=n]);
                    self.reader.consume(n + 1);
                    self.seg_complete = true;
                    break;
                }
                None => {
                    let n = window.len();
                    self.seg.extend_from_slice(window);
                    self.reader.consume(n);
                    if self.seg.len() >= SEGMENT_MAX {
                        break;
                    }
                }
            }
        }
        self.bytes_read += self.seg.len() as u64;
        if self.first_segment {
            self.first_segment = false;
            // A UTF-8 byte order mark (editors on Windows write one) is not part of the data.
            if self.seg.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.seg.drain(..3);
            }
        }
        self.fast_ok = self.seg_line_start && self.seg_complete;
        Ok(!self.seg.is_empty())
    }

    /// The whole current segment is one line and the scanner is between values.
    fn fast_path(&mut self) -> Option<(u64, u64, FrameKind, Src)> {
        let ctx = match self.mode {
            Mode::Between(ctx) => ctx,
            _ => return None,
        };
        let seg = &self.seg[..];
        let content_end = if seg.last() == Some(&b'\n') {
            seg.len() - 1
        } else {
            seg.len()
        };
        let start = seg[..content_end].iter().position(|b| !is_ws(*b));
        let Some(start) = start else {
            // A blank line is not a record: skipped and counted.
            if ctx == Ctx::Top {
                self.blank += 1;
            }
            let ends_line = content_end < seg.len();
            self.seg_pos = seg.len();
            if ends_line {
                self.newline();
            }
            return None;
        };
        let end = content_end
            - seg[..content_end]
                .iter()
                .rev()
                .take_while(|b| is_ws(**b))
                .count();
        let (first, last) = (seg[start], seg[end - 1]);
        let line = self.line;
        match ctx {
            Ctx::Top if first == b'{' && last == b'}' && end - start <= self.max => {
                self.candidate = true;
                Some((
                    line,
                    start as u64,
                    FrameKind::Candidate,
                    Src::Seg(start, end),
                ))
            }
            Ctx::Top if first != b'{' && (first != b'[' || is_bracket_prefix(&seg[start..end])) => {
                // A plain-text line: raw bytes are the whole line without its newline, so a
                // CRLF line keeps its `\r` (dead letters are the input bytes exactly).
                let text_end = content_end;
                let ends_line = content_end < seg.len();
                self.seg_pos = seg.len();
                if ends_line {
                    self.newline();
                }
                if text_end > self.max {
                    let kind = FrameKind::Bad(IngestError::TooLarge { limit: self.max });
                    return Some((line, 0, kind, Src::Seg(0, self.max)));
                }
                Some((line, 0, FrameKind::Text, Src::Seg(0, text_end)))
            }
            Ctx::Array if first == b'{' => {
                // Pretty-printed arrays with one element per line: `{...},`
                let mut e = end;
                if last == b',' {
                    e -= 1;
                    e -= seg[start..e]
                        .iter()
                        .rev()
                        .take_while(|b| is_ws(**b))
                        .count();
                }
                if e > start && seg[e - 1] == b'}' && e - start <= self.max {
                    self.candidate = true;
                    Some((line, start as u64, FrameKind::Candidate, Src::Seg(start, e)))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn newline(&mut self) {
        self.line += 1;
        self.col = 0;
        self.seen_non_ws = false;
    }

    fn advance(&mut self, n: usize) {
        self.seg_pos += n;
        self.col += n as u64;
    }

    fn push_byte(&mut self, b: u8) {
        push_capped(&mut self.acc, &mut self.overflow, self.max, &[b]);
    }

    /// Append `seg[seg_pos..seg_pos + n]` to the record and move past it.
    fn take(&mut self, n: usize) {
        let piece = &self.seg[self.seg_pos..self.seg_pos + n];
        push_capped(&mut self.acc, &mut self.overflow, self.max, piece);
        self.advance(n);
    }

    fn start_value(&mut self, ctx: Ctx) {
        self.mode = Mode::Value(ctx);
        self.acc.clear();
        self.overflow = false;
        self.v_line = self.line;
        self.v_col = self.col;
        self.v_alone = ctx == Ctx::Top && !self.seen_non_ws;
        let indent = self.col as usize;
        if self.v_alone && indent > 0 && indent <= self.seg_pos {
            // The record is the whole line: keep its leading whitespace.
            let lead = &self.seg[self.seg_pos - indent..self.seg_pos];
            push_capped(&mut self.acc, &mut self.overflow, self.max, lead);
            self.v_col = 0;
        }
        self.depth = 0;
        self.in_str = false;
        self.esc = false;
        self.scalar = false;
        self.seen_non_ws = true;
    }

    fn finish_value(&mut self, ctx: Ctx) -> (u64, u64, FrameKind) {
        self.mode = Mode::Between(ctx);
        self.depth = 0;
        self.scalar = false;
        self.in_str = false;
        self.esc = false;
        if ctx == Ctx::Top {
            if let Some(found) = self.rest_of_line() {
                return found;
            }
        }
        let kind = if self.overflow {
            FrameKind::Bad(IngestError::TooLarge { limit: self.max })
        } else {
            FrameKind::Json
        };
        (self.v_line, self.v_col, kind)
    }

    /// What follows a top-level value on its line (the segment holds the line's rest when it
    /// is complete). Whitespace to the end of the line joins the record when the value was
    /// alone on its line, so its raw bytes are the whole line (a CRLF's `\r` included).
    /// Anything but another value makes the whole line one bad record: returned here.
    fn rest_of_line(&mut self) -> Option<(u64, u64, FrameKind)> {
        let rest = &self.seg[self.seg_pos..];
        let nl = memchr::memchr(b'\n', rest);
        if nl.is_none() && !(self.seg_complete && self.eof) {
            return None; // the line goes on in the next segment: leave it to the scanner
        }
        let line_rest = &rest[..nl.unwrap_or(rest.len())];
        match line_rest.iter().position(|b| !is_ws(*b)) {
            None if self.v_alone => {
                let n = line_rest.len();
                self.take(n);
                if nl.is_some() {
                    self.seg_pos += 1;
                    self.newline();
                }
                None
            }
            None => None,
            Some(i) if matches!(line_rest[i], b'{' | b'[') => None,
            Some(i) => {
                let found = first_char(&line_rest[i..]);
                let column = self.col + i as u64 + 1;
                let n = line_rest.len();
                self.take(n);
                if nl.is_some() {
                    self.seg_pos += 1;
                    self.newline();
                }
                let kind = if self.overflow {
                    FrameKind::Bad(IngestError::TooLarge { limit: self.max })
                } else {
                    FrameKind::Bad(IngestError::TrailingCharacters { found, column })
                };
                Some((self.v_line, self.v_col, kind))
            }
        }
    }

    /// Drop what follows the truncated value's last line (blank lines, the indentation of
    /// what cut it off) so that `raw` is the record's own lines, each byte as it was (a
    /// CRLF's `\r` included).
    fn trim_acc(&mut self) {
        let Some(last) = self.acc.iter().rposition(|b| !is_ws_or_nl(*b)) else {
            return;
        };
        let keep = match memchr::memchr(b'\n', &self.acc[last..]) {
            Some(n) => last + n,
            None => self.acc.len(),
        };
        self.acc.truncate(keep);
    }

    fn incomplete(&mut self, ctx: Ctx, why: Incomplete) -> (u64, u64, FrameKind) {
        self.mode = Mode::Between(ctx);
        self.depth = 0;
        self.scalar = false;
        self.in_str = false;
        self.esc = false;
        self.trim_acc();
        (
            self.v_line,
            self.v_col,
            FrameKind::Bad(IngestError::Incomplete(why)),
        )
    }

    /// The input ended: flush whatever is open.
    fn at_end(&mut self) -> Option<(u64, u64, FrameKind)> {
        match self.mode {
            Mode::Between(Ctx::Top) => {
                self.finished = true;
                None
            }
            Mode::Between(Ctx::Array) => {
                self.mode = Mode::Between(Ctx::Top);
                self.acc.clear();
                let kind = FrameKind::Bad(IngestError::Incomplete(Incomplete::UnclosedArray));
                Some((self.array_line, 0, kind))
            }
            Mode::Value(ctx) if self.scalar => Some(self.finish_value(ctx)),
            Mode::Value(_) => {
                // The truncated element also stands for the unclosed array around it.
                Some(self.incomplete(Ctx::Top, Incomplete::EndOfInput))
            }
            Mode::Text(garbage) => Some(self.finish_text(garbage)),
        }
    }

    fn finish_text(&mut self, garbage: Option<(char, u64)>) -> (u64, u64, FrameKind) {
        self.mode = Mode::Between(Ctx::Top);
        let kind = if self.overflow {
            FrameKind::Bad(IngestError::TooLarge { limit: self.max })
        } else if let Some((found, column)) = garbage {
            FrameKind::Bad(IngestError::TrailingCharacters { found, column })
        } else {
            FrameKind::Text
        };
        (self.v_line, self.v_col, kind)
    }

    /// The slow path: scan `seg[seg_pos..]` until a frame is complete (its bytes in `acc`) or
    /// the segment is used up.
    fn scan(&mut self) -> Option<(u64, u64, FrameKind)> {
        while self.seg_pos < self.seg.len() {
            match self.mode {
                Mode::Between(ctx) => {
                    if let Some(f) = self.scan_between(ctx) {
                        return Some(f);
                    }
                }
                Mode::Value(ctx) => {
                    if let Some(f) = self.scan_value(ctx) {
                        return Some(f);
                    }
                }
                Mode::Text(garbage) => {
                    let rest = &self.seg[self.seg_pos..];
                    match memchr::memchr(b'\n', rest) {
                        Some(n) => {
                            self.take(n);
                            self.seg_pos += 1;
                            self.newline();
                            return Some(self.finish_text(garbage));
                        }
                        None => {
                            let n = rest.len();
                            self.take(n);
                        }
                    }
                }
            }
        }
        None
    }

    fn scan_between(&mut self, ctx: Ctx) -> Option<(u64, u64, FrameKind)> {
        let b = self.seg[self.seg_pos];
        match b {
            b'\n' => {
                if ctx == Ctx::Top && !self.seen_non_ws {
                    self.blank += 1;
                }
                self.seg_pos += 1;
                self.newline();
            }
            b' ' | b'\t' | b'\r' => self.advance(1),
            b',' if ctx == Ctx::Array => {
                self.seen_non_ws = true;
                self.advance(1);
            }
            b']' if ctx == Ctx::Array => {
                self.seen_non_ws = true;
                self.mode = Mode::Between(Ctx::Top);
                self.advance(1);
            }
            b'[' if ctx == Ctx::Top
                && (self.seen_non_ws || !is_bracket_prefix(&self.seg[self.seg_pos..])) =>
            {
                self.seen_non_ws = true;
                self.array_line = self.line;
                self.array_col = self.col;
                self.mode = Mode::Between(Ctx::Array);
                self.advance(1);
            }
            b'{' | b'[' => {
                self.start_value(ctx);
            }
            b'"' if ctx == Ctx::Array => {
                self.start_value(ctx);
            }
            _ if ctx == Ctx::Array
                && !self.seen_non_ws
                && self.line > self.array_line
                && self.col <= self.array_col =>
            {
                // A line that is not JSON, at or left of the array's `[`: the array was cut
                // off and the input goes on with something else (read next, at the top level).
                self.mode = Mode::Between(Ctx::Top);
                self.acc.clear();
                let kind = FrameKind::Bad(IngestError::Incomplete(Incomplete::UnclosedArray));
                return Some((self.array_line, self.array_col, kind));
            }
            _ if ctx == Ctx::Array => {
                // A scalar element (number, literal, stray byte): at least its first byte is
                // taken here, so a delimiter can never yield an empty record.
                self.start_value(ctx);
                self.scalar = true;
                self.take(1);
            }
            _ => {
                // Top level, not JSON: the rest of the line is plain text when it starts the
                // line, garbage when it follows a value.
                let garbage = if self.seen_non_ws {
                    let found = first_char(&self.seg[self.seg_pos..]);
                    Some((found, self.col + 1))
                } else {
                    None
                };
                self.acc.clear();
                self.overflow = false;
                self.v_line = self.line;
                self.v_col = self.col;
                if garbage.is_none() {
                    // Keep the line's leading whitespace: raw is the whole line.
                    let indent = self.col as usize;
                    if indent <= self.seg_pos {
                        let lead = &self.seg[self.seg_pos - indent..self.seg_pos];
                        push_capped(&mut self.acc, &mut self.overflow, self.max, lead);
                        self.v_col = 0;
                    }
                }
                self.seen_non_ws = true;
                self.mode = Mode::Text(garbage);
            }
        }
        None
    }

    fn scan_value(&mut self, ctx: Ctx) -> Option<(u64, u64, FrameKind)> {
        if self.in_str {
            return self.scan_string(ctx);
        }
        let b = self.seg[self.seg_pos];
        if self.scalar {
            if matches!(
                b,
                b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}' | b'{' | b'[' | b'"'
            ) {
                // The delimiter is not part of the scalar; it is read again between values.
                return Some(self.finish_value(ctx));
            }
            self.push_byte(b);
            self.advance(1);
            return None;
        }
        match b {
            b'\n' => {
                self.push_byte(b);
                self.seg_pos += 1;
                self.newline();
            }
            b' ' | b'\t' | b'\r' => {
                self.push_byte(b);
                self.advance(1);
            }
            b'{' | b'[' => {
                if !self.seen_non_ws && self.line > self.v_line && self.col <= self.v_col {
                    // A value starting at (or left of) where the open one started, at the start
                    // of a later line: the open one was truncated. The new one is read next.
                    let line = self.line;
                    return Some(self.incomplete(ctx, Incomplete::NewValueStarted { line }));
                }
                self.seen_non_ws = true;
                self.depth += 1;
                self.push_byte(b);
                self.advance(1);
            }
            b'}' | b']' => {
                self.seen_non_ws = true;
                self.push_byte(b);
                self.advance(1);
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return Some(self.finish_value(ctx));
                }
            }
            b'"' => {
                self.seen_non_ws = true;
                self.in_str = true;
                self.push_byte(b);
                self.advance(1);
            }
            _ => {
                self.seen_non_ws = true;
                self.push_byte(b);
                self.advance(1);
            }
        }
        None
    }

    fn scan_string(&mut self, ctx: Ctx) -> Option<(u64, u64, FrameKind)> {
        if self.esc {
            let b = self.seg[self.seg_pos];
            if b != b'\n' {
                self.esc = false;
                self.push_byte(b);
                self.advance(1);
                return None;
            }
        }
        let rest = &self.seg[self.seg_pos..];
        match memchr::memchr3(b'"', b'\\', b'\n', rest) {
            None => {
                let n = rest.len();
                self.take(n);
                None
            }
            Some(n) => {
                let hit = rest[n];
                self.take(n);
                match hit {
                    b'"' => {
                        self.push_byte(hit);
                        self.advance(1);
                        self.in_str = false;
                        if self.depth == 0 {
                            return Some(self.finish_value(ctx));
                        }
                        None
                    }
                    b'\\' => {
                        self.push_byte(hit);
                        self.advance(1);
                        self.esc = true;
                        None
                    }
                    _ => {
                        // JSON strings cannot contain a raw newline: the line was cut short.
                        self.seg_pos += 1;
                        let f = self.incomplete(ctx, Incomplete::LineEndInString);
                        self.newline();
                        Some(f)
                    }
                }
            }
        }
    }
}

fn push_capped(acc: &mut Vec<u8>, overflow: &mut bool, max: usize, bytes: &[u8]) {
    if *overflow {
        return;
    }
    let room = max.saturating_sub(acc.len());
    if bytes.len() > room {
        acc.extend_from_slice(&bytes[..room]);
        *overflow = true;
    } else {
        acc.extend_from_slice(bytes);
    }
}

/// `kubectl logs --prefix` puts `[pod/NAME/CONTAINER] ` in front of a line: text, not an array.
fn is_bracket_prefix(line: &[u8]) -> bool {
    let Some(inner) = line.strip_prefix(b"[") else {
        return false;
    };
    let word = inner
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'.')
        .count();
    word > 0 && inner.get(word) == Some(&b'/') && inner[0].is_ascii_alphabetic()
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn is_ws_or_nl(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn first_char(bytes: &[u8]) -> char {
    let n = bytes.len().min(4);
    for len in (1..=n).rev() {
        if let Ok(s) = std::str::from_utf8(&bytes[..len]) {
            if let Some(c) = s.chars().next() {
                return c;
            }
        }
    }
    char::REPLACEMENT_CHARACTER
}
