//! Dialects: the wire formats of the seed documents. A dialect only reshapes requests,
//! responses and error bodies; every rule stays in the service.
//!
//! The handlers are shared: register, login, refresh, logout and me (in `auth`) ask this
//! module to read the request body in the dialect's spelling ([`DialectJson`],
//! [`login_input`]) and to shape the answer ([`signed_in`], [`refreshed`], ...). It also
//! renders every error response ([`render_errors`]), so one client error handler works
//! for every endpoint. Each dialect's module holds plain functions, testable without a
//! server, that read a `Value` and answer with a serialisable struct whose fields are in
//! the seed's order (a `serde_json::Value` map would sort them); none of them imports a
//! handler.

pub mod native;
pub mod os_engine;
pub mod quantum;
pub mod stratify;

use super::error::{self, ApiError};
use super::extract::{parse_json, AppJson, MaybeJson};
use super::requests::LoginRequest;
use super::state::AppState;
use super::views::{TokenBody, UserBody};
use crate::config::Dialect;
use crate::domain::User;
use crate::service::auth::{Issued, LoginInput};
use crate::service::Error;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// A request body as the dialect spells it, parsed into the one native request type:
/// the dialect renames its keys first (os-engine's camelCase), so a new field is added
/// to one struct. Rejections are [`AppJson`]'s.
pub struct DialectJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for DialectJson<T>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match AppState::from_ref(state).dialect() {
            Dialect::OsEngine => {
                let AppJson(body) = AppJson::<Value>::from_request(req, state).await?;
                parse_json(os_engine::native_keys(body)).map(DialectJson)
            }
            Dialect::Native | Dialect::Quantum | Dialect::Stratify => {
                let AppJson(body) = AppJson::<T>::from_request(req, state).await?;
                Ok(DialectJson(body))
            }
        }
    }
}

/// An optional body ([`MaybeJson`]) as the dialect spells it, like [`DialectJson`].
pub struct MaybeDialectJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeDialectJson<T>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match AppState::from_ref(state).dialect() {
            Dialect::OsEngine => {
                let MaybeJson(body) = MaybeJson::<Value>::from_request(req, state).await?;
                let body = body
                    .map(|b| serde_json::from_value(os_engine::native_keys(b)))
                    .transpose()
                    .map_err(|e| {
                        ApiError(Error::field("body", format!("invalid request body: {e}")))
                    })?;
                Ok(MaybeDialectJson(body))
            }
            Dialect::Native | Dialect::Quantum | Dialect::Stratify => {
                let MaybeJson(body) = MaybeJson::<T>::from_request(req, state).await?;
                Ok(MaybeDialectJson(body))
            }
        }
    }
}

/// The dialect's name of a native request field, for "… is required".
pub fn field_name(dialect: Dialect, native: &'static str) -> &'static str {
    match dialect {
        Dialect::OsEngine => os_engine::field_name(native),
        Dialect::Native | Dialect::Quantum | Dialect::Stratify => native,
    }
}

/// A JSON body as the dialect's handlers read it (`T` after the dialect's renaming).
fn read_as<T: DeserializeOwned>(dialect: Dialect, body: &[u8]) -> Option<T> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let value = match dialect {
        Dialect::OsEngine => os_engine::native_keys(value),
        Dialect::Native | Dialect::Quantum | Dialect::Stratify => value,
    };
    serde_json::from_value(value).ok()
}

/// The identifier a login body signs in with, read exactly as the login handler reads it,
/// so the rate limiter keys the bucket of the identifier that is tried (a decoy field
/// cannot send it elsewhere). `None` for a body the handler refuses anyway.
pub fn login_identifier(dialect: Dialect, body: &[u8]) -> Option<String> {
    let request: LoginRequest = read_as(dialect, body)?;
    login_input(dialect, request).ok().map(|i| i.identifier)
}

/// The refresh token a refresh body presents, read exactly as the refresh handler does.
pub fn refresh_token(dialect: Dialect, body: &[u8]) -> Option<String> {
    read_as::<super::requests::RefreshRequest>(dialect, body)?.refresh_token
}

/// The login use case's input from the login body, by the dialect's rules.
pub fn login_input(dialect: Dialect, body: LoginRequest) -> Result<LoginInput, Error> {
    match dialect {
        Dialect::OsEngine => os_engine::login_input(body),
        Dialect::Native | Dialect::Quantum | Dialect::Stratify => Ok(body.into_input()),
    }
}

