//! The device authorization grant (RFC 8628), for terminal trading tools: the device asks
//! at `/oauth2/device_authorization`, shows the user a short code, and polls the token
//! endpoint while the user types the code on the hosted `/device` page, signs in and
//! answers the consent page.
//!
//! The device code is 256 random bits, stored hashed, single-use. The user code is 8
//! letters from an alphabet without vowels or look-alikes (`BCDFGHJKLMNPQRSTVWXZ`, about
//! 34 bits), shown `XXXX-XXXX`, typed in any case with or without the dash; entries are
//! rate-limited per address ([`CODE_ENTRY_LIMIT`]) so codes cannot be guessed. The
//! consent page is always shown, even for a first-party client or a remembered grant: it
//! is where the user confirms that the device in front of them is the one asking.
//! Approval makes a session exactly like a code exchange (refresh token with
//! `offline_access`, ID token with `openid`).

use super::client_auth::ClientCredentials;
use super::token::TokenResponse;
use super::{hash, random_token, OAuthError, TokenParams};
use crate::domain::oauth::{scope_description, GrantType, OAuthClient, Scopes};
use crate::domain::session::refresh_expiry;
use crate::domain::{AuditKind, Session};
use crate::service::{Audit, Caller, Error, RequestContext, Service};
use crate::store::grants::{DeviceApproval, DeviceCode, DeviceStatus};
use crate::store::oauth::{Consent, OAuthSessionLink};
use crate::store::ratelimit::Limit;
use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// The letters of a user code: no vowels (no words), no look-alikes.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// How long a device request lives.
pub const DEVICE_CODE_TTL: TimeDelta = TimeDelta::minutes(10);
/// The polling interval a device starts with (RFC 8628 §3.2).
pub const INTERVAL_SECS: i64 = 5;
/// Code entries on `/device` per address.
pub const CODE_ENTRY_LIMIT: Limit = Limit {
    count: 10,
    period: Duration::from_secs(60),
};
const ENTRY_TICKET: &str = "oauth-device-entry";
const CONSENT_TICKET: &str = "oauth-device-consent";
/// Marks a consent form's ticket as a device's (the form posts to `/oauth2/consent`).
pub const CONSENT_PREFIX: &str = "device.";

