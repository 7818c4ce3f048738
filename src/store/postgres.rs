//! The PostgreSQL store: durable data shared by any number of instances. Same SQL as
//! SQLite (see `sql.rs`), `$N` placeholders, its own migrations.
//!
//! Concurrency comes from the database: rotation is a compare-and-swap `UPDATE`, lockout
//! counting one atomic upsert, so both stay exact across instances. The pool's acquire
//! timeout is short, so a lost database answers 503 quickly instead of hanging requests;
//! the pool reconnects by itself when the database returns.

use super::*;
use crate::domain::lockout::{AttemptSlot, LockoutPolicy};
use crate::tokens::{JwtAlg, KeyState};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/migrations/postgres");

pub struct PostgresStore {
    read: PgPool,
    write: PgPool,
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let what = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            if what.contains("email") {
                StoreError::Conflict("email")
            } else if what.contains("username") {
                StoreError::Conflict("username")
            } else {
                StoreError::Other(db.message().to_string())
            }
        }
        // Connection exceptions (08xxx), the server shutting down or a terminated backend
        // (57Pxx), too many connections (53300): the database is away, not the request wrong.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300") =>
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

/// Rewrites SQLite placeholders as PostgreSQL's `$N`: `?N` keeps its number; a bare `?`
/// takes the largest number so far plus one, as SQLite numbers it.
fn q(sql: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut largest = 0u32;
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let n = match digits.parse::<u32>() {
            Ok(n) => n,
            Err(_) => largest + 1,
        };
        largest = largest.max(n);
        out.push('$');
        out.push_str(&n.to_string());
    }
    std::borrow::Cow::Owned(out)
}

impl PostgresStore {
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
        Ok(Self {
            read: pool.clone(),
            write: pool,
        })
    }
}

super::sql::impl_sql_store!(PostgresStore, PgRow);

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(super::q("a = ?1 AND b = ?12"), "a = $1 AND b = $12");
        assert_eq!(
            super::q("a = ? AND b = ? AND c = ?"),
            "a = $1 AND b = $2 AND c = $3"
        );
        assert_eq!(super::q("a = ?3 OR b = ?"), "a = $3 OR b = $4");
    }
}
