//! `/oauth2/token` and `/oauth2/userinfo`: form-encoded in, JSON out, RFC 6749 errors.

use super::{no_store, OAuthJson};
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limited, Class};
use crate::http::state::AppState;
use crate::service::oauth::client_auth::ClientCredentials;
use crate::service::oauth::{OAuthError, TokenParams};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/oauth2/token",
            limited(post(issue_tokens), state, Class::Refresh),
        )
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
        .route(
            "/oauth2/introspect",
            limited(post(introspect_token), state, Class::Write),
        )
        .route(
            "/oauth2/revoke",
            limited(post(revoke_token), state, Class::Write),
        )
}

/// The form of an introspection or revocation request, with the client's credentials.
async fn token_form(
    headers: &HeaderMap,
    body: &[u8],
    endpoint: &'static str,
) -> Result<(ClientCredentials, Option<String>), OAuthError> {
    let map = form_pairs(headers, body)?;
    let get = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let creds = client_credentials(headers, &map, endpoint)?;
    Ok((creds, get("token")))
}

/// `POST /oauth2/introspect` (RFC 7662).
async fn introspect_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (creds, token) = token_form(&headers, &body, "/oauth2/introspect").await?;
        let proof = dpop_header(&headers)?;
        state.service.introspect(creds, token, proof).await
    }
    .await;
    match result {
        Ok(v) => {
            let mut res = Json(v).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => OAuthJson(e).into_response(),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 with an empty body, whatever the token was.
async fn revoke_token(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (creds, token) = token_form(&headers, &body, "/oauth2/revoke").await?;
        state.service.revoke_token(creds, token, &ctx).await
    }
    .await;
    match result {
        Ok(()) => {
            let mut res = axum::http::StatusCode::OK.into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => OAuthJson(e).into_response(),
    }
}

/// The pairs of a form body. Anything but `application/x-www-form-urlencoded`, or a
/// parameter sent twice, is `invalid_request` (RFC 6749 §3.2, §3.1).
pub(crate) fn form_pairs(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map
            .insert(k.to_string(), serde_json::Value::String(v.to_string()))
            .is_some()
        {
            return Err(OAuthError::invalid_request(format!(
                "the parameter {k:?} is sent more than once"
            )));
        }
    }
    Ok(map)
}

/// The client's credentials: HTTP Basic (`client_secret_basic`, each part form-encoded,
/// RFC 6749 §2.3.1) or the form (`client_secret_post`, `client_id` alone for `none`, or
/// `client_assertion_type` and `client_assertion` for `private_key_jwt`), as presented
/// at `endpoint`.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form: &serde_json::Map<String, serde_json::Value>,
    endpoint: &'static str,
) -> Result<ClientCredentials, OAuthError> {
    let get = |k: &str| form.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mut creds = basic_or_form(headers, get("client_id"), get("client_secret"))?;
    creds.assertion_type = get("client_assertion_type");
    creds.assertion = get("client_assertion");
    creds.endpoint = endpoint;
    if creds.basic && creds.assertion.is_some() {
        return Err(OAuthError::invalid_request(
            "the client authenticated twice (HTTP Basic and client_assertion); use one method",
        ));
    }
    Ok(creds)
}

fn basic_or_form(
    headers: &HeaderMap,
    form_id: Option<String>,
    form_secret: Option<String>,
) -> Result<ClientCredentials, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_string())
        });
    let Some(encoded) = basic else {
        return Ok(ClientCredentials {
            client_id: form_id,
            client_secret: form_secret,
            ..Default::default()
        });
    };
    let bad = || {
        let mut e = OAuthError::invalid_client("the Authorization: Basic header is malformed");
        e.basic_challenge = true;
        e
    };
    let decoded = B64.decode(encoded).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let unform = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unform(id), unform(secret));
    if form_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "the client authenticated twice (HTTP Basic and client_secret); use one method",
        ));
    }
    if form_id.as_deref().is_some_and(|f| f != id) {
        return Err(OAuthError::invalid_request(
            "client_id in the body differs from the one of HTTP Basic",
        ));
    }
    Ok(ClientCredentials {
        client_id: Some(id),
        client_secret: Some(secret),
        basic: true,
        ..Default::default()
    })
}

