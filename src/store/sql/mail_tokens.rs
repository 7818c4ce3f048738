//! Single-use mail tokens (address verification, password reset): the `mail_tokens`
//! table ([`MailTokenStore`]). Only the token's hash is stored.

use super::backend::{Backend, Col, QueryExt};
use super::{commit, SqlStore};
use crate::domain::UserId;
use crate::store::{ms, MailPurpose, MailTokenStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;
use uuid::Uuid;

/// The user id in a `user_id` column, if it is a uuid.
fn user_of<DB: Backend>(row: Option<DB::Row>) -> StoreResult<Option<UserId>> {
    let id: Option<String> = row.map(|r| r.col("user_id")).transpose()?;
    Ok(id.and_then(|s| Uuid::parse_str(&s).ok()).map(UserId))
}

#[async_trait]
impl<DB: Backend> MailTokenStore for SqlStore<DB> {
    async fn insert_mail_token(
        &self,
        hash: &[u8],
        user: UserId,
        purpose: MailPurpose,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO mail_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(hash)
        .arg(user.0.to_string())
        .arg(purpose.as_str())
        .arg(ms(now))
        .arg(ms(expires_at))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn peek_mail_token(
        &self,
        hash: &[u8],
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<UserId>> {
        let row = sqlx::query::<DB>(
            "SELECT user_id FROM mail_tokens WHERE token_hash = $1 AND purpose = $2 \
             AND used_at IS NULL AND expires_at > $3",
        )
        .arg(hash)
        .arg(purpose.as_str())
        .arg(ms(now))
        .optional(&mut *self.writer().await?)
        .await?;
        user_of::<DB>(row)
    }

    async fn consume_mail_token(
        &self,
        hash: &[u8],
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<UserId>> {
        let mut tx = self.begin().await?;
        let row = consume_in(&mut tx, hash, purpose, now).await?;
        commit(tx).await?;
        user_of::<DB>(row)
    }
}

/// Uses a live token inside `tx`; every other live token of the same user and purpose dies
/// with it. The token's row (`user_id`), or `None` if it was not live.
pub(super) async fn consume_in<DB: Backend>(
    tx: &mut Transaction<'static, DB>,
    hash: &[u8],
    purpose: MailPurpose,
    now: DateTime<Utc>,
) -> StoreResult<Option<DB::Row>> {
    let row = sqlx::query::<DB>(
        "UPDATE mail_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 \
         AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .arg(ms(now))
    .arg(hash)
    .arg(purpose.as_str())
    .optional(&mut **tx)
    .await?;
    let user: Option<String> = row.as_ref().map(|r| r.col("user_id")).transpose()?;
    if let Some(user) = &user {
        sqlx::query::<DB>(
            "UPDATE mail_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 \
             AND used_at IS NULL",
        )
        .arg(ms(now))
        .arg(user.as_str())
        .arg(purpose.as_str())
        .run(&mut **tx)
        .await?;
    }
    Ok(row)
}
