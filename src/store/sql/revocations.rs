//! Revocation records: the `revocations` table ([`RevocationStore`]), read by every
//! instance into its in-process revocation list.

use super::backend::{Backend, Col, QueryExt};
use super::{parse_uuid, uuid_col, SqlStore};
use crate::store::{
    from_ms, ms, RevocationRow, RevocationStore, RevokeTarget, Revoked, StoreResult,
    REVOCATION_PAGE,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;
use uuid::Uuid;

/// Revokes a whole session (`sid`) until the given time: written in the same transaction as
/// whatever ended the session (logout, password change, admin action, OAuth revocation).
pub(super) const REVOKE_SID: &str =
    "INSERT INTO revocations (kind, value, expires_at, created_at) VALUES ('sid', $1, $2, $3)";

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
        sqlx::query::<DB>(REVOKE_SID)
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
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>> {
        let sql = format!(
            "SELECT seq, kind, value, expires_at, created_at FROM revocations \
             WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT {REVOCATION_PAGE}"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(seq)
            .arg(ms(now))
            .all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(revocation_from_row::<DB>).collect()
    }

    async fn revocations_in(
        &self,
        ranges: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let within = (0..ranges.len())
            .map(|i| format!("seq BETWEEN ${} AND ${}", 2 * i + 2, 2 * i + 3))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT seq, kind, value, expires_at, created_at FROM revocations \
             WHERE expires_at > $1 AND ({within}) ORDER BY seq"
        );
        let mut query = sqlx::query::<DB>(&sql).arg(ms(now));
        for (from, to) in ranges {
            query = query.arg(*from).arg(*to);
        }
        let rows = query.all(&mut *self.reader().await?).await?;
        rows.iter().map(revocation_from_row::<DB>).collect()
    }
}

/// Ends sessions inside `tx`: marks them revoked, writes their `sid` revocation records and
/// queues the back-channel logouts they call for.
/// The ids of the sessions ended (those already revoked are left as they were).
pub(super) async fn end_sessions_in<DB: Backend>(
    tx: &mut Transaction<'static, DB>,
    target: RevokeTarget,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let rows = match target {
        RevokeTarget::Session(id) => {
            sqlx::query::<DB>(
                "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
                 RETURNING id",
            )
            .arg(ms(now))
            .arg(id.to_string())
            .all(&mut **tx)
            .await?
        }
        RevokeTarget::User { user, except } => {
            sqlx::query::<DB>(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 \
                 AND revoked_at IS NULL AND ($3 IS NULL OR id <> $3) RETURNING id",
            )
            .arg(ms(now))
            .arg(user.0.to_string())
            .arg(except.map(|e| e.to_string()))
            .all(&mut **tx)
            .await?
        }
    };
    record_ended(tx, &rows, now, until).await
}

/// For sessions just marked revoked inside `tx` (`rows`: their `id`s, as `RETURNING id`
/// gives them): writes their `sid` revocation records and queues the back-channel logouts
/// they call for, in the same transaction. Their ids.
pub(super) async fn record_ended<DB: Backend>(
    tx: &mut Transaction<'static, DB>,
    rows: &[DB::Row],
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.col("id"))
        .collect::<StoreResult<_>>()?;
    for id in &ids {
        sqlx::query::<DB>(REVOKE_SID)
            .arg(id.as_str())
            .arg(ms(until))
            .arg(ms(now))
            .run(&mut **tx)
            .await?;
        // A session of an OAuth client with a back-channel logout URI: its logout token
        // is queued in the same transaction.
        super::grants::enqueue_logout::<DB>(&mut **tx, id, now).await?;
    }
    ids.iter().map(|s| parse_uuid(s, "id")).collect()
}

fn revocation_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<RevocationRow> {
    let kind: String = row.col("kind")?;
    let id = uuid_col::<DB>(row, "value")?;
    Ok(RevocationRow {
        seq: row.col("seq")?,
        what: if kind == "jti" {
            Revoked::Jti(id)
        } else {
            Revoked::Sid(id)
        },
        expires_at: from_ms(row.col("expires_at")?),
        created_at: from_ms(row.col("created_at")?),
    })
}
