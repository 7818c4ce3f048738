//! Token exchange (RFC 8693), down-scoping only: a confidential client presents a subject
//! token — one of tradeauth's access tokens, or a bearer API key — and gets an access
//! token that can do no more than the subject could, for no longer, and often less: a
//! narrower `scope`, a lower tier, another audience (RFC 8707 `resource`), and `act`
//! naming the client.
//!
//! What it must not do: widen anything. A scope the subject does not hold, a target
//! tradeauth does not issue for, a token type it does not make are refused, never
//! silently narrowed. The subject is checked as every token is (signature, expiry,
//! revocation, the account's state), so a revoked subject exchanges for nothing.

use super::token::TokenResponse;
use super::OAuthError;
use crate::domain::oauth::{scope_tier, token_tier, OAuthClient, Scopes, SCOPES};
use crate::domain::{AuditKind, Tier, UserId};
use crate::service::{Audit, Credential, Error, RequestContext, Service};
use crate::tokens::jwt::AccessClaims;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

/// `subject_token_type` / `requested_token_type` / `issued_token_type` of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `subject_token_type` of a bearer API key (tradeauth's own URN).
pub const API_KEY_TYPE: &str = "urn:tradeauth:params:token-type:api-key";

/// What the subject token could do.
struct Subject {
    sub: String,
    sid: Uuid,
    tier: Tier,
    scope: Scopes,
    /// When it stops working (`None`: an API key without expiry).
    exp: Option<i64>,
    act: Option<serde_json::Value>,
    /// A DPoP-bound subject's key: what is exchanged from it stays bound to that key.
    cnf: Option<crate::tokens::jwt::Confirmation>,
    user: Option<UserId>,
}

fn invalid_target(description: impl Into<String>) -> OAuthError {
    OAuthError::new(400, "invalid_target", description)
}

fn invalid_scope(description: impl Into<String>) -> OAuthError {
    OAuthError::new(400, "invalid_scope", description)
}

/// Every scope a native token or an API key of tier `tier` holds: the identity scopes
/// and the tier scopes up to its tier (never `offline_access`: an exchange issues no
/// refresh token).
fn scopes_of_tier(tier: Tier) -> Scopes {
    Scopes::from_iter(
        SCOPES
            .iter()
            .copied()
            .filter(|s| *s != "offline_access" && scope_tier(s).is_none_or(|t| t <= tier)),
    )
}

/// Whether `resource` is a target tradeauth issues for: an absolute `https` URI without
/// fragment (RFC 8707 §2), or `http` on a loopback address (local development).
fn acceptable_resource(resource: &str) -> Result<(), OAuthError> {
    let url = url::Url::parse(resource)
        .map_err(|_| invalid_target(format!("resource {resource:?} is not an absolute URI")))?;
    if url.fragment().is_some() {
        return Err(invalid_target(format!(
            "resource {resource:?} has a fragment, which RFC 8707 forbids"
        )));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(invalid_target(format!(
            "resource {resource:?} is not an https URI; tokens are issued for https services only"
        ))),
    }
}

