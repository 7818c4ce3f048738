//! `/oauth2/userinfo` and the user's grants (`/api/v1/auth/oauth-grants`), moved out of
//! `token`.

use super::token::scope_claims;
use super::OAuthError;
use crate::domain::oauth::Scopes;
use crate::domain::AuditKind;
use crate::service::{Audit, Caller, Error, RequestContext, Service};
use crate::store::oauth::Consent;
use chrono::Utc;
use serde_json::{json, Value};

/// The claims userinfo answers.
pub type UserInfo = Value;

impl Service {
    /// The claims userinfo answers for an access token (`GET`/`POST /oauth2/userinfo`).
    #[tracing::instrument(skip_all)]
    /// `proven`: a DPoP-bound token's proof was checked (`Service::check_dpop_token`).
    pub async fn userinfo(&self, token: &str, proven: bool) -> Result<UserInfo, OAuthError> {
        let claims = self
            .tokens
            .verify(token)
            .map_err(|_| OAuthError::invalid_token("the access token is invalid or expired"))?;
        if claims.cnf.is_some() && !proven {
            return Err(OAuthError::new(
                401,
                "invalid_dpop_proof",
                "this access token is DPoP-bound: send it as Authorization: DPoP with a proof",
            ));
        }
        if self.revocations.is_revoked(&claims.jti, &claims.sid) {
            return Err(OAuthError::invalid_token(
                "the access token has been revoked",
            ));
        }
        let (Some(_client), Some(scope)) = (&claims.client_id, &claims.scope) else {
            return Err(OAuthError::new(
                403,
                "insufficient_scope",
                "userinfo needs an OAuth access token with the openid scope",
            ));
        };
        let scope = Scopes::parse(scope);
        if !scope.contains("openid") {
            return Err(OAuthError::new(
                403,
                "insufficient_scope",
                "the access token was not granted the openid scope",
            ));
        }
        let Some(uid) = claims.user() else {
            return Err(OAuthError::new(
                403,
                "insufficient_scope",
                "a client-credentials token speaks for no user",
            ));
        };
        let user = self
            .cached_user(crate::domain::UserId(uid))
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(|| OAuthError::invalid_token("the account is disabled or gone"))?;
        let mut out = serde_json::Map::new();
        out.insert("sub".into(), json!(user.id.0.to_string()));
        scope_claims(&user, &scope, &mut out);
        Ok(Value::Object(out))
    }

    /// The caller's grants: every client they consented to (first-party clients with a
    /// live session too), newest first.
    pub async fn list_oauth_grants(
        &self,
        caller: &Caller,
    ) -> crate::service::Result<Vec<(Consent, String)>> {
        caller.require_session()?;
        Ok(self.store.list_consents(caller.user_id).await?)
    }

    /// Withdraws the caller's grant to a client and revokes every token of it.
    pub async fn revoke_oauth_grant(
        &self,
        caller: &Caller,
        client_id: &str,
        ctx: &RequestContext,
    ) -> crate::service::Result<()> {
        caller.require_session()?;
        let now = Utc::now();
        let until = self.sid_revocation_until(now);
        let revoked = self
            .store
            .delete_consent(caller.user_id, client_id, now, until)
            .await?
            .ok_or(Error::NotFound("grant"))?;
        self.announce_revoked(&revoked, until).await;
        self.audit(
            Audit::new(AuditKind::OAuthConsentRevoked)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"client_id": client_id, "sessions": revoked})),
        )
        .await;
        Ok(())
    }
}
