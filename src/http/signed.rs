//! Signed requests (API.md "Signed requests (trading bots)") at the HTTP edge: the clock
//! clients sign with (`GET /api/v1/time`), and the body check of signed requests that
//! tradeauth serves itself.
//!
//! The signature is checked where every credential is (`extract::Credentials`); the
//! signature covers the `Content-Digest` *value*, so the body bytes are compared with it
//! here, before a handler reads them. Forward-auth compares them in `auth::verify_caller`
//! when the proxy forwards the body, or leaves it to the upstream (`X-Auth-Content-Digest`).

use super::error::ApiError;
use super::extract::Credentials;
use super::state::AppState;
use super::views::rfc3339_ms;
use crate::service::Error;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// `/time`: no authentication, no per-user rate limit.
pub fn router() -> Router<AppState> {
    Router::new().route("/time", get(server_time))
}

/// The server's clock.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ServerTime {
    /// RFC 3339 with milliseconds, UTC.
    server_time: String,
    /// Unix milliseconds.
    epoch_ms: i64,
}

/// The server's clock, for clients that sign requests (`created` is checked against it).
#[utoipa::path(get, path = "/api/v1/time", tag = "signed-requests", responses((status = 200, description = "the server's clock", body = ServerTime), super::views::Errors))]
pub(crate) async fn server_time() -> Json<ServerTime> {
    let now = chrono::Utc::now();
    Json(ServerTime {
        server_time: rfc3339_ms(&now),
        epoch_ms: now.timestamp_millis(),
    })
}

/// For a request whose credential is a signature and which has a `Content-Digest`: reads
/// the body (bounded by the body limit) and refuses it, 401 `signature_invalid`, unless it
/// matches the digest. The signature itself is checked later, by the extractor. Every
/// other request passes untouched, its body unread.
pub async fn check_signed_body(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    // Forward-auth compares a forwarded body itself; behind nginx it has none.
    let forward_auth = req.uri().path().ends_with("/auth/verify");
    let signed = !forward_auth
        && headers.contains_key("signature-input")
        && headers.contains_key("content-digest")
        && matches!(
            Credentials::from_headers(headers, &state.cookies()),
            Credentials::None | Credentials::Cookie(_)
        );
    if !signed {
        return next.run(req).await;
    }
    let digest = headers
        .get_all("content-digest")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let (parts, body) = req.into_parts();
    let limit = state.service.config().max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return ApiError(Error::PayloadTooLarge).into_response(),
    };
    if let Err(e) = state.service.check_signed_body(Some(&digest), &bytes) {
        return ApiError(e).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The body of a forward-auth call: what a proxy that forwards bodies (Traefik
/// `forwardBody`, Envoy `with_request_body`) sends along; empty behind nginx.
pub struct ForwardedBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ForwardedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ForwardedBody)
            .map_err(|r| {
                ApiError(if r.status().as_u16() == 413 {
                    Error::PayloadTooLarge
                } else {
                    Error::field("body", r.body_text())
                })
            })
    }
}
