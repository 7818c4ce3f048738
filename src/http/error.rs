//! The single place where errors become responses.
//!
//! Handlers and extractors return [`ApiError`]; its `IntoResponse` only marks the response
//! with the error. The [`render_errors`] middleware, outermost in the router, then renders
//! *every* error response — ours and the framework's (unknown route, wrong method, body
//! limits, upgrade failures) — in the configured dialect's shape, adding
//! `WWW-Authenticate` on 401 and `Retry-After` on 429.

use super::dialect;
use super::AppState;
use crate::service::Error;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A service error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = status.into_response();
        res.extensions_mut().insert(self.0);
        res
    }
}

/// Renders every error response (status ≥ 400) in the dialect's shape.
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
        .unwrap_or_else(|| Error::from_status(status.as_u16()));
    if let Error::Internal(detail) = &error {
        tracing::error!(error = %detail, "internal error");
    }
    if let Error::Unavailable(detail) = &error {
        tracing::warn!(error = %detail, "backing store unavailable");
    }
    let (status, body) = dialect::render_error(state.dialect(), &error);
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
