//! The narrative cache: one answer per cluster fingerprint and prompt version, kept across runs.
//!
//! What is stored is the model's answer with its placeholders (`[HOST_1]`), not the restored
//! narrative: at the standard level the cache holds no alert values, and each alert of the
//! cluster gets the answer with its own values put back and validated again.

use crate::answer::Answer;
use crate::prompt::prompt_version;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What an answer is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheKey {
    /// The cluster fingerprint (`fa_analyze::fingerprint`), as text.
    pub fingerprint: String,
    pub prompt_version: String,
}

impl CacheKey {
    /// The key for `fingerprint` under the current prompt.
    pub fn new(fingerprint: impl Into<String>) -> Self {
        CacheKey {
            fingerprint: fingerprint.into(),
            prompt_version: prompt_version(),
        }
    }

    /// A file name for the key: the fingerprint when it is a safe name, else its hash.
    pub fn file_name(&self) -> String {
        let safe = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let fp = if safe(&self.fingerprint) {
            self.fingerprint.clone()
        } else {
            format!(
                "h{:016x}",
                xxhash_rust::xxh3::xxh3_64(self.fingerprint.as_bytes())
            )
        };
        let v = if safe(&self.prompt_version) {
            self.prompt_version.clone()
        } else {
            format!(
                "h{:016x}",
                xxhash_rust::xxh3::xxh3_64(self.prompt_version.as_bytes())
            )
        };
        format!("{fp}.v{v}.json")
    }
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub provider: String,
    pub model: String,
    /// With placeholders, as the model wrote it.
    pub answer: Answer,
    /// Seconds since the epoch.
    pub created: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache: {0}")]
    Other(String),
}

/// Where answers are kept. The service implements it over its database.
pub trait NarrativeCache: Send + Sync {
    fn get(&self, key: &CacheKey) -> Option<CachedAnswer>;
    fn put(&self, key: &CacheKey, value: &CachedAnswer) -> Result<(), CacheError>;
}

/// In memory, for one run.
#[derive(Debug, Default)]
pub struct MemoryCache {
    map: Mutex<HashMap<CacheKey, CachedAnswer>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl NarrativeCache for MemoryCache {
    fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        self.map.lock().ok()?.get(key).cloned()
    }
    fn put(&self, key: &CacheKey, value: &CachedAnswer) -> Result<(), CacheError> {
        self.map
            .lock()
            .map_err(|_| CacheError::Other("poisoned lock".into()))?
            .insert(key.clone(), value.clone());
        Ok(())
    }
}

/// One JSON file per key in a directory (created 0700 on Unix). Unreadable or corrupt files
/// are misses; writes go through a temporary file and a rename.
#[derive(Debug, Clone)]
pub struct FsCache {
    dir: PathBuf,
}

impl FsCache {
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        create_private_dir(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(FsCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.file_name())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// The stored form names its key, so a renamed or hash-colliding file is never served.
#[derive(Serialize, Deserialize)]
struct Stored {
    key: CacheKey,
    value: CachedAnswer,
}

impl NarrativeCache for FsCache {
    fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        let bytes = fs::read(self.path(key)).ok()?;
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        (stored.key == *key).then_some(stored.value)
    }

    fn put(&self, key: &CacheKey, value: &CachedAnswer) -> Result<(), CacheError> {
        let path = self.path(key);
        let io = |source| CacheError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(&Stored {
            key: key.clone(),
            value: value.clone(),
        })
        .map_err(|e| CacheError::Other(e.to_string()))?;
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", key.file_name(), std::process::id()));
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        fs::rename(&tmp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> CachedAnswer {
        CachedAnswer {
            provider: "openai".into(),
            model: "m".into(),
            answer: Answer {
                summary: "s".into(),
                analysis: "a".into(),
                mitigations: vec![],
                next_steps: vec![],
            },
            created: 1,
        }
    }

    #[test]
    fn file_names_are_safe_for_any_fingerprint() {
        assert_eq!(
            CacheKey {
                fingerprint: "00ab".into(),
                prompt_version: "1-ff".into()
            }
            .file_name(),
            "00ab.v1-ff.json"
        );
        let n = CacheKey {
            fingerprint: "../../etc/passwd".into(),
            prompt_version: "1".into(),
        }
        .file_name();
        assert!(n.starts_with('h') && !n.contains('/'), "{n}");
    }

    #[test]
    fn fs_cache_round_trips_across_instances_and_ignores_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = CacheKey::new("0123abcd");
        let c = FsCache::open(dir.path().join("llm")).unwrap();
        assert!(c.get(&key).is_none());
        c.put(&key, &value()).unwrap();
        let again = FsCache::open(dir.path().join("llm")).unwrap();
        assert_eq!(again.get(&key), Some(value()));
        // Another prompt version is another entry.
        assert!(again
            .get(&CacheKey {
                prompt_version: "0-old".into(),
                ..key.clone()
            })
            .is_none());
        fs::write(c.path(&key), b"{not json").unwrap();
        assert!(c.get(&key).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("llm"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn memory_cache() {
        let c = MemoryCache::new();
        let key = CacheKey::new("f");
        c.put(&key, &value()).unwrap();
        assert_eq!(c.get(&key), Some(value()));
        assert_eq!(c.len(), 1);
    }
}
