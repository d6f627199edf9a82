//! Where the store lives: a SQLite file (the default) or a PostgreSQL database, as given to
//! `serve --db`. A PostgreSQL URL may carry a password, so it is never shown whole.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A PostgreSQL connection URL (`postgres://` or `postgresql://`). `Display` and `Debug` show it
/// with its password replaced by `***`; only [`PgUrl::expose`] gives it whole (to connect).
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

/// What `--db` accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("the database location is empty")]
    Empty,
    #[error("`{0}`: a PostgreSQL URL starts with postgres:// or postgresql://")]
    NotPostgres(String),
}

const PG_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

impl PgUrl {
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        let s = s.trim();
        if PG_SCHEMES
            .iter()
            .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p))
        {
            Ok(PgUrl(s.to_owned()))
        } else {
            Err(LocationError::NotPostgres(redact(s)))
        }
    }

    /// The URL with its password: for the driver only, never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

impl FromStr for PgUrl {
    type Err = LocationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PgUrl::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for PgUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PgUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl DbLocation {
    /// `postgres://...` or `postgresql://...` is PostgreSQL; `sqlite:PATH` (or `sqlite://PATH`)
    /// and anything else is a SQLite file path.
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Ok(u) = PgUrl::parse(t) {
            return Ok(DbLocation::Postgres(u));
        }
        let path = t
            .strip_prefix("sqlite://")
            .or_else(|| t.strip_prefix("sqlite:"))
            .unwrap_or(t);
        if path.is_empty() {
            return Err(LocationError::Empty);
        }
        Ok(DbLocation::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(p) => write!(f, "{}", p.display()),
            DbLocation::Postgres(u) => u.fmt(f),
        }
    }
}

impl FromStr for DbLocation {
    type Err = LocationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DbLocation::parse(s)
    }
}

/// The URL with the password of its user-info (`user:PASSWORD@`) and any `password=` query
/// parameter replaced by `***`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The authority ends at the first `/`, `?` or `#`; its user-info at its last `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (info, host) = authority.split_at(at);
            match info.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let q: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", q.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_told_from_sqlite_paths() {
        assert!(matches!(
            DbLocation::parse("postgres://u@h/db"),
            Ok(DbLocation::Postgres(_))
        ));
        assert!(matches!(
            DbLocation::parse("PostgreSQL://h/db"),
            Ok(DbLocation::Postgres(_))
        ));
        assert_eq!(
            DbLocation::parse("sqlite:/var/lib/fa.db"),
            Ok(DbLocation::Sqlite("/var/lib/fa.db".into()))
        );
        assert_eq!(
            DbLocation::parse("sqlite:///var/lib/fa.db"),
            Ok(DbLocation::Sqlite("/var/lib/fa.db".into()))
        );
        assert_eq!(
            DbLocation::parse("fa.db"),
            Ok(DbLocation::Sqlite("fa.db".into()))
        );
        assert_eq!(DbLocation::parse("  "), Err(LocationError::Empty));
        assert_eq!(DbLocation::parse("sqlite:"), Err(LocationError::Empty));
    }

    #[test]
    fn passwords_never_show() {
        let u = PgUrl::parse("postgres://fa:s3cr%40t@db.example:5432/fa?sslmode=disable").unwrap();
        for shown in [
            u.to_string(),
            format!("{u:?}"),
            format!("{:?}", DbLocation::Postgres(u.clone())),
        ] {
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(
                shown.contains("fa:***@db.example:5432/fa?sslmode=disable"),
                "{shown}"
            );
        }
        let q = PgUrl::parse("postgresql://fa@h/db?password=hunter2&application_name=x").unwrap();
        assert_eq!(
            q.to_string(),
            "postgresql://fa@h/db?password=***&application_name=x"
        );
        // An `@` in the password (unescaped) still hides all of it.
        let at = PgUrl::parse("postgres://fa:p@ss@h/db").unwrap();
        assert_eq!(at.to_string(), "postgres://fa:***@h/db");
        assert_eq!(
            u.expose(),
            "postgres://fa:s3cr%40t@db.example:5432/fa?sslmode=disable"
        );
    }
}
