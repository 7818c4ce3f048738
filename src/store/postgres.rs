//! The PostgreSQL store: durable data shared by any number of instances. Same SQL as
//! SQLite (`sql/`); this module owns what differs: the connection setup, the
//! migrations and what PostgreSQL's error codes mean.
//!
//! Concurrency comes from the database: rotation is a compare-and-swap `UPDATE`, lockout
//! counting one atomic upsert, so both stay exact across instances. The pool's acquire
//! timeout is short, so a lost database answers 503 quickly instead of hanging requests;
//! the pool reconnects by itself when the database returns.

use super::sql::{Driver, SqlStore};
use super::{Conflict, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Postgres;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/postgres");

/// The store on a PostgreSQL database (one pool serves reads and writes).
pub type PostgresStore = SqlStore<Postgres>;

impl Driver for Postgres {
    /// A transaction-scoped advisory lock (an arbitrary, fixed key): held until commit, so
    /// the next change's count of the other admins sees this one.
    const SERIALISE_ADMIN_CHANGES: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(7004212001)");
    const SHARE_ROWS: &'static str = " FOR SHARE";

    fn map_err(e: sqlx::Error) -> StoreError {
        map_err(e)
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let what = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            if what.contains("email") {
                StoreError::Conflict(Conflict::Email)
            } else if what.contains("username") {
                StoreError::Conflict(Conflict::Username)
            } else {
                StoreError::Other(db.message().to_string())
            }
        }
        // Connection exceptions (08xxx), the server shutting down or a terminated backend
        // (57Pxx), insufficient resources (53xxx), a serialization failure or deadlock
        // (40001, 40P01), a read-only transaction right after a failover (25006), a
        // statement timeout (57014): the database is away or busy, not the request wrong;
        // the caller may retry.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("57P")
                    || c.starts_with("53")
                    || matches!(&*c, "40001" | "40P01" | "25006" | "57014")
            }) =>
        {
            StoreError::Unavailable(db.message().to_string())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

impl SqlStore<Postgres> {
    /// Connects and runs the migrations (concurrent starts are serialised by sqlx's
    /// migration lock).
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore::new(pool.clone(), pool))
    }
}
