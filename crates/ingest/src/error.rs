use fa_model::AlertError;
use std::fmt;
use std::io;

/// What is wrong with one input record (or with the input as a whole, for `Open` and `Io`).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Reading failed part-way (disk error, corrupt gzip stream). Ends the input.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// The record is not valid JSON. `line` is absolute in the input, `column` is 1-based.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    JsonSyntax {
        line: u64,
        column: u64,
        message: String,
    },
    /// A JSON value was still open when it had to end.
    #[error("incomplete JSON value: {0}")]
    Incomplete(Incomplete),
    /// Text follows a complete JSON value on the same line.
    #[error("unexpected {found:?} after a JSON value at column {column}")]
    TrailingCharacters { found: char, column: u64 },
    /// Valid JSON, but not an object, so not an alert.
    #[error("expected a JSON object (a Falco alert), found {found}")]
    NotAnObject { found: &'static str },
    /// A JSON object that is not a usable alert: a required field is missing or a field has
    /// the wrong type or value.
    #[error("{0}")]
    Alert(#[from] AlertError),
    /// The record is larger than the per-value limit; only its first `limit` bytes are kept.
    #[error("record larger than the {limit}-byte limit (only its first {limit} bytes are kept)")]
    TooLarge { limit: usize },
    /// The record's bytes are not UTF-8.
    #[error("invalid UTF-8 at byte {offset} of the record")]
    InvalidUtf8 { offset: usize },
    /// A line that is neither JSON nor Falco's plain-text alert form.
    #[error("not a Falco alert line ({0}); expected JSON or `<time>: <Priority> <message>`")]
    UnrecognisedLine(String),
    /// A line Falco itself writes that is not an alert: its own log messages (start-up
    /// banner, warnings) and the statistics it prints when it stops. Kept as a dead letter so
    /// nothing is lost silently, with this reason so it is not mistaken for a broken alert.
    #[error("{0}, not an alert")]
    NotAnAlert(NonAlert),
}

/// What kind of non-alert line Falco wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonAlert {
    /// `Tue May 21 12:55:58 2019: Falco initialized ...`: Falco's own log (stderr/syslog).
    FalcoLog,
    /// `Events detected: 12`, `Rule counts by severity:` and their indented lines.
    Statistics,
}

impl fmt::Display for NonAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonAlert::FalcoLog => f.write_str("a Falco log message (banner, start-up, warning)"),
            NonAlert::Statistics => f.write_str("Falco's end-of-run statistics"),
        }
    }
}

/// Why an open JSON value was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incomplete {
    /// A line ended inside a string (JSON strings cannot hold a raw newline), so the record
    /// was truncated.
    LineEndInString,
    /// A new top-level value starts on this line while the previous one was still open.
    NewValueStarted { line: u64 },
    /// The input ended.
    EndOfInput,
    /// A top-level `[` array was never closed (its elements were read).
    UnclosedArray,
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Incomplete::LineEndInString => f.write_str("the line ends inside a string"),
            Incomplete::NewValueStarted { line } => {
                write!(
                    f,
                    "a new value starts on line {line} before this one was closed"
                )
            }
            Incomplete::EndOfInput => f.write_str("the input ends before the value is closed"),
            Incomplete::UnclosedArray => f.write_str("the top-level array is never closed"),
        }
    }
}

/// One record that could not be read as an alert.
///
/// `raw` holds the record's bytes exactly as they were in the input (without the line's
/// trailing newline; a CRLF line keeps its `\r`; a record alone on its line is the whole line,
/// indentation included), so they can be written to a dead-letter file and replayed. Two
/// exceptions: for `TooLarge` only the first `limit` bytes are kept, and for `Io` and
/// `Incomplete(UnclosedArray)` there is no record and `raw` is empty.
#[derive(Debug)]
pub struct Rejected {
    /// The input's name: a path, `<stdin>` or `<body>`.
    pub origin: String,
    /// 1-based line where the record starts.
    pub line: u64,
    pub raw: Vec<u8>,
    pub error: IngestError,
}

impl Rejected {
    /// True when reading stopped because of this error: nothing more comes from the input.
    pub fn is_fatal(&self) -> bool {
        matches!(self.error, IngestError::Io(_) | IngestError::Open { .. })
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.error)
    }
}

impl std::error::Error for Rejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
