//! The rest of a token's life: introspection (RFC 7662), revocation (RFC 7009) and
//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! Each answers from the same revocation list as every token check, so a revocation
//! anywhere shows here within a second.

use super::client_auth::ClientCredentials;
use super::OAuthError;
use crate::domain::oauth::ClientType;
use crate::domain::AuditKind;
use crate::service::{Audit, RequestContext, Service};
use crate::store::{RevokeTarget, Revoked};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// What `id_token_hint` says, once its signature and issuer are checked.
#[derive(Debug, Clone)]
pub struct HintClaims {
    pub sid: Option<Uuid>,
    pub client_id: String,
}

/// The outcome of an RP-initiated logout.
#[derive(Debug, Clone)]
pub enum LoggedOut {
    /// Back to the client's registered post-logout redirect URI (with `state`).
    Redirect(String),
    /// The signed-out page.
    Page,
}

impl Service {
    /// `POST /oauth2/introspect`: confidential clients only. An access token of ours that
    /// is live answers its claims; a refresh token answers only to its own client.
    ///
    /// A DPoP-bound token is active only with its proof (API.md: every check refuses it
    /// without one): the resource server passes the `DPoP` header it received, which must
    /// be signed by the token's key, carry its `ath` and be fresh and unused; the answer
    /// then has `token_type: DPoP` and `cnf.jkt`. The server compares the proof's `htm` and
    /// `htu` with its own request.
    #[tracing::instrument(skip_all)]
    pub async fn introspect(
        &self,
        creds: ClientCredentials,
        token: Option<String>,
        dpop_proof: Option<String>,
    ) -> Result<Value, OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        if client.client_type != ClientType::Confidential {
            return Err(OAuthError::invalid_client(
                "introspection is for confidential clients (resource servers) only",
            ));
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let inactive = json!({"active": false});
        // An exchanged token made for another audience (a `resource`) is ours too.
        let verified = self
            .tokens
            .verify(&token)
            .or_else(|_| self.tokens.verify_exchanged(&token));
        if let Ok(c) = verified {
            if self.revocations.is_revoked(&c.jti, &c.sid) {
                return Ok(inactive);
            }
            let mut out = json!({
                "active": true,
                "token_type": "Bearer",
                "sub": c.sub,
                "iss": c.iss,
                "aud": c.aud,
                "exp": c.exp,
                "iat": c.iat,
                "jti": c.jti.to_string(),
                "sid": c.sid.to_string(),
                "tier": c.tier,
            });
            // A user's token dies with the user's account; a client's has no user.
            if let Some(uid) = c.user() {
                let user = self.cached_user(crate::domain::UserId(uid)).await?;
                let Some(user) = user.filter(|u| u.is_active) else {
                    return Ok(inactive);
                };
                out["username"] = json!(user.username.as_str());
            }
            if let Some(cid) = c.client_id {
                out["client_id"] = json!(cid);
            }
            if let Some(scope) = c.scope {
                out["scope"] = json!(scope);
            }
            if let Some(act) = c.act {
                out["act"] = act;
            }
            if let Some(cnf) = c.cnf {
                let proven = match dpop_proof.as_deref() {
                    Some(proof) => self
                        .check_forwarded_dpop_proof(proof, &token)
                        .await
                        .is_ok_and(|p| p.jkt == cnf.jkt),
                    None => false,
                };
                if !proven {
                    return Ok(inactive);
                }
                out["token_type"] = json!("DPoP");
                out["cnf"] = json!({"jkt": cnf.jkt});
            }
            return Ok(out);
        }
        if let Some((sid, generation)) = self.refresh.parse(&token) {
            let Some(link) = self.store.oauth_session(sid).await? else {
                return Ok(inactive);
            };
            if link.client_id != client.client_id {
                return Ok(inactive);
            }
            let Some(session) = self.store.session(sid).await? else {
                return Ok(inactive);
            };
            let now = Utc::now();
            let live = session.revoked_at.is_none()
                && session.generation == generation
                && now < session.refresh_expires_at
                && now < session.absolute_expires_at
                && !self.revocations.is_session_revoked(&sid);
            if !live {
                return Ok(inactive);
            }
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": link.client_id,
                "scope": link.scope.to_param(),
                "sub": session.user_id.0.to_string(),
                "sid": sid.to_string(),
                "exp": session.refresh_expires_at.timestamp(),
                "iat": session.rotated_at.unwrap_or(session.created_at).timestamp(),
            }));
        }
        Ok(inactive)
    }

    /// `POST /oauth2/revoke`: a refresh token ends its session; an access token is blocked
    /// until it expires. A token that is unknown or another client's is ignored (200, RFC
    /// 7009 §2.2).
    #[tracing::instrument(skip_all)]
    pub async fn revoke_token(
        &self,
        creds: ClientCredentials,
        token: Option<String>,
        ctx: &RequestContext,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        if let Some((sid, _)) = self.refresh.parse(&token) {
            if let Some(link) = self.store.oauth_session(sid).await? {
                if link.client_id == client.client_id {
                    let revoked = self.revoke(RevokeTarget::Session(sid)).await?;
                    self.audit_session_end(&revoked, &client.client_id, "revocation", ctx)
                        .await;
                }
            }
            return Ok(());
        }
        if let Ok(c) = self.tokens.verify(&token) {
            if c.client_id.as_deref() == Some(client.client_id.as_str()) {
                let until = DateTime::from_timestamp(c.exp, 0).unwrap_or_else(Utc::now)
                    + Duration::seconds(1);
                self.store.revoke_jti(c.jti, until).await?;
                self.revocations.insert(Revoked::Jti(c.jti), until);
                self.publish(Revoked::Jti(c.jti), until).await;
            }
        }
        Ok(())
    }

    async fn audit_session_end(
        &self,
        revoked: &[Uuid],
        client_id: &str,
        how: &str,
        ctx: &RequestContext,
    ) {
        for sid in revoked {
            if let Ok(Some(s)) = self.store.session(*sid).await {
                self.audit(
                    Audit::new(AuditKind::SessionRevoked)
                        .user(s.user_id)
                        .ctx(ctx)
                        .details(json!({"session_id": sid, "client_id": client_id, "by": how})),
                )
                .await;
            }
        }
    }

    /// Checks an `id_token_hint`: our signature and issuer; an expired one is accepted.
    pub fn read_id_token_hint(&self, hint: &str) -> Option<HintClaims> {
        let header = jsonwebtoken::decode_header(hint).ok()?;
        let (alg, key) = self.id_token_key(header.kid.as_deref()?)?;
        if header.alg != alg.algorithm() {
            return None;
        }
        let mut v = jsonwebtoken::Validation::new(alg.algorithm());
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_required_spec_claims(&["iss", "aud", "sub"]);
        v.set_issuer(&[self.config.oidc_issuer.as_str()]);
        let claims = jsonwebtoken::decode::<Value>(hint, &key, &v).ok()?.claims;
        let client_id = match &claims["aud"] {
            Value::String(s) => s.clone(),
            Value::Array(a) => a.first()?.as_str()?.to_string(),
            _ => return None,
        };
        Some(HintClaims {
            sid: claims["sid"].as_str().and_then(|s| Uuid::parse_str(s).ok()),
            client_id,
        })
    }

    /// `/oauth2/logout`: ends the session the ID token names (and `browser_sid`, the
    /// provider's own session in this browser), then sends the user back to a registered
    /// post-logout redirect URI, or to the signed-out page.
    #[tracing::instrument(skip_all)]
    pub async fn end_session(
        &self,
        hint: Option<&HintClaims>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
        browser_sid: Option<Uuid>,
        ctx: &RequestContext,
    ) -> Result<LoggedOut, String> {
        let client_id = match (hint, client_id) {
            (Some(h), Some(c)) if h.client_id != c => {
                return Err("client_id does not match the id_token_hint's audience".into())
            }
            (Some(h), _) => Some(h.client_id.clone()),
            (None, c) => c.map(str::to_string),
        };
        let client = match &client_id {
            Some(id) => Some(
                self.store
                    .client(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("The application is not registered.")?,
            ),
            None => None,
        };
        let redirect = match (post_logout_redirect_uri, &client) {
            (None, _) => None,
            (Some(_), None) => {
                return Err("post_logout_redirect_uri needs id_token_hint or client_id".into())
            }
            (Some(uri), Some(c)) => {
                if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                    return Err(
                        "post_logout_redirect_uri is not registered for this application".into(),
                    );
                }
                Some(uri.to_string())
            }
        };
        let mut ended = Vec::new();
        for sid in hint.and_then(|h| h.sid).into_iter().chain(browser_sid) {
            ended.extend(
                self.revoke(RevokeTarget::Session(sid))
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let client_name = client
            .as_ref()
            .map(|c| c.client_id.clone())
            .unwrap_or_default();
        self.audit_session_end(&ended, &client_name, "rp_logout", ctx)
            .await;
        Ok(match redirect {
            Some(uri) => {
                let mut url = url::Url::parse(&uri).map_err(|e| e.to_string())?;
                if let Some(s) = state {
                    url.query_pairs_mut().append_pair("state", s);
                }
                LoggedOut::Redirect(url.to_string())
            }
            None => LoggedOut::Page,
        })
    }
}