/// `POST /oauth2/token`.
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth", request_body(content = super::docs::TokenForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "tokens (Cache-Control: no-store)", body = super::docs::OAuthTokenBody), (status = 400, description = "RFC 6749 error: invalid_request, invalid_grant, invalid_scope, invalid_target, unauthorized_client, unsupported_grant_type, authorization_pending, slow_down, access_denied, expired_token", body = super::docs::OAuthErrorBody), (status = 401, description = "invalid_client", body = super::docs::OAuthErrorBody), (status = 429, description = "rate limited", body = super::docs::OAuthErrorBody)))]
pub(crate) async fn issue_tokens(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let map = form_pairs(&headers, &body)?;
        let creds = client_credentials(&headers, &map, "/oauth2/token")?;
        let mut params: TokenParams = serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|_| OAuthError::invalid_request("the request is malformed"))?;
        params.dpop_proof = dpop_header(&headers)?;
        state.service.token_grant(params, creds, &ctx).await
    }
    .await;
    match result {
        Ok(t) => {
            let mut body = json!({
                "access_token": t.access_token,
                "token_type": if t.dpop_bound { "DPoP" } else { "Bearer" },
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            if let Some(r) = t.refresh_token {
                body["refresh_token"] = json!(r);
            }
            if let Some(i) = t.id_token {
                body["id_token"] = json!(i);
            }
            if let Some(t) = t.issued_token_type {
                body["issued_token_type"] = json!(t);
            }
            let mut res = Json(body).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => OAuthJson(e).into_response(),
    }
}

/// The `DPoP` header of a request: at most one (RFC 9449 §4.3).
pub(crate) fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let mut all = headers.get_all("dpop").iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(OAuthError::new(
            400,
            "invalid_dpop_proof",
            "send one DPoP header, not several",
        ));
    }
    first
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| {
                OAuthError::new(400, "invalid_dpop_proof", "the DPoP header is not text")
            })
        })
        .transpose()
}

/// `GET` or `POST /oauth2/userinfo`: the bearer token in `Authorization`, or (`POST`) as
/// `access_token` in a form body (RFC 6750 §2.2).
/// A DPoP-bound token comes as `Authorization: DPoP` with its proof (RFC 9449 §7).
async fn userinfo(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut dpop = false;
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            dpop = scheme.eq_ignore_ascii_case("dpop");
            (scheme.eq_ignore_ascii_case("bearer") || dpop).then(|| rest.trim().to_string())
        });
    let from_body = if body.is_empty() {
        None
    } else {
        match form_pairs(&headers, &body) {
            Ok(map) => map
                .get("access_token")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            Err(e) => return OAuthJson(e).into_response(),
        }
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return OAuthJson(OAuthError::invalid_request(
                "the access token was sent twice (header and body); send it once",
            ))
            .into_response()
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return OAuthJson(OAuthError::invalid_token("no access token was presented"))
                .into_response()
        }
    };
    if dpop {
        let target = crate::service::dpop::ProofTarget {
            method: method.to_string(),
            url: format!("{}/oauth2/userinfo", state.service.config().oidc_issuer),
        };
        let proof = match dpop_header(&headers) {
            Ok(p) => p,
            Err(e) => return OAuthJson(e).into_response(),
        };
        if let Err(e) = state
            .service
            .check_dpop_token(&token, proof.as_deref(), &target)
            .await
        {
            let e = match e {
                crate::service::Error::InvalidDpopProof(m) => {
                    OAuthError::new(401, "invalid_dpop_proof", m)
                }
                _ => OAuthError::invalid_token("the access token is invalid or expired"),
            };
            return OAuthJson(e).into_response();
        }
    }
    match state.service.userinfo(&token, dpop).await {
        Ok(claims) => {
            let mut res = Json(claims).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => OAuthJson(e).into_response(),
    }
}
