//! `/admin`: the tier-4 console (API.md, "Hosted pages and the consoles"). This file: who
//! may see it, the users list with "Create user", and the token-signing keys with "Rotate
//! now"; `users`: a user's page (unlock, disable/enable, tier, sessions, delete with a
//! confirmation step); `audit`: the audit log with filters and CSV export; `clients`: the
//! OAuth clients.
//!
//! Every action is a form `POST` under `/admin/...` that passes the CSRF rules and calls the
//! same service use case as `/api/v1/admin/*`, with the admin as the actor, so the same
//! rules (the last admin), audit events and rate limits apply. A visitor below tier 4 gets a
//! 403 page; a visitor who is not signed in gets the login page and comes back.

use super::session::{check_form, see_other, status_of, to_login, visitor, Visitor};
use super::{html, Layout};
use crate::domain::Tier;
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limit_all, Class};
use crate::http::requests::secret;
use crate::http::state::AppState;
use crate::service::admin::AdminUser;
use crate::service::auth::NewAccount;
use crate::service::{Error, PageRequest, RequestContext, UserQuery};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

mod audit;
mod client_form;
mod clients;
mod users;

pub fn router(state: &AppState) -> Router<AppState> {
    let actions = Router::new()
        .route("/admin/users", post(create_user))
        .route("/admin/signing-keys/rotate", post(rotate_keys));
    limit_all(actions, state, Class::Write)
        .route("/admin", get(console))
        .merge(users::router(state))
        .merge(audit::router())
        .merge(clients::router(state))
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The signed-in admin, or the answer for anyone else (login page, 403 page).
pub(super) async fn admin(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
    here: &str,
) -> Result<Visitor, Response> {
    let Some(v) = visitor(state, headers, ctx).await else {
        return Err(to_login(here));
    };
    if v.user.tier != Tier::ADMIN || v.caller.tier != Tier::ADMIN {
        return Err(message(
            state,
            &v,
            Error::InsufficientTier {
                required: Tier::ADMIN.get(),
            },
        ));
    }
    Ok(v)
}

/// An admin whose form passed the CSRF rules.
pub(super) async fn admin_form(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
    csrf_token: Option<&str>,
) -> Result<Visitor, Response> {
    let v = admin(state, headers, ctx, "/admin").await?;
    check_form(state, headers, &v, csrf_token).map_err(|e| message(state, &v, e))?;
    Ok(v)
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message {
    layout: Layout,
    heading: &'static str,
    error: Option<String>,
    status: Option<String>,
}

/// A page that only says what went wrong, with the error's status.
pub(super) fn message(state: &AppState, v: &Visitor, e: Error) -> Response {
    let heading = match e {
        Error::InsufficientTier { .. } => "Administrators only",
        _ => "That did not work",
    };
    let page = Message {
        layout: Layout::new("Not done").visitor(v),
        heading,
        error: Some(e.message()),
        status: None,
    };
    v.finish(state, html(status_of(&e), &page))
}

// ---------------------------------------------------------------------------------------
// The console: users and signing keys.

struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    tier: u8,
    active: bool,
    verified: bool,
    locked: bool,
}

impl From<&AdminUser> for UserRow {
    fn from(a: &AdminUser) -> Self {
        Self {
            id: a.user.id.0,
            email: a.user.email.as_str().to_string(),
            username: a.user.username.as_str().to_string(),
            tier: a.user.tier.get(),
            active: a.user.is_active,
            verified: a.user.is_verified,
            locked: a.lockout.locked_until.is_some_and(|t| t > Utc::now()),
        }
    }
}

struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    created: String,
    retires: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct ConsolePage {
    layout: Layout,
    layout_csrf: String,
    error: Option<String>,
    status: Option<String>,
    q: String,
    tier: String,
    active: String,
    users: Vec<UserRow>,
    next_page: Option<String>,
    keys: Vec<KeyRow>,
}

#[derive(Deserialize, Default)]
struct UsersQuery {
    q: Option<String>,
    tier: Option<String>,
    active: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

/// The fixed confirmations of `?done=` (nothing from the query is shown as text).
fn confirmation(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "created" => "The user is created.",
        "deleted" => "The user is deleted; their sessions and API keys are revoked.",
        "rotated" => "The signing keys are rotated: the standby key signs from now on.",
        "unlocked" => "The account is unlocked.",
        "disabled" => "The account is disabled and its sessions are ended.",
        "enabled" => "The account is enabled.",
        "saved" => "The changes are saved.",
        "sessions" => "Every session of this user is revoked.",
        _ => return None,
    };
    Some(text.to_string())
}

fn tier_filter(s: Option<&str>) -> Result<Option<Tier>, Error> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| Error::field("tier", "tier must be a number from 1 to 4"))?;
            Ok(Some(Tier::new(n)?))
        }
    }
}

