//! Sessions: the `sessions` table ([`SessionStore`]), and the `sid` revocations recorded
//! with every revoked session.

use super::backend::{Backend, Col, QueryExt};
use super::revocations::end_sessions_in;
use super::users::{user_from_prefixed, USER_COLS};
use super::{commit, uuid_col, SqlStore};
use crate::domain::{Session, User, UserId};
use crate::store::{from_ms, ms, Page, RevokeTarget, SessionStore, SignInGuard, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;
use uuid::Uuid;

/// The columns [`session_from_row`] reads.
const SESSION_COLS: &str = "id, user_id, generation, remember_me, created_at, last_used_at, \
     rotated_at, refresh_expires_at, absolute_expires_at, revoked_at, ip, user_agent";

/// A session from the columns of [`SESSION_COLS`].
fn session_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<Session> {
    let t = |c: &str| -> StoreResult<DateTime<Utc>> { Ok(from_ms(row.col(c)?)) };
    let opt = |c: &str| -> StoreResult<Option<DateTime<Utc>>> {
        let v: Option<i64> = row.col(c)?;
        Ok(v.map(from_ms))
    };
    Ok(Session {
        id: uuid_col::<DB>(row, "id")?,
        user_id: UserId(uuid_col::<DB>(row, "user_id")?),
        generation: row.col("generation")?,
        remember_me: row.col("remember_me")?,
        created_at: t("created_at")?,
        last_used_at: t("last_used_at")?,
        rotated_at: opt("rotated_at")?,
        refresh_expires_at: t("refresh_expires_at")?,
        absolute_expires_at: t("absolute_expires_at")?,
        revoked_at: opt("revoked_at")?,
        ip: row.col("ip")?,
        user_agent: row.col("user_agent")?,
    })
}

/// The session `$1` and its user: the columns of `SESSION_COLS` and `USER_COLS`, the
/// user's aliased `u_*`.
static SESSION_WITH_USER: LazyLock<String> = LazyLock::new(|| {
    let cols = |list: &str, f: &dyn Fn(&str) -> String| {
        list.split(',')
            .map(|c| f(c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "SELECT {}, {}, \
         (SELECT COUNT(*) FROM oauth_sessions o WHERE o.session_id = s.id) AS oauth_links \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        cols(SESSION_COLS, &|c| format!("s.{c}")),
        cols(USER_COLS, &|c| format!("u.{c} AS u_{c}")),
    )
});

#[async_trait]
impl<DB: Backend> SessionStore for SqlStore<DB> {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO sessions (id, user_id, generation, remember_me, created_at, \
             last_used_at, rotated_at, refresh_expires_at, absolute_expires_at, revoked_at, ip, \
             user_agent, authenticated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $5)",
        )
        .arg(s.id.to_string())
        .arg(s.user_id.0.to_string())
        .arg(s.generation)
        .arg(s.remember_me)
        .arg(ms(s.created_at))
        .arg(ms(s.last_used_at))
        .arg(s.rotated_at.map(ms))
        .arg(ms(s.refresh_expires_at))
        .arg(ms(s.absolute_expires_at))
        .arg(s.revoked_at.map(ms))
        .arg(s.ip.as_deref())
        .arg(s.user_agent.as_deref())
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn insert_signed_in_session(
        &self,
        s: &Session,
        guard: &SignInGuard,
    ) -> StoreResult<bool> {
        // The account's row is share-locked (PostgreSQL): a change to it under way is
        // waited for and judged as committed, and a change that starts after this insert
        // waits for it, then ends this session too. (Without the lock, READ COMMITTED lets
        // each statement miss the other.)
        let sql = format!(
            "INSERT INTO sessions (id, user_id, generation, remember_me, created_at, \
             last_used_at, rotated_at, refresh_expires_at, absolute_expires_at, revoked_at, ip, \
             user_agent, authenticated_at, amr) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $5, $15 \
             WHERE EXISTS (SELECT 1 FROM users WHERE id = $2 AND is_active = TRUE \
               AND tier = $13 AND ($14 IS NULL OR password_hash = $14){})",
            DB::SHARE_ROWS
        );
        let inserted = sqlx::query::<DB>(&sql)
            .arg(s.id.to_string())
            .arg(s.user_id.0.to_string())
            .arg(s.generation)
            .arg(s.remember_me)
            .arg(ms(s.created_at))
            .arg(ms(s.last_used_at))
            .arg(s.rotated_at.map(ms))
            .arg(ms(s.refresh_expires_at))
            .arg(ms(s.absolute_expires_at))
            .arg(s.revoked_at.map(ms))
            .arg(s.ip.as_deref())
            .arg(s.user_agent.as_deref())
            .arg(guard.tier.get() as i64)
            .arg(guard.password_hash.as_deref())
            .arg(serde_json::to_string(&guard.amr).unwrap_or_else(|_| "[]".into()))
            .run(&mut *self.writer().await?)
            .await?;
        Ok(inserted == 1)
    }

    async fn session(&self, id: Uuid) -> StoreResult<Option<Session>> {
        // Read through the writer: a refresh must see the latest generation, including a
        // rotation that committed a moment ago.
        let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1");
        let row = sqlx::query::<DB>(&sql)
            .arg(id.to_string())
            .optional(&mut *self.writer().await?)
            .await?;
        row.as_ref().map(session_from_row::<DB>).transpose()
    }

    async fn session_with_user(&self, id: Uuid) -> StoreResult<Option<(Session, User, bool)>> {
        // One round trip for both rows, on the read pool: the writer (SQLite has one
        // connection) is left to the rotation. A read never sees less than what was
        // committed before it began, and a rotation that commits after it loses nothing:
        // `rotate_session` is a compare-and-swap, and its loser re-reads.
        let row = sqlx::query::<DB>(&SESSION_WITH_USER)
            .arg(id.to_string())
            .optional(&mut *self.reader().await?)
            .await?;
        row.as_ref()
            .map(|r| {
                let links: i64 = r.col("oauth_links")?;
                Ok((
                    session_from_row::<DB>(r)?,
                    user_from_prefixed::<DB>(r, "u_")?,
                    links > 0,
                ))
            })
            .transpose()
    }

    async fn rotate_session(
        &self,
        id: Uuid,
        from: i64,
        now: DateTime<Utc>,
        refresh_expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query::<DB>(
            "UPDATE sessions SET generation = generation + 1, rotated_at = $1, \
             last_used_at = $1, refresh_expires_at = $2 \
             WHERE id = $3 AND generation = $4 AND revoked_at IS NULL",
        )
        .arg(ms(now))
        .arg(ms(refresh_expires_at))
        .arg(id.to_string())
        .arg(from)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }

    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .arg(ms(now))
            .arg(id.to_string())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn revoke_sessions(
        &self,
        target: RevokeTarget,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.begin().await?;
        let ids = end_sessions_in(&mut tx, target, now, until).await?;
        commit(tx).await?;
        Ok(ids)
    }

    async fn list_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: Page,
    ) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND refresh_expires_at > $2 AND absolute_expires_at > $2 \
             AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(user.0.to_string())
            .arg(ms(now))
            .arg(page.after.map(|u| u.to_string()))
            .arg(page.limit as i64)
            .all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(session_from_row::<DB>).collect()
    }

    async fn count_live_sessions(&self, now: DateTime<Utc>) -> StoreResult<i64> {
        sqlx::query::<DB>(
            "SELECT COUNT(*) AS n FROM sessions WHERE revoked_at IS NULL \
             AND refresh_expires_at > $1 AND absolute_expires_at > $1",
        )
        .arg(ms(now))
        .one(&mut *self.reader().await?)
        .await?
        .col("n")
    }

    async fn session_authenticated_at(&self, id: Uuid) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query::<DB>(
            "SELECT COALESCE(authenticated_at, created_at) AS at FROM sessions WHERE id = $1",
        )
        .arg(id.to_string())
        .optional(&mut *self.writer().await?)
        .await?;
        row.map(|r| -> StoreResult<DateTime<Utc>> {
            let at: i64 = r.col("at")?;
            Ok(from_ms(at))
        })
        .transpose()
    }

    async fn session_amr(&self, id: Uuid) -> StoreResult<Option<Vec<String>>> {
        let row = sqlx::query::<DB>("SELECT amr FROM sessions WHERE id = $1")
            .arg(id.to_string())
            .optional(&mut *self.reader().await?)
            .await?;
        let text: Option<String> = match row {
            Some(r) => r.col("amr")?,
            None => None,
        };
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn mark_session_authenticated(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>("UPDATE sessions SET authenticated_at = $1 WHERE id = $2")
            .arg(ms(at))
            .arg(id.to_string())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }
}
