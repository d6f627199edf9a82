//! Prints requests per storm and the cache hit rate against a fake OpenAI-compatible API on
//! loopback: `cargo run -p fa-llm --example llm_storm [ALERTS] [CLUSTERS]`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let alerts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let clusters: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("cannot create a temporary cache directory");
        std::process::exit(1);
    };
    let server = FakeApi::start(Api::OpenAi, vec![], Step::Answer(good_answer())).await;
    let Ok(cache) = fa_llm::FsCache::open(dir.path()) else {
        eprintln!("cannot open the cache");
        std::process::exit(1);
    };
    let cold = storm(&server, alerts, clusters, Box::new(cache)).await;
    println!("cold cache:           {cold}");
    let Ok(cache) = fa_llm::FsCache::open(dir.path()) else {
        std::process::exit(1);
    };
    let warm = storm(&server, alerts, clusters, Box::new(cache)).await;
    println!("warm cache (next run): {warm}");
}
