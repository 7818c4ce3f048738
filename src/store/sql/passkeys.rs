//! Passkeys: the `passkeys` and `webauthn_challenges` tables ([`PasskeyStore`]).
//!
//! The rules that must hold under concurrency are each one statement or one transaction:
//! a ceremony's state is taken by `DELETE … RETURNING` (one taker wins); the per-account
//! limit and the last-credential rule hold the user's row (`UPDATE users SET is_active = is_active`, a
//! row lock on PostgreSQL, the write lock on SQLite) so two concurrent adds or removals
//! cannot both pass a count; the counter is written by compare-and-set.

use super::backend::{Backend, Col, QueryExt};
use super::{commit, uuid_col, SqlStore};
use crate::domain::UserId;
use crate::store::{
    from_ms, ms, Challenge, ChallengeKind, Page, PasskeyInsert, PasskeyRecord, PasskeyRemoval,
    PasskeyStore, StoreResult,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const PASSKEY_COLS: &str = "id, user_id, credential_id, name, credential, counter, created_at, \
     last_used_at, backup_eligible, backed_up";

fn passkey_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<PasskeyRecord> {
    let last: Option<i64> = row.col("last_used_at")?;
    Ok(PasskeyRecord {
        id: uuid_col::<DB>(row, "id")?,
        user_id: UserId(uuid_col::<DB>(row, "user_id")?),
        credential_id: row.col("credential_id")?,
        name: row.col("name")?,
        credential: row.col("credential")?,
        counter: row.col("counter")?,
        created_at: from_ms(row.col("created_at")?),
        last_used_at: last.map(from_ms),
        backup_eligible: row.col("backup_eligible")?,
        backed_up: row.col("backed_up")?,
    })
}

/// Holds the user's row for the rest of the transaction (see the module doc).
const LOCK_USER: &str = "UPDATE users SET is_active = is_active WHERE id = $1";

#[async_trait]
impl<DB: Backend> PasskeyStore for SqlStore<DB> {
    async fn insert_challenge(
        &self,
        id: Uuid,
        kind: ChallengeKind,
        user: Option<UserId>,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO webauthn_challenges (id, kind, user_id, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(id.to_string())
        .arg(kind.as_str())
        .arg(user.map(|u| u.0.to_string()))
        .arg(state)
        .arg(ms(expires_at))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn take_challenge(
        &self,
        id: Uuid,
        kind: ChallengeKind,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Challenge>> {
        // Deleted whatever its kind or age: a challenge presented once is spent.
        let row = sqlx::query::<DB>(
            "DELETE FROM webauthn_challenges WHERE id = $1 \
             RETURNING kind, user_id, state, expires_at",
        )
        .arg(id.to_string())
        .optional(&mut *self.writer().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored_kind: String = row.col("kind")?;
        let expires_at: i64 = row.col("expires_at")?;
        if stored_kind != kind.as_str() || expires_at <= ms(now) {
            return Ok(None);
        }
        let user: Option<String> = row.col("user_id")?;
        let user_id = match user {
            Some(u) => Some(UserId(super::parse_uuid(
                &u,
                "webauthn_challenges.user_id",
            )?)),
            None => None,
        };
        Ok(Some(Challenge {
            user_id,
            state: row.col("state")?,
        }))
    }

    async fn insert_passkey(
        &self,
        p: &PasskeyRecord,
        max_per_user: i64,
    ) -> StoreResult<PasskeyInsert> {
        let mut tx = self.begin().await?;
        let uid = p.user_id.0.to_string();
        sqlx::query::<DB>(LOCK_USER)
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        let taken = sqlx::query::<DB>("SELECT 1 AS one FROM passkeys WHERE credential_id = $1")
            .arg(p.credential_id.as_slice())
            .optional(&mut tx)
            .await?;
        if taken.is_some() {
            return Ok(PasskeyInsert::Exists);
        }
        let count: i64 = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM passkeys WHERE user_id = $1")
            .arg(uid.as_str())
            .one(&mut tx)
            .await?
            .col("n")?;
        if count >= max_per_user {
            return Ok(PasskeyInsert::Limit);
        }
        // A concurrent insert of the same credential for another account holds another
        // user's row: the unique index decides, and the loser inserts nothing.
        let n = sqlx::query::<DB>(
            "INSERT INTO passkeys (id, user_id, credential_id, name, credential, counter, \
             created_at, last_used_at, backup_eligible, backed_up) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (credential_id) DO NOTHING",
        )
        .arg(p.id.to_string())
        .arg(uid.as_str())
        .arg(p.credential_id.as_slice())
        .arg(p.name.as_str())
        .arg(p.credential.as_str())
        .arg(p.counter)
        .arg(ms(p.created_at))
        .arg(p.last_used_at.map(ms))
        .arg(p.backup_eligible)
        .arg(p.backed_up)
        .run(&mut tx)
        .await?;
        if n != 1 {
            return Ok(PasskeyInsert::Exists);
        }
        commit(tx).await?;
        Ok(PasskeyInsert::Inserted)
    }

    async fn list_passkeys(&self, user: UserId, page: Page) -> StoreResult<Vec<PasskeyRecord>> {
        let sql = format!(
            "SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = $1 \
             AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(user.0.to_string())
            .arg(page.after.map(|u| u.to_string()))
            .arg(page.limit as i64)
            .all(&mut *self.writer().await?)
            .await?;
        rows.iter().map(passkey_from_row::<DB>).collect()
    }

    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>> {
        // Through the writer: the latest counter, including a sign-in a moment ago.
        let sql = format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE credential_id = $1");
        let row = sqlx::query::<DB>(&sql)
            .arg(credential_id)
            .optional(&mut *self.writer().await?)
            .await?;
        row.as_ref().map(passkey_from_row::<DB>).transpose()
    }

    async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: &str,
    ) -> StoreResult<Option<PasskeyRecord>> {
        let sql = format!(
            "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3 RETURNING {PASSKEY_COLS}"
        );
        let row = sqlx::query::<DB>(&sql)
            .arg(name)
            .arg(id.to_string())
            .arg(user.0.to_string())
            .optional(&mut *self.writer().await?)
            .await?;
        row.as_ref().map(passkey_from_row::<DB>).transpose()
    }

    async fn remove_passkey(&self, user: UserId, id: Uuid) -> StoreResult<PasskeyRemoval> {
        let mut tx = self.begin().await?;
        let uid = user.0.to_string();
        sqlx::query::<DB>(LOCK_USER)
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        let mine =
            sqlx::query::<DB>("SELECT 1 AS one FROM passkeys WHERE id = $1 AND user_id = $2")
                .arg(id.to_string())
                .arg(uid.as_str())
                .optional(&mut tx)
                .await?;
        if mine.is_none() {
            return Ok(PasskeyRemoval::NotFound);
        }
        // A usable password is a PHC string (`$argon2id$…`); anything else cannot sign in.
        let row = sqlx::query::<DB>(
            "SELECT (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) AS n, \
             (SELECT COUNT(*) FROM users WHERE id = $1 AND password_hash LIKE $2) AS pw",
        )
        .arg(uid.as_str())
        .arg("$%")
        .one(&mut tx)
        .await?;
        let (count, password): (i64, i64) = (row.col("n")?, row.col("pw")?);
        if count <= 1 && password == 0 {
            return Ok(PasskeyRemoval::LastCredential);
        }
        sqlx::query::<DB>("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .arg(id.to_string())
            .arg(uid.as_str())
            .run(&mut tx)
            .await?;
        commit(tx).await?;
        Ok(PasskeyRemoval::Removed)
    }

    async fn use_passkey(
        &self,
        credential_id: &[u8],
        counter: i64,
        credential: &str,
        backed_up: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query::<DB>(
            "UPDATE passkeys SET counter = $1, credential = $2, backed_up = $3, \
             last_used_at = $4 \
             WHERE credential_id = $5 AND (counter < $1 OR ($1 = 0 AND counter = 0))",
        )
        .arg(counter)
        .arg(credential)
        .arg(backed_up)
        .arg(ms(now))
        .arg(credential_id)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }
}
