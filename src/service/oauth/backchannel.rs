//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a session of a
//! client with a `backchannel_logout_uri` ends — by any path —, the client gets a signed
//! logout token (`typ: logout+jwt`, `iss`, `aud` = its id, `iat`, `exp`, `jti`, `sid`,
//! `sub`, the back-channel logout event), POSTed form-encoded as `logout_token`.
//!
//! Durability: the store writes one outbox row per ended session in the very transaction
//! that ends it (`store::grants`), so no path can forget one and a crash loses none. Every
//! instance runs [`spawn`]: it claims due rows under a lease ([`LEASE`]) and delivers them;
//! a failure is retried with exponential backoff (1 s, 2 s, 4 s, … at most 10 min apart)
//! up to [`MAX_ATTEMPTS`] attempts or [`MAX_AGE`], then given up. Every attempt, and the
//! giving up, is an `oauth.backchannel_logout` event. A stopping instance releases its
//! claims; a crashed one's lapse after [`LEASE`], and any instance takes them over.
//!
//! What this must not do: block the path that ended the session (delivery is always in
//! the background), or follow redirects (a logout token goes to the registered URI only).

use crate::domain::AuditKind;
use crate::service::{Audit, Service};
use crate::store::grants::PendingLogout;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The event a logout token carries.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a claim holds before another instance may take the row over.
pub const LEASE: TimeDelta = TimeDelta::seconds(30);
/// Attempts before giving up.
pub const MAX_ATTEMPTS: i64 = 12;
/// Age after which an undelivered token is given up.
pub const MAX_AGE: TimeDelta = TimeDelta::hours(24);
/// How long a logout token is valid.
const TOKEN_TTL: TimeDelta = TimeDelta::minutes(2);
/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How often an instance looks for due deliveries.
const POLL: Duration = Duration::from_millis(500);

/// Checks a `backchannel_logout_uri`: absolute, no fragment (Back-Channel Logout §2.2),
/// `https`, or `http` on a loopback address (local development).
pub fn parse_logout_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URL"))?;
    if url.fragment().is_some() {
        return Err(format!(
            "{uri:?} has a fragment, which a logout URI must not have"
        ));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{uri:?} must be an https URL (http only on a loopback address)"
        )),
    }
}

/// When attempt `attempts + 1` is due after `attempts` failures.
fn backoff(attempts: i64) -> TimeDelta {
    TimeDelta::seconds(1i64 << attempts.clamp(0, 20)).min(TimeDelta::minutes(10))
}

/// Delivers logout tokens until the task is aborted (`app.rs` aborts it on shutdown, then
/// releases this instance's claims).
pub fn spawn(service: Arc<Service>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = match reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client: back-channel logout is off");
                return;
            }
        };
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            service.deliver_logouts(&http).await;
        }
    })
}

impl Service {
    /// This instance's name in the outbox's claims.
    fn claimant(&self) -> String {
        self.instance.to_string()
    }

    /// Claims the due logout tokens and delivers them, concurrently.
    pub async fn deliver_logouts(&self, http: &reqwest::Client) {
        let now = Utc::now();
        let due = match self
            .store
            .claim_logouts(&self.claimant(), now, now + LEASE, 32)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the back-channel logout outbox");
                return;
            }
        };
        futures::future::join_all(due.into_iter().map(|row| self.deliver_logout(http, row))).await;
    }

    /// Releases this instance's claims (a graceful stop): another instance delivers them.
    pub async fn release_logout_claims(&self) {
        match self.store.release_logout_claims(&self.claimant()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "handed undelivered logout tokens over"),
            Err(e) => tracing::warn!(error = %e, "could not release logout claims"),
        }
    }

    /// The logout token of `row` (Back-Channel Logout §2.4), signed with the client's
    /// ID-token key.
    fn logout_token(
        &self,
        row: &PendingLogout,
        now: DateTime<Utc>,
    ) -> crate::service::Result<String> {
        let claims = json!({
            "iss": self.config.oidc_issuer,
            "aud": row.client_id,
            "iat": now.timestamp(),
            "exp": (now + TOKEN_TTL).timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": row.user_id,
            "sid": row.session_id.to_string(),
            "events": { LOGOUT_EVENT: {} },
        });
        self.sign_with_id_key(&row.id_token_alg, "logout+jwt", &claims)
    }

    async fn deliver_logout(&self, http: &reqwest::Client, row: PendingLogout) {
        let now = Utc::now();
        let attempt = row.attempts + 1;
        let outcome: Result<u16, String> = match self.logout_token(&row, now) {
            Err(e) => Err(format!("could not sign: {}", e.message())),
            Ok(token) => match http
                .post(&row.uri)
                .header("cache-control", "no-store")
                .form(&[("logout_token", token)])
                .send()
                .await
            {
                Ok(res) if res.status().is_success() => Ok(res.status().as_u16()),
                Ok(res) => Err(format!("the client answered {}", res.status().as_u16())),
                Err(e) => Err(if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    "could not connect".to_string()
                }),
            },
        };
        let give_up =
            outcome.is_err() && (attempt >= MAX_ATTEMPTS || now - row.created_at >= MAX_AGE);
        let details = |status: Option<u16>, result: &str, error: Option<&str>| {
            json!({
                "client_id": row.client_id,
                "session_id": row.session_id,
                "uri": row.uri,
                "attempt": attempt,
                "status": status,
                "outcome": result,
                "error": error,
            })
        };
        let (store_result, audit) = match &outcome {
            Ok(status) => (
                self.store.finish_logout(row.session_id).await,
                details(Some(*status), "delivered", None),
            ),
            Err(e) if give_up => (
                self.store.finish_logout(row.session_id).await,
                details(None, "gave_up", Some(e)),
            ),
            Err(e) => (
                self.store
                    .retry_logout(
                        row.session_id,
                        &self.claimant(),
                        attempt,
                        now + backoff(attempt - 1),
                    )
                    .await,
                details(None, "failed", Some(e)),
            ),
        };
        if let Err(e) = store_result {
            tracing::warn!(error = %e, "could not record a logout delivery");
        }
        let user = uuid::Uuid::parse_str(&row.user_id)
            .ok()
            .map(crate::domain::UserId);
        self.audit(
            Audit::new(AuditKind::OAuthBackchannelLogout)
                .user(user)
                .details(audit),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_to_ten_minutes() {
        assert_eq!(backoff(0), TimeDelta::seconds(1));
        assert_eq!(backoff(3), TimeDelta::seconds(8));
        assert_eq!(backoff(11), TimeDelta::minutes(10));
    }

    #[test]
    fn logout_uris_are_https_or_loopback() {
        assert!(parse_logout_uri("https://rp.example/logout").is_ok());
        assert!(parse_logout_uri("http://127.0.0.1:9/bc").is_ok());
        assert!(parse_logout_uri("http://rp.example/logout").is_err());
        assert!(parse_logout_uri("https://rp.example/logout#x").is_err());
        assert!(parse_logout_uri("/logout").is_err());
    }
}
