//! The OAuth 2.1 / OpenID Connect provider over HTTP (API.md, "OAuth 2.1 and OpenID
//! Connect provider"):
//! - `discovery`: `/.well-known/openid-configuration` and
//!   `/.well-known/oauth-authorization-server`;
//! - `flow`: `/oauth2/authorize` (GET and POST), its sign-in return path and the consent
//!   page — HTML, through the hosted login page;
//! - `endpoints`: `/oauth2/token`, `/oauth2/userinfo`, introspection and revocation;
//! - `device`: `/oauth2/device_authorization` and the `/device` pages (RFC 8628);
//! - `par`: `/oauth2/par` (pushed authorization requests, RFC 9126);
//! - `clients`: the tier-4 client registry under `/api/v1/admin/oauth-clients`, and the
//!   user's grants under `/api/v1/auth/oauth-grants` (native JSON and errors).
//!
//! Every `/oauth2/` JSON answer that is an error has the RFC 6749 shape
//! (`{"error", "error_description"}`), not the native one: [`OAuthJson`] renders ours, and
//! `oauth_errors` reshapes the framework's (bad form, wrong method, rate limits) and
//! marks them so the dialect renderer leaves them alone ([`Rendered`]).

pub mod clients;
pub mod device;
pub mod discovery;
pub mod docs;
pub mod endpoints;
pub mod flow;
pub mod par;

use super::state::AppState;
use crate::service::oauth::OAuthError;
use crate::service::Error;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Marks a response whose error body is already in its final (RFC 6749) shape.
#[derive(Clone, Copy, Debug)]
pub struct Rendered;

/// The `/oauth2/` routes and the discovery documents.
pub fn router(state: &AppState) -> Router<AppState> {
    let json = Router::new()
        .merge(endpoints::router(state))
        .merge(device::api_router(state))
        .merge(par::router(state))
        .merge(discovery::router())
        .route("/oauth2/{*rest}", axum::routing::any(unknown_endpoint))
        .layer(middleware::from_fn(oauth_errors));
    json.merge(flow::router(state))
        .merge(device::pages_router(state))
}

async fn unknown_endpoint() -> Response {
    OAuthJson(OAuthError::new(
        404,
        "invalid_request",
        "no such OAuth endpoint",
    ))
    .into_response()
}

/// An [`OAuthError`] as an `/oauth2/` answer: RFC 6749 §5.2 JSON, `Cache-Control:
/// no-store`, and the challenge headers of 401s (RFC 6750 §3 for tokens, Basic for a
/// client that authenticated with it).
pub struct OAuthJson(pub OAuthError);

impl IntoResponse for OAuthJson {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::json!({"error": e.error, "error_description": e.description});
        let mut res = (status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        no_store(h);
        let quote = |s: &str| s.replace(['"', '\\'], "'");
        if e.error == "invalid_dpop_proof" && e.status == 401 {
            let value = format!(
                "DPoP realm=\"tradeauth\", error=\"invalid_dpop_proof\", algs=\"RS256 ES256 EdDSA Ed25519\", \
                 error_description=\"{}\"",
                quote(&e.description)
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        } else if e.error == "invalid_token" || e.error == "insufficient_scope" {
            let value = format!(
                "Bearer realm=\"tradeauth\", error=\"{}\", error_description=\"{}\"",
                e.error,
                quote(&e.description)
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        } else if e.status == 401 && e.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tradeauth\""),
            );
        } else if e.status == 401 && e.error != "invalid_client" {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tradeauth\""),
            );
        }
        // A client that did not authenticate with HTTP Basic (a secret in the form, an
        // assertion) gets no challenge: RFC 6749 §5.2 asks for one only after the
        // Authorization header, and a Bearer challenge would name a scheme no client uses
        // at these endpoints.
        if let Some(nonce) = e.dpop_nonce.as_deref() {
            if let Ok(v) = HeaderValue::from_str(nonce) {
                h.insert("dpop-nonce", v);
            }
        }
        // A rate limit (429); the device grant's `slow_down` (400) means the interval.
        if e.error == "slow_down" && e.status == 429 {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res.extensions_mut().insert(Rendered);
        res
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(h: &mut axum::http::HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Reshapes every error answer of the `/oauth2/` JSON endpoints that is not ours yet
/// (the framework's rejections, a rate limit) into RFC 6749 JSON.
async fn oauth_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if status.as_u16() < 400 || res.extensions().get::<Rendered>().is_some() {
        return res;
    }
    let error = res
        .extensions()
        .get::<Error>()
        .cloned()
        .unwrap_or_else(|| super::error::from_status(status));
    let oauth = match &error {
        Error::NotFound(_) => OAuthError::new(404, "invalid_request", "no such OAuth endpoint"),
        Error::MethodNotAllowed => OAuthError::new(
            405,
            "invalid_request",
            "this method is not allowed on this endpoint",
        ),
        Error::PayloadTooLarge => {
            OAuthError::new(413, "invalid_request", "the request is too large")
        }
        Error::Validation { .. } => {
            OAuthError::invalid_request(format!("the request is malformed: {}", error.message()))
        }
        other => OAuthError::from(other.clone()),
    };
    let mut out = OAuthJson(oauth).into_response();
    // Keep the rate-limit headers of a 429.
    for name in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        if let Some(v) = res.headers().get(name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
