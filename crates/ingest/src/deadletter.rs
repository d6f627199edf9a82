//! Dead letters: rejected records written out unchanged so they can be fixed and replayed.

use crate::error::Rejected;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends each rejected record's raw bytes, unchanged, plus a newline, to a file. The file is
/// created (or appended to) only when the first record is written, so a clean run leaves no
/// empty file behind.
pub struct DeadLetterWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    written: u64,
}

impl DeadLetterWriter {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterWriter {
            path: path.into(),
            out: None,
            written: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.written
    }

    /// Write one rejected record. Returns `false` (and writes nothing) when the rejection has
    /// no record bytes: a read error or an unclosed array.
    pub fn write(&mut self, rejected: &Rejected) -> io::Result<bool> {
        if rejected.raw.is_empty() {
            return Ok(false);
        }
        self.write_raw(&rejected.raw)?;
        Ok(true)
    }

    /// Write raw bytes as one dead letter.
    pub fn write_raw(&mut self, raw: &[u8]) -> io::Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                self.out.insert(BufWriter::new(file))
            }
        };
        out.write_all(raw)?;
        out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Flush to the file; call before reporting the run as done (drop also flushes, but
    /// cannot report an error).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}