impl Service {
    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
    pub(super) async fn exchange_grant(
        &self,
        client: &OAuthClient,
        p: super::TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let x = p.exchange;
        if x.actor_token.is_some() || x.actor_token_type.is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token is not supported: the actor is the authenticated client",
            ));
        }
        if let Some(t) = x.requested_token_type.as_deref() {
            if t != ACCESS_TOKEN_TYPE {
                return Err(OAuthError::invalid_request(format!(
                    "requested_token_type {t:?} is not issued; only {ACCESS_TOKEN_TYPE}"
                )));
            }
        }
        let token = x
            .subject_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("subject_token is missing"))?;
        let subject = match x.subject_token_type.as_deref() {
            None | Some("") => {
                return Err(OAuthError::invalid_request(
                    "subject_token_type is missing",
                ))
            }
            Some(ACCESS_TOKEN_TYPE) => self.access_subject(&token).await?,
            Some(API_KEY_TYPE) => self.api_key_subject(&token, ctx).await?,
            Some(other) => {
                return Err(OAuthError::invalid_request(format!(
                    "subject_token_type {other:?} is not supported; use {ACCESS_TOKEN_TYPE} or {API_KEY_TYPE}"
                )))
            }
        };
        // The audience: tradeauth's own (default), or the `resource` asked for.
        let own = self.tokens.audience().to_string();
        let aud = match (x.resource.as_deref(), x.audience.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "send resource or audience, not both",
                ))
            }
            (None, None) => own.clone(),
            (None, Some(a)) if a == own => own.clone(),
            (None, Some(a)) => {
                return Err(invalid_target(format!(
                    "audience {a:?} is unknown; name a service by its URI in resource"
                )))
            }
            (Some(r), None) if r == own => own.clone(),
            (Some(r), None) => {
                acceptable_resource(r)?;
                r.to_string()
            }
        };
        // The scope: what was asked, all of it held by the subject and allowed the client;
        // by default, what both hold.
        let allowed = subject.scope.intersect(&client.scopes);
        let scope = match p.scope.as_deref().filter(|s| !s.is_empty()) {
            None => allowed,
            Some(asked) => {
                let unknown: Vec<&str> = asked
                    .split(' ')
                    .filter(|s| !s.is_empty() && !SCOPES.contains(s))
                    .collect();
                if !unknown.is_empty() {
                    return Err(invalid_scope(format!(
                        "unknown scope {}",
                        unknown.join(" ")
                    )));
                }
                let asked = Scopes::parse(asked);
                let beyond = asked.missing_from(&subject.scope);
                if !beyond.is_empty() {
                    return Err(invalid_scope(format!(
                        "the subject token does not hold {} (it holds {:?}); an exchange only narrows",
                        beyond.to_param(),
                        subject.scope.to_param()
                    )));
                }
                let refused = asked.missing_from(&client.scopes);
                if !refused.is_empty() {
                    return Err(invalid_scope(format!(
                        "this client may not be granted {}",
                        refused.to_param()
                    )));
                }
                asked
            }
        };
        let tier = token_tier(subject.tier, client.max_tier, &scope);
        let now = Utc::now();
        let mut exp = (now + self.config.access_ttl).timestamp();
        if let Some(e) = subject.exp {
            exp = exp.min(e);
        }
        if exp <= now.timestamp() {
            return Err(OAuthError::invalid_request("the subject token has expired"));
        }
        let act = match subject.act {
            Some(prior) => json!({"sub": client.client_id, "act": prior}),
            None => json!({"sub": client.client_id}),
        };
        let scope_param = scope.to_param();
        let claims = AccessClaims {
            iss: String::new(),
            aud: aud.clone(),
            sub: subject.sub,
            sid: subject.sid,
            jti: Uuid::nil(),
            iat: now.timestamp(),
            exp,
            tier: tier.get(),
            role: tier.role().as_str().to_string(),
            client_id: Some(client.client_id.clone()),
            scope: Some(scope_param.clone()),
            act: Some(act),
            cnf: subject.cnf,
        };
        // A DPoP-bound subject's key binds what is exchanged from it too (the holder of
        // the narrower token must still prove that key).
        let dpop_bound = claims.cnf.is_some();
        let access_token = self
            .tokens
            .sign_exchanged(claims)
            .map_err(|e| OAuthError::from(Error::from(e)))?;
        self.audit(
            Audit::new(AuditKind::OAuthTokenExchanged)
                .user(subject.user)
                .ctx(ctx)
                .details(json!({
                    "client_id": client.client_id,
                    "subject_token_type": x.subject_token_type,
                    "sid": subject.sid,
                    "scope": scope_param,
                    "aud": aud,
                    "tier": tier.get(),
                })),
        )
        .await;
        Ok(TokenResponse {
            access_token,
            expires_in: exp - now.timestamp(),
            refresh_token: None,
            id_token: None,
            scope: scope_param,
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
            dpop_bound,
        })
    }

    /// A tradeauth access token as subject: verified, not revoked, its user active.
    async fn access_subject(&self, token: &str) -> Result<Subject, OAuthError> {
        let bad = |why: &str| {
            OAuthError::invalid_request(format!("the subject token is not usable: {why}"))
        };
        let claims = match self.tokens.verify(token) {
            Ok(c) => c,
            Err(crate::tokens::jwt::TokenError::Expired) => return Err(bad("it has expired")),
            Err(_) => {
                return Err(bad(
                    "it is not a valid tradeauth access token for tradeauth's audience",
                ))
            }
        };
        if self.revocations.is_revoked(&claims.jti, &claims.sid) {
            return Err(bad("it has been revoked"));
        }
        let user = claims.user().map(UserId);
        if let Some(uid) = user {
            let active = self.cached_user(uid).await?.is_some_and(|u| u.is_active);
            if !active {
                return Err(bad("its account is disabled or gone"));
            }
        }
        let tier = Tier::new(claims.tier as i64).map_err(|_| bad("its tier is unknown"))?;
        let scope = match &claims.scope {
            // An OAuth token holds what it was granted.
            Some(s) => Scopes::parse(s).missing_from(&Scopes::parse("offline_access")),
            // A native token acts fully for its user, up to its tier.
            None => scopes_of_tier(tier),
        };
        Ok(Subject {
            sub: claims.sub,
            sid: claims.sid,
            tier,
            scope,
            exp: Some(claims.exp),
            act: claims.act,
            cnf: claims.cnf,
            user,
        })
    }

    /// A bearer API key as subject: every rule of a key (expiry, revocation, owner state,
    /// `allowed_ips` against the client's address). The new token carries the key's id as
    /// its `sid`, so revoking the key revokes what was exchanged from it.
    async fn api_key_subject(
        &self,
        key: &str,
        ctx: &RequestContext,
    ) -> Result<Subject, OAuthError> {
        let caller = match self.check_api_key(key, ctx.ip).await {
            Ok(c) => c,
            Err(Error::InvalidApiKey) => {
                return Err(OAuthError::invalid_request(
                    "the subject token is not a valid, live bearer API key",
                ))
            }
            Err(Error::IpNotAllowed) => {
                return Err(OAuthError::invalid_request(
                    "the API key may not be used from this address",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let Credential::ApiKey { key_id } = caller.credential else {
            return Err(OAuthError::invalid_request(
                "the subject token is not an API key",
            ));
        };
        let expires = self
            .store
            .api_key_with_owner(
                crate::tokens::apikey::parse(key)
                    .map(|p| p.public_id)
                    .ok_or_else(|| OAuthError::invalid_request("malformed API key"))?,
            )
            .await?
            .and_then(|(record, _)| record.expires_at);
        Ok(Subject {
            sub: caller.user_id.0.to_string(),
            sid: key_id,
            tier: caller.tier,
            scope: scopes_of_tier(caller.tier),
            exp: expires.map(|t| t.timestamp()),
            act: None,
            cnf: None,
            user: Some(caller.user_id),
        })
    }
}

impl Service {
    /// Revokes what was exchanged from `user`'s API keys (their ids are those tokens'
    /// `sid`s): when the account is disabled, deleted or loses tier, as its sessions are.
    pub(crate) async fn end_key_exchanges(&self, user: UserId) -> crate::service::Result<()> {
        let keys = self
            .store
            .list_api_keys(
                user,
                crate::store::Page {
                    after: None,
                    limit: 10_000,
                },
            )
            .await?;
        let until = self.sid_revocation_until(Utc::now());
        for key in keys {
            let what = crate::store::Revoked::Sid(key.id);
            self.store.revoke_sid(key.id, until).await?;
            self.revocations.insert(what, until);
            self.publish(what, until).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_https_or_loopback_uris_without_fragment() {
        assert!(acceptable_resource("https://orders.example/api").is_ok());
        assert!(acceptable_resource("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "orders",
            "http://orders.example/",
            "https://orders.example/#x",
            "ftp://x.example/",
        ] {
            assert_eq!(
                acceptable_resource(bad).unwrap_err().error,
                "invalid_target"
            );
        }
    }

    #[test]
    fn a_tier_holds_its_tier_scopes_and_the_identity_ones() {
        assert_eq!(
            scopes_of_tier(Tier::TRADER).to_param(),
            "openid profile email trade:read trade:write"
        );
    }
}
