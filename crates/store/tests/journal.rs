use fa_store::journal::{read_journal, Journal, DEFAULT_SEGMENT_BYTES};
use fa_store::Synchronous;
use std::fs;
use std::path::{Path, PathBuf};

fn body(i: usize) -> String {
    format!(r#"{{"uuid":"u-{i}","rule":"R","output":"line {i} with \"quotes\" and ünïcode"}}"#)
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn append_n(j: &mut Journal, from: usize, n: usize) -> Vec<i64> {
    let bodies: Vec<String> = (from..from + n).map(body).collect();
    j.append(
        bodies
            .iter()
            .enumerate()
            .map(|(k, b)| (k as i64, b.as_str())),
    )
    .unwrap()
}

#[test]
fn records_come_back_in_order_after_a_restart_and_numbering_continues() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("j");
    let (mut j, old) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    assert!(old.is_empty());
    assert_eq!(append_n(&mut j, 0, 3), vec![1, 2, 3]);
    assert_eq!(append_n(&mut j, 3, 2), vec![4, 5]);
    j.syncer().sync().unwrap();
    drop(j); // a crash: nothing closed

    let (mut j, old) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    let seqs: Vec<i64> = old.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(old[3].body, body(3));
    assert_eq!(old[1].received_at, 1);
    assert_eq!(j.outstanding(), 5);
    // Numbering goes on above what was read, and above the floor the caller gives.
    assert_eq!(append_n(&mut j, 5, 1), vec![6]);
    drop(j);
    let (mut j, _) = Journal::open(&jdir, Synchronous::Full, DEFAULT_SEGMENT_BYTES, 100).unwrap();
    assert_eq!(append_n(&mut j, 6, 1), vec![101]);
}

#[test]
fn a_torn_last_write_loses_only_what_was_never_complete() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("j");
    let (mut j, _) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    append_n(&mut j, 0, 4);
    drop(j);
    let seg = segments(&jdir).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    // Every possible cut of the file gives back a prefix of what was written, never garbage.
    let complete: Vec<usize> = {
        let mut ends = vec![0];
        let mut at = 0;
        while at < full.len() {
            let len = u32::from_le_bytes(full[at..at + 4].try_into().unwrap()) as usize;
            at += 8 + len;
            ends.push(at);
        }
        ends
    };
    for cut in 0..=full.len() {
        fs::write(&seg, &full[..cut]).unwrap();
        let got = read_journal(&jdir).unwrap();
        let expect = complete.iter().filter(|e| **e <= cut).count() - 1;
        assert_eq!(got.len(), expect, "cut at {cut}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.body, body(i));
        }
    }
    // Cut inside the third record: a restart keeps two and appends to a fresh segment, so the
    // torn bytes never hide later records.
    fs::write(&seg, &full[..complete[2] + 5]).unwrap();
    let (mut j, old) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    assert_eq!(old.len(), 2);
    assert_eq!(append_n(&mut j, 10, 1), vec![3]);
    drop(j);
    let again: Vec<(i64, String)> = read_journal(&jdir)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.body))
        .collect();
    assert_eq!(again, vec![(1, body(0)), (2, body(1)), (3, body(10))]);
}

#[test]
fn a_flipped_byte_fails_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("j");
    let (mut j, _) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    append_n(&mut j, 0, 3);
    drop(j);
    let seg = segments(&jdir).pop().unwrap();
    let mut data = fs::read(&seg).unwrap();
    let first_len = u32::from_le_bytes(data[0..4].try_into().unwrap()) as usize;
    // A byte inside the second record's body.
    data[8 + first_len + 8 + 20] ^= 0x40;
    fs::write(&seg, &data).unwrap();
    let got = read_journal(&jdir).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body(0));
}

#[test]
fn segments_are_deleted_once_everything_in_them_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("j");
    // Tiny segments: every append closes its segment.
    let (mut j, _) = Journal::open(&jdir, Synchronous::Normal, 1, 0).unwrap();
    let a = append_n(&mut j, 0, 2);
    let b = append_n(&mut j, 2, 2);
    let c = append_n(&mut j, 4, 2);
    assert_eq!(segments(&jdir).len(), 4, "three closed and the current one");
    j.syncer().sync().unwrap();
    // Half of the first segment and all of the second.
    j.done(&[a[0]]).unwrap();
    j.done(&b).unwrap();
    assert_eq!(segments(&jdir).len(), 3);
    assert_eq!(j.outstanding(), 3);
    j.done(&[a[1]]).unwrap();
    // Marking something twice, or something unknown, changes nothing.
    j.done(&[a[1], 999]).unwrap();
    assert_eq!(segments(&jdir).len(), 2);
    drop(j);
    // What is left is exactly what was not done.
    let left: Vec<i64> = read_journal(&jdir).unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(left, c);
}

