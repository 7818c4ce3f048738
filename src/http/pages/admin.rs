//! `/admin`: the tier-4 console (API.md, "Hosted pages and the consoles"). Users (search,
//! filters, a user's page with unlock, disable/enable, tier, delete with a confirmation step,
//! their sessions), the audit log with filters and CSV export, and the token-signing keys
//! with "Rotate now".
//!
//! Every action is a form `POST` under `/admin/...` that passes the CSRF rules and calls the
//! same service use case as `/api/v1/admin/*`, with the admin as the actor, so the same
//! rules (the last admin), audit events and rate limits apply. A visitor below tier 4 gets a
//! 403 page; a visitor who is not signed in gets the login page and comes back.

use super::session::{check_form, see_other, status_of, to_login, visitor, Visitor};
use super::{html, Layout};
use crate::domain::{Tier, UserId};
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limit_all, Class};
use crate::http::requests::secret;
use crate::http::state::AppState;
use crate::service::admin::{AdminPatch, AdminUser};
use crate::service::auth::NewAccount;
use crate::service::{AuditQuery, Error, PageRequest, RequestContext, UserQuery};
use crate::store::AuditEvent;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

pub fn router(state: &AppState) -> Router<AppState> {
    let actions = Router::new()
        .route("/admin/users", post(create_user))
        .route("/admin/users/{id}/unlock", post(unlock))
        .route("/admin/users/{id}/active", post(set_active))
        .route("/admin/users/{id}/update", post(update))
        .route("/admin/users/{id}/delete", post(delete))
        .route("/admin/users/{id}/sessions/revoke", post(revoke_sessions))
        .route("/admin/signing-keys/rotate", post(rotate_keys));
    limit_all(actions, state, Class::Write)
        .route("/admin", get(console))
        .route("/admin/users/{id}", get(user_page))
        .route("/admin/audit", get(audit_page))
        .route("/admin/audit.csv", get(audit_csv))
}

/// The most events one CSV export holds (newest first); the filters narrow it.
const CSV_MAX_EVENTS: usize = 10_000;

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

// ---------------------------------------------------------------------------------------
// One user.

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

// ---------------------------------------------------------------------------------------
// The audit log.

#[derive(Deserialize, Default)]
struct AuditFilters {
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A date (`YYYY-MM-DD`, from the date input) or an RFC 3339 time.
    since: Option<String>,
    cursor: Option<String>,
}

impl AuditFilters {
    fn query(&self) -> Result<AuditQuery, Error> {
        let user_id = match self
            .user_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(UserId(Uuid::parse_str(s).map_err(|_| {
                Error::field("user_id", "user_id must be a user's id (a UUID)")
            })?)),
        };
        let since = match self
            .since
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(parse_since(s).ok_or_else(|| {
                Error::field(
                    "since",
                    "since must be a date (YYYY-MM-DD) or an RFC 3339 time",
                )
            })?),
        };
        Ok(AuditQuery {
            user_id,
            kind: self
                .kind
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            since,
        })
    }

    /// The filters as a query string (without the cursor).
    fn encoded(&self) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, val) in [
            ("user_id", &self.user_id),
            ("type", &self.kind),
            ("since", &self.since),
        ] {
            if let Some(val) = val.as_deref().filter(|s| !s.is_empty()) {
                url.append_pair(k, val);
            }
        }
        url.finish()
    }
}

fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

struct EventRow {
    at: String,
    kind: String,
    user_id: String,
    actor_id: String,
    ip: String,
    details: String,
}

impl From<&AuditEvent> for EventRow {
    fn from(e: &AuditEvent) -> Self {
        let id = |u: Option<UserId>| u.map(|u| u.0.to_string()).unwrap_or_default();
        Self {
            at: when(e.at),
            kind: e.kind.clone(),
            user_id: id(e.user_id),
            actor_id: id(e.actor_id),
            ip: e.ip.clone().unwrap_or_default(),
            details: if e.details.is_null() {
                String::new()
            } else {
                e.details.to_string()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    user_id: String,
    kind: String,
    since: String,
    events: Vec<EventRow>,
    csv_url: String,
    next_page: Option<String>,
}

async fn audit_page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(f): Query<AuditFilters>,
) -> Response {
    let v = match admin(&state, &headers, &ctx, "/admin/audit").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let mut code = StatusCode::OK;
    let mut error = None;
    let mut events = Vec::new();
    let mut next_page = None;
    let listed = match (f.query(), PageRequest::parse(f.cursor.as_deref(), Some(50))) {
        (Ok(q), Ok(page)) => state.service.admin_audit(q, page).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match listed {
        Ok(paged) => {
            events = paged.items.iter().map(EventRow::from).collect();
            next_page = paged.next_cursor.map(|c| {
                let filters = f.encoded();
                let sep = if filters.is_empty() { "" } else { "&" };
                format!(
                    "/admin/audit?{filters}{sep}cursor={}",
                    urlencoding::encode(&c)
                )
            });
        }
        Err(e) => {
            code = status_of(&e);
            error = Some(e.message());
        }
    }
    let filters = f.encoded();
    let page = AuditPage {
        layout: Layout::new("Audit log").visitor(&v),
        error,
        status: None,
        csv_url: if filters.is_empty() {
            "/admin/audit.csv".to_string()
        } else {
            format!("/admin/audit.csv?{filters}")
        },
        user_id: f.user_id.unwrap_or_default(),
        kind: f.kind.unwrap_or_default(),
        since: f.since.unwrap_or_default(),
        events,
        next_page,
    };
    v.finish(&state, html(code, &page))
}

/// A CSV field: quoted when it holds a separator, a quote or a line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn audit_csv(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(f): Query<AuditFilters>,
) -> Response {
    let v = match admin(&state, &headers, &ctx, "/admin/audit").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let q = match f.query() {
        Ok(q) => q,
        Err(e) => return message(&state, &v, e),
    };
    let mut out = String::from("id,type,at,user_id,actor_id,ip,user_agent,details\r\n");
    let mut after = None;
    let mut written = 0;
    loop {
        let page = PageRequest {
            after,
            limit: PageRequest::MAX,
        };
        let paged = match state.service.admin_audit(q.clone(), page).await {
            Ok(p) => p,
            Err(e) => return message(&state, &v, e),
        };
        for e in &paged.items {
            let id = |u: Option<UserId>| u.map(|u| u.0.to_string()).unwrap_or_default();
            let fields = [
                e.id.to_string(),
                e.kind.clone(),
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                id(e.user_id),
                id(e.actor_id),
                e.ip.clone().unwrap_or_default(),
                e.user_agent.clone().unwrap_or_default(),
                if e.details.is_null() {
                    String::new()
                } else {
                    e.details.to_string()
                },
            ];
            let line: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
            written += 1;
        }
        after = paged.items.last().map(|e| e.id);
        if paged.next_cursor.is_none() || written >= CSV_MAX_EVENTS {
            break;
        }
    }
    let name = format!("tradeauth-audit-{}.csv", Utc::now().format("%Y%m%d-%H%M%S"));
    let res = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response();
    v.finish(&state, res)
}

#[cfg(test)]
mod tests {
    use super::{csv_field, parse_since};

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("login.failed"), "login.failed");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_field("@SUM(1)"), "'@SUM(1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn since_takes_a_date_or_a_time() {
        let d = parse_since("2026-12-01").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let t = parse_since("2026-12-01T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T08:00:00+00:00");
        assert!(parse_since("yesterday").is_none());
    }
}
