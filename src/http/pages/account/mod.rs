//! `/account`: the signed-in user's console. Every action is a form `POST` to
//! `/account/...` that passes the CSRF rules and calls the same use case as the API (so the
//! same events, rate limits and revocations happen), then redirects back with a fixed
//! confirmation — or, where a secret is shown once (an API key, recovery codes, the TOTP
//! key), answers the page itself.

use super::session::{check_form, see_other, status_of, to_login, visitor, Visitor};
use super::{html, Layout};
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limit_all, Class};
use crate::http::requests::secret;
use crate::http::state::AppState;
use crate::service::{Error, PageRequest, RequestContext};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

mod keys;
mod totp;

pub fn router(state: &AppState) -> Router<AppState> {
    let actions = Router::new()
        .route("/account/profile", post(save_profile))
        .route("/account/password", post(change_password))
        .route("/account/sessions/revoke", post(revoke_session))
        .route("/account/sessions/revoke-all", post(sign_out_everywhere))
        .route("/account/totp/setup", post(totp::totp_setup))
        .route("/account/totp/enable", post(totp::totp_enable))
        .route("/account/totp/disable", post(totp::totp_disable))
        .route("/account/api-keys", post(keys::create_key))
        .route("/account/api-keys/revoke", post(keys::revoke_key))
        .route("/account/apps/revoke", post(keys::revoke_app));
    limit_all(actions, state, Class::Write).route("/account", get(account_page))
}

struct SessionRow {
    id: Uuid,
    device: String,
    ip: String,
    last_used: String,
    current: bool,
}

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    tier: u8,
    expiry: String,
    last_used: String,
    /// `bearer`, or a signing key's algorithm (its `key_id` is `prefix`).
    algorithm: String,
}

/// An OAuth client the user allowed ("Connected apps").
struct AppRow {
    client_id: String,
    name: String,
    scopes: String,
    granted: String,
}

struct EventRow {
    kind: String,
    at: String,
    ip: String,
}

pub struct TotpSetup {
    secret: String,
    url: String,
    qr_data_uri: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    layout_csrf: String,
    error: Option<String>,
    status: Option<String>,
    email: String,
    username: String,
    full_name: String,
    tier: u8,
    role: &'static str,
    verified: bool,
    mfa_enabled: bool,
    sessions: Vec<SessionRow>,
    api_keys: Vec<KeyRow>,
    events: Vec<EventRow>,
    apps: Vec<AppRow>,
    tiers: Vec<u8>,
    new_key: Option<String>,
    recovery_codes: Option<Vec<String>>,
    totp_setup: Option<TotpSetup>,
}

/// What one answer adds to the console.
#[derive(Default)]
struct Extras {
    error: Option<String>,
    status: Option<String>,
    new_key: Option<String>,
    recovery_codes: Option<Vec<String>>,
    totp_setup: Option<TotpSetup>,
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn render(state: &AppState, v: &Visitor, status: StatusCode, extras: Extras) -> Response {
    let service = &state.service;
    let first = PageRequest {
        after: None,
        limit: 50,
    };
    let sessions = service
        .list_sessions(&v.caller, first)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let keys = service
        .list_api_keys(&v.caller, first)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let events = service
        .own_events(
            &v.caller,
            PageRequest {
                after: None,
                limit: 20,
            },
        )
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let apps = service
        .list_oauth_grants(&v.caller)
        .await
        .unwrap_or_default();
    let user = &v.user;
    let page = AccountPage {
        layout: Layout::new("Your account").script("account.js").visitor(v),
        layout_csrf: v.csrf.clone(),
        error: extras.error,
        status: extras.status,
        email: user.email.as_str().to_string(),
        username: user.username.as_str().to_string(),
        full_name: user
            .full_name
            .as_ref()
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        tier: user.tier.get(),
        role: user.tier.role().as_str(),
        verified: user.is_verified,
        mfa_enabled: user.mfa_enabled,
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                id: s.session.id,
                device: s
                    .session
                    .user_agent
                    .clone()
                    .map(|ua| ua.chars().take(80).collect())
                    .unwrap_or_else(|| "Unknown device".into()),
                ip: s.session.ip.clone().unwrap_or_else(|| "unknown".into()),
                last_used: when(s.session.last_used_at),
                current: s.current,
            })
            .collect(),
        api_keys: keys
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| KeyRow {
                id: k.id,
                name: k.name.clone(),
                prefix: format!("ta_{}", k.public_id),
                tier: k.tier.get(),
                expiry: k
                    .expires_at
                    .map(|t| format!("expires {}", when(t)))
                    .unwrap_or_else(|| "no expiry".into()),
                last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                algorithm: k.algorithm.clone(),
            })
            .collect(),
        events: events
            .into_iter()
            .map(|e| EventRow {
                kind: e.kind,
                at: when(e.at),
                ip: e.ip.unwrap_or_else(|| "-".into()),
            })
            .collect(),
        apps: apps
            .into_iter()
            .map(|(consent, name)| AppRow {
                client_id: consent.client_id.clone(),
                name,
                scopes: consent.scopes.to_param(),
                granted: when(consent.granted_at),
            })
            .collect(),
        tiers: (1..=user.tier.get()).collect(),
        new_key: extras.new_key,
        recovery_codes: extras.recovery_codes,
        totp_setup: extras.totp_setup,
    };
    v.finish(state, html(status, &page))
}

