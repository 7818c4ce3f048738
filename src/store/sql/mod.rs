//! The SQL store, written once for SQLite and PostgreSQL.
//!
//! [`SqlStore<DB>`] holds a read pool and a write pool; `sqlite.rs` and `postgres.rs` open
//! them and name the two instances (`SqliteStore`, `PostgresStore`). Each concern trait
//! of the store has its own file here, implemented once, generic over the driver:
//!
//! | file | trait |
//! |---|---|
//! | `users.rs` | [`UserStore`](crate::store::UserStore) |
//! | `sessions.rs` | [`SessionStore`](crate::store::SessionStore) |
//! | `revocations.rs` | [`RevocationStore`](crate::store::RevocationStore) |
//! | `keys.rs` | [`KeyStore`](crate::store::KeyStore) |
//! | `lockout.rs` | [`LockoutStore`](crate::store::LockoutStore) |
//! | `audit.rs` | [`AuditStore`](crate::store::AuditStore) |
//! | `api_keys.rs` | [`ApiKeyStore`](crate::store::ApiKeyStore) |
//! | `mail_tokens.rs` | [`MailTokenStore`](crate::store::MailTokenStore) |
//! | `mfa.rs` | [`MfaStore`](crate::store::MfaStore) |
//! | `idempotency.rs` | [`IdempotencyStore`](crate::store::IdempotencyStore) |
//! | `oauth.rs` | [`OAuthStore`](crate::store::OAuthStore) |
//! | `par.rs` | [`PushedRequests`](crate::store::oauth::PushedRequests) |
//! | `passkeys.rs` | [`PasskeyStore`](crate::store::PasskeyStore) |
//! | `grants.rs` | [`GrantStore`](crate::store::GrantStore) |
//! | `mail_outbox.rs` | [`MailOutbox`](crate::store::MailOutbox) |
//!
//! Every statement is one SQL text both databases accept: `$N` placeholders (sqlx's
//! SQLite driver binds them by number too), `TRUE`/`FALSE`, `ON CONFLICT`, `RETURNING`,
//! ids as text and times as epoch milliseconds. Where the two really differ (connection
//! setup, migrations, error codes) the backend module owns its version.
//!
//! Why generic functions and not one impl per backend: the two impls would be the same
//! code twice, statement by statement, and drift. Why not a macro: rustfmt and
//! rust-analyzer do not see inside one. The price of generics is sqlx's driver bounds;
//! `backend.rs` bundles them in one trait, so the files here only say `DB: Backend`
//! (and name the driver in `sqlx::query::<DB>`, which inference cannot find alone).

mod api_keys;
mod audit;
pub(super) mod backend;
mod grants;
mod idempotency;
mod keys;
mod lockout;
mod mail_outbox;
mod mail_tokens;
mod mfa;
mod oauth;
mod par;
mod passkeys;
mod revocations;
mod sessions;
mod users;

use crate::store::{ms, Store, StoreError, StoreResult};
use async_trait::async_trait;
pub use backend::{Backend, Driver};
use backend::{Col, QueryExt};
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{Pool, Transaction};
use uuid::Uuid;

/// The durable store on a SQL database (`DB` is `sqlx::Sqlite` or `sqlx::Postgres`).
pub struct SqlStore<DB: Backend> {
    /// Reads that may lag a write of this process by nothing but its commit.
    read: Pool<DB>,
    /// Writes, and reads that must see the latest write (on SQLite, one connection).
    write: Pool<DB>,
}

impl<DB: Backend> SqlStore<DB> {
    /// A store on these pools (the backend modules open them).
    pub(super) fn new(read: Pool<DB>, write: Pool<DB>) -> Self {
        Self { read, write }
    }

    /// A connection of the read pool.
    async fn reader(&self) -> StoreResult<PoolConnection<DB>> {
        self.read.acquire().await.map_err(DB::map_err)
    }

    /// A connection of the write pool.
    async fn writer(&self) -> StoreResult<PoolConnection<DB>> {
        self.write.acquire().await.map_err(DB::map_err)
    }

    /// A transaction on the write pool.
    async fn begin(&self) -> StoreResult<Transaction<'static, DB>> {
        self.write.begin().await.map_err(DB::map_err)
    }
}

/// Commits `tx`, errors mapped.
async fn commit<DB: Backend>(tx: Transaction<'static, DB>) -> StoreResult<()> {
    tx.commit().await.map_err(DB::map_err)
}

/// Parses a uuid stored as text.
fn parse_uuid(s: &str, what: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Other(format!("bad uuid in {what}: {e}")))
}

/// The uuid in text column `column`.
fn uuid_col<DB: Backend>(row: &DB::Row, column: &str) -> StoreResult<Uuid> {
    let s: String = row.col(column)?;
    parse_uuid(&s, column)
}

/// `s` as a literal inside a `LIKE … ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[async_trait]
impl<DB: Backend> Store for SqlStore<DB> {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query::<DB>("SELECT 1")
            .run(&mut *self.reader().await?)
            .await?;
        Ok(())
    }

    async fn prune(&self, now: DateTime<Utc>, audit_before: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query::<DB>("DELETE FROM revocations WHERE expires_at <= $1")
            .arg(ms(now))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>(
            "DELETE FROM sessions WHERE absolute_expires_at <= $1 OR refresh_expires_at <= $1",
        )
        .arg(ms(now))
        .run(&mut tx)
        .await?;
        sqlx::query::<DB>("DELETE FROM audit_events WHERE at < $1")
            .arg(ms(audit_before))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>(
            "DELETE FROM login_attempts WHERE (locked_until IS NULL OR locked_until < $1) \
             AND window_start < $1 - 86400000",
        )
        .arg(ms(now))
        .run(&mut tx)
        .await?;
        sqlx::query::<DB>("DELETE FROM login_failure_identifiers WHERE at < $1 - 86400000")
            .arg(ms(now))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>("DELETE FROM webauthn_challenges WHERE expires_at <= $1")
            .arg(ms(now))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>("DELETE FROM idempotency_keys WHERE created_at < $1")
            .arg(ms(now - chrono::Duration::hours(24)))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>("DELETE FROM oauth_codes WHERE expires_at <= $1")
            .arg(ms(now))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>("DELETE FROM oauth_par_requests WHERE expires_at <= $1")
            .arg(ms(now))
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>("DELETE FROM mail_outbox WHERE sent_at < $1")
            .arg(ms(now - crate::store::mail::SENT_RETENTION))
            .run(&mut tx)
            .await?;
        commit(tx).await
    }
}
