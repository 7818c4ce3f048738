//! Operations endpoints: liveness, readiness, the JWKS.

use super::error::ApiResult;
use super::AppState;
use crate::service::Error;
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

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive", body = crate::http::openapi::Health), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when every store answers; 503 `unavailable` naming the one that does not (the
/// database, or Redis when one is configured). With Redis down the instance still
/// serves, on its own rate limits and database polling for revocations, but it is not
/// ready in the contract's sense: a load balancer should prefer instances that are.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready: every store answers", body = crate::http::openapi::Ready), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn readiness(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let mut checks = std::collections::BTreeMap::new();
    let db = match state.service.store.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "down"
        }
    };
    checks.insert("database".to_string(), db.to_string());
    if let Some(bus) = &state.service.bus {
        let redis = if bus.ping().await { "ok" } else { "down" };
        checks.insert("redis".to_string(), redis.to_string());
    }
    if checks.values().any(|v| v != "ok") {
        return Err(Error::NotReady(checks).into());
    }
    Ok(Json(json!({ "status": "ready", "checks": checks })))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", responses((status = 200, description = "public signing keys (RFC 7517)", body = crate::http::openapi::Jwks), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.service.tokens.ring().current().jwks.to_vec();
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
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let service = &state.service;
    if let Ok(n) = service.store.count_live_sessions(chrono::Utc::now()).await {
        service.metrics.active_sessions.set(n);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        service.metrics.render(),
    )
        .into_response()
}
