//! Any bytes through every entry point of fa-ingest: no panic, and every rejected record's raw
//! bytes come from the input.
//!
//! Run: RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=fuzz/target cargo fuzz run reader -- -max_total_time=60
#![no_main]

use fa_ingest::{parse_body, parse_plain_line, AlertReader};
use libfuzzer_sys::fuzz_target;
use std::io::BufReader;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let mut seen = 0usize;
    for item in AlertReader::new("fuzz", data) {
        seen += 1;
        if let Err(r) = item {
            assert!(
                contains(data, &r.raw),
                "raw bytes not taken from the input: {r}"
            );
            let _ = r.to_string();
        }
    }
    // Tiny read buffer and a tiny value cap reach the chunk-boundary and too-large paths.
    let small =
        AlertReader::new("fuzz", BufReader::with_capacity(5, data)).with_max_value_bytes(64);
    for item in small {
        if let Err(r) = item {
            assert!(
                r.raw.len() <= 64,
                "record over the cap kept {} bytes",
                r.raw.len()
            );
        }
    }
    let (ok, bad) = parse_body(data);
    assert_eq!(ok.len() + bad.len(), seen);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_plain_line(s);
    }
});
