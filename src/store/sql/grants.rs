//! The device grant's and back-channel logout's tables ([`GrantStore`]):
//! `oauth_device_codes` and `oauth_backchannel_outbox`, and [`enqueue_logout`], which the
//! session-ending statements of the other files call inside their transactions.

use super::backend::{Backend, Col, QueryExt};
use super::{commit, uuid_col, SqlStore};
use crate::domain::oauth::Scopes;
use crate::domain::UserId;
use crate::store::grants::{DeviceApproval, DeviceCode, DeviceStatus, GrantStore, PendingLogout};
use crate::store::{from_ms, ms, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const DEVICE_COLS: &str = "device_hash, user_code, client_id, scope, status, interval_secs, \
     last_poll_at, user_id, granted_scope, auth_time, amr, created_at, expires_at";

const OUTBOX_COLS: &str = "session_id, client_id, user_id, uri, id_token_alg, attempts, created_at";

/// Queues the logout token of session `sid` if a client with a back-channel logout URI
/// holds it — inside the transaction `conn` that ends the session. A session already
/// queued stays queued once.
pub(super) async fn enqueue_logout<DB: Backend>(
    conn: &mut DB::Connection,
    sid: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query::<DB>(
        "INSERT INTO oauth_backchannel_outbox \
         (session_id, client_id, user_id, uri, id_token_alg, attempts, next_at, created_at) \
         SELECT os.session_id, os.client_id, s.user_id, c.backchannel_logout_uri, \
         c.id_token_alg, 0, $2, $2 \
         FROM oauth_sessions os JOIN oauth_clients c ON c.client_id = os.client_id \
         JOIN sessions s ON s.id = os.session_id \
         WHERE os.session_id = $1 AND c.backchannel_logout_uri IS NOT NULL \
         ON CONFLICT (session_id) DO NOTHING",
    )
    .arg(sid)
    .arg(ms(now))
    .run(conn)
    .await?;
    Ok(())
}

fn device_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<DeviceCode> {
    let status: String = row.col("status")?;
    let scope: String = row.col("scope")?;
    let user: Option<String> = row.col("user_id")?;
    let approval = match user {
        None => None,
        Some(_) => {
            let granted: Option<String> = row.col("granted_scope")?;
            let auth_time: Option<i64> = row.col("auth_time")?;
            let amr: Option<String> = row.col("amr")?;
            Some(DeviceApproval {
                user_id: UserId(uuid_col::<DB>(row, "user_id")?),
                scope: Scopes::parse(&granted.unwrap_or_default()),
                auth_time: from_ms(auth_time.unwrap_or_default()),
                amr: serde_json::from_str(&amr.unwrap_or_else(|| "[]".into()))
                    .map_err(|e| StoreError::Other(format!("bad amr: {e}")))?,
            })
        }
    };
    let last: Option<i64> = row.col("last_poll_at")?;
    Ok(DeviceCode {
        device_hash: row.col("device_hash")?,
        user_code: row.col("user_code")?,
        client_id: row.col("client_id")?,
        scope: Scopes::parse(&scope),
        status: DeviceStatus::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("bad device status {status:?}")))?,
        interval_secs: row.col("interval_secs")?,
        last_poll_at: last.map(from_ms),
        approval,
        created_at: from_ms(row.col("created_at")?),
        expires_at: from_ms(row.col("expires_at")?),
    })
}

fn logout_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<PendingLogout> {
    Ok(PendingLogout {
        session_id: uuid_col::<DB>(row, "session_id")?,
        client_id: row.col("client_id")?,
        user_id: row.col("user_id")?,
        uri: row.col("uri")?,
        id_token_alg: row.col("id_token_alg")?,
        attempts: row.col("attempts")?,
        created_at: from_ms(row.col("created_at")?),
    })
}

