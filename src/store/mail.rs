//! The durable mail outbox ([`MailOutbox`], implemented in `sql/mail_outbox.rs`): mails
//! written with their token in one transaction, claimed under a lease by whichever
//! instance sends them, kept (without their body) for a day once sent.

use super::{MailPurpose, StoreResult};
use crate::domain::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The single-use token a queued mail carries a link to (only its hash is stored).
#[derive(Debug, Clone, Copy)]
pub struct NewMailToken<'a> {
    pub hash: &'a [u8],
    pub user: UserId,
    pub purpose: MailPurpose,
    pub expires_at: DateTime<Utc>,
}

/// A mail to queue. `body` is what the service stores (sealed: it holds a link token).
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A claimed mail to send.
#[derive(Debug, Clone)]
pub struct PendingMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Attempts made so far.
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

/// How long a sent mail's row (recipient and time) is kept, for the quota.
pub const SENT_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(1);

#[async_trait]
pub trait MailOutbox: Send + Sync {
    /// Records `token` and queues `mail`, due at once, in one transaction.
    async fn queue_mail(&self, token: NewMailToken<'_>, mail: &QueuedMail) -> StoreResult<()>;
    /// Claims up to `limit` unsent mails due by `now` for `instance` until `lease_until`
    /// (mails another instance holds under a lease that has not lapsed are skipped).
    async fn claim_mails(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<PendingMail>>;
    /// Sent at `at`: the body is erased, the claim released; the row stays (for the
    /// quota) until [`Store::prune`](super::Store::prune) removes it a day later.
    async fn mail_sent(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()>;
    /// Another attempt at `next_at`, the claim released — if `instance` still holds it.
    async fn retry_mail(
        &self,
        id: Uuid,
        instance: &str,
        attempts: i64,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Not sent, and never will be (given up, or held back by the quota): removed.
    async fn drop_mail(&self, id: Uuid) -> StoreResult<()>;
    /// When the mails to `recipient` sent since `since` went out, oldest first.
    async fn mails_sent_to(
        &self,
        recipient: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<DateTime<Utc>>>;
    /// How many mails wait to be sent (claimed or not, due or later).
    async fn unsent_mails(&self) -> StoreResult<i64>;
    /// Releases every claim of `instance` (a graceful stop), so another sends them.
    async fn release_mail_claims(&self, instance: &str) -> StoreResult<u64>;
}