/// An error on a console action: the console again, with the message.
pub fn problem(state: &AppState, v: &Visitor, e: Error) -> Response {
    #[derive(Template)]
    #[template(path = "message.html")]
    struct Message {
        layout: Layout,
        heading: &'static str,
        error: Option<String>,
        status: Option<String>,
    }
    v.finish(
        state,
        html(
            status_of(&e),
            &Message {
                layout: Layout::new("Not done").visitor(v),
                heading: "That did not work",
                error: Some(e.message()),
                status: None,
            },
        ),
    )
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// The fixed confirmations of `?done=` (nothing from the query is shown as text).
fn confirmation(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "profile" => "Your profile is saved.",
        "password" => "Your password is changed. Your other sessions were signed out.",
        "session" => "The session is revoked.",
        "totp_off" => "Two-factor authentication is off.",
        "key_revoked" => "The API key is revoked.",
        "app_revoked" => "The app no longer has access to your account.",
        _ => return None,
    };
    Some(text.to_string())
}

async fn account_page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let Some(v) = visitor(&state, &headers, &ctx).await else {
        return to_login("/account");
    };
    let extras = Extras {
        status: confirmation(q.done.as_deref()),
        ..Extras::default()
    };
    render(&state, &v, StatusCode::OK, extras).await
}

/// The signed-in visitor of a console form that passed the CSRF rules, or the answer.
async fn form_visitor(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
    csrf_token: Option<&str>,
) -> Result<Visitor, Response> {
    let Some(v) = visitor(state, headers, ctx).await else {
        return Err(to_login("/account"));
    };
    match check_form(state, headers, &v, csrf_token) {
        Ok(()) => Ok(v),
        Err(e) => Err(problem(state, &v, e)),
    }
}

/// After a change: back to the console (`done`), or the console with the error.
async fn settle(state: &AppState, v: &Visitor, outcome: Result<(), Error>, done: &str) -> Response {
    match outcome {
        Ok(()) => v.finish(state, see_other(&format!("/account?done={done}"))),
        Err(e) => {
            let status = status_of(&e);
            let extras = Extras {
                error: Some(e.message()),
                ..Extras::default()
            };
            render(state, v, status, extras).await
        }
    }
}

#[derive(Deserialize)]
struct ProfileForm {
    csrf_token: Option<String>,
    username: Option<String>,
    full_name: Option<String>,
}

async fn save_profile(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<ProfileForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let username = form
        .username
        .filter(|u| !u.is_empty() && u != v.user.username.as_str());
    // An emptied field clears the name.
    let full_name = form
        .full_name
        .map(|n| Some(n).filter(|n| !n.trim().is_empty()));
    let outcome = state
        .service
        .update_me(&v.caller, username, full_name, &ctx)
        .await
        .map(|_| ());
    settle(&state, &v, outcome, "profile").await
}

/// No `Debug`: it holds passwords.
#[derive(Deserialize)]
struct PasswordForm {
    csrf_token: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

async fn change_password(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let outcome = state
        .service
        .change_password(
            &v.caller,
            secret(form.current_password),
            secret(form.new_password),
            &ctx,
        )
        .await;
    settle(&state, &v, outcome, "password").await
}

#[derive(Deserialize)]
struct IdForm {
    csrf_token: Option<String>,
    id: Option<Uuid>,
}

async fn revoke_session(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<IdForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Some(id) = form.id else {
        return problem(&state, &v, Error::NotFound("session"));
    };
    let outcome = state.service.revoke_own_session(&v.caller, id, &ctx).await;
    if outcome.is_ok() && Some(id) == v.caller.session_id() {
        // This device's own session: it is signed out now.
        return signed_out(&state);
    }
    settle(&state, &v, outcome, "session").await
}

fn signed_out(state: &AppState) -> Response {
    let mut res = see_other("/login?done=signed_out");
    crate::http::cookies::clear(&state.cookies(), res.headers_mut());
    res
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

async fn sign_out_everywhere(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match state.service.logout_all(&v.caller, &ctx).await {
        Ok(()) => signed_out(&state),
        Err(e) => problem(&state, &v, e),
    }
}
