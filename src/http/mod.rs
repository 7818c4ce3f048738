//! The HTTP layer: axum routes (one module per resource, each with `router()`), the
//! extractors, the single error renderer, request logging and the dialects.
//!
//! Handlers only translate between HTTP and the service: they parse, call one use case,
//! and shape the answer.

pub mod account;
pub mod admin;
pub mod apikeys;
pub mod auth;
pub mod dialect;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod ops;
pub mod ratelimit;
pub mod views;
pub mod ws;

use crate::config::Dialect;
use crate::service::Service;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Shared by every handler: the service (which holds config, store, keys, revocations).
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Open WebSockets per user.
    pub ws: Arc<ws::Connections>,
}

impl AppState {
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            ws: Arc::default(),
        }
    }
}

impl AppState {
    pub fn dialect(&self) -> Dialect {
        self.service.config.dialect
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .nest(
            "/auth",
            auth::router(state.dialect())
                .merge(apikeys::router())
                .merge(account::router()),
        )
        .nest("/admin", admin::router())
        .merge(ws::router());
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::router())
        .merge(openapi::router())
        .layer(DefaultBodyLimit::max(state.service.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay_idempotent,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit_requests,
        ))
        // A panicking handler becomes a 500, rendered like every other error.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::render_errors,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// One log line per request: id, method, path (never the query string, which may carry a
/// token), status and latency.
async fn log_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // The route template (`/api/v1/auth/sessions/{id}`), so ids do not explode the labels.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let route = route.as_deref().unwrap_or("unmatched");
    let metrics = &state.service.metrics;
    metrics
        .requests
        .with_label_values(&[route, method.as_str(), res.status().as_str()])
        .inc();
    metrics
        .latency
        .with_label_values(&[route, method.as_str(), res.status().as_str()])
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "tradeauth::http",
        request_id = %request_id,
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    res
}
