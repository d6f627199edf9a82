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
        match self.signature_check(headers) {
            Some(mut check) => {
                check.update(raw_body);
                check.verify()
            }
            None => false,
        }
    }

    /// The check of a signed body, fed as the body arrives; None when the request carries no
    /// well-formed signature or no HMAC secret is configured (it cannot be valid: nothing
    /// needs to be read to know it).
    pub fn signature_check(&self, headers: &HeaderMap) -> Option<SignatureCheck> {
        let key = self.hmac_key.as_ref()?;
        let sig = headers.get(SIGNATURE_HEADER)?.to_str().ok()?.trim();
        let hex_sig = sig.strip_prefix("sha256=").unwrap_or(sig);
        let expected = hex::decode(hex_sig).ok()?;
        // An HMAC-SHA256 is 32 bytes; anything else can never verify.
        if expected.len() != 32 {
            return None;
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        Some(SignatureCheck { mac, expected })
    }
}

/// An HMAC-SHA256 computed over a body as it streams in, so that a signed body is never held
/// twice and an unsigned one is refused without being kept.
pub struct SignatureCheck {
    mac: Hmac<Sha256>,
    expected: Vec<u8>,
}

impl SignatureCheck {
    pub fn update(&mut self, chunk: &[u8]) {
        self.mac.update(chunk);
    }

    /// Constant-time comparison with the signature sent.
    pub fn verify(self) -> bool {
        self.mac.verify_slice(&self.expected).is_ok()
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
        // Fed in pieces, as a body arrives.
        let mut check = a.signature_check(&h(SIGNATURE_HEADER, &sig)).unwrap();
        for piece in body.chunks(5) {
            check.update(piece);
        }
        assert!(check.verify());
        // A malformed or short signature is refused before anything is read.
        assert!(a
            .signature_check(&h(SIGNATURE_HEADER, "sha256=abcd"))
            .is_none());
        assert!(Auth::new(Some("correct-horse-battery"), None)
            .signature_check(&h(SIGNATURE_HEADER, &sig))
            .is_none());
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
