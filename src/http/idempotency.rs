//! `Idempotency-Key` on `POST /auth/register` and `POST /admin/users` (seed 001): the same
//! key and body within 24 h replays the first response; the same key with another body is
//! 409 `idempotency_conflict`. Only successful responses are kept. A second request
//! arriving while the first still runs waits for its response (up to 10 s) rather than
//! running twice, and a request whose client hung up still runs to its end and is kept.
//!
//! Attached where the route is declared (`idempotent::<Guard>(post(h), &state)`). Keys
//! are scoped by path and by the caller (the user behind an access token, or the API
//! key presented), so one admin's key never replays a response to somebody else. The
//! route's guard — the extractor its handler uses to authenticate and authorise, such
//! as `MinTier<4>` — runs before anything is claimed or replayed: a caller who lost the
//! right to the endpoint gets the refusal, not the stored answer.

use super::error::ApiError;
use super::extract::Credentials;
use super::state::AppState;
use crate::service::{Claim, Error, Service};
use axum::body::Body;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use ring::digest::{digest, SHA256};
use std::sync::Arc;
use tracing::Instrument;

/// `route` with `Idempotency-Key` honoured on its `POST`, for callers that `G` admits
/// (`()` for an endpoint open to anybody).
pub fn idempotent<G>(route: MethodRouter<AppState>, state: &AppState) -> MethodRouter<AppState>
where
    G: FromRequestParts<AppState> + Send + 'static,
    G::Rejection: IntoResponse,
{
    route.route_layer(from_fn_with_state(state.clone(), replay_idempotent::<G>))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn replay_idempotent<G>(State(state): State<AppState>, req: Request, next: Next) -> Response
where
    G: FromRequestParts<AppState> + Send + 'static,
    G::Rejection: IntoResponse,
{
    // The full path, as before nesting stripped its prefix: it scopes the key.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or(req.uri().path(), |u| u.0.path())
        .trim_end_matches('/')
        .to_string();
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|_| req.method() == Method::POST)
    else {
        return next.run(req).await;
    };
    // Authorisation first: every answer of the endpoint, a replay too, is the caller's
    // to see only while they may call it.
    let (mut parts, body) = req.into_parts();
    if let Err(rejection) = G::from_request_parts(&mut parts, &state).await {
        return rejection.into_response();
    }
    if key.is_empty() || key.len() > 255 {
        return ApiError(Error::field(
            "Idempotency-Key",
            "must be 1 to 255 characters",
        ))
        .into_response();
    }
    let service = state.service.clone();
    let bytes = match axum::body::to_bytes(body, service.config().max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return ApiError(Error::PayloadTooLarge).into_response(),
    };
    let owner = Credentials::from_headers(&parts.headers, &state.cookies()).owner(&service);
    let scope = [
        path.as_bytes(),
        b"\n",
        owner.as_bytes(),
        b"\n",
        key.as_bytes(),
    ]
    .concat();
    let store_key = hex(digest(&SHA256, &scope).as_ref());
    let request_hash = hex(digest(&SHA256, &bytes).as_ref());

    // From the claim on, the request runs to its end, and its outcome is recorded, even
    // when the client hangs up meanwhile: the client's retry then gets the response it
    // missed, which is what the key is for. Dropped with the connection instead (even
    // between the claim's commit and the handler), the claim would stay "in flight" and
    // every retry would end in 409.
    let run = tokio::spawn({
        let (service, store_key) = (service.clone(), store_key.clone());
        async move {
            match service.idempotency_claim(&store_key, &request_hash).await {
                Err(e) => return ApiError(e).into_response(),
                Ok(Claim::Replay { status, body }) => return replayed(status, body),
                Ok(Claim::Run) => {}
            }
            let res = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            record(&service, &store_key, res).await
        }
        .in_current_span()
    });
    match run.await {
        Ok(res) => res,
        // The handler panicked: nothing to replay.
        Err(e) => {
            let _ = service.idempotency_abandon(&store_key).await;
            ApiError(Error::Internal(format!("request handler failed: {e}"))).into_response()
        }
    }
}

/// The first response, again.
fn replayed(status: u16, body: String) -> Response {
    let mut res = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}

/// Remembers a success for replay. A refusal is not remembered: it changed nothing, and
/// retrying gives the same refusal (or succeeds once the cause is gone).
async fn record(service: &Arc<Service>, store_key: &str, res: Response) -> Response {
    let status = res.status();
    if !status.is_success() {
        let _ = service.idempotency_abandon(store_key).await;
        return res;
    }
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let stored = String::from_utf8_lossy(&body);
    if let Err(e) = service
        .idempotency_finish(store_key, status.as_u16(), &stored)
        .await
    {
        tracing::warn!(error = %e, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}
