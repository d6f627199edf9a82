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
    no_follow: bool,
}

impl DeadLetterWriter {
    /// A writer for a path the user named: it is opened as given (a symlink such as
    /// `/dev/stderr` is followed).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterWriter {
            path: path.into(),
            out: None,
            written: 0,
            no_follow: false,
        }
    }

    /// A writer for a default path (one the user did not name, e.g. in the working
    /// directory): the file is created exclusively (`O_CREAT|O_EXCL`) when it does not exist;
    /// an existing regular file is appended to; a symbolic link (or anything that is not a
    /// regular file) is refused, so a link planted there cannot redirect the writes.
    pub fn new_no_follow(path: impl Into<PathBuf>) -> Self {
        DeadLetterWriter {
            no_follow: true,
            ..Self::new(path)
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
                let file = if self.no_follow {
                    open_no_follow(&self.path)?
                } else {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?
                };
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

/// Create `path` exclusively, or append to it when it is an existing regular file; never
/// through a symbolic link. Without `O_NOFOLLOW` in std, the existing-file case compares the
/// file that was opened with what `lstat` saw, so a link swapped in between is refused too.
fn open_no_follow(path: &Path) -> io::Result<File> {
    match OpenOptions::new().append(true).create_new(true).open(path) {
        Ok(f) => return Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let refuse = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to write dead letters to {}: it is {what}, not a regular file \
                 (remove it, or name a file with --dead-letter)",
                path.display()
            ),
        )
    };
    let before = std::fs::symlink_metadata(path)?;
    if before.file_type().is_symlink() {
        return Err(refuse("a symbolic link"));
    }
    if !before.is_file() {
        return Err(refuse("a special file or directory"));
    }
    let file = OpenOptions::new().append(true).open(path)?;
    if !same_file(&before, &file.metadata()?) {
        return Err(refuse("a file that was replaced while it was opened"));
    }
    Ok(file)
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino() && b.is_file()
}

#[cfg(not(unix))]
fn same_file(_a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    b.is_file()
}
