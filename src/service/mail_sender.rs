//! Sending the durable outbox (`mail_outbox`): the verification and reset mails.
//!
//! A use case writes its mail in the transaction that records the link's token
//! ([`Service::queue_mail`]), so a mail answered with 202 survives a crash. Every instance
//! runs [`spawn`]: on each tick ([`POLL`]), and at once when a mail is queued here, it
//! claims due mails under a lease ([`LEASE`]) and sends them through the mailer; a failed
//! send is retried with exponential backoff (1 s, 2 s, 4 s, … at most 10 min apart) up to
//! [`MAX_ATTEMPTS`] attempts or [`MAX_AGE`], then given up. A sent mail's body (its link)
//! is erased; the row stays a day for the quota, then `Store::prune` removes it.
//!
//! At least once, never twice after a clean stop: a graceful stop ([`Service::drain_mails`])
//! sends what is due, finishes every send under way and releases the claims it did not
//! start. A crash cannot: its claims lapse after [`LEASE`] and another instance (or the
//! restarted one) sends them — including a mail whose send was under way at the crash,
//! which its recipient may then get twice (with the same link).
//!
//! The per-recipient quota (`rate_limit_mail`) counts mails actually sent: just before
//! each attempt, the sent rows of the last period are run through the same bucket rule as
//! the other rate limits (GCRA: burst = count, refilled evenly), so a mail held back,
//! given up or never sent costs nothing. Two instances sending to one address at
//! the same instant may each send one mail past it.

use super::Service;
use crate::mail::{recipient_domain, Mail, SenderState};
use crate::store::mail::{NewMailToken, PendingMail, QueuedMail};
use crate::store::ratelimit::Limit;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a claim holds before another instance may take the mail over (one attempt
/// takes at most the SMTP timeout, 15 s, times the mails to one recipient in a batch).
pub const LEASE: TimeDelta = TimeDelta::minutes(2);
/// Attempts before giving up.
pub const MAX_ATTEMPTS: i64 = 12;
/// Age after which an unsent mail is given up (its link has expired by then anyway).
pub const MAX_AGE: TimeDelta = TimeDelta::hours(24);
/// How often an instance looks for due mails (besides being woken by its own).
const POLL: Duration = Duration::from_millis(250);
/// Mails claimed at once.
const BATCH: i64 = 32;
/// What the sealed bodies are sealed for.
const SEAL_PURPOSE: &str = "mail_outbox";

/// When attempt `attempts + 1` is due after `attempts` failures.
fn backoff(attempts: i64) -> TimeDelta {
    TimeDelta::seconds(1i64 << attempts.clamp(0, 20)).min(TimeDelta::minutes(10))
}

/// Whether a bucket of `limit` (burst = count, refilled evenly over the period: the GCRA
/// of the other rate limits) that took one token per mail `sent` (oldest first; those of
/// the last period) has a token left `now`.
fn gcra_allows(sent: &[DateTime<Utc>], now: DateTime<Utc>, limit: Limit) -> bool {
    let period = TimeDelta::from_std(limit.period).unwrap_or(TimeDelta::hours(1));
    let step = period / i32::try_from(limit.count).unwrap_or(i32::MAX).max(1);
    let tat = sent.iter().fold(None, |tat: Option<DateTime<Utc>>, t| {
        Some(tat.map_or(*t, |tat| tat.max(*t)) + step)
    });
    tat.is_none_or(|tat| tat <= now + period - step)
}

/// Sends mails until [`Service::drain_mails`] stops it.
pub fn spawn(service: Arc<Service>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = service.outbox.state();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *state.borrow_and_update() != SenderState::Running {
                // Draining: what is due now, until nothing is; halted: nothing more.
                if service.send_due_mails(&state).await == 0 {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = service.outbox.woken() => {}
                _ = state.changed() => continue,
            }
            service.send_due_mails(&state).await;
        }
    })
}

impl Service {
    /// Seals `body`, records `token` and queues the mail in one transaction, and wakes
    /// this instance's sender. An error means neither was written.
    pub(super) async fn queue_mail(
        &self,
        token: NewMailToken<'_>,
        to: &str,
        subject: &str,
        body: &str,
    ) -> super::Result<()> {
        let sealed = self.seal(SEAL_PURPOSE, MAX_AGE + TimeDelta::hours(1), body.as_bytes());
        let mail = QueuedMail {
            id: uuid::Uuid::new_v4(),
            recipient: to.to_string(),
            subject: subject.to_string(),
            body: sealed,
            created_at: Utc::now(),
        };
        self.store.queue_mail(token, &mail).await?;
        self.outbox.wake();
        Ok(())
    }

