//! The authorization request (`/oauth2/authorize`): checking it, sending the user to sign
//! in, asking consent, and issuing the code.
//!
//! An unknown client or a redirect URI that is not registered is an error *page*
//! ([`AuthorizeError::Page`]): redirecting there would make tradeauth an open redirector.
//! Every later error goes back to the client with `error`, `error_description`, `state`
//! and `iss` (RFC 9207).
//!
//! While the user signs in or reads the consent page, the request travels sealed
//! ([`Pending`], AES-GCM with the page seal key, 10 minutes) — in `return_to` of the login
//! page and in the consent form — with the moment it was made, so `prompt=login` and
//! `max_age` can tell a sign-in that happened *after* the request from an older one
//! without ever looping.

use super::{hash, random_token};
use crate::domain::oauth::{
    scope_description, valid_code_challenge, GrantType, OAuthClient, Scopes,
};
use crate::domain::AuditKind;
use crate::service::{Audit, Caller, RequestContext, Service};
use crate::store::oauth::{AuthCode, Consent};
use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

const TICKET: &str = "oauth-authorize";
/// How long a code lives (API.md: 60 s).
pub const CODE_TTL: TimeDelta = TimeDelta::seconds(60);

/// The parameters of an authorization request, as sent (query or form).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub response_mode: Option<String>,
}

/// A request checked against its client.
struct Checked {
    client: OAuthClient,
    redirect_uri: String,
    /// Known scopes asked for that the client may have, within its `max_tier`.
    scope: Scopes,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    max_age: Option<i64>,
}

/// Why the request cannot go on.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// Shown on an error page, never sent to the client: the message says what is wrong.
    Page(String),
    /// Back to the client: the full URL, with `error`, `error_description`, `state`, `iss`.
    Redirect(String),
}

/// What happens next.
#[derive(Debug, Clone)]
pub enum Authorized {
    /// Back to the client with the code: the full URL.
    Redirect(String),
    /// The user signs in first, then comes back to `return_to`; `force`: even with a live
    /// session (`prompt=login`, `max_age`).
    Login {
        return_to: String,
        login_hint: Option<String>,
        force: bool,
    },
    /// The user is asked; the consent form posts `ticket` back.
    Consent {
        client_name: String,
        /// Each scope and what it means, in words.
        scopes: Vec<(String, &'static str)>,
        ticket: String,
        /// Where "Allow" leads (the page's `form-action` must allow it).
        redirect_uri: String,
    },
}

/// A request waiting for the user, sealed. No `Debug` needed.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    params: AuthorizeParams,
    /// When the request was first made (epoch seconds).
    requested_at: i64,
    /// On the consent form: the user it was shown to.
    user: Option<uuid::Uuid>,
}

/// `base` with `pairs` added to its query.
fn with_query(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            url.to_string()
        }
        Err(_) => base.to_string(),
    }
}

