//! `Content-Encoding: gzip` bodies through the server's decoder (bounded: zip bombs stop at the
//! limit) and parser: the input as a gzip stream, and the input compressed, which must come
//! back unchanged when it fits.
//!
//! Run: RUSTC_BOOTSTRAP=1 cargo fuzz run gzip -- -max_total_time=20
#![no_main]

mod common;

use common::body::{decode, Decoded};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    common::check_body(Some("gzip"), data);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if e.write_all(data).is_err() {
        return;
    }
    let Ok(gz) = e.finish() else { return };
    match decode(Some("gzip"), &gz, common::MAX_BODY) {
        Decoded::Ok(back) => assert_eq!(back, data),
        Decoded::TooLarge => assert!(data.len() > common::MAX_BODY),
        other => panic!("a gzip stream of our own was refused: {other:?}"),
    }
    common::check_body(Some("gzip"), &gz);
});
