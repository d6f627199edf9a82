//! JSON arrays of alerts (and JSON Lines) through the server's body code: the input as the
//! inside of an array, and split into array elements and lines.
//!
//! Run: RUSTC_BOOTSTRAP=1 cargo fuzz run arrays -- -max_total_time=20
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut arr = b"[".to_vec();
    arr.extend_from_slice(data);
    arr.push(b']');
    common::check_body(None, &arr);
    let parts: Vec<String> = data
        .split(|b| *b == b',' || *b == b'\n')
        .map(|p| {
            format!(
                r#"{{"rule":{},"priority":"Notice","output":"x","output_fields":{{}}}}"#,
                common::json_str(p)
            )
        })
        .collect();
    common::check_body(None, format!("[{}]", parts.join(",")).as_bytes());
    common::check_body(None, parts.join("\n").as_bytes());
});
