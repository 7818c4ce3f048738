//! Background loops of a running instance:
//! - revocation catch-up: applies revocations other writers recorded (the CLI, other
//!   instances) to this instance's list, every 250 ms, so a revocation anywhere takes
//!   effect here within a second, with the database alone (Redis only makes it sooner);
//! - key reload every 250 ms too, so a rotation on another instance (or by the CLI) is
//!   published and signed with here within a second (a cheap read of a few rows; the key
//!   set is rebuilt only when it changed);
//! - pruning of expired revocations, sessions and old audit events every minute, and
//!   release of the password hasher's work areas after a minute without logins.

use super::Service;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

pub fn spawn(service: Arc<Service>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n += 1;
            service.catch_up_revocations().await;
            if let Err(e) = service.reload_keys().await {
                // Every 5 s at most: a store that is down is already reported elsewhere.
                if n.is_multiple_of(20) {
                    tracing::warn!(error = %e, "signing key reload failed");
                }
            }
            if n.is_multiple_of(240) {
                let now = Utc::now();
                let retention = service.config.audit_retention;
                if let Err(e) = service.store.prune(now, now - retention).await {
                    tracing::warn!(error = %e, "pruning failed");
                }
                service.revocations.prune(now);
                service.limiter.prune();
                service.hasher.release_idle();
            }
        }
    })
}

impl Service {
    /// Applies revocations recorded since the last one seen here: page after page by
    /// sequence number (so no burst can starve the newest rows), then the numbers skipped
    /// earlier whose transactions may have committed since (see `RevocationList::open_gaps`).
    pub async fn catch_up_revocations(&self) {
        if let Err(e) = self.catch_up().await {
            tracing::warn!(error = %e, "revocation catch-up failed");
        }
    }

    async fn catch_up(&self) -> crate::store::StoreResult<()> {
        loop {
            let now = Utc::now();
            let rows = self
                .store
                .revocations_since(self.revocations.last_seq(), now)
                .await?;
            self.apply_revocations(&rows, now);
            if rows.len() < crate::store::REVOCATION_PAGE {
                break;
            }
        }
        let now = Utc::now();
        let gaps = self.revocations.open_gaps(now);
        if !gaps.is_empty() {
            let rows = self.store.revocations_in(&gaps, now).await?;
            self.apply_revocations(&rows, now);
        }
        Ok(())
    }

    fn apply_revocations(&self, rows: &[crate::store::RevocationRow], now: chrono::DateTime<Utc>) {
        for row in rows.iter().filter(|r| !self.revocations.contains(&r.what)) {
            let lag = (now - row.created_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics.revocation_lag.observe(lag);
        }
        for sid in self.revocations.apply_noting_gaps(rows, now) {
            let _ = self.revoked_sessions.send(sid);
        }
    }
}
