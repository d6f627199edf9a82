//! The free-space reserve: below `ingest.min_free_disk` on the database's file system, ingest
//! answers 503 before writing anything and `/readyz` says not ready. The reserve is what the
//! store writer has left to finish what was acknowledged; ingest comes back as soon as the
//! free space is above it again (checked every [`CHECK_INTERVAL`]).

use crate::pipeline::Shared;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often free space is measured.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

pub struct DiskGuard {
    dir: PathBuf,
    min_free: AtomicU64,
    free: AtomicU64,
    low: AtomicBool,
}

/// Bytes an unprivileged process may still write on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs only writes the zeroed struct passed by pointer; `c` is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

impl DiskGuard {
    /// For the database at `db`: its directory is measured.
    pub fn new(db: &Path, min_free: u64) -> Arc<Self> {
        let dir = match db.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Arc::new(DiskGuard {
            dir,
            min_free: AtomicU64::new(min_free),
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        })
    }

    /// Below the reserve: ingest must not write.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Acquire)
    }

    pub fn free(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    pub fn min_free(&self) -> u64 {
        self.min_free.load(Ordering::Relaxed)
    }

    /// Change the reserve while running; it takes effect at the next measurement (within
    /// [`CHECK_INTERVAL`]), as a change in free space does.
    pub fn set_min_free(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// Measure now. A failed measurement keeps the last state (it says nothing about space).
    pub fn check(&self, shared: &Shared) {
        match free_bytes(&self.dir) {
            Ok(free) => {
                self.free.store(free, Ordering::Relaxed);
                let low = free < self.min_free();
                let was = self.low.swap(low, Ordering::AcqRel);
                if low != was {
                    if low {
                        tracing::error!(
                            free,
                            min_free = self.min_free(),
                            dir = %self.dir.display(),
                            "free disk space below ingest.min_free_disk: ingest answers 503 until it is back"
                        );
                    } else {
                        tracing::info!(
                            free,
                            "free disk space back above ingest.min_free_disk: ingest resumes"
                        );
                    }
                }
                shared
                    .metrics
                    .disk_free_bytes
                    .set(i64::try_from(free).unwrap_or(i64::MAX));
                shared.metrics.disk_low.set(i64::from(low));
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "measuring free disk space");
            }
        }
    }

    /// Measure every [`CHECK_INTERVAL`] until the task is aborted.
    pub async fn watch(self: Arc<Self>, shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (me, sh) = (self.clone(), shared.clone());
            // statvfs may block on a network file system.
            let _ = tokio::task::spawn_blocking(move || me.check(&sh)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_measured_against_the_databases_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let shared = Shared::new(10);
        let g = DiskGuard::new(&dir.path().join("fa.db"), 0);
        g.check(&shared);
        assert!(!g.is_low());
        g.set_min_free(u64::MAX);
        g.check(&shared);
        assert!(g.is_low());
        assert!(shared.metrics.encode().contains("falco_analyst_disk_low 1"));
        g.set_min_free(0);
        g.check(&shared);
        assert!(!g.is_low());
    }
}
