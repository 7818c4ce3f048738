//! Login-attempt counters: the `login_attempts` table ([`LockoutStore`]; the policy is
//! `domain::lockout`'s).
//!
//! Every counter is one row per key, changed by one upsert per event, so the count is
//! exact however many attempts arrive at once and on however many instances.

use super::backend::{Backend, Col, QueryExt};
use super::{like_escape, SqlStore};
use crate::domain::lockout::{AttemptSlot, LockoutPolicy, RESERVATION_TTL};
use crate::store::{from_ms, ms, LockoutState, LockoutStore, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;

/// In the login-attempt upserts (`a`, the row as it was; `$2` now, `$3` the window):
/// a live lock, and "the window or the lock has passed: start over".
const LOCKED: &str = "COALESCE(a.locked_until, 0) > $2";
const RESET: &str =
    "((a.locked_until IS NOT NULL AND a.locked_until <= $2) OR a.window_start <= $2 - $3)";

/// Reserves an attempt: `$1` key, `$2` now, `$3` window, `$4` threshold, `$5` the
/// reservation's time to live, `$6` this attempt's token, `$7` the lock's duration.
///
/// Every SET expression sees the row as it was before this attempt. With F = the failures
/// that count, P = the live reservations: reserve when F + P < threshold, marking the row
/// with this attempt's token, which tells afterwards whether it did. F at or over the
/// threshold with no lock (the threshold was lowered since) locks.
static RESERVE: LazyLock<String> = LazyLock::new(|| {
    let f = format!("(CASE WHEN {RESET} THEN 0 ELSE a.failures END)");
    let p = "(CASE WHEN a.pending_at <= $2 - $5 THEN 0 ELSE a.pending END)";
    let take = format!("(NOT ({LOCKED}) AND {f} + {p} < $4)");
    format!(
        "INSERT INTO login_attempts AS a \
           (key, failures, window_start, locked_until, pending, pending_at, reservation) \
         VALUES ($1, 0, $2, NULL, 1, $2, $6) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN {LOCKED} THEN a.failures ELSE {f} END, \
           window_start = CASE WHEN {LOCKED} THEN a.window_start \
             WHEN {RESET} THEN $2 ELSE a.window_start END, \
           locked_until = CASE WHEN {LOCKED} THEN a.locked_until \
             WHEN {f} >= $4 THEN $2 + $7 ELSE NULL END, \
           pending = CASE WHEN {take} THEN {p} + 1 WHEN {LOCKED} THEN a.pending ELSE {p} END, \
           pending_at = CASE WHEN {take} THEN $2 ELSE a.pending_at END, \
           reservation = CASE WHEN {take} THEN $6 ELSE a.reservation END \
         RETURNING locked_until, reservation"
    )
});

/// Records a failure: `$1` key, `$2` now, `$3` window, `$4` threshold, `$5` the lock's
/// duration. Upserted: the row may be gone (an admin unlocked the account meanwhile), and
/// the failure still counts.
static FAIL: LazyLock<String> = LazyLock::new(|| {
    // A first failure (none counted: a fresh row, a success or an unlock before) opens a
    // new window.
    let n = format!("(CASE WHEN {RESET} OR a.failures = 0 THEN 1 ELSE a.failures + 1 END)");
    format!(
        "INSERT INTO login_attempts AS a \
           (key, failures, window_start, locked_until, pending, pending_at) \
         VALUES ($1, 1, $2, CASE WHEN 1 >= $4 THEN $2 + $5 ELSE NULL END, 0, 0) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN {LOCKED} THEN a.failures ELSE {n} END, \
           window_start = CASE WHEN {LOCKED} THEN a.window_start \
             WHEN {RESET} OR a.failures = 0 THEN $2 ELSE a.window_start END, \
           locked_until = CASE WHEN {LOCKED} THEN a.locked_until \
             WHEN {n} >= $4 THEN $2 + $5 ELSE NULL END, \
           pending = CASE WHEN a.pending > 0 THEN a.pending - 1 ELSE 0 END \
         RETURNING failures, locked_until"
    )
});

/// The pattern of the per-IP counters under an account's `prefix` (`prefix|ip`).
fn ip_counters(prefix: &str) -> String {
    format!("{}|%", like_escape(prefix))
}

#[async_trait]
impl<DB: Backend> LockoutStore for SqlStore<DB> {
    async fn reserve_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<AttemptSlot> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let row = sqlx::query::<DB>(&RESERVE)
            .arg(key)
            .arg(ms(now))
            .arg(policy.window.num_milliseconds())
            .arg(policy.threshold as i64)
            .arg(RESERVATION_TTL.num_milliseconds())
            .arg(token.as_str())
            .arg(policy.duration.num_milliseconds())
            .one(&mut *self.writer().await?)
            .await?;
        let locked: Option<i64> = row.col("locked_until")?;
        let reservation: Option<String> = row.col("reservation")?;
        Ok(match locked.map(from_ms) {
            Some(until) if until > now => AttemptSlot::Locked { until },
            _ if reservation.as_deref() == Some(token.as_str()) => AttemptSlot::Allowed,
            _ => AttemptSlot::Busy,
        })
    }

    async fn peek_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<AttemptSlot> {
        let row = sqlx::query::<DB>(
            "SELECT failures, window_start, locked_until, pending, pending_at \
             FROM login_attempts WHERE key = $1",
        )
        .arg(key)
        .optional(&mut *self.reader().await?)
        .await?;
        let Some(row) = row else {
            return Ok(AttemptSlot::Allowed);
        };
        let now_ms = ms(now);
        let failures: i64 = row.col("failures")?;
        let window_start: i64 = row.col("window_start")?;
        let locked: Option<i64> = row.col("locked_until")?;
        let pending: i64 = row.col("pending")?;
        let pending_at: i64 = row.col("pending_at")?;
        // The same arithmetic as RESERVE's (LOCKED, RESET, F and P).
        if let Some(until) = locked.filter(|&l| l > now_ms) {
            return Ok(AttemptSlot::Locked {
                until: from_ms(until),
            });
        }
        let reset = locked.is_some() || window_start <= now_ms - policy.window.num_milliseconds();
        let f = if reset { 0 } else { failures };
        let p = if pending_at <= now_ms - RESERVATION_TTL.num_milliseconds() {
            0
        } else {
            pending
        };
        let threshold = policy.threshold as i64;
        // F at the threshold without a lock: RESERVE locks; let it.
        Ok(if f >= threshold || f + p < threshold {
            AttemptSlot::Allowed
        } else {
            AttemptSlot::Busy
        })
    }

    async fn fail_attempt(
        &self,
        key: &str,
        identifier: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        // Noted first, so an attempt that sees the lock this failure may set also sees
        // which identifiers it answers.
        sqlx::query::<DB>(
            "INSERT INTO login_failure_identifiers (key, identifier, at) VALUES ($1, $2, $3) \
             ON CONFLICT (key, identifier) DO UPDATE SET at = $3",
        )
        .arg(key)
        .arg(identifier)
        .arg(ms(now))
        .run(&mut *self.writer().await?)
        .await?;
        let until = now + policy.duration;
        let row = sqlx::query::<DB>(&FAIL)
            .arg(key)
            .arg(ms(now))
            .arg(policy.window.num_milliseconds())
            .arg(policy.threshold as i64)
            .arg(policy.duration.num_milliseconds())
            .one(&mut *self.writer().await?)
            .await?;
        let failures: i64 = row.col("failures")?;
        let locked: Option<i64> = row.col("locked_until")?;
        // This failure locked the account when it set the lock that is there now.
        let locked_now = failures >= policy.threshold as i64 && locked == Some(ms(until));
        Ok(locked_now.then(|| from_ms(ms(until))))
    }

    async fn failed_with(&self, key: &str, identifier: &str) -> StoreResult<bool> {
        // A failure counts from its window's start on (`FAIL` restarts the window at the
        // first failure after a reset, a success or an unlock).
        let row = sqlx::query::<DB>(
            "SELECT COUNT(*) AS n FROM login_failure_identifiers i \
             JOIN login_attempts a ON a.key = i.key \
             WHERE i.key = $1 AND i.identifier = $2 AND i.at >= a.window_start",
        )
        .arg(key)
        .arg(identifier)
        .one(&mut *self.reader().await?)
        .await?;
        Ok(row.col("n").map(|n: i64| n)? > 0)
    }

    async fn succeed_attempt(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>(
            "UPDATE login_attempts SET failures = 0, window_start = $2, locked_until = NULL, \
             pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END WHERE key = $1",
        )
        .arg(key)
        .arg(ms(now))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn release_attempt(&self, key: &str) -> StoreResult<()> {
        sqlx::query::<DB>(
            "UPDATE login_attempts SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 \
             END WHERE key = $1",
        )
        .arg(key)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn clear_attempts(&self, prefix: &str) -> StoreResult<()> {
        // The failures and the lock go; attempts in flight stay reserved, so an unlock in
        // the middle of a flood does not admit a second round of guesses beside them.
        sqlx::query::<DB>(
            "UPDATE login_attempts SET failures = 0, locked_until = NULL \
             WHERE key = $1 OR key LIKE $2 ESCAPE '\\'",
        )
        .arg(prefix)
        .arg(ip_counters(prefix))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn lockout_state(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> StoreResult<LockoutState> {
        // Failures count while their window or their lock lasts, as `reserve_attempt`
        // sees them: a lifted lock or an old window is a count of zero.
        let row = sqlx::query::<DB>(
            "SELECT CAST(COALESCE(SUM(CASE \
               WHEN locked_until > $3 THEN failures \
               WHEN locked_until IS NULL AND window_start > $3 - $4 THEN failures \
               ELSE 0 END), 0) AS BIGINT) AS failures, MAX(locked_until) AS locked_until \
             FROM login_attempts WHERE key = $1 OR key LIKE $2 ESCAPE '\\'",
        )
        .arg(prefix)
        .arg(ip_counters(prefix))
        .arg(ms(now))
        .arg(window.num_milliseconds())
        .one(&mut *self.reader().await?)
        .await?;
        let failures: i64 = row.col("failures")?;
        let locked: Option<i64> = row.col("locked_until")?;
        Ok(LockoutState {
            failed_login_count: failures as u32,
            locked_until: locked.map(from_ms).filter(|t| *t > now),
        })
    }
}
