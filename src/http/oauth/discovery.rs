//! The discovery documents: OpenID Connect Discovery 1.0 and RFC 8414, one issuer
//! (`TRADEAUTH_OIDC_ISSUER`, exact, no trailing slash), endpoints under `/oauth2/`.

use crate::domain::fapi::{ASSERTION_ALGS, AUTH_METHODS};
use crate::domain::oauth::{DEVICE_CODE_GRANT, SCOPES, TOKEN_EXCHANGE_GRANT};
use crate::http::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server),
        )
}

/// The provider's metadata; both documents carry the same fields.
fn metadata(state: &AppState) -> serde_json::Value {
    let service = &state.service;
    let issuer = service.config().oidc_issuer.clone();
    let at = |path: &str| format!("{issuer}{path}");
    json!({
        "issuer": issuer,
        "authorization_endpoint": at("/oauth2/authorize"),
        "token_endpoint": at("/oauth2/token"),
        "userinfo_endpoint": at("/oauth2/userinfo"),
        "jwks_uri": at("/.well-known/jwks.json"),
        "introspection_endpoint": at("/oauth2/introspect"),
        "revocation_endpoint": at("/oauth2/revoke"),
        "end_session_endpoint": at("/oauth2/logout"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            DEVICE_CODE_GRANT, TOKEN_EXCHANGE_GRANT
        ],
        "device_authorization_endpoint": at("/oauth2/device_authorization"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": service.id_token_algs(),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "pushed_authorization_request_endpoint": at("/oauth2/par"),
        "require_pushed_authorization_requests": false,
        "dpop_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid", "amr",
            "name", "preferred_username", "email", "email_verified"
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "service_documentation": at("/docs"),
    })
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4).
async fn openid_configuration(State(state): State<AppState>) -> Response {
    document(metadata(&state))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
async fn authorization_server(State(state): State<AppState>) -> Response {
    document(metadata(&state))
}

fn document(body: serde_json::Value) -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body)).into_response()
}
