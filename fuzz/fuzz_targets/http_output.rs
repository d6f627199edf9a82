//! Falco `http_output` bodies (one alert object per request) through the server's body code:
//! the bytes as sent, and the bytes as the values of an otherwise well-formed alert.
//!
//! Run: RUSTC_BOOTSTRAP=1 cargo fuzz run http_output -- -max_total_time=20
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::check_body(None, data);
    let (a, b) = data.split_at(data.len() / 2);
    let wrapped = format!(
        r#"{{"output":{},"priority":"Warning","rule":{},"time":"2024-05-07T18:54:19.341081180Z","output_fields":{{"proc.cmdline":{}}},"hostname":"h","source":"syscall","tags":["T1555"]}}"#,
        common::json_str(data),
        common::json_str(a),
        common::json_str(b)
    );
    common::check_body(None, wrapped.as_bytes());
});