fn active_filter(s: Option<&str>) -> Result<Option<bool>, Error> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(Error::field("active", "active must be true or false")),
    }
}

async fn console(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<UsersQuery>,
) -> Response {
    let v = match admin(&state, &headers, &ctx, "/admin").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let status = confirmation(q.done.as_deref());
    render_console(&state, &v, q, status, None).await
}

async fn render_console(
    state: &AppState,
    v: &Visitor,
    q: UsersQuery,
    status: Option<String>,
    error: Option<Error>,
) -> Response {
    let service = &state.service;
    let mut code = error.as_ref().map(status_of).unwrap_or(StatusCode::OK);
    let mut error = error.map(|e| e.message());
    let filters = (|| {
        let query = UserQuery {
            q: q.q.clone().filter(|s| !s.trim().is_empty()),
            tier: tier_filter(q.tier.as_deref())?,
            active: active_filter(q.active.as_deref())?,
        };
        Ok::<_, Error>((query, PageRequest::parse(q.cursor.as_deref(), Some(25))?))
    })();
    let (users, next_page) = match filters {
        Ok((query, page)) => match service.admin_list_users(query, page).await {
            Ok(paged) => {
                let next = paged.next_cursor.map(|c| {
                    let mut url = url::form_urlencoded::Serializer::new(String::new());
                    for (k, val) in [("q", &q.q), ("tier", &q.tier), ("active", &q.active)] {
                        if let Some(val) = val.as_deref().filter(|s| !s.is_empty()) {
                            url.append_pair(k, val);
                        }
                    }
                    url.append_pair("cursor", &c);
                    format!("/admin?{}", url.finish())
                });
                (paged.items.iter().map(UserRow::from).collect(), next)
            }
            Err(e) => {
                code = status_of(&e);
                error = Some(e.message());
                (Vec::new(), None)
            }
        },
        Err(e) => {
            code = status_of(&e);
            error = Some(e.message());
            (Vec::new(), None)
        }
    };
    let keys = service
        .signing_key_overview()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|k| KeyRow {
            kid: k.kid,
            alg: format!("{:?}", k.alg),
            state: format!("{:?}", k.state).to_lowercase(),
            created: when(k.created_at),
            retires: k
                .retire_at
                .map(|t| format!("leaves the JWKS {}", when(t)))
                .unwrap_or_default(),
        })
        .collect();
    let page = ConsolePage {
        layout: Layout::new("Admin").visitor(v),
        layout_csrf: v.csrf.clone(),
        error,
        status,
        q: q.q.unwrap_or_default(),
        tier: q.tier.unwrap_or_default(),
        active: q.active.unwrap_or_default(),
        users,
        next_page,
        keys,
    };
    v.finish(state, html(code, &page))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

#[derive(Deserialize)]
struct NewUserForm {
    csrf_token: Option<String>,
    email: Option<String>,
    password: Option<String>,
    username: Option<String>,
    full_name: Option<String>,
    permission_tier: Option<String>,
    /// A checkbox: present when checked.
    is_verified: Option<String>,
}

/// "Create user": the admin API's `POST /api/v1/admin/users` as a form; the new user's
/// page on success, the console with the message otherwise.
async fn create_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<NewUserForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let optional = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let made = match tier_filter(form.permission_tier.as_deref()) {
        Ok(tier) => {
            let account = NewAccount {
                email: form.email.unwrap_or_default(),
                password: secret(form.password),
                username: optional(form.username),
                full_name: optional(form.full_name),
            };
            let verified = form.is_verified.is_some();
            state
                .service
                .admin_create_user(Some(v.user.id), account, tier, verified, Some(&ctx))
                .await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok(user) => v.finish(
            &state,
            see_other(&format!("/admin/users/{}?done=created", user.id.0)),
        ),
        Err(e) => render_console(&state, &v, UsersQuery::default(), None, Some(e)).await,
    }
}

async fn rotate_keys(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match state
        .service
        .rotate_signing_keys(Some(v.user.id), Some(&ctx))
        .await
    {
        Ok(_) => v.finish(&state, see_other("/admin?done=rotated")),
        Err(e) => render_console(&state, &v, UsersQuery::default(), None, Some(e)).await,
    }
}
