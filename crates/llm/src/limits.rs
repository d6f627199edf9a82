//! Rate limit, backoff and circuit breaker: what keeps a storm of alerts from becoming a storm
//! of requests, and a failing API from slowing every report down.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64) -> Self {
        let burst = rate.max(1.0);
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a request may start.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let Ok(mut st) = self.state.lock() else {
                    return;
                };
                let now = Instant::now();
                let (tokens, last) = *st;
                let tokens =
                    (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
                if tokens >= 1.0 {
                    *st = (tokens - 1.0, now);
                    return;
                }
                *st = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so retries from
/// concurrent requests spread out but never retry at once.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let step = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    let half = step / 2;
    half + half.mul_f64(jitter())
}

/// A number in [0, 1) from the standard library's per-process random hash keys.
fn jitter() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let t = chrono_like_http_date(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(t.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn chrono_like_http_date(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == mon)? as u64
        + 1;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil date (Howard Hinnant's algorithm), valid for years after 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3_600 + m * 60 + s)
}

/// Opens after `threshold` failures in a row; while open no request is made. After `cooldown`
/// one request is let through; its failure opens the breaker again at once.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    consecutive: u32,
    open_until: Option<Instant>,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(BreakerState::default()),
        }
    }

    /// `Err(remaining)` while open. Once the cooldown is over, the first caller gets through
    /// as the probe and the breaker re-arms, so the others wait for the probe's result.
    pub fn check(&self) -> Result<(), Duration> {
        let Ok(mut st) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        match st.open_until {
            Some(t) if now < t => Err(t - now),
            Some(_) => {
                st.open_until = Some(now + self.cooldown);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn success(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.consecutive = 0;
            st.open_until = None;
        }
    }

    pub fn failure(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.consecutive = st.consecutive.saturating_add(1);
            if st.consecutive >= self.threshold {
                st.open_until = Some(Instant::now() + self.cooldown);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 0..6 {
            let step = (base * (1 << attempt)).min(cap);
            let d = backoff(attempt, base, cap);
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
        }
        let samples: Vec<Duration> = (0..20).map(|_| backoff(3, base, cap)).collect();
        assert!(samples.iter().any(|d| *d != samples[0]), "no jitter");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            chrono_like_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn breaker_opens_after_threshold_and_closes_on_success() {
        let b = CircuitBreaker::new(2, Duration::from_secs(60));
        b.failure();
        assert!(b.check().is_ok());
        b.failure();
        assert!(b.check().is_err());
        b.success();
        assert!(b.check().is_ok());
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through() {
        let b = CircuitBreaker::new(1, Duration::from_millis(40));
        b.failure();
        assert!(b.check().is_err());
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.check().is_ok(), "the probe");
        assert!(b.check().is_err(), "only one probe at a time");
        b.success();
        assert!(b.check().is_ok());
        b.failure();
        assert!(b.check().is_err(), "a failed probe reopens at once");
    }

    #[tokio::test]
    async fn bucket_spaces_requests_after_the_burst() {
        let b = TokenBucket::new(20.0);
        let t = Instant::now();
        for _ in 0..25 {
            b.acquire().await;
        }
        // 20 from the burst, 5 more at 20/s = 250 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
}