#[async_trait]
impl<DB: Backend> GrantStore for SqlStore<DB> {
    async fn insert_device_code(&self, c: &DeviceCode) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        sqlx::query::<DB>("DELETE FROM oauth_device_codes WHERE expires_at <= $1")
            .arg(ms(c.created_at))
            .run(&mut tx)
            .await?;
        let sql = format!(
            "INSERT INTO oauth_device_codes ({DEVICE_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, NULL, NULL, $7, $8) \
             ON CONFLICT (user_code) DO NOTHING"
        );
        let n = sqlx::query::<DB>(&sql)
            .arg(c.device_hash.as_slice())
            .arg(c.user_code.as_str())
            .arg(c.client_id.as_str())
            .arg(c.scope.to_param())
            .arg(c.status.as_str())
            .arg(c.interval_secs)
            .arg(ms(c.created_at))
            .arg(ms(c.expires_at))
            .run(&mut tx)
            .await?;
        commit(tx).await?;
        Ok(n == 1)
    }

    async fn pending_device_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceCode>> {
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM oauth_device_codes \
             WHERE user_code = $1 AND status = 'pending' AND expires_at > $2"
        );
        let row = sqlx::query::<DB>(&sql)
            .arg(user_code)
            .arg(ms(now))
            .optional(&mut *self.writer().await?)
            .await?;
        row.as_ref().map(device_from_row::<DB>).transpose()
    }

    async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<&DeviceApproval>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let status = if approval.is_some() {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        let n = sqlx::query::<DB>(
            "UPDATE oauth_device_codes SET status = $1, user_id = $2, granted_scope = $3, \
             auth_time = $4, amr = $5 \
             WHERE user_code = $6 AND status = 'pending' AND expires_at > $7",
        )
        .arg(status.as_str())
        .arg(approval.map(|a| a.user_id.0.to_string()))
        .arg(approval.map(|a| a.scope.to_param()))
        .arg(approval.map(|a| ms(a.auth_time)))
        .arg(approval.map(|a| serde_json::to_string(&a.amr).unwrap_or_else(|_| "[]".into())))
        .arg(user_code)
        .arg(ms(now))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }

    async fn poll_device_code(
        &self,
        device_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(DeviceCode, bool)>> {
        let mut tx = self.begin().await?;
        let sql = format!("SELECT {DEVICE_COLS} FROM oauth_device_codes WHERE device_hash = $1");
        let Some(row) = sqlx::query::<DB>(&sql)
            .arg(device_hash)
            .optional(&mut tx)
            .await?
        else {
            return Ok(None);
        };
        let code = device_from_row::<DB>(&row)?;
        let too_fast = code
            .last_poll_at
            .is_some_and(|t| (now - t).num_milliseconds() < code.interval_secs * 1000);
        sqlx::query::<DB>(
            "UPDATE oauth_device_codes SET last_poll_at = $1, interval_secs = $2 \
             WHERE device_hash = $3",
        )
        .arg(ms(now))
        .arg(code.interval_secs + if too_fast { 5 } else { 0 })
        .arg(device_hash)
        .run(&mut tx)
        .await?;
        commit(tx).await?;
        Ok(Some((code, too_fast)))
    }

    async fn use_device_code(&self, device_hash: &[u8]) -> StoreResult<bool> {
        let n = sqlx::query::<DB>(
            "UPDATE oauth_device_codes SET status = 'used' \
             WHERE device_hash = $1 AND status = 'approved'",
        )
        .arg(device_hash)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }

    async fn claim_logouts(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<PendingLogout>> {
        // A read first: an idle instance (nearly always) takes no write lock every tick.
        let due = sqlx::query::<DB>(
            "SELECT session_id FROM oauth_backchannel_outbox WHERE next_at <= $1 \
             AND (claim_until IS NULL OR claim_until <= $1) LIMIT 1",
        )
        .arg(ms(now))
        .optional(&mut *self.reader().await?)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        // The outer condition is checked again on each row as it is updated, so two
        // instances claiming at once never both get a row.
        let sql = format!(
            "UPDATE oauth_backchannel_outbox SET claimed_by = $1, claim_until = $2 \
             WHERE session_id IN (SELECT session_id FROM oauth_backchannel_outbox \
             WHERE next_at <= $3 AND (claim_until IS NULL OR claim_until <= $3) \
             ORDER BY next_at LIMIT $4) \
             AND next_at <= $3 AND (claim_until IS NULL OR claim_until <= $3) \
             RETURNING {OUTBOX_COLS}"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(instance)
            .arg(ms(lease_until))
            .arg(ms(now))
            .arg(limit)
            .all(&mut *self.writer().await?)
            .await?;
        rows.iter().map(logout_from_row::<DB>).collect()
    }

    async fn finish_logout(&self, session_id: Uuid) -> StoreResult<()> {
        sqlx::query::<DB>("DELETE FROM oauth_backchannel_outbox WHERE session_id = $1")
            .arg(session_id.to_string())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn retry_logout(
        &self,
        session_id: Uuid,
        instance: &str,
        attempts: i64,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query::<DB>(
            "UPDATE oauth_backchannel_outbox SET attempts = $1, next_at = $2, \
             claimed_by = NULL, claim_until = NULL WHERE session_id = $3 AND claimed_by = $4",
        )
        .arg(attempts)
        .arg(ms(next_at))
        .arg(session_id.to_string())
        .arg(instance)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn release_logout_claims(&self, instance: &str) -> StoreResult<u64> {
        sqlx::query::<DB>(
            "UPDATE oauth_backchannel_outbox SET claimed_by = NULL, claim_until = NULL \
             WHERE claimed_by = $1",
        )
        .arg(instance)
        .run(&mut *self.writer().await?)
        .await
    }
}
