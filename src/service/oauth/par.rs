//! Pushed authorization requests (RFC 9126): `/oauth2/par` takes an authorization
//! request from an authenticated client, checks it as `/oauth2/authorize` would, and
//! answers a `request_uri` (`urn:ietf:params:oauth:request_uri:…`) that `/oauth2/authorize`
//! redeems once, within 60 s, on any instance (the request is stored in the database, by
//! the hash of its `request_uri`).
//!
//! At `/oauth2/authorize` a `request_uri` replaces every other parameter but `client_id`,
//! which must match (RFC 9126 §4). A client registered with
//! `require_pushed_authorization_requests` can use nothing else (§6): its plain requests
//! go back with `invalid_request`.

use super::authorize::{AuthorizeError, AuthorizeParams};
use super::client_auth::ClientCredentials;
use super::{hash, random_token, OAuthError};
use crate::service::Service;
use crate::store::oauth::PushedRequest;
use chrono::{TimeDelta, Utc};

/// The `request_uri` prefix (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a `request_uri` can be used.
pub const PAR_TTL: TimeDelta = TimeDelta::seconds(60);

/// The answer of `/oauth2/par` (RFC 9126 §2.2).
#[derive(Debug, Clone)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

impl Service {
    /// `POST /oauth2/par`: authenticates the client, checks the request, stores it.
    #[tracing::instrument(skip_all)]
    /// `dpop`: a DPoP proof sent along binds the code to its key (RFC 9449 §10).
    pub async fn push_authorization_request(
        &self,
        creds: ClientCredentials,
        mut params: AuthorizeParams,
        dpop: Option<&str>,
    ) -> Result<Pushed, OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        if let Some(proof) = dpop {
            let jkt = self
                .endpoint_dpop(&client, Some(proof), "/oauth2/par")
                .await?;
            if params.dpop_jkt.is_some() && params.dpop_jkt != jkt {
                return Err(OAuthError::new(
                    400,
                    "invalid_dpop_proof",
                    "dpop_jkt is not the thumbprint of the DPoP proof's key",
                ));
            }
            params.dpop_jkt = jkt;
        }
        if params.request_uri.is_some() {
            return Err(OAuthError::invalid_request(
                "request_uri cannot be pushed (RFC 9126 §2.1)",
            ));
        }
        match params.client_id.as_deref() {
            Some(id) if id != client.client_id => {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the client that authenticated",
                ))
            }
            _ => params.client_id = Some(client.client_id.clone()),
        }
        params.pushed = true;
        // The checks of /oauth2/authorize, answered here (§2.3).
        if let Err(e) = self.check_authorize(&params).await {
            return Err(refusal(e));
        }
        let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token(32));
        let now = Utc::now();
        let stored = serde_json::to_string(&params)
            .map_err(|e| OAuthError::from(crate::service::Error::Internal(e.to_string())))?;
        self.store
            .insert_par(&PushedRequest {
                hash: hash(&request_uri),
                client_id: client.client_id,
                params: stored,
                created_at: now,
                expires_at: now + PAR_TTL,
            })
            .await?;
        Ok(Pushed {
            request_uri,
            expires_in: PAR_TTL.num_seconds(),
        })
    }

    /// An authorization request with a `request_uri`: the pushed request it names, used
    /// up. Without one, the request as it came.
    pub(super) async fn resolve_request_uri(
        &self,
        params: AuthorizeParams,
    ) -> Result<AuthorizeParams, AuthorizeError> {
        let Some(uri) = params.request_uri.as_deref() else {
            return Ok(params);
        };
        // Not ours (a request object's URI, RFC 9101): refused, once the client and its
        // redirect URI are known, with `request_uri_not_supported`.
        if !uri.starts_with(REQUEST_URI_PREFIX) {
            return Ok(params);
        }
        let page = |m: &str| Err(AuthorizeError::Page(m.to_string()));
        let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return page("The request has a request_uri but no client_id.");
        };
        let found = match self.store.redeem_par(&hash(uri), Utc::now()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "request_uri lookup failed");
                return page("The request could not be checked; try again shortly.");
            }
        };
        let Some(found) = found else {
            return page(
                "The request_uri is unknown, expired (60 s) or already used. \
                 Go back to the application and start again.",
            );
        };
        if found.client_id != client_id {
            return page("The request_uri was issued to another application.");
        }
        let mut pushed: AuthorizeParams = match serde_json::from_str(&found.params) {
            Ok(p) => p,
            Err(_) => return page("The pushed request could not be read."),
        };
        pushed.request_uri = None;
        pushed.pushed = true;
        Ok(pushed)
    }
}

/// A refusal of `/oauth2/authorize`, as `/oauth2/par` answers it: the error the client
/// would have read from the redirect, or `invalid_request` with the page's message.
fn refusal(e: AuthorizeError) -> OAuthError {
    match e {
        AuthorizeError::Page(message) => OAuthError::invalid_request(message),
        AuthorizeError::Redirect(url) => {
            let q: std::collections::HashMap<String, String> = url::Url::parse(&url)
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default();
            let description = q.get("error_description").cloned().unwrap_or_default();
            let error = match q.get("error").map(String::as_str) {
                Some("unauthorized_client") => "unauthorized_client",
                Some("unsupported_response_type") => "unsupported_response_type",
                Some("invalid_scope") => "invalid_scope",
                Some("request_not_supported") => "request_not_supported",
                _ => "invalid_request",
            };
            OAuthError::new(400, error, description)
        }
    }
}
