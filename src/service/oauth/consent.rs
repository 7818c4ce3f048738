//! The user's answer on the consent page, and issuing the code (moved here from
//! `authorize`, which checks the request and leads the user through sign-in).

use super::authorize::{with_query, Checked, CODE_TTL};
use super::AuthorizeError;
use super::{hash, random_token};
use crate::domain::oauth::Scopes;
use crate::domain::AuditKind;
use crate::service::{Audit, Caller, RequestContext, Service};
use crate::store::oauth::{AuthCode, Consent};
use chrono::Utc;
use serde_json::json;

impl Service {
    /// The user's answer on the consent page: the URL to send the browser to.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn answer_consent(
        &self,
        ticket: &str,
        allow: bool,
        caller: &Caller,
        ctx: &RequestContext,
    ) -> Result<String, AuthorizeError> {
        let Some(pending) = self.unseal_pending(ticket) else {
            return Err(AuthorizeError::Page(
                "The request took too long. Go back to the application and start again.".into(),
            ));
        };
        if pending.user != Some(caller.user_id.0) {
            return Err(AuthorizeError::Page(
                "This consent form was shown to another account. Start again from the application."
                    .into(),
            ));
        }
        let c = self.check_authorize(&pending.params).await?;
        let server_error = |e: crate::service::Error| {
            tracing::error!(error = %e, "consent failed");
            self.error_redirect(
                &c.redirect_uri,
                c.state.as_deref(),
                "server_error",
                "the request could not be completed; try again",
            )
        };
        if !allow {
            return Err(self.error_redirect(
                &c.redirect_uri,
                c.state.as_deref(),
                "access_denied",
                "the user denied the request",
            ));
        }
        let user = self.user(caller.user_id).await.map_err(server_error)?;
        let auth_time = match caller.session_id() {
            Some(sid) => self
                .store
                .session_authenticated_at(sid)
                .await
                .map_err(|e| server_error(e.into()))?,
            None => None,
        };
        let Some(auth_time) = auth_time else {
            return Err(AuthorizeError::Page(
                "Sign in again, then start over.".into(),
            ));
        };
        let scope = c.scope.within_tier(user.tier);
        let before = self
            .store
            .consent(user.id, &c.client.client_id)
            .await
            .map_err(|e| server_error(e.into()))?
            .map(|k| k.scopes)
            .unwrap_or_default();
        let consent = Consent {
            user_id: user.id,
            client_id: c.client.client_id.clone(),
            scopes: before.union(&scope),
            granted_at: Utc::now(),
        };
        self.store
            .save_consent(&consent)
            .await
            .map_err(|e| server_error(e.into()))?;
        self.audit(
            Audit::new(AuditKind::OAuthConsentGranted)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx)
                .details(json!({
                    "client_id": c.client.client_id,
                    "client_name": c.client.name,
                    "scopes": consent.scopes.to_vec(),
                })),
        )
        .await;
        let amr = self
            .sign_in_amr(caller, &user)
            .await
            .map_err(server_error)?;
        self.issue_code(&c, &user, scope, (auth_time, amr), ctx)
            .await
            .map_err(server_error)
    }

    /// How the browser session's sign-in proved the user (the ID token's `amr`): as
    /// recorded at sign-in; for a session from before that was recorded, what the account
    /// requires of a password sign-in.
    pub(super) async fn sign_in_amr(
        &self,
        caller: &crate::service::Caller,
        user: &crate::domain::User,
    ) -> crate::service::Result<Vec<String>> {
        if let Some(sid) = caller.session_id() {
            if let Some(amr) = self.store.session_amr(sid).await?.filter(|a| !a.is_empty()) {
                return Ok(amr);
            }
        }
        Ok(crate::service::auth::SignInMethod::Password.amr(user))
    }

    /// Stores a code for the request and answers the client's redirect URL with it.
    pub(super) async fn issue_code(
        &self,
        c: &Checked,
        user: &crate::domain::User,
        scope: Scopes,
        (auth_time, amr): (chrono::DateTime<Utc>, Vec<String>),
        _ctx: &RequestContext,
    ) -> crate::service::Result<String> {
        let code = random_token(32);
        let now = Utc::now();
        self.store
            .insert_code(&AuthCode {
                hash: hash(&code),
                client_id: c.client.client_id.clone(),
                user_id: user.id,
                redirect_uri: c.redirect_uri.clone(),
                scope,
                nonce: c.nonce.clone(),
                code_challenge: c.code_challenge.clone(),
                auth_time,
                amr,
                created_at: now,
                expires_at: now + CODE_TTL,
                dpop_jkt: c.dpop_jkt.clone(),
            })
            .await?;
        Ok(with_query(
            &c.redirect_uri,
            &[
                ("code", Some(code.as_str())),
                ("state", c.state.as_deref()),
                ("iss", Some(self.config.oidc_issuer.as_str())),
            ],
        ))
    }
}
