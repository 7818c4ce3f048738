//! The SQLite store: one file, WAL, a busy timeout, migrations embedded.
//!
//! Writes go through a pool of exactly one connection, so our own writers queue in
//! process instead of fighting for SQLite's file lock (which would surface as
//! `SQLITE_BUSY` inside deferred transactions); reads use a separate pool and run
//! concurrently thanks to WAL. Another process on the same file (the CLI) waits on the
//! busy timeout.
//!
//! The SQL itself is shared with PostgreSQL (`sql/`); this module owns what differs: the
//! connection setup, the migrations and what SQLite's error codes mean.

use super::sql::{Driver, SqlStore};
use super::{Conflict, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// The store on a SQLite file.
pub type SqliteStore = SqlStore<Sqlite>;

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included: another writer held
/// the file past the busy timeout, or (opening a new file) was setting it up.
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db
        .code()
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6)))
}

impl Driver for Sqlite {
    const SERIALISE_ADMIN_CHANGES: Option<&'static str> = None;
    const SHARE_ROWS: &'static str = "";

    fn map_err(e: sqlx::Error) -> StoreError {
        map_err(e)
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        // The caller may retry.
        sqlx::Error::Database(db) if is_busy(&e) => {
            StoreError::Unavailable(db.message().to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let msg = db.message();
            if msg.contains("users.email") {
                StoreError::Conflict(Conflict::Email)
            } else if msg.contains("users.username") {
                StoreError::Conflict(Conflict::Username)
            } else {
                StoreError::Other(msg.to_string())
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &str) -> anyhow::Result<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let write = open_writer(&opts).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.read_only(true))
            .await?;
        Ok(SqlStore::new(read, write))
    }
}

/// The writer pool, with the migrations run. Processes opening a new file at the same
/// moment contend for it: setting up WAL can fail at once with SQLITE_BUSY, and since
/// sqlx takes no lock for SQLite migrations, two processes can both try one and the
/// second fails ("table users already exists"). Each migration is one transaction, so
/// such a failure leaves nothing behind: the loser tries again, for up to 5 s, and then
/// finds the file set up by the other. Only these failures are retried: a database
/// migrated by a newer version, say, is reported at once.
async fn open_writer(opts: &SqliteConnectOptions) -> anyhow::Result<SqlitePool> {
    use sqlx::migrate::MigrateError;
    let mut attempt = 0;
    loop {
        let result = match SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await
        {
            Ok(pool) => MIGRATOR.run(&pool).await.map(|()| pool).map_err(|e| {
                let contended = matches!(
                    e,
                    MigrateError::Execute(_) | MigrateError::ExecuteMigration(..)
                );
                (anyhow::Error::from(e), contended)
            }),
            Err(e) => {
                let contended = is_busy(&e);
                Err((e.into(), contended))
            }
        };
        match result {
            Ok(pool) => return Ok(pool),
            Err((e, true)) if attempt < 50 => {
                tracing::debug!(error = %e, "database file busy; another process may be setting it up");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
