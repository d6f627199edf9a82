//! The store tests run on each backend: SQLite in a temporary directory, and PostgreSQL at
//! `FA_TEST_POSTGRES_URL` in a schema of its own (random name, dropped at the end).

#![allow(dead_code)]

use fa_store::{PgOptions, PgStore, PgUrl, SqliteOptions, SqliteStore, Store};
use std::path::PathBuf;

pub const PG_ENV: &str = "FA_TEST_POSTGRES_URL";

pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres(PgSchema),
}

/// A schema created for one test, dropped when it ends (even when the test fails).
pub struct PgSchema {
    /// The server, as given in the environment.
    pub admin: String,
    pub name: String,
    /// The URL a store connects with: `search_path` set to the schema.
    pub url: PgUrl,
}

/// A name no other test (or run) uses: the schema is private to one test.
fn random_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("fa_test_{:016x}", h.finish())
}

/// `url` with `search_path` set to `schema` for every connection made with it.
pub fn url_in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

impl PgSchema {
    /// A fresh schema, or `None` (with a notice) when `FA_TEST_POSTGRES_URL` is unset.
    pub fn create(test: &str) -> Option<PgSchema> {
        let Some(admin) = std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty()) else {
            eprintln!("{PG_ENV} is not set: skipping the PostgreSQL run of `{test}`");
            return None;
        };
        let name = random_name();
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL does not answer: {e}"));
        c.batch_execute(&format!("CREATE SCHEMA {name}")).unwrap();
        let url = PgUrl::parse(&url_in_schema(&admin, &name)).unwrap();
        Some(PgSchema { admin, name, url })
    }

    /// A direct connection inside the schema (to look at what the store wrote).
    pub fn raw(&self) -> postgres::Client {
        postgres::Client::connect(self.url.expose(), postgres::NoTls).unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().unwrap())
    }

    pub fn postgres(test: &str) -> Option<TestDb> {
        PgSchema::create(test).map(TestDb::Postgres)
    }

    fn sqlite_path(&self) -> Option<PathBuf> {
        match self {
            TestDb::Sqlite(d) => Some(d.path().join("db.sqlite")),
            TestDb::Postgres(_) => None,
        }
    }

    /// The store for writing (created and migrated if needed).
    pub fn open(&self) -> Box<dyn Store> {
        match self {
            TestDb::Sqlite(d) => Box::new(
                SqliteStore::open(&d.path().join("db.sqlite"), &SqliteOptions::default()).unwrap(),
            ),
            TestDb::Postgres(p) => Box::new(PgStore::open(&p.url, &PgOptions::default()).unwrap()),
        }
    }

    /// A read-only store (after [`TestDb::open`]).
    pub fn open_reader(&self) -> Box<dyn Store> {
        match self {
            TestDb::Sqlite(d) => Box::new(
                SqliteStore::open_reader(&d.path().join("db.sqlite"), &SqliteOptions::default())
                    .unwrap(),
            ),
            TestDb::Postgres(p) => {
                Box::new(PgStore::open_reader(&p.url, &PgOptions::default()).unwrap())
            }
        }
    }

    /// The schema version the database is at, and the latest this program knows.
    pub fn schema_versions(&self) -> (i64, i64) {
        match self {
            TestDb::Sqlite(d) => {
                let s = SqliteStore::open_reader(
                    &d.path().join("db.sqlite"),
                    &SqliteOptions::default(),
                )
                .unwrap();
                (
                    s.schema_version().unwrap(),
                    fa_store::MIGRATIONS.last().unwrap().0,
                )
            }
            TestDb::Postgres(p) => {
                let s = PgStore::open_reader(&p.url, &PgOptions::default()).unwrap();
                (
                    s.schema_version().unwrap(),
                    fa_store::PG_MIGRATIONS.last().unwrap().0,
                )
            }
        }
    }
}

/// `#[test]` functions running each named `fn(&TestDb)` on SQLite (`sqlite::name`) and on
/// PostgreSQL (`postgres::name`; skipped with a notice when `FA_TEST_POSTGRES_URL` is unset).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::backends::TestDb::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = super::backends::TestDb::postgres(stringify!($name)) {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}