#[test]
fn close_removes_the_files_only_when_nothing_is_outstanding() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("j");
    let (mut j, _) = Journal::open(&jdir, Synchronous::Full, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    let s = append_n(&mut j, 0, 3);
    j.done(&s[..2]).unwrap();
    j.close().unwrap();
    assert_eq!(
        read_journal(&jdir).unwrap().len(),
        3,
        "one is outstanding: all kept"
    );
    let (mut j, old) = Journal::open(&jdir, Synchronous::Full, DEFAULT_SEGMENT_BYTES, 0).unwrap();
    let seqs: Vec<i64> = old.iter().map(|r| r.seq).collect();
    j.done(&seqs).unwrap();
    j.close().unwrap();
    assert!(read_journal(&jdir).unwrap().is_empty());
    assert!(segments(&jdir).is_empty());
}

#[test]
fn a_missing_journal_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_journal(&dir.path().join("none")).unwrap().is_empty());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever a segment file holds (garbage, a good record followed by anything), reading
    /// and opening the journal never panics, and what comes back is a prefix of what was
    /// written before the garbage.
    #[test]
    fn any_segment_content_reads_without_panic(garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..600), keep_good in proptest::bool::ANY) {
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("j");
        let (mut j, _) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
        if keep_good {
            append_n(&mut j, 0, 2);
        }
        drop(j);
        let seg = segments(&jdir).pop().unwrap();
        let mut data = fs::read(&seg).unwrap();
        data.extend_from_slice(&garbage);
        fs::write(&seg, &data).unwrap();
        let got = read_journal(&jdir).unwrap();
        let good = if keep_good { 2 } else { 0 };
        proptest::prop_assert!(got.len() >= good);
        for (i, r) in got.iter().take(good).enumerate() {
            proptest::prop_assert_eq!(&r.body, &body(i));
        }
        let (j, again) = Journal::open(&jdir, Synchronous::Normal, DEFAULT_SEGMENT_BYTES, 0).unwrap();
        proptest::prop_assert_eq!(again.len(), got.len());
        proptest::prop_assert!(j.next_seq() > again.iter().map(|r| r.seq).max().unwrap_or(0));
    }
}

#[test]
fn finished_segment_files_are_reused_and_their_old_records_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("j");
    let all_files = |d: &Path| fs::read_dir(d).unwrap().count();
    // Tiny segments: every append closes its segment.
    let (mut j, _) = Journal::open(&jdir, Synchronous::Normal, 1, 0).unwrap();
    // Long records first, so a reused file holds more old bytes than the new records cover.
    let long: Vec<String> = (0..3)
        .map(|i| format!("{}{}", body(i), " ".repeat(500)))
        .collect();
    let mut first = Vec::new();
    for b in &long {
        first.extend(j.append([(0, b.as_str())]).unwrap());
    }
    j.done(&first).unwrap();
    let after_first = all_files(&jdir);
    // Many more rounds: the files are renamed and overwritten, not multiplied.
    let mut last = Vec::new();
    for round in 0..20 {
        let seqs = append_n(&mut j, 100 + round, 1);
        j.done(&seqs).unwrap();
        last = seqs;
    }
    assert!(
        all_files(&jdir) <= after_first,
        "{} files",
        all_files(&jdir)
    );
    // Outstanding records survive a crash; done ones, and the old content of reused files,
    // do not come back.
    let keep = append_n(&mut j, 500, 1);
    drop(j);
    let back: Vec<(i64, String)> = read_journal(&jdir)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.body))
        .collect();
    assert_eq!(back, vec![(keep[0], body(500))]);
    assert!(last[0] < keep[0]);
    let (j, old) = Journal::open(&jdir, Synchronous::Normal, 1, 0).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(j.next_seq(), keep[0] + 1);
}
