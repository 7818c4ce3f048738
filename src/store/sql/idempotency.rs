//! `Idempotency-Key` records: the `idempotency_keys` table ([`IdempotencyStore`]).
//! A key is claimed with `status = 0` and holds the first response once finished.

use super::backend::{Backend, Col, QueryExt};
use super::{commit, SqlStore};
use crate::store::{ms, IdempotencyState, IdempotencyStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl<DB: Backend> IdempotencyStore for SqlStore<DB> {
    async fn idempotency_begin(
        &self,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        let mut tx = self.begin().await?;
        // A replay lives 24 h; a claim still in flight after a minute belongs to a request
        // that will never finish (its instance stopped or died): the key is free again.
        sqlx::query::<DB>(
            "DELETE FROM idempotency_keys WHERE key = $1 \
             AND (created_at < $2 OR (status = 0 AND created_at < $3))",
        )
        .arg(key)
        .arg(ms(now - chrono::Duration::hours(24)))
        .arg(ms(now - chrono::Duration::minutes(1)))
        .run(&mut tx)
        .await?;
        let claimed = sqlx::query::<DB>(
            "INSERT INTO idempotency_keys (key, request_hash, status, body, created_at) \
             VALUES ($1, $2, 0, '', $3) ON CONFLICT (key) DO NOTHING",
        )
        .arg(key)
        .arg(request_hash)
        .arg(ms(now))
        .run(&mut tx)
        .await?
            == 1;
        let state = if claimed {
            IdempotencyState::Claimed
        } else {
            let row = sqlx::query::<DB>(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE key = $1",
            )
            .arg(key)
            .one(&mut tx)
            .await?;
            let request_hash: String = row.col("request_hash")?;
            let status: i64 = row.col("status")?;
            if status == 0 {
                IdempotencyState::InFlight { request_hash }
            } else {
                IdempotencyState::Done {
                    request_hash,
                    status: status as u16,
                    body: row.col("body")?,
                }
            }
        };
        commit(tx).await?;
        Ok(state)
    }

    async fn idempotency_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        sqlx::query::<DB>("UPDATE idempotency_keys SET status = $1, body = $2 WHERE key = $3")
            .arg(status as i64)
            .arg(body)
            .arg(key)
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn idempotency_abandon(&self, key: &str) -> StoreResult<()> {
        sqlx::query::<DB>("DELETE FROM idempotency_keys WHERE key = $1 AND status = 0")
            .arg(key)
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }
}
