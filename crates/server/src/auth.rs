//! Authentication: a bearer token (also accepted as the password of HTTP Basic auth, which is
//! what Falco's `http_output` sends for a URL like `https://falco:TOKEN@host/`), or an
//! HMAC-SHA256 signature of the raw body for ingest.

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const SIGNATURE_HEADER: &str = "x-falco-analyst-signature";

#[derive(Clone)]
pub struct Auth {
    /// SHA-256 of the token: comparing fixed-size digests keeps the comparison constant-time
    /// whatever the length of what was sent.
    token: Option<[u8; 32]>,
    hmac_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.is_some())
            .field("hmac", &self.hmac_key.is_some())
            .finish()
    }
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Auth {
    pub fn new(token: Option<&str>, hmac_secret: Option<&str>) -> Self {
        Auth {
            token: token
                .filter(|t| !t.is_empty())
                .map(|t| digest(t.as_bytes())),
            hmac_key: hmac_secret
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec()),
        }
    }

    /// No credentials configured (`--insecure-no-auth`): everything passes.
    pub fn disabled(&self) -> bool {
        self.token.is_none() && self.hmac_key.is_none()
    }

    fn presented_secret(headers: &HeaderMap) -> Option<Vec<u8>> {
        let v = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .trim();
        let (scheme, rest) = v.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(rest.as_bytes().to_vec());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let colon = raw.iter().position(|b| *b == b':')?;
            return Some(raw[colon + 1..].to_vec());
        }
        None
    }

    pub fn has_hmac(&self) -> bool {
        self.hmac_key.is_some()
    }

    /// Token check for reading the API (and for ingest without a signature).
    pub fn token_ok(&self, headers: &HeaderMap) -> bool {
        if self.disabled() {
            return true;
        }
        match (&self.token, Self::presented_secret(headers)) {
            (Some(want), Some(got)) => ct_eq(want, &digest(&got)),
            _ => false,
        }
    }

    /// Ingest: the token, or a valid signature of the raw body.
    pub fn ingest_ok(&self, headers: &HeaderMap, raw_body: &[u8]) -> bool {
        if self.token_ok(headers) {
            return true;
        }
        let Some(key) = &self.hmac_key else {
            return false;
        };
        let Some(sig) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let hex_sig = sig.trim().strip_prefix("sha256=").unwrap_or(sig.trim());
        let Ok(bytes) = hex::decode(hex_sig) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false;
        };
        mac.update(raw_body);
        mac.verify_slice(&bytes).is_ok()
    }
}

/// `sha256=<hex>` for a body, as a sender computes it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(name: &'static str, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn bearer_basic_and_signature() {
        let a = Auth::new(Some("correct-horse-battery"), Some("hmac-secret"));
        assert!(a.token_ok(&h("authorization", "Bearer correct-horse-battery")));
        assert!(a.token_ok(&h("authorization", "bearer  correct-horse-battery ")));
        assert!(!a.token_ok(&h("authorization", "Bearer correct-horse-batter")));
        assert!(!a.token_ok(&HeaderMap::new()));
        let basic = base64::engine::general_purpose::STANDARD.encode("falco:correct-horse-battery");
        assert!(a.token_ok(&h("authorization", &format!("Basic {basic}"))));
        let wrong = base64::engine::general_purpose::STANDARD.encode("correct-horse-battery:x");
        assert!(!a.token_ok(&h("authorization", &format!("Basic {wrong}"))));

        let body = br#"{"rule":"r","priority":"Debug"}"#;
        let sig = sign("hmac-secret", body);
        assert!(a.ingest_ok(&h(SIGNATURE_HEADER, &sig), body));
        assert!(!a.ingest_ok(&h(SIGNATURE_HEADER, &sig), b"{}"));
        assert!(!a.ingest_ok(&h(SIGNATURE_HEADER, &sign("other", body)), body));
        assert!(!a.ingest_ok(&h(SIGNATURE_HEADER, "sha256=zz"), body));
        // A signature is for ingest only; reading needs the token.
        assert!(!a.token_ok(&h(SIGNATURE_HEADER, &sig)));
    }

    #[test]
    fn no_credentials_means_disabled() {
        let a = Auth::new(None, Some(""));
        assert!(a.disabled());
        assert!(a.token_ok(&HeaderMap::new()));
    }
}