/// `201` for a registration.
pub fn registered(dialect: Dialect, user: &User, verification_required: bool) -> Response {
    match dialect {
        Dialect::Stratify => (
            StatusCode::CREATED,
            Json(stratify::registered(user, verification_required)),
        )
            .into_response(),
        Dialect::Native | Dialect::Quantum | Dialect::OsEngine => {
            let body = json!({ "user": UserBody::from(user), "verification_required": verification_required });
            (StatusCode::CREATED, Json(body)).into_response()
        }
    }
}

/// The answer to a login.
pub fn signed_in(dialect: Dialect, issued: &Issued) -> Response {
    match dialect {
        Dialect::Native => Json(TokenBody::from(issued)).into_response(),
        Dialect::Quantum => Json(quantum::tokens(issued)).into_response(),
        Dialect::OsEngine => Json(os_engine::signed_in(issued)).into_response(),
        Dialect::Stratify => Json(stratify::signed_in(issued)).into_response(),
    }
}

/// The answer to a refresh; `rotation`: whether refresh tokens rotate.
pub fn refreshed(dialect: Dialect, issued: &Issued, rotation: bool) -> Response {
    match dialect {
        Dialect::Native => Json(TokenBody::from(issued)).into_response(),
        Dialect::Quantum => Json(quantum::tokens(issued)).into_response(),
        Dialect::OsEngine => Json(os_engine::refreshed(issued)).into_response(),
        Dialect::Stratify => Json(stratify::refreshed(issued, rotation)).into_response(),
    }
}

/// The answer to a logout.
pub fn logged_out(dialect: Dialect) -> Response {
    match dialect {
        Dialect::OsEngine => Json(os_engine::logged_out()).into_response(),
        Dialect::Native | Dialect::Quantum | Dialect::Stratify => {
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

/// The caller's user object (`GET /auth/me`).
pub fn user(dialect: Dialect, user: &User) -> Response {
    match dialect {
        Dialect::Quantum => Json(quantum::user(user)).into_response(),
        Dialect::OsEngine => Json(os_engine::user(user)).into_response(),
        Dialect::Native | Dialect::Stratify => Json(UserBody::from(user)).into_response(),
    }
}

/// The status and JSON body of an error in `dialect`.
pub fn render_error(dialect: Dialect, error: &Error) -> (StatusCode, Vec<u8>) {
    fn bytes<T: serde::Serialize>((status, body): (StatusCode, T)) -> (StatusCode, Vec<u8>) {
        (status, serde_json::to_vec(&body).unwrap_or_default())
    }
    match dialect {
        Dialect::Native => bytes((error::status(error), native::error_body(error))),
        Dialect::Quantum => bytes(quantum::error(error)),
        Dialect::OsEngine => bytes(os_engine::error(error)),
        Dialect::Stratify => bytes(stratify::error(error)),
    }
}

/// `Retry-After` of a 503: seconds before a retry is worth it.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// Renders every error response (status ≥ 400) in the dialect's shape, adding
/// `WWW-Authenticate` on 401 and `Retry-After` on 429 and 503. Outermost in the router, so the
/// framework's own rejections (unknown route, wrong method, body limits, upgrade failures)
/// look like ours; an [`ApiError`] travels here in the response's extensions.
pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    // A hosted page renders its own errors, in HTML.
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    // The `/oauth2/` endpoints answer RFC 6749 errors, rendered already.
    let is_oauth = res.extensions().get::<super::oauth::Rendered>().is_some();
    if status.as_u16() < 400 || is_page || is_oauth {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let error = parts
        .extensions
        .remove::<Error>()
        .unwrap_or_else(|| error::from_status(status));
    if let Error::Internal(detail) = &error {
        tracing::error!(error = %detail, "internal error");
    }
    if let Error::Unavailable(detail) = &error {
        tracing::warn!(error = %detail, "backing store unavailable");
    }
    let (status, body) = render_error(state.dialect(), &error);
    let headers = &mut parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        let value = if let Error::InvalidDpopProof(_) = &error {
            r#"DPoP realm="tradeauth", error="invalid_dpop_proof", algs="RS256 ES256 EdDSA Ed25519""#
        } else if error.rejects_credential() {
            r#"Bearer realm="tradeauth", error="invalid_token""#
        } else {
            r#"Bearer realm="tradeauth""#
        };
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    }
    if let Error::RateLimited { retry_after } = &error {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from((*retry_after).max(1)),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // A store that is away: clients retry after a short pause (the pool reconnects on
        // the next request once it is back).
        headers
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS));
    }
    parts.status = status;
    Response::from_parts(parts, axum::body::Body::from(body))
}
