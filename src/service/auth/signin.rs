//! The one way into a session, whatever proved who the user is (a password, a passkey):
//! the account rules every method answers alike (disabled, unverified), the session, its
//! `login.succeeded` event with `details.method`, and the "proved recently" rule.
//!
//! It must not decide how a credential is checked or counted (the password lockout is
//! `login`'s alone; passkey assertions never touch it).

use super::super::{Audit, Caller, Error, RequestContext, Result, Service};
use super::Issued;
use crate::domain::{AuditKind, User};
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

    /// Starts a session for an admitted user and writes `login.succeeded`.
    pub(crate) async fn sign_in(
        &self,
        user: User,
        remember_me: bool,
        method: SignInMethod,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let issued = self.start_session(user, remember_me, ctx).await?;
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
