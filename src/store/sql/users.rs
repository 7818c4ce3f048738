//! Accounts: the `users` table ([`UserStore`]).

use super::backend::{Backend, Col, QueryExt};
use super::mail_tokens::consume_in;
use super::revocations::{end_sessions_in, REVOKE_SID};
use super::{commit, like_escape, parse_uuid, uuid_col, SqlStore};
use crate::domain::{Email, FullName, Tier, User, UserId, Username};
use crate::store::{
    from_ms, ms, Conflict, EndSessions, MailPurpose, NewUser, Page, RevokeTarget, StoreError,
    StoreResult, UserPatch, UserQuery, UserStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Transaction;
use uuid::Uuid;

/// The columns [`user_from_row`] reads.
pub(super) const USER_COLS: &str = "id, email, username, full_name, tier, is_active, \
     is_verified, mfa_enabled, is_bootstrap, created_at, last_login_at";

/// A user from the columns of [`USER_COLS`].
fn user_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<User> {
    user_from_prefixed::<DB>(row, "")
}

/// A user from columns named `{prefix}{column}` (joined reads alias them).
pub(super) fn user_from_prefixed<DB: Backend>(row: &DB::Row, prefix: &str) -> StoreResult<User> {
    let c = |name: &'static str| -> std::borrow::Cow<'static, str> {
        if prefix.is_empty() {
            name.into()
        } else {
            format!("{prefix}{name}").into()
        }
    };
    let tier: i64 = row.col(&c("tier"))?;
    let full_name: Option<String> = row.col(&c("full_name"))?;
    let last: Option<i64> = row.col(&c("last_login_at"))?;
    Ok(User {
        id: UserId(uuid_col::<DB>(row, &c("id"))?),
        email: Email::from_trusted(row.col(&c("email"))?),
        username: Username::from_trusted(row.col(&c("username"))?),
        full_name: full_name.map(FullName::from_trusted),
        tier: Tier::new(tier).map_err(|e| StoreError::Other(e.to_string()))?,
        is_active: row.col(&c("is_active"))?,
        is_verified: row.col(&c("is_verified"))?,
        mfa_enabled: row.col(&c("mfa_enabled"))?,
        is_bootstrap: row.col(&c("is_bootstrap"))?,
        created_at: from_ms(row.col(&c("created_at"))?),
        last_login_at: last.map(from_ms),
    })
}

#[async_trait]
impl<DB: Backend> UserStore for SqlStore<DB> {
    async fn insert_user(&self, u: &NewUser) -> StoreResult<User> {
        let sql = format!(
            "INSERT INTO users (id, email, username, full_name, password_hash, tier, \
             is_verified, is_bootstrap, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {USER_COLS}"
        );
        let row = sqlx::query::<DB>(&sql)
            .arg(u.id.0.to_string())
            .arg(u.email.as_str())
            .arg(u.username.as_str())
            .arg(u.full_name.as_ref().map(|f| f.as_str()))
            .arg(u.password_hash.as_str())
            .arg(u.tier.get() as i64)
            .arg(u.is_verified)
            .arg(u.is_bootstrap)
            .arg(ms(u.created_at))
            .one(&mut *self.writer().await?)
            .await?;
        user_from_row::<DB>(&row)
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row = sqlx::query::<DB>(&sql)
            .arg(id.0.to_string())
            .optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(user_from_row::<DB>).transpose()
    }

    async fn user_by_login(&self, identifier: &str) -> StoreResult<Option<User>> {
        let ident = identifier.trim().to_lowercase();
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE username = $1 OR email = $1 \
             ORDER BY (username = $1) DESC LIMIT 1"
        );
        let row = sqlx::query::<DB>(&sql)
            .arg(ident)
            .optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(user_from_row::<DB>).transpose()
    }

    async fn username_taken(&self, username: &Username) -> StoreResult<bool> {
        let row = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM users WHERE username = $1")
            .arg(username.as_str())
            .one(&mut *self.reader().await?)
            .await?;
        Ok(row.col("n").map(|n: i64| n)? > 0)
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let row = sqlx::query::<DB>("SELECT password_hash FROM users WHERE id = $1")
            .arg(id.0.to_string())
            .optional(&mut *self.reader().await?)
            .await?;
        row.map(|r| r.col("password_hash")).transpose()
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        end: Option<EndSessions>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.begin().await?;
        sqlx::query::<DB>("UPDATE users SET password_hash = $1 WHERE id = $2")
            .arg(hash)
            .arg(id.0.to_string())
            .run(&mut tx)
            .await?;
        let ended = match end {
            Some(end) => end_user_sessions(&mut tx, id, end).await?,
            None => Vec::new(),
        };
        commit(tx).await?;
        Ok(ended)
    }

    async fn rehash_password(&self, id: UserId, old: &str, new: &str) -> StoreResult<bool> {
        let changed = sqlx::query::<DB>(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
        )
        .arg(new)
        .arg(id.0.to_string())
        .arg(old)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(changed == 1)
    }

    async fn reset_password(
        &self,
        token: &[u8],
        user: UserId,
        hash: &str,
        end: EndSessions,
    ) -> StoreResult<Option<Vec<Uuid>>> {
        let mut tx = self.begin().await?;
        let used = consume_in(&mut tx, token, MailPurpose::Reset, end.now).await?;
        let owner: Option<String> = used.as_ref().map(|r| r.col("user_id")).transpose()?;
        if owner.as_deref() != Some(user.0.to_string().as_str()) {
            // Not live (or not this user's): dropping the transaction undoes the use.
            return Ok(None);
        }
        sqlx::query::<DB>("UPDATE users SET password_hash = $1 WHERE id = $2")
            .arg(hash)
            .arg(user.0.to_string())
            .run(&mut tx)
            .await?;
        let ended = end_user_sessions(&mut tx, user, end).await?;
        commit(tx).await?;
        Ok(Some(ended))
    }

    async fn update_user(
        &self,
        id: UserId,
        p: &UserPatch,
    ) -> StoreResult<Option<(User, Vec<Uuid>)>> {
        let sql = format!(
            "UPDATE users SET \
               email = COALESCE($1, email), \
               username = COALESCE($2, username), \
               full_name = CASE WHEN $3 THEN $4 ELSE full_name END, \
               tier = COALESCE($5, tier), \
               is_active = COALESCE($6, is_active), \
               is_verified = COALESCE($7, is_verified) \
             WHERE id = $8 AND ($9 = FALSE OR (SELECT COUNT(*) FROM users \
               WHERE tier = 4 AND is_active = TRUE AND id <> $8) > 0) RETURNING {USER_COLS}"
        );
        let full_name = p.full_name.as_ref().map(|f| f.as_ref().map(|f| f.as_str()));
        let mut tx = self.begin().await?;
        if p.keep_an_admin {
            if let Some(lock) = DB::SERIALISE_ADMIN_CHANGES {
                sqlx::query::<DB>(lock).optional(&mut tx).await?;
            }
        }
        // The row as this transaction first sees it, to judge whether the change lowers it.
        // A no-op write rather than a read: it takes the row's lock (PostgreSQL) or the
        // database's write lock (SQLite, where a read first could not upgrade to a write
        // while another writer waits) before anything is judged.
        let before = match p.end_sessions {
            Some(_) => sqlx::query::<DB>(
                "UPDATE users SET tier = tier WHERE id = $1 RETURNING tier, is_active",
            )
            .arg(id.0.to_string())
            .optional(&mut tx)
            .await?
            .map(|r| -> StoreResult<(i64, bool)> { Ok((r.col("tier")?, r.col("is_active")?)) })
            .transpose()?,
            None => None,
        };
        let row = sqlx::query::<DB>(&sql)
            .arg(p.email.as_ref().map(|e| e.as_str()))
            .arg(p.username.as_ref().map(|u| u.as_str()))
            .arg(full_name.is_some())
            .arg(full_name.flatten())
            .arg(p.tier.map(|t| t.get() as i64))
            .arg(p.is_active)
            .arg(p.is_verified)
            .arg(id.0.to_string())
            .arg(p.keep_an_admin)
            .optional(&mut tx)
            .await?;
        let Some(row) = row else {
            drop(tx);
            return match p.keep_an_admin && self.user_by_id(id).await?.is_some() {
                true => Err(StoreError::Conflict(Conflict::LastAdmin)),
                false => Ok(None),
            };
        };
        let user = user_from_row::<DB>(&row)?;
        let lowered = before.is_some_and(|(tier, active)| {
            (active && !user.is_active) || (user.tier.get() as i64) < tier
        });
        let ended = match p.end_sessions {
            Some(end) if lowered => end_user_sessions(&mut tx, id, end).await?,
            _ => Vec::new(),
        };
        commit(tx).await?;
        Ok(Some((user, ended)))
    }

    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .arg(ms(at))
            .arg(id.0.to_string())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn list_users(&self, query: &UserQuery, page: Page) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE \
             ($1 IS NULL OR email LIKE $1 ESCAPE '\\' OR username LIKE $1 ESCAPE '\\' \
               OR lower(coalesce(full_name, '')) LIKE $1 ESCAPE '\\') \
             AND ($2 IS NULL OR tier = $2) AND ($3 IS NULL OR is_active = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let pattern = (query.q.as_ref()).map(|s| format!("%{}%", like_escape(&s.to_lowercase())));
        let rows = sqlx::query::<DB>(&sql)
            .arg(pattern)
            .arg(query.tier.map(|t| t.get() as i64))
            .arg(query.active)
            .arg(page.after.map(|u| u.to_string()))
            .arg(page.limit as i64)
            .all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(user_from_row::<DB>).collect()
    }

    async fn delete_user(
        &self,
        id: UserId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        keep_an_admin: bool,
    ) -> StoreResult<Option<Vec<Uuid>>> {
        let mut tx = self.begin().await?;
        if keep_an_admin {
            if let Some(lock) = DB::SERIALISE_ADMIN_CHANGES {
                sqlx::query::<DB>(lock).optional(&mut tx).await?;
            }
        }
        let uid = id.0.to_string();
        let target = sqlx::query::<DB>("SELECT tier, is_active FROM users WHERE id = $1")
            .arg(uid.as_str())
            .optional(&mut tx)
            .await?;
        let Some(target) = target else {
            return Ok(None);
        };
        let (tier, active): (i64, bool) = (target.col("tier")?, target.col("is_active")?);
        if keep_an_admin && tier == 4 && active {
            let others = sqlx::query::<DB>(
                "SELECT COUNT(*) AS n FROM users WHERE tier = 4 AND is_active = TRUE AND id <> $1",
            )
            .arg(uid.as_str())
            .one(&mut tx)
            .await?;
            if others.col("n").map(|n: i64| n)? == 0 {
                return Err(StoreError::Conflict(Conflict::LastAdmin));
            }
        }
        let live =
            sqlx::query::<DB>("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL")
                .arg(uid.as_str())
                .all(&mut tx)
                .await?;
        let live: Vec<String> = live
            .iter()
            .map(|r| r.col("id"))
            .collect::<StoreResult<_>>()?;
        for sid in &live {
            sqlx::query::<DB>(REVOKE_SID)
                .arg(sid.as_str())
                .arg(ms(until))
                .arg(ms(now))
                .run(&mut tx)
                .await?;
            // Before the sessions (and their client links) are deleted below.
            super::grants::enqueue_logout::<DB>(&mut tx, sid, now).await?;
        }
        sqlx::query::<DB>("DELETE FROM sessions WHERE user_id = $1")
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        sqlx::query::<DB>("DELETE FROM users WHERE id = $1")
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        commit(tx).await?;
        Ok(Some(
            live.iter()
                .filter_map(|s| parse_uuid(s, "id").ok())
                .collect(),
        ))
    }

    async fn count_active_admins(&self) -> StoreResult<i64> {
        sqlx::query::<DB>("SELECT COUNT(*) AS n FROM users WHERE tier = 4 AND is_active = TRUE")
            .one(&mut *self.reader().await?)
            .await?
            .col("n")
    }

    async fn bootstrap_user(&self) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE is_bootstrap = TRUE LIMIT 1");
        let row = sqlx::query::<DB>(&sql)
            .optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(user_from_row::<DB>).transpose()
    }
}

/// Ends the user's sessions named by `end`, inside `tx`.
async fn end_user_sessions<DB: Backend>(
    tx: &mut Transaction<'static, DB>,
    user: UserId,
    end: EndSessions,
) -> StoreResult<Vec<Uuid>> {
    let target = RevokeTarget::User {
        user,
        except: end.except,
    };
    end_sessions_in(tx, target, end.now, end.until).await
}
