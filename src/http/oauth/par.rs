//! `POST /oauth2/par` (RFC 9126): an authorization request pushed by an authenticated
//! client (with a `DPoP` proof, the code is bound to its key), answered with 201
//! `{request_uri, expires_in}`; errors in RFC 6749 JSON.

use super::endpoints::{client_credentials, form_pairs};
use super::{no_store, OAuthJson};
use crate::http::ratelimit::{limited, Class};
use crate::http::state::AppState;
use crate::service::oauth::{AuthorizeParams, OAuthError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new().route(
        "/oauth2/par",
        limited(post(push_authorization_request), state, Class::Write),
    )
}

/// `POST /oauth2/par`.
#[utoipa::path(post, path = "/oauth2/par", tag = "oauth", request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "the parameters of an authorization request (response_type, client_id, redirect_uri, scope, state, nonce, code_challenge, code_challenge_method, ...) and the client's authentication (HTTP Basic, client_secret, or client_assertion_type and client_assertion)"), responses((status = 201, description = "`{\"request_uri\": \"urn:ietf:params:oauth:request_uri:...\", \"expires_in\": 60}`: use it once at /oauth2/authorize with client_id, within 60 s"), (status = 400, description = "RFC 6749 error JSON: the request would be refused at /oauth2/authorize"), (status = 401, description = "invalid_client")))]
pub(crate) async fn push_authorization_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let mut map = form_pairs(&headers, &body)?;
        let creds = client_credentials(&headers, &map, "/oauth2/par")?;
        for k in ["client_secret", "client_assertion", "client_assertion_type"] {
            map.remove(k);
        }
        let params: AuthorizeParams = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| OAuthError::invalid_request("the request is malformed"))?;
        let dpop = super::endpoints::dpop_header(&headers)?;
        state
            .service
            .push_authorization_request(creds, params, dpop.as_deref())
            .await
    }
    .await;
    match result {
        Ok(p) => {
            let body = json!({"request_uri": p.request_uri, "expires_in": p.expires_in});
            let mut res = (StatusCode::CREATED, Json(body)).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => OAuthJson(e).into_response(),
    }
}
