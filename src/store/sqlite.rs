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

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes included: another writer
        // held the file past the busy timeout. The caller may retry.
        sqlx::Error::Database(db)
            if db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6)) =>
        {
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
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
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

/// SQLite takes the numbered `?N` placeholders as written.
fn q(sql: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(sql)
}

super::sql::impl_sql_store!(SqliteStore, SqliteRow);
