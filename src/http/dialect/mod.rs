//! Dialects: the wire formats of the seed documents. A dialect only reshapes requests,
//! responses and error bodies; every rule stays in the service.
//!
//! This module owns what depends on the configured dialect: the routes a seed describes
//! ([`auth_routes`]) and the rendering of every error response ([`render_errors`]), so one
//! client error handler works for every endpoint. Nothing below `http/` imports it back.

pub mod native;
pub mod os_engine;
pub mod quantum;
pub mod stratify;

use super::auth;
use super::error;
use super::idempotency::idempotent;
use super::ratelimit::{limited, Class};
use super::state::AppState;
use crate::config::Dialect;
use crate::service::Error;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

/// The five `/auth` routes a seed describes (register, login, refresh, logout, me), from
/// the dialect's module where the seed defines them, else native, each with its rate
/// limit. The other `/auth` routes are native in every dialect (`auth::router`).
pub fn auth_routes(state: &AppState) -> Router<AppState> {
    let (register, login, refresh, logout, me) = match state.dialect() {
        Dialect::Native => (
            post(auth::register_user),
            post(auth::login_user),
            post(auth::refresh_tokens),
            post(auth::logout_user),
            get(auth::get_me),
        ),
        Dialect::Quantum => (
            post(auth::register_user),
            post(quantum::login_user),
            post(quantum::refresh_tokens),
            post(auth::logout_user),
            get(quantum::get_me),
        ),
        Dialect::OsEngine => (
            post(auth::register_user),
            post(os_engine::login_user),
            post(os_engine::refresh_tokens),
            post(os_engine::logout_user),
            get(os_engine::get_me),
        ),
        Dialect::Stratify => (
            post(stratify::register_user),
            post(stratify::login_user),
            post(stratify::refresh_tokens),
            post(auth::logout_user),
            get(auth::get_me),
        ),
    };
    Router::new()
        .route(
            "/register",
            limited(idempotent(register, state), state, Class::Register),
        )
        .route("/login", limited(login, state, Class::Login))
        .route("/refresh", limited(refresh, state, Class::Refresh))
        .route("/logout", limited(logout, state, Class::Write))
        .route("/me", me)
}

/// The status and JSON body of an error in `dialect`.
pub fn render_error(dialect: Dialect, error: &Error) -> (StatusCode, Vec<u8>) {
    let (status, body) = match dialect {
        Dialect::Native => (error::status(error), native::error_body(error)),
        Dialect::Quantum => quantum::error(error),
        Dialect::OsEngine => os_engine::error(error),
        Dialect::Stratify => stratify::error(error),
    };
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

/// Renders every error response (status ≥ 400) in the dialect's shape, adding
/// `WWW-Authenticate` on 401 and `Retry-After` on 429. Outermost in the router, so the
/// framework's own rejections (unknown route, wrong method, body limits, upgrade failures)
/// look like ours; an [`ApiError`](super::error::ApiError) travels here in the response's extensions.
pub async fn render_errors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if status.as_u16() < 400 {
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
        let value = if error.rejects_credential() {
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
    parts.status = status;
    Response::from_parts(parts, axum::body::Body::from(body))
}