impl Service {
    /// The client's error redirect.
    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &str,
        description: &str,
    ) -> AuthorizeError {
        AuthorizeError::Redirect(with_query(
            redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", state),
                ("iss", Some(self.config.oidc_issuer.as_str())),
            ],
        ))
    }

    /// Checks the request against its client. Nothing is redirected until the client and
    /// the redirect URI are known to match.
    async fn check_authorize(&self, p: &AuthorizeParams) -> Result<Checked, AuthorizeError> {
        let page = |m: &str| Err(AuthorizeError::Page(m.to_string()));
        let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return page("The request has no client_id.");
        };
        let client = match self.store.client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return page("The application that sent you here is not registered."),
            Err(e) => {
                tracing::error!(error = %e, "client lookup failed");
                return page("The request could not be checked; try again shortly.");
            }
        };
        let redirect_uri = match p.redirect_uri.as_deref() {
            Some(uri) => match client.redirect_uri(uri) {
                Some(_) => uri.to_string(),
                None => {
                    return page(
                        "The redirect_uri does not match any that this application registered.",
                    )
                }
            },
            None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
            None => return page("The request has no redirect_uri."),
        };
        let state = p.state.clone();
        let fail = |error: &str, description: &str| {
            Err(self.error_redirect(&redirect_uri, state.as_deref(), error, description))
        };
        if p.request.is_some() {
            return fail(
                "request_not_supported",
                "the request parameter (request objects) is not supported",
            );
        }
        if p.request_uri.is_some() {
            return fail(
                "request_uri_not_supported",
                "the request_uri parameter is not supported",
            );
        }
        match p.response_type.as_deref() {
            None | Some("") => return fail("invalid_request", "response_type is missing"),
            Some("code") => {}
            Some(other) => {
                return fail(
                    "unsupported_response_type",
                    &format!("response_type {other:?} is not supported; use \"code\""),
                )
            }
        }
        if let Some(mode) = p.response_mode.as_deref().filter(|m| *m != "query") {
            return fail(
                "invalid_request",
                &format!("response_mode {mode:?} is not supported; use \"query\""),
            );
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return fail(
                "unauthorized_client",
                "this client is not registered for the authorization_code grant",
            );
        }
        let Some(challenge) = p.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
            return fail(
                "invalid_request",
                "PKCE is required: code_challenge is missing",
            );
        };
        match p.code_challenge_method.as_deref() {
            Some("S256") => {}
            None => {
                return fail(
                    "invalid_request",
                    "code_challenge_method is missing; it must be S256",
                )
            }
            Some(other) => {
                return fail(
                    "invalid_request",
                    &format!("code_challenge_method {other:?} is not allowed; it must be S256"),
                )
            }
        }
        if !valid_code_challenge(challenge) {
            return fail(
                "invalid_request",
                "code_challenge is not an S256 challenge (43 base64url characters)",
            );
        }
        let prompts: Vec<&str> = p
            .prompt
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(unknown) = prompts
            .iter()
            .find(|v| !matches!(**v, "none" | "login" | "consent" | "select_account"))
        {
            return fail(
                "invalid_request",
                &format!("prompt {unknown:?} is not supported"),
            );
        }
        let prompt_none = prompts.contains(&"none");
        if prompt_none && prompts.len() > 1 {
            return fail(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            );
        }
        let max_age = match p.max_age.as_deref() {
            None | Some("") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return fail("invalid_request", "max_age must be a number of seconds"),
            },
        };
        let scope = Scopes::parse(p.scope.as_deref().unwrap_or(""))
            .intersect(&client.scopes)
            .within_tier(client.max_tier);
        Ok(Checked {
            redirect_uri,
            scope,
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: challenge.to_string(),
            prompt_none,
            prompt_login: prompts.contains(&"login"),
            prompt_consent: prompts.contains(&"consent"),
            max_age,
            client,
        })
    }

    /// An authorization request from `caller` (the browser's session, if any).
    /// `requested_at`: when a request sealed earlier (login, consent) was first made.
    #[tracing::instrument(skip_all)]
    pub async fn authorize(
        &self,
        params: AuthorizeParams,
        requested_at: Option<i64>,
        caller: Option<&Caller>,
        ctx: &RequestContext,
    ) -> Result<Authorized, AuthorizeError> {
        let c = self.check_authorize(&params).await?;
        let now = Utc::now();
        let requested_at = requested_at.unwrap_or(now.timestamp());
        let fail = |error: &str, description: &str| {
            Err(self.error_redirect(&c.redirect_uri, c.state.as_deref(), error, description))
        };
        let server_error = |e: crate::service::Error| {
            tracing::error!(error = %e, "authorization failed");
            self.error_redirect(
                &c.redirect_uri,
                c.state.as_deref(),
                "server_error",
                "the request could not be completed; try again",
            )
        };
        // Who is signed in, and since when.
        let mut signed_in = None;
        if let Some(caller) = caller {
            if let Some(sid) = caller.session_id() {
                // When the session last proved a password or passkey (its sign-in, or a
                // later re-authentication).
                if let Some(at) = self
                    .store
                    .session_authenticated_at(sid)
                    .await
                    .map_err(|e| server_error(e.into()))?
                {
                    signed_in = Some((caller, at));
                }
            }
        }
        let needs_login = match signed_in {
            None => true,
            Some((_, auth_time)) => {
                (c.prompt_login && auth_time.timestamp() < requested_at)
                    || c.max_age
                        .is_some_and(|m| (now - auth_time).num_seconds() > m)
            }
        };
        if needs_login {
            if c.prompt_none {
                return fail("login_required", "the user is not signed in (prompt=none)");
            }
            let ticket = self.seal_pending(&Pending {
                params: params.clone(),
                requested_at,
                user: None,
            });
            return Ok(Authorized::Login {
                return_to: format!("/oauth2/authorize/continue?ticket={ticket}"),
                login_hint: params.login_hint.clone(),
                force: signed_in.is_some(),
            });
        }
        let (caller, auth_time) = signed_in.expect("checked above");
        let user = self.user(caller.user_id).await.map_err(server_error)?;
        if !user.is_active {
            return fail("access_denied", "the account is disabled");
        }
        let scope = c.scope.within_tier(user.tier);
        if !c.client.first_party {
            let consent = self
                .store
                .consent(user.id, &c.client.client_id)
                .await
                .map_err(|e| server_error(e.into()))?;
            let granted = consent.map(|k| k.scopes).unwrap_or_default();
            let missing = scope.missing_from(&granted);
            if c.prompt_consent || !missing.is_empty() {
                if c.prompt_none {
                    return fail(
                        "consent_required",
                        "the user has not yet allowed this application (prompt=none)",
                    );
                }
                let ticket = self.seal_pending(&Pending {
                    params,
                    requested_at,
                    user: Some(user.id.0),
                });
                return Ok(Authorized::Consent {
                    client_name: c.client.name.clone(),
                    scopes: scope
                        .iter()
                        .map(|s| (s.to_string(), scope_description(s)))
                        .collect(),
                    ticket,
                    redirect_uri: c.redirect_uri.clone(),
                });
            }
        }
        let url = self
            .issue_code(&c, &user, scope, auth_time, ctx)
            .await
            .map_err(server_error)?;
        Ok(Authorized::Redirect(url))
    }

    /// The sealed request of the login return path or the consent form, if intact.
    pub fn open_pending(&self, ticket: &str) -> Option<(AuthorizeParams, i64)> {
        let p = self.unseal_pending(ticket)?;
        Some((p.params, p.requested_at))
    }

    fn seal_pending(&self, p: &Pending) -> String {
        let bytes = serde_json::to_vec(p).unwrap_or_default();
        self.seal(TICKET, TimeDelta::minutes(10), &bytes)
    }

    fn unseal_pending(&self, ticket: &str) -> Option<Pending> {
        let bytes = self.unseal(TICKET, ticket)?;
        serde_json::from_slice(&bytes).ok()
    }

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
        self.issue_code(&c, &user, scope, auth_time, ctx)
            .await
            .map_err(server_error)
    }

    /// Stores a code for the request and answers the client's redirect URL with it.
    async fn issue_code(
        &self,
        c: &Checked,
        user: &crate::domain::User,
        scope: Scopes,
        auth_time: chrono::DateTime<Utc>,
        _ctx: &RequestContext,
    ) -> crate::service::Result<String> {
        let code = random_token(32);
        let now = Utc::now();
        let amr = if user.mfa_enabled {
            vec!["pwd".to_string(), "otp".to_string(), "mfa".to_string()]
        } else {
            vec!["pwd".to_string()]
        };
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
