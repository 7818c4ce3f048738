//! The device authorization grant over HTTP (RFC 8628): `POST
//! /oauth2/device_authorization` (RFC 6749 JSON), and the hosted pages the user answers
//! on — `/device` ("Code", "Continue"), the sign-in if needed, the consent page (the same
//! page and form as the code flow's), then a "done" page.
//!
//! The code entry is a form anyone may post (the origin rule applies; there is no session
//! yet to hold a CSRF token); what it leads to is sealed in a ticket, and the consent form
//! carries the session's CSRF token as every form of a signed-in user.

use super::endpoints::{client_credentials, form_pairs};
use super::{no_store, OAuthJson};
use crate::http::extract::Ctx;
use crate::http::pages::session::{to_login, visitor, Visitor};
use crate::http::pages::{html, Layout};
use crate::http::ratelimit::{limited, Class};
use crate::http::state::AppState;
use crate::service::{Error, RequestContext};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

/// `/oauth2/device_authorization` (JSON, under the `/oauth2/` error layer).
pub fn api_router(state: &AppState) -> Router<AppState> {
    Router::new().route(
        "/oauth2/device_authorization",
        limited(post(authorize_device), state, Class::Write),
    )
}

/// The `/device` pages.
pub fn pages_router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/device", get(show_code_form))
        .route("/device", limited(post(enter_code), state, Class::Write))
        .route("/device/confirm", get(confirm_device))
        .layer(axum::middleware::from_fn(
            crate::http::pages::security_headers,
        ))
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1, §3.2).
#[utoipa::path(post, path = "/oauth2/device_authorization", tag = "oauth", request_body(content = super::docs::DeviceAuthorizationForm, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "the device's codes; the user answers at verification_uri", body = super::docs::DeviceAuthorizationBody), (status = 400, description = "RFC 6749 error (unauthorized_client: not registered for the device grant)", body = super::docs::OAuthErrorBody), (status = 401, description = "invalid_client", body = super::docs::OAuthErrorBody), (status = 429, description = "rate limited", body = super::docs::OAuthErrorBody)))]
pub(crate) async fn authorize_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let map = form_pairs(&headers, &body)?;
        let get = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let creds = client_credentials(&headers, &map, "/oauth2/device_authorization")?;
        state
            .service
            .device_authorization(creds, get("scope"))
            .await
    }
    .await;
    match result {
        Ok(d) => {
            let mut res = Json(json!({
                "device_code": d.device_code,
                "user_code": d.user_code,
                "verification_uri": d.verification_uri,
                "verification_uri_complete": d.verification_uri_complete,
                "expires_in": d.expires_in,
                "interval": d.interval,
            }))
            .into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => OAuthJson(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "device.html")]
struct CodePage {
    layout: Layout,
    user_code: String,
    error: Option<String>,
    status: Option<String>,
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DonePage {
    layout: Layout,
    heading: &'static str,
    message: &'static str,
}

struct ScopeLine {
    name: String,
    words: &'static str,
}

/// The code flow's consent page and form, for a device.
#[derive(Template)]
#[template(path = "oauth_consent.html")]
struct ConsentPage {
    layout: Layout,
    client_name: String,
    scopes: Vec<ScopeLine>,
    csrf: String,
    ticket: String,
}

fn code_page(status: StatusCode, user_code: String, error: Option<String>) -> Response {
    html(
        status,
        &CodePage {
            layout: Layout::new("Connect a device"),
            user_code,
            error,
            status: None,
        },
    )
}

#[derive(Deserialize, Default)]
struct CodeQuery {
    user_code: Option<String>,
}

/// `GET /device` (`?user_code=` from `verification_uri_complete` fills the field in).
async fn show_code_form(Query(q): Query<CodeQuery>) -> Response {
    code_page(StatusCode::OK, q.user_code.unwrap_or_default(), None)
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    user_code: String,
}

/// `POST /device`: the code typed; on to the sign-in and the consent.
async fn enter_code(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Err(e) = crate::http::csrf::check_origin(&headers, &state.service) {
        return code_page(StatusCode::FORBIDDEN, form.user_code, Some(e.message()));
    }
    match state.service.enter_user_code(&form.user_code, ctx.ip).await {
        Ok(ticket) => crate::http::pages::session::see_other(&format!(
            "/device/confirm?ticket={}",
            urlencoding::encode(&ticket)
        )),
        Err(e @ Error::RateLimited { .. }) => code_page(
            StatusCode::TOO_MANY_REQUESTS,
            form.user_code,
            Some(format!("Too many codes entered. {}", e.message())),
        ),
        Err(e) => code_page(StatusCode::BAD_REQUEST, form.user_code, Some(e.message())),
    }
}

#[derive(Deserialize)]
struct TicketQuery {
    #[serde(default)]
    ticket: String,
}

/// `GET /device/confirm`: the sign-in if needed, then the consent page.
async fn confirm_device(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<TicketQuery>,
) -> Response {
    let Some(v) = visitor(&state, &headers, &ctx).await else {
        return to_login(&format!(
            "/device/confirm?ticket={}",
            urlencoding::encode(&q.ticket)
        ));
    };
    let res = match state.service.device_consent(&q.ticket, &v.caller).await {
        Ok(c) => html(
            StatusCode::OK,
            &ConsentPage {
                layout: Layout::new("Allow access").visitor(&v),
                client_name: c.client_name,
                scopes: c
                    .scopes
                    .into_iter()
                    .map(|(name, words)| ScopeLine { name, words })
                    .collect(),
                csrf: v.csrf.clone(),
                ticket: c.ticket,
            },
        ),
        Err(e) => code_page(StatusCode::BAD_REQUEST, String::new(), Some(e.message())),
    };
    v.finish(&state, res)
}

/// "Allow" or "Deny" of a device's consent form (`/oauth2/consent` hands it here).
pub(super) async fn answer_consent(
    state: &AppState,
    ctx: &RequestContext,
    v: &Visitor,
    ticket: &str,
    allow: bool,
) -> Response {
    let done = |heading, message| {
        html(
            StatusCode::OK,
            &DonePage {
                layout: Layout::new("Device").visitor(v),
                heading,
                message,
            },
        )
    };
    match state
        .service
        .answer_device(ticket, allow, &v.caller, ctx)
        .await
    {
        Ok(true) => done(
            "Device connected",
            "Done. You can close this page and return to your device.",
        ),
        Ok(false) => done(
            "Request denied",
            "The device was not connected. You can close this page.",
        ),
        Err(e) => code_page(StatusCode::BAD_REQUEST, String::new(), Some(e.message())),
    }
}
