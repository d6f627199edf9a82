//! Falcosidekick webhook payloads (uuid, output, priority, rule, time, output_fields, source,
//! tags, hostname) through the server's body code, the fuzz input spread over the fields and
//! spliced raw into `output_fields`.
//!
//! Run: RUSTC_BOOTSTRAP=1 cargo fuzz run falcosidekick -- -max_total_time=20
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let third = data.len() / 3;
    let (a, rest) = data.split_at(third);
    let (b, c) = rest.split_at(third);
    let payload = format!(
        r#"{{"uuid":{},"output":{},"priority":"Critical","rule":"Terminal shell in container","time":"2024-05-07T18:54:19.341081180Z","output_fields":{{"container.id":{},"proc.tty":34816}},"source":"syscall","tags":["container","shell"],"hostname":"node-1"}}"#,
        common::json_str(a),
        common::json_str(b),
        common::json_str(c)
    );
    common::check_body(None, payload.as_bytes());
    // The raw bytes where an object is expected: whatever they are, nothing panics.
    let mut raw = br#"{"uuid":"u","rule":"r","priority":"Notice","output":"o","output_fields":"#.to_vec();
    raw.extend_from_slice(data);
    raw.push(b'}');
    common::check_body(None, &raw);
});
