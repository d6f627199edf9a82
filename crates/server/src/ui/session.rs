//! Console sessions, kept in memory on the server (a restart signs everyone out): a random
//! token in an HttpOnly, SameSite=Strict cookie (Secure under TLS), an idle and an absolute
//! expiry, and a CSRF token per session that every state change must carry. Also the login
//! rate limit per client address and per user name.

use super::identity::{Identity, Role};
use axum::http::{header, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "fa_session";

/// One signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    /// Sent back in a form field or the `X-CSRF-Token` header with every state change.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Sessions are found by the SHA-256 of their token: the map never holds a usable cookie.
fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time comparison of two secrets of any length (compared as digests).
pub fn secret_eq(a: &str, b: &str) -> bool {
    let (x, y) = (key(a), key(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

pub struct SessionStore {
    map: Mutex<HashMap<[u8; 32], Session>>,
    pub idle: Duration,
    pub absolute: Duration,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        SessionStore {
            map: Mutex::new(HashMap::new()),
            idle,
            absolute,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A new session for `who`; returns the cookie token and the session.
    pub fn create(&self, who: &Identity) -> (String, Session) {
        let now = Instant::now();
        let token = random_token();
        let s = Session {
            user: who.name.clone(),
            role: who.role,
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        let mut m = self.lock();
        // Expired sessions go whenever one is created: the map stays as small as the live set.
        m.retain(|_, s| self.alive(s, now));
        m.insert(key(&token), s.clone());
        (token, s)
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.idle && now.duration_since(s.created) < self.absolute
    }

    /// The live session for a token (its idle timer restarts), or `None`.
    pub fn get(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut m = self.lock();
        let k = key(token);
        let s = m.get_mut(&k)?;
        if !self.alive(s, now) {
            m.remove(&k);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(&key(token));
    }
}

/// The session token from the request's cookies.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session, or (token `None`) one that deletes it.
pub fn set_cookie(token: Option<&str>, secure: bool, max_age: Duration) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(t) => format!(
            "{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            max_age.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// At most `max` failed logins per client address and per user name within `window`.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    max: usize,
    window: Duration,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter")
            .field("max", &self.max)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Keys kept at most; beyond it the oldest entries are forgotten first.
const MAX_KEYS: usize = 100_000;

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> Self {
        LoginLimiter {
            failures: Mutex::new(HashMap::new()),
            max: max.max(1),
            window,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        match self.failures.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn keys(ip: &str, user: &str) -> [String; 2] {
        [format!("ip:{ip}"), format!("user:{}", user.trim())]
    }

    /// `Some(wait)` when this address or this user name must wait before trying again.
    pub fn blocked(&self, ip: &str, user: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut m = self.lock();
        let mut wait = None;
        for k in Self::keys(ip, user) {
            if let Some(q) = m.get_mut(&k) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= self.max {
                    let oldest = q.front().copied().unwrap_or(now);
                    let w = self.window.saturating_sub(now.duration_since(oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait
    }

    pub fn failed(&self, ip: &str, user: &str) {
        let now = Instant::now();
        let mut m = self.lock();
        if m.len() >= MAX_KEYS {
            let window = self.window;
            m.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        for k in Self::keys(ip, user) {
            let q = m.entry(k).or_default();
            q.push_back(now);
            while q.len() > self.max {
                q.pop_front();
            }
        }
    }

    /// A successful login clears the user's failures (not the address's).
    pub fn succeeded(&self, user: &str) {
        self.lock().remove(&format!("user:{}", user.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn who() -> Identity {
        Identity {
            name: "alice".into(),
            role: Role::Triager,
        }
    }

    #[test]
    fn sessions_expire_when_idle_or_too_old() {
        let s = SessionStore::new(Duration::from_millis(80), Duration::from_secs(60));
        let (t, sess) = s.create(&who());
        assert_eq!(s.get(&t).unwrap().csrf, sess.csrf);
        assert!(s.get("not-a-token").is_none());
        std::thread::sleep(Duration::from_millis(120));
        assert!(s.get(&t).is_none(), "idle");

        let s = SessionStore::new(Duration::from_secs(60), Duration::from_millis(80));
        let (t, _) = s.create(&who());
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            assert!(s.get(&t).is_some());
        }
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&t).is_none(), "absolute");

        let s = SessionStore::new(Duration::from_secs(60), Duration::from_secs(60));
        let (t, _) = s.create(&who());
        s.remove(&t);
        assert!(s.get(&t).is_none(), "logged out");
    }

    #[test]
    fn cookie_round_trip_and_flags() {
        let c = set_cookie(Some("abc"), true, Duration::from_secs(43200));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!set_cookie(Some("abc"), false, Duration::from_secs(1)).contains("Secure"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; fa_session=abc123; x=1"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("abc123"));
        assert!(secret_eq("a", "a") && !secret_eq("a", "b"));
    }

    #[test]
    fn five_failures_block_the_address_and_the_user() {
        let l = LoginLimiter::new(5, Duration::from_secs(300));
        for _ in 0..4 {
            l.failed("10.0.0.1", "alice");
        }
        assert!(l.blocked("10.0.0.1", "alice").is_none());
        l.failed("10.0.0.1", "alice");
        assert!(l.blocked("10.0.0.1", "bob").is_some(), "same address");
        assert!(l.blocked("10.0.0.2", "alice").is_some(), "same user");
        assert!(l.blocked("10.0.0.2", "bob").is_none());
        let l = LoginLimiter::new(2, Duration::from_millis(50));
        l.failed("a", "u");
        l.failed("a", "u");
        assert!(l.blocked("a", "u").is_some());
        std::thread::sleep(Duration::from_millis(70));
        assert!(l.blocked("a", "u").is_none(), "the window passed");
    }
}
