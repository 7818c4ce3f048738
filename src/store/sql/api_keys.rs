//! API keys: the `api_keys` table ([`ApiKeyStore`]). Only the secret's hash is stored.

use super::backend::{Backend, Col, QueryExt};
use super::users::{user_from_prefixed, USER_COLS};
use super::{uuid_col, SqlStore};
use crate::domain::{Tier, User, UserId};
use crate::store::{from_ms, ms, ApiKeyRecord, ApiKeyStore, Page, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;
use uuid::Uuid;

/// The columns [`api_key_from_row`] reads (the table is aliased `k`).
const KEY_COLS: &str = "k.id, k.user_id, k.public_id, k.secret_hash, k.name, k.tier, \
     k.created_at, k.expires_at, k.allowed_ips, k.last_used_at, k.revoked_at, k.algorithm, \
     k.public_key, k.sealed_secret";

/// The key with public id `$1` and its owner (the user's columns aliased `u_*`).
static KEY_WITH_OWNER: LazyLock<String> = LazyLock::new(|| {
    let user_cols = USER_COLS
        .split(',')
        .map(|c| format!("u.{c} AS u_{c}", c = c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {KEY_COLS}, {user_cols} FROM api_keys k JOIN users u ON u.id = k.user_id \
         WHERE k.public_id = $1"
    )
});

/// A key from the columns of [`KEY_COLS`].
fn api_key_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<ApiKeyRecord> {
    let opt = |c: &str| -> StoreResult<Option<DateTime<Utc>>> {
        let v: Option<i64> = row.col(c)?;
        Ok(v.map(from_ms))
    };
    let ips: String = row.col("allowed_ips")?;
    let tier: i64 = row.col("tier")?;
    Ok(ApiKeyRecord {
        id: uuid_col::<DB>(row, "id")?,
        user_id: UserId(uuid_col::<DB>(row, "user_id")?),
        public_id: row.col("public_id")?,
        secret_hash: row.col("secret_hash")?,
        name: row.col("name")?,
        tier: Tier::new(tier).map_err(|e| StoreError::Other(e.to_string()))?,
        created_at: from_ms(row.col("created_at")?),
        expires_at: opt("expires_at")?,
        allowed_ips: serde_json::from_str(&ips).map_err(|e| StoreError::Other(e.to_string()))?,
        last_used_at: opt("last_used_at")?,
        revoked_at: opt("revoked_at")?,
        algorithm: row.col("algorithm")?,
        public_key: row.col("public_key")?,
        sealed_secret: row.col("sealed_secret")?,
    })
}

#[async_trait]
impl<DB: Backend> ApiKeyStore for SqlStore<DB> {
    async fn insert_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        let ips = serde_json::to_string(&k.allowed_ips).unwrap_or_else(|_| "[]".into());
        sqlx::query::<DB>(
            "INSERT INTO api_keys (id, user_id, public_id, secret_hash, name, tier, created_at, \
             expires_at, allowed_ips, algorithm, public_key, sealed_secret) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .arg(k.id.to_string())
        .arg(k.user_id.0.to_string())
        .arg(k.public_id.as_str())
        .arg(k.secret_hash.as_slice())
        .arg(k.name.as_str())
        .arg(k.tier.get() as i64)
        .arg(ms(k.created_at))
        .arg(k.expires_at.map(ms))
        .arg(ips)
        .arg(k.algorithm.as_str())
        .arg(k.public_key.as_deref())
        .arg(k.sealed_secret.as_deref())
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn api_key_with_owner(
        &self,
        public_id: &str,
    ) -> StoreResult<Option<(ApiKeyRecord, User)>> {
        let row = sqlx::query::<DB>(&KEY_WITH_OWNER)
            .arg(public_id)
            .optional(&mut *self.reader().await?)
            .await?;
        row.as_ref()
            .map(|r| {
                Ok((
                    api_key_from_row::<DB>(r)?,
                    user_from_prefixed::<DB>(r, "u_")?,
                ))
            })
            .transpose()
    }

    async fn list_api_keys(&self, user: UserId, page: Page) -> StoreResult<Vec<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k WHERE k.user_id = $1 AND k.revoked_at IS NULL \
             AND ($2 IS NULL OR k.id < $2) ORDER BY k.id DESC LIMIT $3"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(user.0.to_string())
            .arg(page.after.map(|u| u.to_string()))
            .arg(page.limit as i64)
            .all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(api_key_from_row::<DB>).collect()
    }

    async fn revoke_api_key(
        &self,
        user: UserId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query::<DB>(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 \
             AND revoked_at IS NULL",
        )
        .arg(ms(now))
        .arg(id.to_string())
        .arg(user.0.to_string())
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }

    async fn touch_api_key(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        older_than: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query::<DB>(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .arg(ms(now))
        .arg(id.to_string())
        .arg(ms(older_than))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }
}
