//! Revocation records: the `revocations` table ([`RevocationStore`]), read by every
//! instance into its in-process revocation list.

use super::backend::{Backend, Col, QueryExt};
use super::{uuid_col, SqlStore};
use crate::store::{from_ms, ms, RevocationRow, RevocationStore, Revoked, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[async_trait]
impl<DB: Backend> RevocationStore for SqlStore<DB> {
    async fn revoke_jti(&self, jti: Uuid, until: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO revocations (kind, value, expires_at, created_at) \
             VALUES ('jti', $1, $2, $3)",
        )
        .arg(jti.to_string())
        .arg(ms(until))
        .arg(ms(Utc::now()))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn revoke_sid(&self, sid: Uuid, until: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>(super::sessions::REVOKE_SID)
            .arg(sid.to_string())
            .arg(ms(until))
            .arg(ms(Utc::now()))
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn revocations_since(
        &self,
        seq: i64,
        recent: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>> {
        let rows = sqlx::query::<DB>(
            "SELECT seq, kind, value, expires_at, created_at FROM revocations \
             WHERE (seq > $1 OR created_at > $2) AND expires_at > $3 ORDER BY seq LIMIT 10000",
        )
        .arg(seq)
        .arg(ms(recent))
        .arg(ms(now))
        .all(&mut *self.reader().await?)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.col("kind")?;
            let id = uuid_col::<DB>(row, "value")?;
            out.push(RevocationRow {
                seq: row.col("seq")?,
                what: if kind == "jti" {
                    Revoked::Jti(id)
                } else {
                    Revoked::Sid(id)
                },
                expires_at: from_ms(row.col("expires_at")?),
                created_at: from_ms(row.col("created_at")?),
            });
        }
        Ok(out)
    }
}
