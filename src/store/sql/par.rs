//! Pushed authorization requests ([`PushedRequests`]): `oauth_par_requests`, one row per
//! `request_uri` (by its hash), used once with one conditional `UPDATE … RETURNING`, so
//! two instances redeeming the same `request_uri` cannot both get it.

use super::backend::{Backend, Col, QueryExt};
use super::SqlStore;
use crate::store::oauth::{PushedRequest, PushedRequests};
use crate::store::{from_ms, ms, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl<DB: Backend> PushedRequests for SqlStore<DB> {
    async fn insert_par(&self, p: &PushedRequest) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO oauth_par_requests (hash, client_id, params, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(p.hash.as_slice())
        .arg(p.client_id.as_str())
        .arg(p.params.as_str())
        .arg(ms(p.created_at))
        .arg(ms(p.expires_at))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn redeem_par(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PushedRequest>> {
        let row = sqlx::query::<DB>(
            "UPDATE oauth_par_requests SET used_at = $1 \
             WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING hash, client_id, params, created_at, expires_at",
        )
        .arg(ms(now))
        .arg(hash)
        .optional(&mut *self.writer().await?)
        .await?;
        row.map(|r| {
            Ok(PushedRequest {
                hash: r.col("hash")?,
                client_id: r.col("client_id")?,
                params: r.col("params")?,
                created_at: from_ms(r.col("created_at")?),
                expires_at: from_ms(r.col("expires_at")?),
            })
        })
        .transpose()
    }
}
