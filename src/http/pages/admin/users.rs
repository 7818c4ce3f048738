//! `/admin/users/{id}`: one user's page and its actions (unlock, disable/enable, tier and
//! verification, revoke all sessions, delete after a confirmation page).

use super::{
    active_filter, admin, admin_form, confirmation, message, tier_filter, when, CsrfForm, UserRow,
};
use crate::domain::UserId;
use crate::http::extract::Ctx;
use crate::http::pages::session::{see_other, status_of, Visitor};
use crate::http::pages::{html, Layout};
use crate::http::ratelimit::{limit_all, Class};
use crate::http::state::AppState;
use crate::service::admin::AdminPatch;
use crate::service::{Error, PageRequest};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let actions = Router::new()
        .route("/admin/users/{id}/unlock", post(unlock))
        .route("/admin/users/{id}/active", post(set_active))
        .route("/admin/users/{id}/update", post(update))
        .route("/admin/users/{id}/delete", post(delete))
        .route("/admin/users/{id}/sessions/revoke", post(revoke_sessions));
    limit_all(actions, state, Class::Write).route("/admin/users/{id}", get(user_page))
}

struct SessionRow {
    device: String,
    ip: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    layout: Layout,
    layout_csrf: String,
    error: Option<String>,
    status: Option<String>,
    user: UserRow,
    full_name: String,
    created: String,
    failed_logins: u32,
    locked_until: Option<String>,
    tiers: Vec<u8>,
    sessions: Vec<SessionRow>,
    is_self: bool,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn user_page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let here = format!("/admin/users/{}", urlencoding::encode(&id));
    let v = match admin(&state, &headers, &ctx, &here).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return message(&state, &v, Error::NotFound("user"));
    };
    let status = confirmation(q.done.as_deref());
    render_user(&state, &v, UserId(id), StatusCode::OK, status, None).await
}

async fn render_user(
    state: &AppState,
    v: &Visitor,
    id: UserId,
    code: StatusCode,
    status: Option<String>,
    error: Option<String>,
) -> Response {
    let service = &state.service;
    let user = match service.admin_get_user(id).await {
        Ok(u) => u,
        Err(e) => return message(state, v, e),
    };
    let sessions = service
        .admin_user_sessions(
            id,
            PageRequest {
                after: None,
                limit: 50,
            },
        )
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    let locked_until = user
        .lockout
        .locked_until
        .filter(|t| *t > Utc::now())
        .map(when);
    let page = UserPage {
        layout: Layout::new("User").visitor(v),
        layout_csrf: v.csrf.clone(),
        error,
        status,
        full_name: user
            .user
            .full_name
            .as_ref()
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        created: when(user.user.created_at),
        failed_logins: user.lockout.failed_login_count,
        locked_until,
        tiers: (1..=4).collect(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                device: s
                    .user_agent
                    .map(|ua| ua.chars().take(80).collect())
                    .unwrap_or_else(|| "Unknown device".into()),
                ip: s.ip.unwrap_or_else(|| "unknown".into()),
                created: when(s.created_at),
                last_used: when(s.last_used_at),
            })
            .collect(),
        is_self: user.user.id == v.user.id,
        user: UserRow::from(&user),
    };
    v.finish(state, html(code, &page))
}

/// After an action on a user: back to their page (`done`), or their page with the error.
async fn settle_user(
    state: &AppState,
    v: &Visitor,
    id: UserId,
    outcome: Result<(), Error>,
    done: &str,
) -> Response {
    match outcome {
        Ok(()) => v.finish(
            state,
            see_other(&format!("/admin/users/{}?done={done}", id.0)),
        ),
        Err(e) => render_user(state, v, id, status_of(&e), None, Some(e.message())).await,
    }
}

async fn unlock(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let outcome = state
        .service
        .admin_unlock_user(Some(v.user.id), UserId(id), Some(&ctx))
        .await;
    settle_user(&state, &v, UserId(id), outcome, "unlocked").await
}

#[derive(Deserialize)]
struct ActiveForm {
    csrf_token: Option<String>,
    active: Option<String>,
}

async fn set_active(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<ActiveForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let active = match active_filter(form.active.as_deref()) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let e = Error::field("active", "active is required");
            return settle_user(&state, &v, UserId(id), Err(e), "").await;
        }
        Err(e) => return settle_user(&state, &v, UserId(id), Err(e), "").await,
    };
    let patch = AdminPatch {
        is_active: Some(active),
        ..AdminPatch::default()
    };
    let outcome = state
        .service
        .admin_patch_user(Some(v.user.id), UserId(id), patch, Some(&ctx))
        .await
        .map(|_| ());
    let done = if active { "enabled" } else { "disabled" };
    settle_user(&state, &v, UserId(id), outcome, done).await
}

#[derive(Deserialize)]
struct UpdateForm {
    csrf_token: Option<String>,
    permission_tier: Option<String>,
    /// A checkbox: present ("on") when checked.
    is_verified: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<UpdateForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let tier = match tier_filter(form.permission_tier.as_deref()) {
        Ok(t) => t,
        Err(e) => return settle_user(&state, &v, UserId(id), Err(e), "").await,
    };
    let patch = AdminPatch {
        permission_tier: tier,
        is_verified: Some(form.is_verified.is_some()),
        ..AdminPatch::default()
    };
    let outcome = state
        .service
        .admin_patch_user(Some(v.user.id), UserId(id), patch, Some(&ctx))
        .await
        .map(|_| ());
    settle_user(&state, &v, UserId(id), outcome, "saved").await
}

async fn revoke_sessions(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let outcome = state
        .service
        .admin_revoke_sessions(Some(v.user.id), UserId(id), Some(&ctx))
        .await;
    if outcome.is_ok() && UserId(id) == v.user.id {
        // The admin ended their own session too.
        return see_other("/login");
    }
    settle_user(&state, &v, UserId(id), outcome, "sessions").await
}

#[derive(Template)]
#[template(path = "admin_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    layout_csrf: String,
    id: Uuid,
    email: String,
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf_token: Option<String>,
    /// `yes` once the admin confirmed on the confirmation page.
    confirm: Option<String>,
}

/// `Delete` asks first: without `confirm=yes` the answer is a confirmation page whose
/// button sends it (no script needed).
async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    if form.confirm.as_deref() != Some("yes") {
        let user = match state.service.admin_get_user(UserId(id)).await {
            Ok(u) => u,
            Err(e) => return message(&state, &v, e),
        };
        let page = ConfirmPage {
            layout: Layout::new("Delete user").visitor(&v),
            layout_csrf: v.csrf.clone(),
            id,
            email: user.user.email.as_str().to_string(),
        };
        return v.finish(&state, html(StatusCode::OK, &page));
    }
    match state
        .service
        .admin_delete_user(Some(v.user.id), UserId(id), Some(&ctx))
        .await
    {
        Ok(()) => v.finish(&state, see_other("/admin?done=deleted")),
        Err(e) => settle_user(&state, &v, UserId(id), Err(e), "").await,
    }
}
