//! The mail outbox ([`MailOutbox`]): `mail_outbox`, written in the transaction that
//! records the mail's token; claims under a lease, like `oauth_backchannel_outbox`.

use super::backend::{Backend, Col, QueryExt};
use super::{commit, uuid_col, SqlStore};
use crate::store::mail::{MailOutbox, NewMailToken, PendingMail, QueuedMail};
use crate::store::{from_ms, ms, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const COLS: &str = "id, recipient, subject, body, attempts, created_at";

fn mail_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<PendingMail> {
    Ok(PendingMail {
        id: uuid_col::<DB>(row, "id")?,
        recipient: row.col("recipient")?,
        subject: row.col("subject")?,
        body: row.col("body")?,
        attempts: row.col("attempts")?,
        created_at: from_ms(row.col("created_at")?),
    })
}

#[async_trait]
impl<DB: Backend> MailOutbox for SqlStore<DB> {
    async fn queue_mail(&self, token: NewMailToken<'_>, mail: &QueuedMail) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query::<DB>(
            "INSERT INTO mail_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(token.hash)
        .arg(token.user.0.to_string())
        .arg(token.purpose.as_str())
        .arg(ms(mail.created_at))
        .arg(ms(token.expires_at))
        .run(&mut tx)
        .await?;
        sqlx::query::<DB>(
            "INSERT INTO mail_outbox (id, recipient, subject, body, attempts, next_at, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $5)",
        )
        .arg(mail.id.to_string())
        .arg(mail.recipient.as_str())
        .arg(mail.subject.as_str())
        .arg(mail.body.as_str())
        .arg(ms(mail.created_at))
        .run(&mut tx)
        .await?;
        commit(tx).await
    }

    async fn claim_mails(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<PendingMail>> {
        // A read first: an idle instance (nearly always) takes no write lock every tick.
        let due = sqlx::query::<DB>(
            "SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_at <= $1 \
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
            "UPDATE mail_outbox SET claimed_by = $1, claim_until = $2 \
             WHERE id IN (SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_at <= $3 \
             AND (claim_until IS NULL OR claim_until <= $3) ORDER BY next_at, created_at LIMIT $4) \
             AND sent_at IS NULL AND next_at <= $3 AND (claim_until IS NULL OR claim_until <= $3) \
             RETURNING {COLS}"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(instance)
            .arg(ms(lease_until))
            .arg(ms(now))
            .arg(limit)
            .all(&mut *self.writer().await?)
            .await?;
        let mut mails = rows
            .iter()
            .map(mail_from_row::<DB>)
            .collect::<StoreResult<Vec<_>>>()?;
        // RETURNING gives no order: oldest first, as queued.
        mails.sort_by_key(|m| m.created_at);
        Ok(mails)
    }

    async fn mail_sent(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query::<DB>(
            "UPDATE mail_outbox SET sent_at = $1, body = '', claimed_by = NULL, \
             claim_until = NULL WHERE id = $2",
        )
        .arg(ms(at))
        .arg(id.to_string())
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn retry_mail(
        &self,
        id: Uuid,
        instance: &str,
        attempts: i64,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query::<DB>(
            "UPDATE mail_outbox SET attempts = $1, next_at = $2, claimed_by = NULL, \
             claim_until = NULL WHERE id = $3 AND claimed_by = $4 AND sent_at IS NULL",
        )
        .arg(attempts)
        .arg(ms(next_at))
        .arg(id.to_string())
        .arg(instance)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn drop_mail(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query::<DB>("DELETE FROM mail_outbox WHERE id = $1 AND sent_at IS NULL")
            .arg(id.to_string())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn mails_sent_to(
        &self,
        recipient: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>> {
        let rows = sqlx::query::<DB>(
            "SELECT sent_at FROM mail_outbox WHERE recipient = $1 AND sent_at >= $2 \
             ORDER BY sent_at",
        )
        .arg(recipient)
        .arg(ms(since))
        .all(&mut *self.writer().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let at: i64 = r.col("sent_at")?;
                Ok(from_ms(at))
            })
            .collect()
    }

    async fn unsent_mails(&self) -> StoreResult<i64> {
        let row = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM mail_outbox WHERE sent_at IS NULL")
            .one(&mut *self.reader().await?)
            .await?;
        row.col("n")
    }

    async fn release_mail_claims(&self, instance: &str) -> StoreResult<u64> {
        sqlx::query::<DB>(
            "UPDATE mail_outbox SET claimed_by = NULL, claim_until = NULL \
             WHERE claimed_by = $1 AND sent_at IS NULL",
        )
        .arg(instance)
        .run(&mut *self.writer().await?)
        .await
    }
}
