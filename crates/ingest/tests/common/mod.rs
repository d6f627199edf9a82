#![allow(dead_code)]
use fa_ingest::{AlertReader, Rejected};
use fa_model::Alert;
use std::io::BufReader;

pub fn shared_alerts() -> std::path::PathBuf {
    fa_testdata::alerts_dir()
}
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// Read everything, splitting alerts from rejections.
pub fn read_all(input: &[u8]) -> (Vec<Alert>, Vec<Rejected>) {
    split(AlertReader::new("t", input))
}

/// The same, through a tiny read buffer so that lines and values cross chunk boundaries.
pub fn read_all_tiny(input: &[u8], cap: usize) -> (Vec<Alert>, Vec<Rejected>) {
    split(AlertReader::new("t", BufReader::with_capacity(cap, input)))
}

pub fn split<I: Iterator<Item = Result<Alert, Rejected>>>(it: I) -> (Vec<Alert>, Vec<Rejected>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for r in it {
        match r {
            Ok(a) => ok.push(a),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

pub fn alert_line(rule: &str, n: usize) -> String {
    format!(
        r#"{{"hostname":"h{n}","output":"2024-05-07T18:54:19.341081180+0000: Warning x (user=root)","output_fields":{{"proc.name":"sh","proc.tty":{n},"k8s.ns.name":null,"list":["a","b"],"flag":true}},"priority":"Warning","rule":"{rule}","source":"syscall","tags":["T1059"],"time":"2024-05-07T18:54:19.341081180Z"}}"#
    )
}
