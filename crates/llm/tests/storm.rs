//! A storm: 10,000 alerts in 20 clusters make at most 20 requests. Prints the figures for
//! BENCHMARKS.md (`cargo test -p fa-llm --test storm -- --nocapture`).

mod common;

use common::*;
use fa_llm::FsCache;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_in_twenty_clusters_make_at_most_twenty_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeApi::start(Api::OpenAi, vec![], Step::Answer(good_answer())).await;

    let cold = storm(
        &server,
        10_000,
        20,
        Box::new(FsCache::open(dir.path()).unwrap()),
    )
    .await;
    println!("LLM storm, cold cache: {cold}");
    assert!(cold.stats.requests <= 20, "{cold}");
    assert_eq!(server.count() as u64, cold.stats.requests);
    assert_eq!(cold.stats.cache_misses, 20);
    assert_eq!(cold.stats.cache_hits, 9_980);
    assert_eq!(cold.narratives, 10_000);

    let warm = storm(
        &server,
        10_000,
        20,
        Box::new(FsCache::open(dir.path()).unwrap()),
    )
    .await;
    println!("LLM storm, warm cache (next run): {warm}");
    assert_eq!(warm.stats.requests, 0, "{warm}");
    assert_eq!(warm.stats.cache_hits, 10_000);
    assert_eq!(server.count() as u64, cold.stats.requests);
}
