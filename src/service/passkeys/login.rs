//! Signing in with a passkey: the start (the account's credential ids, or stand-ins for an
//! unknown account so the answer does not tell which exist, or none for a discoverable
//! request) and the finish, which ends in the shared sign-in path (`auth::signin`).

use super::{parse_challenge, refused, stored, Started};
use crate::domain::AuditKind;
use crate::service::auth::{Issued, SignInMethod};
use crate::service::webauthn::{self, Assertion, CredentialId, PasskeyError, Passkeys};
use crate::service::{Audit, Error, RequestContext, Result, Service};
use crate::store::{ChallengeKind, PasskeyRecord};
use chrono::Utc;
use serde_json::json;

impl Service {
    /// Stand-in credential ids for `ident`, the same at every call and never none (a real
    /// account's list never is: an empty one would mark the account as unknown). The
    /// generator may draw none for an input; then the next derived input is tried.
    fn decoy_credential_ids(&self, ident: &str) -> Result<Vec<CredentialId>> {
        let ident = ident.to_lowercase();
        for round in 0..16u8 {
            let input = match round {
                0 => ident.clone(),
                n => format!("{ident}\u{0}{n}"),
            };
            let ids =
                Passkeys::fake_credential_ids(&self.passkey_decoy_key, &input).map_err(refused)?;
            if !ids.is_empty() {
                return Ok(ids);
            }
        }
        // Not reached in practice; one HMAC-derived id keeps the shape all the same.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.passkey_decoy_key);
        let tag = ring::hmac::sign(&key, ident.as_bytes());
        Ok(vec![CredentialId::from_bytes(tag.as_ref())])
    }

    /// Starts a passkey sign-in. With `username` (a username or an email) its passkeys
    /// are listed, or, for an unknown account or one without passkeys, stand-ins that are
    /// the same at every call, so the answer does not tell which accounts exist. Without
    /// it, a discoverable-credential request.
    pub async fn start_passkey_login(&self, username: Option<&str>) -> Result<Started> {
        let rp = self.relying_party()?;
        let ident = username.map(str::trim).filter(|s| !s.is_empty());
        let allowed = match ident {
            None => None,
            Some(ident) => {
                let ids = match self.store.user_by_login(ident).await? {
                    Some(user) => self.credential_ids(user.id).await?,
                    None => Vec::new(),
                };
                Some(if ids.is_empty() {
                    self.decoy_credential_ids(ident)?
                } else {
                    ids
                })
            }
        };
        let (options, state) = rp
            .start_authentication(allowed.as_deref())
            .map_err(refused)?;
        let challenge_id = self
            .keep_challenge(ChallengeKind::Login, None, &state.to_json())
            .await?;
        Ok(Started {
            challenge_id,
            options,
        })
    }

    /// Finishes a passkey sign-in: the challenge is taken (single use), the assertion
    /// verified against the stored passkey, the counter moved forward by compare-and-set,
    /// then the shared sign-in (account rules, session, `login.succeeded` with
    /// `method: passkey`). User verification was required, so no TOTP step follows.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn finish_passkey_login(
        &self,
        challenge_id: Option<&str>,
        credential: Option<&serde_json::Value>,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let result = self
            .passkey_login(challenge_id, credential, remember_me, ctx)
            .await;
        self.count_ceremony("login", &result);
        self.metrics.login(match &result {
            Ok(_) => "succeeded",
            Err(e) => e.code(),
        });
        result
    }

    async fn passkey_login(
        &self,
        challenge_id: Option<&str>,
        credential: Option<&serde_json::Value>,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let rp = self.relying_party()?;
        let challenge_id = parse_challenge(challenge_id)?;
        let credential = credential
            .filter(|c| !c.is_null())
            .ok_or_else(|| Error::field("credential", "credential is required"))?;
        let assertion = Assertion::parse(credential).map_err(refused)?;
        let challenge = self
            .store
            .take_challenge(challenge_id, ChallengeKind::Login, Utc::now())
            .await?
            .ok_or(Error::PasskeyChallengeExpired)?;
        let state = webauthn::AuthenticationState::from_json(&challenge.state)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let record = self
            .store
            .passkey_by_credential_id(assertion.credential_id().as_bytes())
            .await?;
        let owner = record.as_ref().map(|r| r.user_id);
        if let Some(uid) = owner {
            tracing::Span::current().record("user_id", tracing::field::display(uid));
        }
        let stored = record.as_ref().map(stored).transpose()?;
        let verified = match rp.finish_authentication(&state, &assertion, stored.as_ref()) {
            Ok(v) => v,
            Err(e) => return Err(self.passkey_refused(e, record.as_ref(), ctx).await),
        };
        let record = record.expect("a verified assertion has a stored passkey");
        let now = Utc::now();
        let moved = self
            .store
            .use_passkey(
                &record.credential_id,
                i64::from(verified.counter),
                &verified.credential.to_json(),
                verified.backed_up,
                now,
            )
            .await?;
        if !moved {
            // Another sign-in with this counter (or a higher one) landed first.
            let e = PasskeyError::CounterRegression {
                stored: u32::try_from(record.counter).unwrap_or(u32::MAX),
                presented: Some(verified.counter),
            };
            return Err(self.passkey_refused(e, Some(&record), ctx).await);
        }
        let user = self.user(record.user_id).await?;
        self.admit(&user, SignInMethod::Passkey, ctx).await?;
        self.sign_in(user, remember_me, None, SignInMethod::Passkey, ctx)
            .await
    }

    /// Writes what a refused assertion needs (`login.failed`, and
    /// `passkey.clone_suspected` for a counter that went backwards) and turns it into
    /// the answer. The password lockout is not touched.
    async fn passkey_refused(
        &self,
        e: PasskeyError,
        record: Option<&PasskeyRecord>,
        ctx: &RequestContext,
    ) -> Error {
        tracing::info!(error = %e, "passkey sign-in refused");
        let user = record.map(|r| r.user_id);
        if e.is_clone_suspected() {
            if let (Some(r), PasskeyError::CounterRegression { stored, presented }) = (record, &e) {
                self.audit(
                    Audit::new(AuditKind::PasskeyCloneSuspected)
                        .user(r.user_id)
                        .ctx(ctx)
                        .details(json!({
                            "passkey_id": r.id,
                            "name": r.name,
                            "stored_counter": stored,
                            "presented_counter": presented,
                        })),
                )
                .await;
            }
        }
        let error = refused(e);
        if matches!(error, Error::InvalidPasskey) {
            self.audit(
                Audit::new(AuditKind::LoginFailed)
                    .user(user)
                    .ctx(ctx)
                    .details(json!({"reason": "invalid_passkey", "method": "passkey"})),
            )
            .await;
        }
        error
    }
}
