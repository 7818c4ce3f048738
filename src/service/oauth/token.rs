//! The token endpoint's grants (`authorization_code`, `refresh_token`,
//! `client_credentials`), ID tokens, userinfo and the user's grants.
//!
//! A code exchange starts a session (see the module above): its access tokens are the
//! native ones plus `client_id` and `scope`, with the tier clamped by the user's tier, the
//! client's `max_tier` and the tier scopes granted; its refresh token (only with
//! `offline_access`) is the native one, so rotation, the grace window and reuse detection
//! are the native refresh's, bound here to the client.

use super::bound::bound_refresh;
use super::client_auth::ClientCredentials;
use super::{hash, OAuthError};
use crate::domain::oauth::{token_tier, ClientType, GrantType, OAuthClient, Scopes};
use crate::domain::session::refresh_expiry;
use crate::domain::{AuditKind, Session, User};
use crate::service::{Audit, Error, RequestContext, Service};
use crate::store::oauth::{OAuthSessionLink, Redemption};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// The form of a token request, and the client credentials that came with it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    /// The `DPoP` header (RFC 9449), not a form field.
    #[serde(skip)]
    pub dpop_proof: Option<String>,
    /// The thumbprint of its key, once the proof is checked: what the tokens bind to.
    #[serde(skip)]
    pub dpop_jkt: Option<String>,
    /// Token exchange (RFC 8693 §2.1; `exchange.rs`).
    #[serde(flatten)]
    pub exchange: ExchangeParams,
    /// The device grant's `device_code` (RFC 8628 §3.4; `device.rs`).
    pub device_code: Option<String>,
}

/// The token-exchange parameters of a token request (RFC 8693 §2.1).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ExchangeParams {
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    /// RFC 8707: the absolute URI of the service the token is for (its `aud`).
    pub resource: Option<String>,
    /// A logical audience name: only tradeauth's own audience is accepted.
    pub audience: Option<String>,
}

/// A successful token response (RFC 6749 §5.1). No `Debug`: it holds tokens.
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: String,
    /// Token exchange's `issued_token_type` (RFC 8693 §2.2.1).
    pub issued_token_type: Option<&'static str>,
    /// The access token is bound to a DPoP key (`token_type: "DPoP"`).
    pub dpop_bound: bool,
}

