//! `GET /api/v1/ws?token=<access token>` (seed 001): the authenticated WebSocket (also with
//! a Bearer header or, from an allowed origin, the access cookie).
//!
//! The token is checked before the upgrade (401 JSON otherwise). On connect the server
//! sends `welcome`; it answers `ping` with `pong`; `reauth` with a newer token of the same
//! user extends the connection. It closes with 4001 at the token's expiry, with 4003 as
//! soon as the session is revoked (logout, deletion, disablement — revocations from other
//! writers arrive through the catch-up loop), and with 1001 when the server shuts down.
//! The caller's security events are pushed as they are written.

use super::csrf;
use super::error::{ApiError, ApiResult};
use super::extract::{AppQuery, Credentials};
use super::state::{AppState, Slot};
use super::views::EventBody;
use crate::domain::UserId;
use crate::service::dpop::DpopSubject;
use crate::service::{Caller, Credential, Error};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(connect_socket))
}

/// No `Debug`: it holds a token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct WsQuery {
    token: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/ws", tag = "websocket", params(("token" = String, Query, description = "access token")), responses((status = 101, description = "upgraded to a WebSocket"), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn connect_socket(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    headers: HeaderMap,
    AppQuery(q): AppQuery<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Access tokens only (a socket lives with a session), the query's before the header's,
    // the header's before the cookie's. A browser opens a socket to any site with its
    // cookies: one the access cookie authenticates must come from an allowed origin.
    let token = match (
        q.token.as_deref().filter(|t| !t.is_empty()),
        Credentials::from_headers(&headers, &state.cookies()),
    ) {
        (Some(t), _) | (None, Credentials::Bearer(t)) => t,
        // A DPoP-bound token (from a client that can set headers on the handshake): its
        // proof signs `GET` of this URL; `reauth` takes bearer tokens only.
        (None, Credentials::Dpop { token, .. }) => {
            let view = super::extract::own_request(&parts, &state.service);
            let (proof, target) = super::credentials::dpop_parts(Some(view))?;
            let caller = match state
                .service
                .check_dpop_subject(token, proof, &target)
                .await?
            {
                DpopSubject::User(c) => c,
                DpopSubject::Client(_) => return Err(Error::ClientNotAllowed.into()),
            };
            return open_socket(state, caller, upgrade);
        }
        (None, Credentials::Cookie(t)) => {
            csrf::check_origin(&headers, &state.service)?;
            t
        }
        (None, _) => return Err(Error::MissingToken.into()),
    };
    let caller = state.service.check_access_token(token)?;
    open_socket(state, caller, upgrade)
}

/// Upgrades the connection for `caller`, within the per-user cap.
fn open_socket(
    state: AppState,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = upgrade.map_err(|e| Error::field("upgrade", e.body_text()))?;
    // The per-user cap is a rate limit: `rate_limit = off` lifts it with the others.
    let max = if state.service.config().rate_limit {
        state.service.config().ws_max_per_user
    } else {
        usize::MAX
    };
    let slot = state
        .ws
        .acquire(caller.user_id, max)
        .ok_or(ApiError(Error::RateLimited { retry_after: 1 }))?;
    Ok(upgrade.on_upgrade(move |socket| run_socket(state, caller, socket, slot)))
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The time left until `exp`, to the millisecond: the socket closes at the instant the
/// token checks start answering `token_expired` (`tokens::jwt::expired`), not up to a
/// second later.
fn until(exp: i64) -> Duration {
    let left = exp.saturating_mul(1000) - chrono::Utc::now().timestamp_millis();
    Duration::from_millis(left.max(0) as u64)
}

pub(crate) async fn run_socket(
    state: AppState,
    caller: Caller,
    mut socket: WebSocket,
    _slot: Slot,
) {
    let service = &state.service;
    let Credential::Session {
        mut sid, mut exp, ..
    } = caller.credential
    else {
        return;
    };
    let user = caller.user_id;
    let gauge = service.metrics().websockets.clone();
    gauge.inc();
    let _open = scopeguard(move || gauge.dec());
    let mut events = service.subscribe_events();
    let mut revoked = service.subscribe_revoked_sessions();
    let mut shutdown = service.subscribe_shutdown();
    // Subscribed now: anything from here on is seen below. What happened between the
    // token check and the subscriptions is checked once.
    let closing = if *shutdown.borrow_and_update() {
        Some(close(1001, "server shutting down"))
    } else if service.is_session_revoked(&sid) {
        Some(close(4003, "session revoked"))
    } else {
        None
    };
    if let Some(frame) = closing {
        let _ = socket.send(frame).await;
        return;
    }
    let welcome = json!({"type": "welcome", "user_id": user, "permission_tier": caller.tier.get(), "expires_at": exp});
    if socket.send(text(welcome)).await.is_err() {
        return;
    }
    let expiry = tokio::time::sleep(until(exp));
    tokio::pin!(expiry);
    let closing = loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { break None };
                let reply = match msg {
                    Message::Text(t) => answer(service, user, &t, &mut sid, &mut exp),
                    Message::Close(_) => break None,
                    _ => continue,
                };
                if let Some(ReplyOutcome::Reauthed) = reply.1 {
                    expiry.as_mut().reset(tokio::time::Instant::now() + until(exp));
                }
                if socket.send(text(reply.0)).await.is_err() {
                    break None;
                }
            }
            _ = &mut expiry => break Some(close(4001, "token expired")),
            r = revoked.recv() => match r {
                Ok(s) if s == sid => break Some(close(4003, "session revoked")),
                Err(RecvError::Lagged(_)) if service.is_session_revoked(&sid) => {
                    break Some(close(4003, "session revoked"))
                }
                Err(RecvError::Closed) => break None,
                _ => {}
            },
            e = events.recv() => match e {
                Ok(event) if event.user_id == Some(user) => {
                    let msg = json!({"type": "event", "event": EventBody::from(&event)});
                    if socket.send(text(msg)).await.is_err() {
                        break None;
                    }
                }
                Err(RecvError::Closed) => break None,
                _ => {}
            },
            _ = shutdown.changed() => break Some(close(1001, "server shutting down")),
        }
    };
    if let Some(frame) = closing {
        let _ = socket.send(frame).await;
    }
}

enum ReplyOutcome {
    Reauthed,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    token: Option<String>,
}

/// The reply to one client message.
fn answer(
    service: &crate::service::Service,
    user: UserId,
    raw: &str,
    sid: &mut Uuid,
    exp: &mut i64,
) -> (Value, Option<ReplyOutcome>) {
    let error = |code: &str| (json!({"type": "error", "code": code}), None);
    let Ok(msg) = serde_json::from_str::<ClientMessage>(raw) else {
        return error("validation_error");
    };
    match msg.kind.as_str() {
        "ping" => (json!({"type": "pong"}), None),
        "reauth" => {
            let Some(token) = msg.token.filter(|t| !t.is_empty()) else {
                return error("missing_token");
            };
            match service.check_access_token(&token) {
                Ok(c) if c.user_id != user => error("invalid_token"),
                Ok(Caller {
                    credential: Credential::Session { sid: s, exp: e, .. },
                    ..
                }) => {
                    *sid = s;
                    *exp = e;
                    (
                        json!({"type": "reauthed", "expires_at": e}),
                        Some(ReplyOutcome::Reauthed),
                    )
                }
                Ok(_) => error("invalid_token"),
                Err(e) => error(e.code()),
            }
        }
        _ => error("validation_error"),
    }
}

/// Runs `f` when dropped (the socket's end, however it ends).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
