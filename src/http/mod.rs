//! The HTTP layer: axum routes (one module per resource, each with `router()`), the
//! extractors, request logging and the dialects.
//!
//! Handlers only translate between HTTP and the service: they parse, call one use case,
//! and shape the answer. Nothing here reaches the store; the service's methods are the
//! only way down.
//!
//! Imports point one way. At the bottom, `state` (`AppState`), `cookies` (the browser
//! session's cookies), `original` (the request a proxy asks about), `requests` (bodies the
//! client sends), `views` (bodies we answer, and the OpenAPI schemas) and `error` (the
//! status of each service error); above them `csrf`, `extract`, `ratelimit`,
//! `idempotency`; then
//! the resource modules (`auth`, `account`, `apikeys`, `passkeys`, `admin`, `ops`, `ws`); on top
//! `dialect` (which reshapes the seed endpoints' bodies and renders every error response) and
//! `openapi` (which lists every handler).

pub mod account;
pub mod admin;
pub mod apikeys;
pub mod auth;
pub mod cookies;
pub mod credentials;
pub mod csrf;
pub mod dialect;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod original;
pub mod pages;
pub mod passkeys;
pub mod ratelimit;
pub mod requests;
pub mod signed;
pub mod state;
pub mod views;
pub mod ws;

pub use state::AppState;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .nest(
            "/auth",
            auth::router(&state)
                .merge(apikeys::router(&state))
                .merge(account::router(&state))
                .merge(passkeys::router(&state))
                .merge(oauth::clients::grants_router(&state)),
        )
        .nest(
            "/admin",
            admin::router(&state).merge(oauth::clients::admin_router(&state)),
        )
        .merge(ws::router())
        .merge(signed::router())
        // Signed requests with a body: the bytes must match the signed Content-Digest.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            signed::check_signed_body,
        ));
    Router::new()
        // The two hottest routes, forward-auth and the caller's own account, straight from
        // the top: past the nesting and the layers of the API routers, which a read does not
        // need (the write limits never count reads; forward-auth checks a forwarded body
        // itself; `me_route` gives its PATCH the layers of every write).
        .route("/api/v1/auth/verify", get(auth::verify_caller))
        .route("/api/v1/auth/me", auth::me_route(&state))
        .nest("/api/v1", api)
        .merge(ops::router())
        .merge(openapi::router())
        .merge(pages::router(&state))
        .merge(oauth::router(&state))
        .layer(DefaultBodyLimit::max(state.service.config().max_body_bytes))
        // A panicking handler becomes a 500, rendered like every other error.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            dialect::render_errors,
        ))
        // Outside the error renderer, so a browser app can read our errors too.
        .layer(cors(&state))
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// CORS for browser apps on the allowed origins (`TRADEAUTH_ALLOWED_ORIGINS`): an allowed
/// `Origin` is echoed exactly, with `Access-Control-Allow-Credentials: true` so cookie
/// sessions work across origins; no wildcard, ever. Other origins get no CORS headers,
/// so their pages cannot read our answers.
fn cors(state: &AppState) -> CorsLayer {
    use axum::http::{header, Method};
    let origins: Vec<HeaderValue> = state
        .service
        .config()
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
        .collect();
    let name = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            name("x-api-key"),
            name(csrf::HEADER),
            name("idempotency-key"),
            name("signature"),
            name("signature-input"),
            name("content-digest"),
            REQUEST_ID,
        ])
        // What the TypeScript client reads: the server's clock, back-off, limits.
        .expose_headers([
            header::DATE,
            header::RETRY_AFTER,
            REQUEST_ID,
            name("ratelimit-limit"),
            name("ratelimit-remaining"),
            name("ratelimit-reset"),
        ])
        .max_age(std::time::Duration::from_secs(600))
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
    let metrics = state.service.metrics();
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
