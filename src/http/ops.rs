//! Operations endpoints: liveness, readiness, the JWKS.

use super::error::ApiResult;
use super::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(readiness))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/metrics", get(metrics))
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive", body = super::views::Health), super::views::Errors))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when every store answers; 503 `unavailable` naming the one that does not (the
/// database, or Redis when one is configured). With Redis down the instance still
/// serves, on its own rate limits and database polling for revocations, but it is not
/// ready in the contract's sense: a load balancer should prefer instances that are.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready: every store answers", body = super::views::Ready), super::views::Errors))]
pub(crate) async fn readiness(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let checks = state.service.readiness().await?;
    Ok(Json(json!({ "status": "ready", "checks": checks })))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses((status = 200, description = "public signing keys (RFC 7517)", body = super::views::Jwks), super::views::Errors))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.service.jwks();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Prometheus text exposition of this instance's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), super::views::Errors))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.service.metrics_text().await,
    )
        .into_response()
}
