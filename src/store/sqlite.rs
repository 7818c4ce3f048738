//! The SQLite store: one file, WAL, a busy timeout, migrations embedded.
//!
//! Writes go through a pool of exactly one connection, so our own writers queue in
//! process instead of fighting for SQLite's file lock (which would surface as
//! `SQLITE_BUSY` inside deferred transactions); reads use a separate pool and run
//! concurrently thanks to WAL. Another process on the same file (the CLI) waits on the
//! busy timeout.

use super::*;
use crate::domain::lockout::{AttemptSlot, LockoutPolicy};
use crate::tokens::{JwtAlg, KeyState};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/sqlite");

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included: another writer held
/// the file past the busy timeout, or (opening a new file) was setting it up.
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db
        .code()
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6)))
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
                StoreError::Conflict("email")
            } else if msg.contains("users.username") {
                StoreError::Conflict("username")
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

impl SqliteStore {
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
        Ok(Self { read, write })
    }

    /// Runs the migrations only (`tradeauth migrate`).
    pub async fn migrate(path: &str) -> anyhow::Result<()> {
        Self::open(path).await.map(|_| ())
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

/// SQLite takes the numbered `?N` placeholders as written.
fn q(sql: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(sql)
}

super::sql::impl_sql_store!(SqliteStore, SqliteRow);
