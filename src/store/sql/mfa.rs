//! TOTP: the `mfa_*` columns of `users` and the `recovery_codes` table ([`MfaStore`]).

use super::backend::{Backend, Col, QueryExt};
use super::{commit, SqlStore};
use crate::domain::UserId;
use crate::store::{ms, MfaState, MfaStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl<DB: Backend> MfaStore for SqlStore<DB> {
    async fn mfa_state(&self, user: UserId) -> StoreResult<MfaState> {
        let row = sqlx::query::<DB>(
            "SELECT mfa_enabled, mfa_secret, mfa_pending_secret, mfa_last_step FROM users \
             WHERE id = $1",
        )
        .arg(user.0.to_string())
        .optional(&mut *self.writer().await?)
        .await?;
        let Some(row) = row else {
            return Ok(MfaState::default());
        };
        Ok(MfaState {
            enabled: row.col("mfa_enabled")?,
            secret: row.col("mfa_secret")?,
            pending: row.col("mfa_pending_secret")?,
            last_step: row.col("mfa_last_step")?,
        })
    }

    async fn set_mfa_pending(&self, user: UserId, secret: &[u8]) -> StoreResult<()> {
        sqlx::query::<DB>("UPDATE users SET mfa_pending_secret = $1 WHERE id = $2")
            .arg(secret)
            .arg(user.0.to_string())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn enable_mfa(
        &self,
        user: UserId,
        step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let uid = user.0.to_string();
        let n = sqlx::query::<DB>(
            "UPDATE users SET mfa_enabled = TRUE, mfa_secret = mfa_pending_secret, \
             mfa_pending_secret = NULL, mfa_last_step = $1 \
             WHERE id = $2 AND mfa_enabled = FALSE AND mfa_pending_secret IS NOT NULL",
        )
        .arg(step)
        .arg(uid.as_str())
        .run(&mut tx)
        .await?;
        if n != 1 {
            return Ok(false);
        }
        sqlx::query::<DB>("DELETE FROM recovery_codes WHERE user_id = $1")
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        for h in recovery_hashes {
            sqlx::query::<DB>("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .arg(uid.as_str())
                .arg(h.as_slice())
                .run(&mut tx)
                .await?;
        }
        commit(tx).await?;
        Ok(true)
    }

    async fn disable_mfa(&self, user: UserId) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let uid = user.0.to_string();
        sqlx::query::<DB>(
            "UPDATE users SET mfa_enabled = FALSE, mfa_secret = NULL, mfa_pending_secret = NULL, \
             mfa_last_step = 0 WHERE id = $1",
        )
        .arg(uid.as_str())
        .run(&mut tx)
        .await?;
        sqlx::query::<DB>("DELETE FROM recovery_codes WHERE user_id = $1")
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        commit(tx).await
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let n = sqlx::query::<DB>(
            "UPDATE users SET mfa_last_step = $1 WHERE id = $2 AND mfa_last_step < $1",
        )
        .arg(step)
        .arg(user.0.to_string())
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query::<DB>(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 \
             AND used_at IS NULL",
        )
        .arg(ms(now))
        .arg(user.0.to_string())
        .arg(hash)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }
}
