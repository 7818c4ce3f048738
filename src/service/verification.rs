//! Email verification and password reset: single-use tokens mailed as links, stored only
//! as their SHA-256. The request endpoints answer the same whether or not an account
//! exists (no enumeration). Each mail is queued in the durable outbox in the transaction
//! that records its token, and goes out off the request path (`mail_sender`).

use super::Audit;
use super::{Error, RequestContext, Result, Service};
use crate::domain::password::{self, PolicyInput};
use crate::domain::AuditKind;
use crate::domain::{Email, User};
use crate::store::mail::NewMailToken;
use crate::store::MailPurpose;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Utc;
use ring::digest::{digest, SHA256};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

fn new_token() -> (String, Vec<u8>) {
    let raw: [u8; 32] = rand::random();
    let token = B64.encode(raw);
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.trim().as_bytes()).as_ref().to_vec()
}

/// An address of a mail request, or the 400 that says what is wrong with it.
fn mail_address(email: &str) -> Result<Email> {
    Email::parse(email).map_err(|_| Error::field("email", "email must look like name@example.com"))
}

impl Service {
    /// Mails a fresh verification link.
    #[tracing::instrument(skip_all)]
    pub async fn send_verification(&self, user: &User) -> Result<()> {
        let (token, hash) = new_token();
        let expires_at = Utc::now() + self.config.verification_ttl;
        let link = format!("{}/verify-email?token={token}", self.config.public_url);
        let body = format!(
            "Hello {},\n\nconfirm your email address for tradeauth by opening this link:\n\n{link}\n\n\
             The link works once and expires in {}. If you did not sign up, ignore this mail.\n",
            user.username,
            crate::config::format_duration(self.config.verification_ttl)
        );
        let token = NewMailToken {
            hash: &hash,
            user: user.id,
            purpose: MailPurpose::Verify,
            expires_at,
        };
        self.queue_mail(
            token,
            user.email.as_str(),
            "Confirm your email address",
            &body,
        )
        .await
    }

    /// Checks the address and answers; the lookup and the mail happen after the answer, so
    /// a known and an unknown address cost the caller the same time (API.md, Login rules).
    #[tracing::instrument(skip_all)]
    pub async fn resend_verification(self: &Arc<Self>, email: &str) -> Result<()> {
        let email = mail_address(email)?;
        let this = self.clone();
        // Counted until its mail is queued: a graceful stop waits for it.
        let job = self.outbox.job();
        tokio::spawn(async move {
            let _job = job;
            if let Err(e) = this.resend_verification_now(email).await {
                tracing::warn!(error = %e, "verification resend failed");
            }
        });
        Ok(())
    }

    async fn resend_verification_now(&self, email: Email) -> Result<()> {
        if let Some(user) = self.store.user_by_login(email.as_str()).await? {
            if user.email == email && !user.is_verified && user.is_active {
                self.send_verification(&user).await?;
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str, ctx: &RequestContext) -> Result<User> {
        if token.trim().is_empty() {
            return Err(Error::field("token", "token is required"));
        }
        let user_id = self
            .store
            .consume_mail_token(&token_hash(token), MailPurpose::Verify, Utc::now())
            .await?
            .ok_or(Error::InvalidMailToken)?;
        let patch = crate::store::UserPatch {
            is_verified: Some(true),
            ..Default::default()
        };
        let user = self
            .store
            .update_user(user_id, &patch)
            .await?
            .map(|(user, _)| user)
            .ok_or(Error::InvalidMailToken)?;
        self.user_cache.forget(user.id);
        self.audit(
            Audit::new(AuditKind::EmailVerified)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx),
        )
        .await;
        Ok(user)
    }

    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(self: &Arc<Self>, email: &str) -> Result<()> {
        let email = mail_address(email)?;
        let this = self.clone();
        // Counted until its mail is queued: a graceful stop waits for it.
        let job = self.outbox.job();
        tokio::spawn(async move {
            let _job = job;
            if let Err(e) = this.request_password_reset_now(email).await {
                tracing::warn!(error = %e, "password reset request failed");
            }
        });
        Ok(())
    }

    /// The work of a reset request, after the answer (see `resend_verification`).
    async fn request_password_reset_now(&self, email: Email) -> Result<()> {
        let Some(user) = self.store.user_by_login(email.as_str()).await? else {
            return Ok(());
        };
        if user.email != email || !user.is_active {
            return Ok(());
        }
        let (token, hash) = new_token();
        let expires_at = Utc::now() + self.config.reset_ttl;
        let link = format!("{}/reset-password?token={token}", self.config.public_url);
        let body = format!(
            "Hello {},\n\nsomeone asked to reset the password of your tradeauth account. To choose a new \
             password, open this link:\n\n{link}\n\nThe link works once and expires in {}. If it was \
             not you, ignore this mail; your password stays as it is.\n",
            user.username,
            crate::config::format_duration(self.config.reset_ttl)
        );
        let token = NewMailToken {
            hash: &hash,
            user: user.id,
            purpose: MailPurpose::Reset,
            expires_at,
        };
        self.queue_mail(token, user.email.as_str(), "Reset your password", &body)
            .await
    }

    /// Sets a new password from a reset token: every session ends, the lockout is cleared.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: SecretString,
        ctx: &RequestContext,
    ) -> Result<()> {
        if token.trim().is_empty() {
            return Err(Error::field("token", "token is required"));
        }
        if new_password.expose_secret().is_empty() {
            return Err(Error::field("new_password", "new_password is required"));
        }
        let hash = token_hash(token);
        let now = Utc::now();
        // Check the policy before using the token, so a refused password does not burn it.
        let user_id = self
            .store
            .peek_mail_token(&hash, MailPurpose::Reset, now)
            .await?
            .ok_or(Error::InvalidMailToken)?;
        // A deleted account's token is an invalid token; a store that is away is a 503.
        let user = self.user(user_id).await.map_err(|e| match e {
            Error::NotFound(_) => Error::InvalidMailToken,
            other => other,
        })?;
        password::check(
            new_password.expose_secret(),
            &PolicyInput {
                email_local_part: Some(user.email.local_part()),
                username: Some(user.username.as_str()),
            },
        )
        .map_err(|e| Error::WeakPassword {
            details: e.details("new_password"),
        })?;
        let password_hash = self.hasher.hash(&new_password).await?;
        // The token's use, the new hash and the end of every session: one transaction.
        let end = self.end_sessions(None);
        let ended = self
            .store
            .reset_password(&hash, user.id, &password_hash, end)
            .await?
            .ok_or(Error::InvalidMailToken)?;
        self.sessions_ended(&ended, end.until).await;
        self.store
            .clear_attempts(&format!("user:{}", user.id))
            .await?;
        self.audit(
            Audit::new(AuditKind::PasswordReset)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx),
        )
        .await;
        Ok(())
    }
}