/// The session id every client-credentials token of `client_id` carries, so revoking it
/// (when the client is deleted) ends them all at once, on every instance.
pub(crate) fn client_sid(client_id: &str) -> Uuid {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("tradeauth client-credentials {client_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The lifetime of an ID token: at least 5 minutes, however short access tokens are.
fn id_token_ttl(access: TimeDelta) -> TimeDelta {
    access.max(TimeDelta::minutes(5))
}

/// The claims of `scope` about `user` (OpenID Connect Core §5.4).
pub(super) fn scope_claims(user: &User, scope: &Scopes, into: &mut serde_json::Map<String, Value>) {
    if scope.contains("profile") {
        let name = user
            .full_name
            .as_ref()
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| user.username.as_str().to_string());
        into.insert("name".into(), json!(name));
        into.insert("preferred_username".into(), json!(user.username.as_str()));
    }
    if scope.contains("email") {
        into.insert("email".into(), json!(user.email.as_str()));
        into.insert("email_verified".into(), json!(user.is_verified));
    }
}

impl Service {
    /// `POST /oauth2/token`.
    #[tracing::instrument(skip_all)]
    pub async fn token_grant(
        &self,
        mut params: TokenParams,
        creds: ClientCredentials,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = match params.grant_type.as_deref() {
            None | Some("") => return Err(OAuthError::invalid_request("grant_type is missing")),
            Some(g) => GrantType::parse(g).ok_or_else(|| {
                OAuthError::new(
                    400,
                    "unsupported_grant_type",
                    format!("grant_type {g:?} is not supported"),
                )
            })?,
        };
        let client = self.authenticate_client(&creds).await?;
        if !client.allows(grant) {
            return Err(OAuthError::new(
                400,
                "unauthorized_client",
                format!(
                    "this client is not registered for the {} grant",
                    grant.as_str()
                ),
            ));
        }
        params.dpop_jkt = self
            .endpoint_dpop(&client, params.dpop_proof.as_deref(), "/oauth2/token")
            .await?;
        match grant {
            GrantType::AuthorizationCode => self.exchange_code(&client, params, ctx).await,
            GrantType::RefreshToken => self.refresh_grant(&client, params, ctx).await,
            GrantType::ClientCredentials => self.client_grant(&client, params, ctx).await,
            GrantType::TokenExchange => self.exchange_grant(&client, params, ctx).await,
            GrantType::DeviceCode => self.device_grant(&client, params, ctx).await,
        }
    }

    async fn exchange_code(
        &self,
        client: &OAuthClient,
        p: TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let code = p
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
        let verifier = p.code_verifier.filter(|v| !v.is_empty()).ok_or_else(|| {
            OAuthError::invalid_request("code_verifier is missing (PKCE is required)")
        })?;
        let now = Utc::now();
        let sid = Uuid::now_v7();
        let code = match self.store.redeem_code(&hash(&code), now, sid).await? {
            Redemption::Unknown => {
                return Err(OAuthError::invalid_grant(
                    "the code is unknown or has expired",
                ))
            }
            Redemption::Reused { issued_sid } => {
                let mut revoked = Vec::new();
                if let Some(sid) = issued_sid {
                    revoked = self
                        .revoke(crate::store::RevokeTarget::Session(sid))
                        .await
                        .map_err(OAuthError::from)?;
                }
                self.audit(
                    Audit::new(AuditKind::OAuthCodeReused)
                        .ctx(ctx)
                        .details(json!({"client_id": client.client_id, "sessions": revoked})),
                )
                .await;
                return Err(OAuthError::invalid_grant(
                    "the code was already used; the tokens issued with it are revoked",
                ));
            }
            Redemption::Redeemed(code) => *code,
        };
        if code.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if let Some(bound) = code.dpop_jkt.as_deref() {
            if p.dpop_jkt.as_deref() != Some(bound) {
                return Err(OAuthError::new(
                    400,
                    "invalid_dpop_proof",
                    "the code is bound to a DPoP key (dpop_jkt): the exchange needs a proof by it",
                ));
            }
        }
        if p.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the one of the authorization request",
            ));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        if !crate::domain::oauth::valid_code_verifier(&verifier)
            || B64.encode(digest.as_ref()) != code.code_challenge
        {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge (S256)",
            ));
        }
        let user = self
            .store
            .user_by_id(code.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or_else(|| OAuthError::invalid_grant("the account is disabled or gone"))?;
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
            scope: code.scope.clone(),
            auth_time: code.auth_time,
            amr: code.amr.clone(),
            dpop_jkt: p.dpop_jkt.clone(),
        };
        self.store.insert_oauth_session(&session, &link).await?;
        let response = self.oauth_tokens(
            client,
            &user,
            &session,
            &link,
            code.nonce.as_deref(),
            true,
            now,
        )?;
        self.audit(
            Audit::new(AuditKind::OAuthTokenIssued)
                .user(user.id)
                .ctx(ctx)
                .details(json!({
                    "client_id": client.client_id,
                    "grant_type": "authorization_code",
                    "session_id": sid,
                    "scope": link.scope.to_param(),
                    "dpop_jkt": link.dpop_jkt,
                })),
        )
        .await;
        Ok(response)
    }

    /// The tokens of an OAuth session: the access token, the refresh token (with
    /// `offline_access`), and the ID token (with `openid`; `with_id_token`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn oauth_tokens(
        &self,
        client: &OAuthClient,
        user: &User,
        session: &Session,
        link: &OAuthSessionLink,
        nonce: Option<&str>,
        with_id_token: bool,
        now: DateTime<Utc>,
    ) -> Result<TokenResponse, OAuthError> {
        let scope = link.scope.within_tier(user.tier);
        let tier = token_tier(user.tier, client.max_tier, &scope);
        let exp = now + self.config.access_ttl;
        let scope_param = scope.to_param();
        let (access_token, _) = self
            .tokens
            .sign_oauth(
                user.id.0.to_string(),
                session.id,
                tier,
                now,
                exp,
                (&client.client_id, &scope_param),
                link.dpop_jkt.as_deref(),
            )
            .map_err(|e| OAuthError::from(Error::from(e)))?;
        let refresh_token = (scope.contains("offline_access")
            && client.allows(GrantType::RefreshToken))
        .then(|| self.refresh.issue(session.id, session.generation));
        let id_token = if with_id_token && scope.contains("openid") {
            let mut claims = serde_json::Map::new();
            claims.insert("iss".into(), json!(self.config.oidc_issuer));
            claims.insert("sub".into(), json!(user.id.0.to_string()));
            claims.insert("aud".into(), json!(client.client_id));
            claims.insert("azp".into(), json!(client.client_id));
            claims.insert("iat".into(), json!(now.timestamp()));
            claims.insert(
                "exp".into(),
                json!((now + id_token_ttl(self.config.access_ttl)).timestamp()),
            );
            claims.insert("auth_time".into(), json!(link.auth_time.timestamp()));
            claims.insert("sid".into(), json!(session.id.to_string()));
            claims.insert("amr".into(), json!(link.amr));
            if let Some(n) = nonce {
                claims.insert("nonce".into(), json!(n));
            }
            scope_claims(user, &scope, &mut claims);
            Some(self.sign_id_token(&client.id_token_alg, &Value::Object(claims))?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token,
            expires_in: exp.timestamp() - now.timestamp(),
            refresh_token,
            id_token,
            scope: scope_param,
            issued_token_type: None,
            dpop_bound: link.dpop_jkt.is_some(),
        })
    }

    async fn refresh_grant(
        &self,
        client: &OAuthClient,
        p: TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        let token = p
            .refresh_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
        let unknown =
            || OAuthError::invalid_grant("the refresh token is unknown, expired or revoked");
        let (sid, _) = self.refresh.parse(&token).ok_or_else(unknown)?;
        let link = self.store.oauth_session(sid).await?.ok_or_else(unknown)?;
        if link.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if !link.scope.contains("offline_access") {
            return Err(unknown());
        }
        let mut link = bound_refresh(link, p.dpop_jkt.as_deref())?;
        // A narrower scope may be asked for (RFC 6749 §6); never a wider one.
        if let Some(asked) = p.scope.as_deref().filter(|s| !s.is_empty()) {
            let asked = Scopes::parse(asked);
            if !asked.missing_from(&link.scope).is_empty() {
                return Err(OAuthError::new(
                    400,
                    "invalid_scope",
                    format!(
                        "the scope asked for goes beyond the one granted ({})",
                        link.scope.to_param()
                    ),
                ));
            }
            link.scope = asked.union(&Scopes::parse("offline_access"));
        }
        let issued = match self.rotate_refresh(&token, true, ctx).await {
            Ok(issued) => issued,
            Err(Error::RefreshTokenReused) => {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was already used; the session is revoked",
                ))
            }
            Err(Error::InvalidRefreshToken | Error::AccountDisabled) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let session = self.store.session(sid).await?.ok_or_else(unknown)?;
        let now = Utc::now();
        let mut response =
            self.oauth_tokens(client, &issued.user, &session, &link, None, true, now)?;
        // The refresh token the native rotation handed out (the current one, also on a
        // grace-window retry).
        response.refresh_token = Some(issued.refresh_token);
        Ok(response)
    }

    /// `client_credentials`: a token for the client itself (`sub` = `client_id`, no user,
    /// the client's `max_tier`), with the tier scopes asked for that it may have.
    async fn client_grant(
        &self,
        client: &OAuthClient,
        p: TokenParams,
        ctx: &RequestContext,
    ) -> Result<TokenResponse, OAuthError> {
        if client.client_type != ClientType::Confidential {
            return Err(OAuthError::new(
                400,
                "unauthorized_client",
                "client_credentials is for confidential clients only",
            ));
        }
        let allowed = Scopes::from_iter(
            client
                .scopes
                .within_tier(client.max_tier)
                .iter()
                .filter(|s| crate::domain::oauth::scope_tier(s).is_some()),
        );
        let scope = match p.scope.as_deref().filter(|s| !s.is_empty()) {
            Some(asked) => Scopes::parse(asked).intersect(&allowed),
            None => allowed,
        };
        let now = Utc::now();
        let exp = now + self.config.access_ttl;
        let scope_param = scope.to_param();
        let (access_token, _) = self
            .tokens
            .sign_oauth(
                client.client_id.clone(),
                client_sid(&client.client_id),
                client.max_tier,
                now,
                exp,
                (&client.client_id, &scope_param),
                p.dpop_jkt.as_deref(),
            )
            .map_err(|e| OAuthError::from(Error::from(e)))?;
        self.audit(
            Audit::new(AuditKind::OAuthTokenIssued)
                .ctx(ctx)
                .details(json!({
                    "client_id": client.client_id,
                    "grant_type": "client_credentials",
                    "scope": scope_param,
                    "dpop_jkt": p.dpop_jkt,
                })),
        )
        .await;
        Ok(TokenResponse {
            access_token,
            expires_in: exp.timestamp() - now.timestamp(),
            refresh_token: None,
            id_token: None,
            scope: scope_param,
            issued_token_type: None,
            dpop_bound: p.dpop_jkt.is_some(),
        })
    }
}
