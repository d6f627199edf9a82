//! Opening an input: a file or stdin, gzip-compressed or not.

use crate::error::IngestError;
use crate::reader::AlertReader;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const BUF_CAPACITY: usize = 256 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An opened input, ready to read.
pub struct Input {
    /// The path as given, or `<stdin>`.
    pub name: String,
    /// The input was gzip-compressed (detected by its first bytes, not its name).
    pub gzip: bool,
    /// Size on disk in bytes, when known (regular files).
    pub size: Option<u64>,
    reader: Box<dyn BufRead + Send>,
    progress: Progress,
}

/// Bytes read from the source so far, before decompression: compare with `Input::size` for a
/// progress bar. Cheap to clone and to read from another thread.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("gzip", &self.gzip)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Input {
    /// Wrap any reader (already open) as an input; gzip is detected the same way.
    pub fn from_reader(
        name: impl Into<String>,
        source: impl Read + Send + 'static,
    ) -> io::Result<Input> {
        let progress = Progress::default();
        let counted = Counting {
            inner: source,
            count: progress.0.clone(),
        };
        let (reader, gzip) = decode(counted)?;
        Ok(Input {
            name: name.into(),
            gzip,
            size: None,
            reader,
            progress,
        })
    }

    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// The decoded bytes.
    pub fn into_bufread(self) -> Box<dyn BufRead + Send> {
        self.reader
    }

    /// An `AlertReader` over this input, named after it.
    pub fn into_alerts(self) -> AlertReader<Box<dyn BufRead + Send>> {
        AlertReader::new(self.name, self.reader)
    }
}

/// Open `path` for reading alerts; `-` is standard input. Gzip is detected by its magic
/// bytes and decompressed transparently (concatenated gzip members are all read).
pub fn open_input(path: &str) -> Result<Input, IngestError> {
    let open_err = |source: io::Error| IngestError::Open {
        path: path.to_string(),
        source,
    };
    if path == "-" {
        return Input::from_reader("<stdin>", io::stdin()).map_err(open_err);
    }
    let file = File::open(path).map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    if meta.is_dir() {
        return Err(open_err(io::Error::other("is a directory")));
    }
    let mut input = Input::from_reader(path, file).map_err(open_err)?;
    input.size = meta.is_file().then_some(meta.len());
    Ok(input)
}

/// Peek at the first two bytes (reading until there are two, since a pipe may deliver one)
/// and put them back in front of the stream.
fn decode<R: Read + Send + 'static>(mut source: R) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match source.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = Cursor::new(magic[..got].to_vec());
    let raw = BufReader::with_capacity(BUF_CAPACITY, head.chain(source));
    if magic[..got] == GZIP_MAGIC {
        let gz = flate2::bufread::MultiGzDecoder::new(raw);
        Ok((Box::new(BufReader::with_capacity(BUF_CAPACITY, gz)), true))
    } else {
        Ok((Box::new(raw), false))
    }
}

struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
