//! Who may use the console: people from the configuration file (`[[ui.users]]`), their
//! roles, and the identity provider behind the login form. Passwords are Argon2id hashes made
//! by `falco-analyst hash-password`; nobody is a user unless configured.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a person may do. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page.
    Viewer,
    /// Also changes triage (status, assignee, notes).
    Triager,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Triager => "triager",
            Role::Admin => "admin",
        }
    }

    pub fn can_triage(self) -> bool {
        self >= Role::Triager
    }
}

/// One `[[ui.users]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub role: Role,
    /// `$argon2id$...`, from `falco-analyst hash-password`.
    pub password_hash: String,
}

/// Someone the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Deliberately says neither which part was wrong.
    #[error("wrong user name or password")]
    Invalid,
    #[error("this sign-in method is not available")]
    Unsupported,
}

#[derive(Debug, thiserror::Error)]
pub enum UserConfigError {
    #[error("ui.users: a user has an empty name")]
    EmptyName,
    #[error("ui.users: `{0}` is listed twice")]
    Duplicate(String),
    #[error("ui.users: the password_hash of `{0}` is not an Argon2id hash (make one with `falco-analyst hash-password`)")]
    BadHash(String),
}

/// Where identities come from. The session layer only needs an [`Identity`]; a password
/// provider answers [`IdentityProvider::verify_password`], a single sign-on provider (OIDC)
/// would send the browser to [`IdentityProvider::authorize_url`] and turn the code it comes
/// back with into an identity in [`IdentityProvider::complete`].
pub trait IdentityProvider: Send + Sync {
    /// Whether anyone can sign in at all (no users: the console explains how to add one).
    fn has_users(&self) -> bool;

    /// Check a user name and password. Blocking (Argon2 is slow on purpose): call it off the
    /// async runtime.
    fn verify_password(&self, user: &str, password: &str) -> Result<Identity, LoginError>;

    /// Where to send the browser to sign in elsewhere, with `state` to check on return.
    fn authorize_url(&self, state: &str) -> Option<String> {
        let _ = state;
        None
    }

    /// The identity for the code an external provider returned.
    fn complete(&self, code: &str, state: &str) -> Result<Identity, LoginError> {
        let _ = (code, state);
        Err(LoginError::Unsupported)
    }
}

/// Users from the configuration file, with Argon2id password hashes.
pub struct ConfigUsers {
    users: HashMap<String, (Role, String)>,
    /// Verified against when the user does not exist, so an unknown name costs as long as a
    /// wrong password and does not show which names exist.
    decoy: String,
}

impl std::fmt::Debug for ConfigUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigUsers")
            .field("users", &self.users.len())
            .finish()
    }
}

impl ConfigUsers {
    pub fn new(list: &[UserConfig]) -> Result<Self, UserConfigError> {
        let mut users = HashMap::new();
        for u in list {
            let name = u.name.trim();
            if name.is_empty() {
                return Err(UserConfigError::EmptyName);
            }
            let ok = PasswordHash::new(&u.password_hash)
                .is_ok_and(|h| h.algorithm.as_str() == "argon2id");
            if !ok {
                return Err(UserConfigError::BadHash(name.to_string()));
            }
            if users
                .insert(name.to_string(), (u.role, u.password_hash.clone()))
                .is_some()
            {
                return Err(UserConfigError::Duplicate(name.to_string()));
            }
        }
        let decoy = hash_password("decoy password, never a user's").unwrap_or_default();
        Ok(ConfigUsers { users, decoy })
    }
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

impl IdentityProvider for ConfigUsers {
    fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    fn verify_password(&self, user: &str, password: &str) -> Result<Identity, LoginError> {
        match self.users.get(user.trim()) {
            Some((role, hash)) if verify(password, hash) => Ok(Identity {
                name: user.trim().to_string(),
                role: *role,
            }),
            Some(_) => Err(LoginError::Invalid),
            None => {
                let _ = verify(password, &self.decoy);
                Err(LoginError::Invalid)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("hashing the password failed: {0}")]
pub struct HashError(String);

/// An Argon2id hash (PHC string, default parameters: 19 MiB, 2 passes) with a random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_config_is_checked() {
        let h = hash_password("s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert_ne!(h, hash_password("s3cret pass").unwrap(), "salted");
        let users = ConfigUsers::new(&[UserConfig {
            name: "alice".into(),
            role: Role::Triager,
            password_hash: h.clone(),
        }])
        .unwrap();
        assert!(users.has_users());
        let id = users.verify_password("alice", "s3cret pass").unwrap();
        assert_eq!(id.role, Role::Triager);
        assert!(users.verify_password("alice", "s3cret pas").is_err());
        assert!(users.verify_password("bob", "s3cret pass").is_err());
        let dup = UserConfig {
            name: "alice".into(),
            role: Role::Viewer,
            password_hash: h.clone(),
        };
        assert!(matches!(
            ConfigUsers::new(&[dup.clone(), dup]),
            Err(UserConfigError::Duplicate(_))
        ));
        let plain = UserConfig {
            name: "eve".into(),
            role: Role::Admin,
            password_hash: "hunter2".into(),
        };
        assert!(matches!(
            ConfigUsers::new(&[plain]),
            Err(UserConfigError::BadHash(_))
        ));
        assert!(Role::Admin.can_triage() && !Role::Viewer.can_triage());
    }
}
