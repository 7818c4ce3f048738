//! `Idempotency-Key` on `POST /auth/register` and `POST /admin/users` (seed 001): the same
//! key and body within 24 h replays the first response; the same key with another body is
//! 409 `idempotency_conflict`. Only successful responses are kept. A second request
//! arriving while the first still runs waits for its response (up to 10 s) rather than
//! running twice, and a request whose client hung up still runs to its end and is kept.
//!
//! Keys are scoped by path and by the caller (the user behind an access token, or the API
//! key presented), so one admin's key never replays a response to somebody else.

use super::error::ApiError;
use super::extract::{presented, Presented};
use super::AppState;
use crate::service::Error;
use crate::store::IdempotencyState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest::{digest, SHA256};
use std::time::Duration;
use tracing::Instrument;

const ROUTES: &[&str] = &["/api/v1/auth/register", "/api/v1/admin/users"];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn replay_idempotent(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|_| req.method() == Method::POST && ROUTES.contains(&path.as_str()))
    else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > 255 {
        return ApiError(Error::field(
            "Idempotency-Key",
            "must be 1 to 255 characters",
        ))
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, state.service.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return ApiError(Error::PayloadTooLarge).into_response(),
    };
    // Whose key it is: the user behind a valid access token (so a retry after the token
    // was refreshed still replays), else the credential as presented.
    let caller = match presented(&parts.headers) {
        Presented::Bearer(t) => match state.service.check_access_token(t) {
            Ok(c) => format!("user:{}", c.user_id),
            Err(_) => format!("bearer:{t}"),
        },
        Presented::ApiKey(k) => format!("apikey:{k}"),
        Presented::None => "anonymous".to_string(),
    };
    let scope = [
        path.as_bytes(),
        b"\n",
        caller.as_bytes(),
        b"\n",
        key.as_bytes(),
    ]
    .concat();
    let store_key = hex(digest(&SHA256, &scope).as_ref());
    let request_hash = hex(digest(&SHA256, &bytes).as_ref());
    let store = state.service.store.clone();

    // From the claim on, the request runs to its end, and its outcome is recorded, even
    // when the client hangs up meanwhile: the client's retry then gets the response it
    // missed, which is what the key is for. Dropped with the connection instead (even
    // between the claim's commit and the handler), the claim would stay "in flight" and
    // every retry would end in 409.
    let run = tokio::spawn({
        let (store, store_key) = (store.clone(), store_key.clone());
        async move {
            if let Some(answer) = claim(&store, &store_key, &request_hash).await {
                return answer;
            }
            let res = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            record(&store, &store_key, res).await
        }
        .in_current_span()
    });
    match run.await {
        Ok(res) => res,
        // The handler panicked: nothing to replay.
        Err(e) => {
            let _ = store.idempotency_abandon(&store_key).await;
            ApiError(Error::Internal(format!("request handler failed: {e}"))).into_response()
        }
    }
}

/// Claims the key for this request: `None` when claimed (the request is to run), else
/// the answer instead: the first response replayed, or a 409 for another body or a
/// first request still running after 10 s.
async fn claim(
    store: &crate::store::DynStore,
    store_key: &str,
    request_hash: &str,
) -> Option<Response> {
    let mut waited = Duration::ZERO;
    loop {
        let now = chrono::Utc::now();
        match store.idempotency_begin(store_key, request_hash, now).await {
            Err(e) => return Some(ApiError(e.into()).into_response()),
            Ok(IdempotencyState::Claimed) => return None,
            Ok(
                IdempotencyState::InFlight { request_hash: h }
                | IdempotencyState::Done {
                    request_hash: h, ..
                },
            ) if h != request_hash => {
                return Some(
                    ApiError(Error::IdempotencyConflict { in_flight: false }).into_response(),
                );
            }
            Ok(IdempotencyState::Done { status, body, .. }) => {
                let mut res =
                    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Some(res);
            }
            Ok(IdempotencyState::InFlight { .. }) if waited < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                waited += Duration::from_millis(50);
            }
            Ok(IdempotencyState::InFlight { .. }) => {
                return Some(
                    ApiError(Error::IdempotencyConflict { in_flight: true }).into_response(),
                );
            }
        }
    }
}

/// Remembers a success for replay. A refusal is not remembered: it changed nothing, and
/// retrying gives the same refusal (or succeeds once the cause is gone).
async fn record(store: &crate::store::DynStore, store_key: &str, res: Response) -> Response {
    let status = res.status();
    if !status.is_success() {
        let _ = store.idempotency_abandon(store_key).await;
        return res;
    }
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let stored = String::from_utf8_lossy(&body);
    if let Err(e) = store
        .idempotency_finish(store_key, status.as_u16(), &stored)
        .await
    {
        tracing::warn!(error = %e, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}
