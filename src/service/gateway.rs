//! What the HTTP layer asks of the service besides the use cases: readiness, the JWKS,
//! metrics, rate-limit buckets, idempotency claims, the shared WebSocket feeds. With these,
//! nothing above the service reaches into its fields or into the store.

use super::{Error, Result, Service};
use crate::config::Config;
use crate::domain::User;
use crate::metrics::Metrics;
use crate::store::ratelimit::{Decision, Limit};
use crate::store::{AuditEvent, IdempotencyState};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// The answer to an idempotency claim ([`Service::idempotency_claim`]).
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's now: run it, then `idempotency_finish` or `_abandon`.
    Run,
    /// The first request with this key and body succeeded: its response, to replay.
    Replay { status: u16, body: String },
}

impl Service {
    /// The settings this instance runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This instance's Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `/readyz`: `Ok(checks)` when every store answers, else `NotReady` naming the one
    /// that does not (the database, or Redis when one is configured).
    pub async fn readiness(&self) -> Result<BTreeMap<String, String>> {
        let mut checks = BTreeMap::new();
        let db = match self.store.ping().await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database unreachable");
                "down"
            }
        };
        checks.insert("database".to_string(), db.to_string());
        if let Some(bus) = &self.bus {
            let redis = if bus.ping().await { "ok" } else { "down" };
            checks.insert("redis".to_string(), redis.to_string());
        }
        if checks.values().any(|v| v != "ok") {
            return Err(Error::NotReady(checks));
        }
        Ok(checks)
    }

    /// The current public keys as a JWKS document (RFC 7517).
    pub fn jwks(&self) -> Vec<u8> {
        self.published_keys()
    }

    /// The Prometheus text exposition, with the live-session gauge brought up to date.
    pub async fn metrics_text(&self) -> String {
        if let Ok(n) = self.store.count_live_sessions(chrono::Utc::now()).await {
            self.metrics.active_sessions.set(n);
        }
        self.metrics.render()
    }

    /// The login bucket of an identifier: the identifier as lower-cased, not the account,
    /// so the `RateLimit-*` headers of a username and an email of one account say nothing
    /// about each other (API.md, Login rules); the lockout bounds guessing per account.
    pub async fn login_bucket(&self, identifier: &str) -> String {
        format!("ident:{}", identifier.trim().to_lowercase())
    }

    /// The session a refresh token names, if it is one of ours (not checked further).
    pub fn refresh_session(&self, token: &str) -> Option<Uuid> {
        self.refresh.parse(token).map(|(sid, _)| sid)
    }

    /// The CSRF token of browser session `session` (cookie mode).
    pub fn csrf_token(&self, session: Uuid) -> String {
        self.csrf.issue(session)
    }

    /// Whether `presented` is the CSRF token of `session`.
    pub fn csrf_token_matches(&self, session: Uuid, presented: &str) -> bool {
        self.csrf.matches(session, presented)
    }

    /// `plaintext` sealed for `purpose` for `ttl` (a page's round-tripped state).
    pub fn seal(&self, purpose: &str, ttl: chrono::TimeDelta, plaintext: &[u8]) -> String {
        let expires_at = (chrono::Utc::now() + ttl).timestamp();
        self.sealer.seal(purpose, expires_at, plaintext)
    }

    /// What [`Self::seal`] sealed for `purpose`, if intact and not expired.
    pub fn unseal(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        self.sealer
            .open(purpose, chrono::Utc::now().timestamp(), sealed)
    }

    /// Counts a request in a rate-limit bucket.
    pub async fn hit_limit(&self, bucket: &str, key: &str, limit: Limit) -> Decision {
        self.limiter.hit(bucket, key, limit).await
    }

    /// Claims an idempotency key for a request with body hash `request_hash`. A first
    /// request still running is waited for, up to 10 s; then, or for another body, the
    /// answer is 409 `idempotency_conflict`.
    pub async fn idempotency_claim(&self, key: &str, request_hash: &str) -> Result<Claim> {
        let mut waited = Duration::ZERO;
        loop {
            let now = chrono::Utc::now();
            match self.store.idempotency_begin(key, request_hash, now).await? {
                IdempotencyState::Claimed => return Ok(Claim::Run),
                IdempotencyState::InFlight { request_hash: h }
                | IdempotencyState::Done {
                    request_hash: h, ..
                } if h != request_hash => {
                    return Err(Error::IdempotencyConflict { in_flight: false });
                }
                IdempotencyState::Done { status, body, .. } => {
                    return Ok(Claim::Replay { status, body })
                }
                IdempotencyState::InFlight { .. } if waited < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    waited += Duration::from_millis(50);
                }
                IdempotencyState::InFlight { .. } => {
                    return Err(Error::IdempotencyConflict { in_flight: true });
                }
            }
        }
    }

    /// Keeps a claimed request's successful response for replay.
    pub async fn idempotency_finish(&self, key: &str, status: u16, body: &str) -> Result<()> {
        Ok(self.store.idempotency_finish(key, status, body).await?)
    }

    /// Frees a claimed key whose request did not succeed: a retry runs again.
    pub async fn idempotency_abandon(&self, key: &str) -> Result<()> {
        Ok(self.store.idempotency_abandon(key).await?)
    }

    /// Security events as they are written (here or, with Redis, on other instances).
    pub fn subscribe_events(&self) -> broadcast::Receiver<AuditEvent> {
        self.events.subscribe()
    }

    /// Sessions revoked, as this instance notices them.
    pub fn subscribe_revoked_sessions(&self) -> broadcast::Receiver<Uuid> {
        self.revoked_sessions.subscribe()
    }

    /// Flips to `true` when the server starts shutting down.
    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells everything that watches for it (the WebSockets) that the server stops.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether a session is on the revocation list.
    pub fn is_session_revoked(&self, sid: &Uuid) -> bool {
        self.revocations.is_session_revoked(sid)
    }

    /// A user by id, or else by email or username (the CLI's `<who>`).
    pub async fn find_user(&self, who: &str) -> Result<Option<User>> {
        if let Ok(id) = Uuid::parse_str(who) {
            if let Some(u) = self.store.user_by_id(crate::domain::UserId(id)).await? {
                return Ok(Some(u));
            }
        }
        Ok(self.store.user_by_login(who).await?)
    }
}