    /// Claims the due mails and sends them: one address's mails one after the other (so
    /// the quota sees each), different addresses concurrently. The number claimed.
    async fn send_due_mails(&self, state: &watch::Receiver<SenderState>) -> usize {
        if *state.borrow() == SenderState::Halted {
            return 0;
        }
        let now = Utc::now();
        let instance = self.instance.to_string();
        let due = match self
            .store
            .claim_mails(&instance, now, now + LEASE, BATCH)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the mail outbox");
                return 0;
            }
        };
        let claimed = due.len();
        let mut by_recipient: BTreeMap<String, Vec<PendingMail>> = BTreeMap::new();
        for mail in due {
            by_recipient
                .entry(mail.recipient.clone())
                .or_default()
                .push(mail);
        }
        futures::future::join_all(by_recipient.into_values().map(|mails| async {
            for mail in mails {
                // A halted sender starts no new send; the claim is released after.
                if *state.borrow() == SenderState::Halted {
                    return;
                }
                self.send_one(&instance, mail).await;
            }
        }))
        .await;
        claimed
    }

    /// Whether the recipient's quota lets one more mail go out now.
    async fn within_quota(&self, recipient: &str) -> bool {
        if !self.config.rate_limit {
            return true;
        }
        let limit = self.config.rate_limits.mail;
        let now = Utc::now();
        let period = TimeDelta::from_std(limit.period).unwrap_or(TimeDelta::hours(1));
        match self.store.mails_sent_to(recipient, now - period).await {
            Ok(sent) => gcra_allows(&sent, now, limit),
            Err(e) => {
                // Not knowing, send: the mail was promised, and the next check will know.
                tracing::warn!(error = %e, "could not count the recipient's mails");
                true
            }
        }
    }

    async fn send_one(&self, instance: &str, row: PendingMail) {
        let now = Utc::now();
        let attempt = row.attempts + 1;
        let domain = recipient_domain(&row.recipient).to_string();
        let Some(body) = self
            .unseal(SEAL_PURPOSE, &row.body)
            .and_then(|b| String::from_utf8(b).ok())
        else {
            tracing::error!(recipient_domain = %domain, "a queued mail does not open (expired, or sealed with another key); dropped");
            self.record(self.store.drop_mail(row.id).await);
            return;
        };
        if !self.within_quota(&row.recipient).await {
            tracing::info!(recipient_domain = %domain, "mail to a recipient over its quota held back");
            self.record(self.store.drop_mail(row.id).await);
            return;
        }
        let mail = Mail {
            to: row.recipient.clone(),
            subject: row.subject.clone(),
            body,
        };
        let outcome = self.outbox.mailer.send(&mail).await;
        match outcome {
            Ok(()) => self.record(self.store.mail_sent(row.id, Utc::now()).await),
            Err(e) if attempt >= MAX_ATTEMPTS || now - row.created_at >= MAX_AGE => {
                tracing::error!(error = %format!("{e:#}"), attempt, recipient_domain = %domain, "mail not sent; given up");
                self.record(self.store.drop_mail(row.id).await);
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), attempt, recipient_domain = %domain, "mail send failed; retrying");
                let next = now + backoff(attempt - 1);
                self.record(self.store.retry_mail(row.id, instance, attempt, next).await);
            }
        }
    }

    fn record(&self, result: crate::store::StoreResult<()>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record a mail's outcome");
        }
    }

    /// A graceful stop: waits for the mail jobs under way, sends what is due (for at most
    /// `limit`; then only the sends under way finish), stops `sender` and releases this
    /// instance's claims. The number of mails left unsent in the outbox, for the log.
    pub async fn drain_mails(
        &self,
        mut sender: tokio::task::JoinHandle<()>,
        limit: Duration,
    ) -> i64 {
        let deadline = tokio::time::Instant::now() + limit;
        self.outbox.jobs_done(deadline).await;
        self.outbox.set_state(SenderState::Draining);
        if tokio::time::timeout_at(deadline, &mut sender)
            .await
            .is_err()
        {
            self.outbox.set_state(SenderState::Halted);
            let _ = sender.await;
        }
        match self
            .store
            .release_mail_claims(&self.instance.to_string())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "handed unsent mails over"),
            Err(e) => tracing::warn!(error = %e, "could not release mail claims"),
        }
        self.store.unsent_mails().await.unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_is_a_bucket_of_the_mails_sent() {
        let limit = Limit::parse("5/hour").unwrap();
        let t0 = Utc::now();
        let min = TimeDelta::minutes(1);
        assert!(gcra_allows(&[], t0, limit));
        let four = vec![t0; 4];
        assert!(gcra_allows(&four, t0, limit), "a burst of 5");
        let five = vec![t0; 5];
        assert!(!gcra_allows(&five, t0, limit));
        assert!(!gcra_allows(&five, t0 + min * 11, limit));
        assert!(
            gcra_allows(&five, t0 + min * 12, limit),
            "one back every 12 min"
        );
        let spread: Vec<_> = (0..5).map(|i| t0 + min * (12 * i)).collect();
        assert!(gcra_allows(&spread, t0 + min * 60, limit));
    }

    #[test]
    fn retries_back_off_exponentially_to_ten_minutes() {
        assert_eq!(backoff(0), TimeDelta::seconds(1));
        assert_eq!(backoff(2), TimeDelta::seconds(4));
        assert_eq!(backoff(11), TimeDelta::minutes(10));
    }
}
