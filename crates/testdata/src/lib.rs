//! The one place tests find the repository's data files. Everything a test reads lives inside the
//! repository (testdata/, examples/, kb/), so a clone made anywhere passes its tests.

use std::path::{Path, PathBuf};

/// The repository's root directory (the workspace root).
///
/// Found at run time from the running test's package directory (cargo sets `CARGO_MANIFEST_DIR`
/// for tests), not from this crate's compile-time path: a build directory shared between two
/// checkouts (`.ci/run` builds its isolated copy into the checkout's `target/`) would otherwise
/// point every test at whichever checkout compiled this crate last.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|d| d.join("testdata").is_dir() && d.join("kb").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

/// A path under the repository root, e.g. `repo("examples/alerts.jsonl")`.
pub fn repo(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// A path under `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    repo("testdata").join(rel)
}

/// Real Falco alerts collected from public sources (`testdata/alerts/`, see its README.md).
pub fn alerts_dir() -> PathBuf {
    testdata("alerts")
}

/// One file of `testdata/alerts/`.
pub fn alerts(file: &str) -> PathBuf {
    alerts_dir().join(file)
}

/// The labelled corpus of real alerts (`testdata/corpus/`, see its FORMAT.md).
pub fn corpus_dir() -> PathBuf {
    testdata("corpus")
}

/// The upstream Falco rule files (`kb/upstream/`, see its SOURCE.md).
pub fn upstream_rules_dir() -> PathBuf {
    repo("kb/upstream")
}

/// The two prior-art reports with invented flags (`examples/prior-art/`).
pub fn prior_art_dir() -> PathBuf {
    repo("examples/prior-art")
}

/// Reads a file the repository holds, with a message naming it when it is missing.
pub fn read_to_string(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => panic!(
            "test data {} is part of the repository: {e}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_directory_is_inside_the_repository() {
        let root = repo_root();
        assert!(
            root.join("Cargo.toml").is_file(),
            "{} is the workspace root",
            root.display()
        );
        for d in [
            alerts_dir(),
            corpus_dir(),
            upstream_rules_dir(),
            prior_art_dir(),
        ] {
            assert!(d.starts_with(&root));
            assert!(d.is_dir(), "{} exists", d.display());
        }
    }
}
