//! The authorization request (`/oauth2/authorize`): checking it, sending the user to sign
//! in and to the consent page (the answer and the code: `consent`; a `request_uri`:
//! `par`).
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

use crate::domain::oauth::{
    scope_description, valid_code_challenge, GrantType, OAuthClient, Scopes,
};
use crate::service::{Caller, RequestContext, Service};
use chrono::{TimeDelta, Utc};
use serde::{Deserialize, Serialize};

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
    /// The thumbprint of the DPoP key the code is bound to (RFC 9449 §10); set by a
    /// proof sent to `/oauth2/par`, or sent here.
    pub dpop_jkt: Option<String>,
    /// The request came from `/oauth2/par` (RFC 9126). Set by the server only: a query or
    /// form gives strings, which `only_true` never reads as `true`; a sealed request
    /// keeps it.
    #[serde(
        default,
        deserialize_with = "only_true",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub pushed: bool,
}

/// A JSON `true` is true; anything else (a string from a query) is false.
fn only_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_bool() == Some(true))
}

/// A request checked against its client.
pub(super) struct Checked {
    pub(super) client: OAuthClient,
    pub(super) redirect_uri: String,
    /// Known scopes asked for that the client may have, within its `max_tier`.
    pub(super) scope: Scopes,
    pub(super) state: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) code_challenge: String,
    pub(super) prompt_none: bool,
    pub(super) prompt_login: bool,
    pub(super) prompt_consent: bool,
    pub(super) max_age: Option<i64>,
    pub(super) dpop_jkt: Option<String>,
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
    pub(super) params: AuthorizeParams,
    /// When the request was first made (epoch seconds).
    pub(super) requested_at: i64,
    /// On the consent form: the user it was shown to.
    pub(super) user: Option<uuid::Uuid>,
}

/// `base` with `pairs` added to its query.
pub(super) fn with_query(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
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
    pub(super) fn error_redirect(
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
    pub(super) async fn check_authorize(
        &self,
        p: &AuthorizeParams,
    ) -> Result<Checked, AuthorizeError> {
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
                "a request_uri must be one /oauth2/par issued",
            );
        }
        if client.fapi.require_par && !p.pushed {
            return fail(
                "invalid_request",
                "this client must push its authorization requests to /oauth2/par (RFC 9126) \
                 and send only client_id and request_uri here",
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
        let dpop_jkt = p.dpop_jkt.clone().filter(|j| !j.is_empty());
        if dpop_jkt
            .as_deref()
            .is_some_and(|j| !valid_code_challenge(j))
        {
            // A thumbprint has the shape of an S256 challenge: 43 base64url characters.
            return fail(
                "invalid_request",
                "dpop_jkt is not a JWK SHA-256 thumbprint (43 base64url characters)",
            );
        }
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
            dpop_jkt,
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
        let params = self.resolve_request_uri(params).await?;
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
        let amr = self
            .sign_in_amr(caller, &user)
            .await
            .map_err(server_error)?;
        let url = self
            .issue_code(&c, &user, scope, (auth_time, amr), ctx)
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

    pub(super) fn unseal_pending(&self, ticket: &str) -> Option<Pending> {
        let bytes = self.unseal(TICKET, ticket)?;
        serde_json::from_slice(&bytes).ok()
    }
}