/// The answer of `/oauth2/device_authorization` (RFC 8628 §3.2). No `Debug`: a secret.
pub struct DeviceAuthorization {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What the consent page shows for a device.
pub struct DeviceConsent {
    pub client_name: String,
    pub scopes: Vec<(String, &'static str)>,
    /// The consent form's ticket, [`CONSENT_PREFIX`] included.
    pub ticket: String,
}

#[derive(Serialize, Deserialize)]
struct ConsentTicket {
    user_code: String,
    user: Uuid,
}

/// A typed user code in its stored form: letters only, upper case; `None` if it cannot be
/// one (wrong length or a letter outside the alphabet).
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn new_user_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `XXXXXXXX` as `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

fn wrong_code() -> Error {
    Error::field(
        "user_code",
        "That code is not valid or has expired. Check the code your device shows.",
    )
}

impl Service {
    /// `POST /oauth2/device_authorization`: the client authenticates as at the token
    /// endpoint (a public client with its `client_id`) and must be registered for the
    /// device grant. The scope asked for is clamped to the client's scopes (default
    /// `openid`).
    #[tracing::instrument(skip_all)]
    pub async fn device_authorization(
        &self,
        creds: ClientCredentials,
        scope: Option<String>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        if !client.allows(GrantType::DeviceCode) {
            return Err(OAuthError::new(
                400,
                "unauthorized_client",
                "this client is not registered for the device_code grant",
            ));
        }
        let asked = scope
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "openid".into());
        let scope = Scopes::parse(&asked).intersect(&client.scopes);
        let device_code = random_token(32);
        let now = Utc::now();
        for _ in 0..5 {
            let user_code = new_user_code();
            let row = DeviceCode {
                device_hash: hash(&device_code),
                user_code: user_code.clone(),
                client_id: client.client_id.clone(),
                scope: scope.clone(),
                status: DeviceStatus::Pending,
                interval_secs: INTERVAL_SECS,
                last_poll_at: None,
                approval: None,
                created_at: now,
                expires_at: now + DEVICE_CODE_TTL,
            };
            if self.store.insert_device_code(&row).await? {
                let page = format!("{}/device", self.config.public_url);
                return Ok(DeviceAuthorization {
                    device_code,
                    user_code: display_user_code(&user_code),
                    verification_uri_complete: format!("{page}?user_code={user_code}"),
                    verification_uri: page,
                    expires_in: DEVICE_CODE_TTL.num_seconds(),
                    interval: INTERVAL_SECS,
                });
            }
        }
        Err(Error::Internal("no free user code after 5 draws".into()).into())
    }

    /// A user code typed on `/device` from `ip`: a sealed ticket naming the request, for
    /// the sign-in and consent that follow. Every entry counts against the address's
    /// limit, so codes cannot be guessed.
    pub async fn enter_user_code(
        &self,
        typed: &str,
        ip: std::net::IpAddr,
    ) -> Result<String, Error> {
        let d = self
            .hit_limit(
                "device-code",
                &crate::domain::network::client_bucket(ip),
                CODE_ENTRY_LIMIT,
            )
            .await;
        if !d.allowed {
            return Err(Error::RateLimited {
                retry_after: d.retry_after_secs.max(1),
            });
        }
        let code = normalise_user_code(typed).ok_or_else(wrong_code)?;
        self.store
            .pending_device_code(&code, Utc::now())
            .await?
            .ok_or_else(wrong_code)?;
        Ok(self.seal(ENTRY_TICKET, TimeDelta::minutes(10), code.as_bytes()))
    }

    /// The consent page of the request an entry ticket names, for the signed-in `caller`.
    pub async fn device_consent(
        &self,
        ticket: &str,
        caller: &Caller,
    ) -> Result<DeviceConsent, Error> {
        let code = self
            .unseal(ENTRY_TICKET, ticket)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(wrong_code)?;
        let (row, client) = self.live_device(&code).await?;
        let user = self.user(caller.user_id).await?;
        let scope = row.scope.within_tier(user.tier);
        let sealed = serde_json::to_vec(&ConsentTicket {
            user_code: code,
            user: caller.user_id.0,
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(DeviceConsent {
            client_name: client.name,
            scopes: scope
                .iter()
                .map(|s| (s.to_string(), scope_description(s)))
                .collect(),
            ticket: format!(
                "{CONSENT_PREFIX}{}",
                self.seal(CONSENT_TICKET, TimeDelta::minutes(10), &sealed)
            ),
        })
    }

    async fn live_device(&self, code: &str) -> Result<(DeviceCode, OAuthClient), Error> {
        let row = self
            .store
            .pending_device_code(code, Utc::now())
            .await?
            .ok_or_else(wrong_code)?;
        let client = self
            .store
            .client(&row.client_id)
            .await?
            .ok_or_else(wrong_code)?;
        Ok((row, client))
    }

    /// "Allow" or "Deny" on a device's consent page; `true` when allowed. Allowing
    /// remembers the grant (it shows under the user's grants) and lets the device's next
    /// poll have the tokens.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn answer_device(
        &self,
        ticket: &str,
        allow: bool,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<bool, Error> {
        let expired = || {
            Error::field(
                "ticket",
                "The request took too long or was already answered. Start again on your device.",
            )
        };
        let t: ConsentTicket = ticket
            .strip_prefix(CONSENT_PREFIX)
            .and_then(|t| self.unseal(CONSENT_TICKET, t))
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(expired)?;
        if t.user != caller.user_id.0 {
            return Err(Error::field(
                "ticket",
                "This consent form was shown to another account. Start again on your device.",
            ));
        }
        let (row, client) = self
            .live_device(&t.user_code)
            .await
            .map_err(|_| expired())?;
        let now = Utc::now();
        if !allow {
            if !self
                .store
                .decide_device_code(&t.user_code, None, now)
                .await?
            {
                return Err(expired());
            }
            self.audit(
                Audit::new(AuditKind::OAuthDeviceDenied)
                    .user(caller.user_id)
                    .actor(caller.user_id)
                    .ctx(ctx)
                    .details(json!({"client_id": client.client_id})),
            )
            .await;
            return Ok(false);
        }
        let user = self.user(caller.user_id).await?;
        let auth_time = match caller.session_id() {
            Some(sid) => self.store.session_authenticated_at(sid).await?,
            None => None,
        }
        .ok_or(Error::MissingToken)?;
        let scope = row.scope.within_tier(user.tier);
        let amr = self.sign_in_amr(caller, &user).await?;
        let approval = DeviceApproval {
            user_id: user.id,
            scope: scope.clone(),
            auth_time,
            amr,
        };
        if !self
            .store
            .decide_device_code(&t.user_code, Some(&approval), now)
            .await?
        {
            return Err(expired());
        }
        let before = self
            .store
            .consent(user.id, &client.client_id)
            .await?
            .map(|k| k.scopes)
            .unwrap_or_default();
        self.store
            .save_consent(&Consent {
                user_id: user.id,
                client_id: client.client_id.clone(),
                scopes: before.union(&scope),
                granted_at: now,
            })
            .await?;
        self.audit(
            Audit::new(AuditKind::OAuthDeviceApproved)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx)
                .details(json!({"client_id": client.client_id, "scope": scope.to_param()})),
        )
        .await;
        Ok(true)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5).
    pub(super) async fn device_grant(
        &self,
        client: &OAuthClient,
        p: TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let code = p
            .device_code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
        let now = Utc::now();
        let device_hash = hash(&code);
        let Some((row, too_fast)) = self.store.poll_device_code(&device_hash, now).await? else {
            return Err(OAuthError::invalid_grant("the device_code is unknown"));
        };
        if row.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the device_code was issued to another client",
            ));
        }
        if now >= row.expires_at {
            return Err(OAuthError::new(
                400,
                "expired_token",
                "the device_code has expired; start again",
            ));
        }
        let approval = match (row.status, row.approval) {
            (DeviceStatus::Pending, _) if too_fast => {
                return Err(OAuthError::new(
                    400,
                    "slow_down",
                    format!(
                        "polling faster than every {} s; the interval is now {} s",
                        row.interval_secs,
                        row.interval_secs + 5
                    ),
                ))
            }
            (DeviceStatus::Pending, _) => {
                return Err(OAuthError::new(
                    400,
                    "authorization_pending",
                    "the user has not answered yet",
                ))
            }
            (DeviceStatus::Denied, _) => {
                return Err(OAuthError::new(
                    400,
                    "access_denied",
                    "the user denied the request",
                ))
            }
            (DeviceStatus::Approved, Some(a)) => a,
            _ => {
                return Err(OAuthError::invalid_grant(
                    "the device_code was already used",
                ))
            }
        };
        if !self.store.use_device_code(&device_hash).await? {
            return Err(OAuthError::invalid_grant(
                "the device_code was already used",
            ));
        }
        let user = self
            .store
            .user_by_id(approval.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(|| OAuthError::invalid_grant("the account is disabled or gone"))?;
        let sid = Uuid::now_v7();
        let absolute = now + self.config.session_max_age;
        let session = Session {
            id: sid,
            user_id: user.id,
            generation: 0,
            remember_me: false,
            created_at: now,
            last_used_at: now,
            rotated_at: None,
            refresh_expires_at: refresh_expiry(now, self.config.refresh_ttl, absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
            ip: Some(ctx.ip.to_string()),
            user_agent: Some(client.name.clone()),
        };
        let link = OAuthSessionLink {
            session_id: sid,
            client_id: client.client_id.clone(),
            scope: approval.scope,
            auth_time: approval.auth_time,
            amr: approval.amr,
            // A device that sent a DPoP proof gets tokens bound to its key.
            dpop_jkt: p.dpop_jkt.clone(),
        };
        self.store.insert_oauth_session(&session, &link).await?;
        let response = self.oauth_tokens(client, &user, &session, &link, None, true, now)?;
        self.audit(
            Audit::new(AuditKind::OAuthTokenIssued)
                .user(user.id)
                .ctx(ctx)
                .details(json!({
                    "client_id": client.client_id,
                    "grant_type": GrantType::DeviceCode.as_str(),
                    "session_id": sid,
                    "scope": link.scope.to_param(),
                })),
        )
        .await;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typed_in_any_case_with_or_without_the_dash() {
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDFGHJK").as_deref(), Some("BCDFGHJK"));
        assert_eq!(
            normalise_user_code("bcdf ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(
            normalise_user_code("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        let code = new_user_code();
        assert_eq!(normalise_user_code(&display_user_code(&code)), Some(code));
    }
}
