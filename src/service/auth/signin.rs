//! The one way into a session, whatever proved who the user is (a password, a passkey):
//! the account rules every method answers alike (disabled, unverified), the session, its
//! `login.succeeded` event with `details.method`, and the "proved recently" rule.
//!
//! It must not decide how a credential is checked or counted (the password lockout is
//! `login`'s alone; passkey assertions never touch it).

use super::super::{Audit, Caller, Error, RequestContext, Result, Service};
use super::Issued;
use crate::domain::{AuditKind, User};
use crate::store::SignInGuard;
use chrono::{Duration, Utc};
use serde_json::json;

/// What proved the user's identity at sign-in (`login.succeeded`'s `details.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    /// With user verification: a second factor in itself (no TOTP step after it).
    Passkey,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Passkey => "passkey",
        }
    }

    /// What the sign-in proved, as RFC 8176 `amr` values (the ID token's `amr`): a
    /// password, with the TOTP step when the account has one (a sign-in without it never
    /// gets this far); a passkey is a hardware-held key used with user verification.
    pub fn amr(self, user: &User) -> Vec<String> {
        let values: &[&str] = match self {
            SignInMethod::Password if user.mfa_enabled => &["pwd", "otp", "mfa"],
            SignInMethod::Password => &["pwd"],
            SignInMethod::Passkey => &["hwk", "user"],
        };
        values.iter().map(|v| v.to_string()).collect()
    }
}

impl Service {
    /// Whether `user`, who has just proved who they are, may have a session: a disabled
    /// account gets `account_disabled`, an unverified one (where verification is required)
    /// `email_not_verified`, each written as `login.failed`. Only ever called after the
    /// credential was verified, so neither answer tells a guesser anything.
    pub(crate) async fn admit(
        &self,
        user: &User,
        method: SignInMethod,
        ctx: &RequestContext,
    ) -> Result<()> {
        let refusal = if !user.is_active {
            Error::AccountDisabled
        } else if self.config.require_email_verification && !user.is_verified {
            Error::EmailNotVerified
        } else {
            return Ok(());
        };
        self.audit(
            Audit::new(AuditKind::LoginFailed)
                .user(user.id)
                .ctx(ctx)
                .details(json!({"reason": refusal.code(), "method": method.as_str()})),
        )
        .await;
        Err(refusal)
    }

    /// Starts a session for an admitted user and writes `login.succeeded`. `checked_hash`:
    /// the password hash a password sign-in was checked against.
    ///
    /// The session is created only if the account is, in the same statement, still active
    /// with the tier read and (for a password) that hash: a reset, disable or demotion that
    /// landed while this sign-in was in flight ended every session, and must end this one
    /// too. A tier change alone is not a refusal: the sign-in goes on with the new tier.
    pub(crate) async fn sign_in(
        &self,
        mut user: User,
        remember_me: bool,
        checked_hash: Option<String>,
        method: SignInMethod,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let mut tries = 0;
        let issued = loop {
            let guard = SignInGuard {
                tier: user.tier,
                password_hash: checked_hash.clone(),
                amr: method.amr(&user),
            };
            if let Some(issued) = self.start_session(&user, &guard, remember_me, ctx).await? {
                break issued;
            }
            tries += 1;
            self.user_cache.forget(user.id);
            let now = self.store.user_by_id(user.id).await?;
            let refusal = match now {
                None => Error::InvalidCredentials,
                Some(u) if !u.is_active => Error::AccountDisabled,
                Some(_)
                    if checked_hash.is_some()
                        && self.store.password_hash(user.id).await? != checked_hash =>
                {
                    Error::InvalidCredentials
                }
                Some(u) if tries < 3 => {
                    user = u;
                    continue;
                }
                Some(_) => Error::InvalidCredentials,
            };
            self.audit(
                Audit::new(AuditKind::LoginFailed)
                    .user(user.id)
                    .ctx(ctx)
                    .details(json!({
                        "reason": refusal.code(),
                        "method": method.as_str(),
                        "changed_during_sign_in": true,
                    })),
            )
            .await;
            return Err(refusal);
        };
        self.audit(
            Audit::new(AuditKind::LoginSucceeded)
                .user(issued.user.id)
                .actor(issued.user.id)
                .ctx(ctx)
                .details(json!({"session_id": issued.session_id, "method": method.as_str()})),
        )
        .await;
        Ok(issued)
    }

    /// Refuses with `reauthentication_required` unless the caller's session proved a
    /// password or passkey within `within` (a session's sign-in counts; sessions are
    /// created only by one). Sensitive additions (a passkey, a signing key) call this.
    /// API keys get `api_key_not_allowed`: they never proved anything interactively.
    pub async fn require_recent_auth(&self, caller: &Caller, within: Duration) -> Result<()> {
        let (sid, _, _) = caller.require_session()?;
        match self.store.session_authenticated_at(sid).await? {
            Some(at) if Utc::now() - at <= within => Ok(()),
            _ => Err(Error::ReauthenticationRequired),
        }
    }
}
