//! `/api/v1/admin/*`: tier 4 only (`MinTier<4>` on every handler).

use super::error::ApiResult;
use super::extract::{AppJson, AppPath, AppQuery, Ctx, MinTier};
use super::idempotency::idempotent;
use super::ratelimit::{limit_all, Class};
use super::requests::{NewUser, PageQuery};
use super::state::AppState;
use super::views::{double_option, empty_as_none, AdminUserBody, EventBody, ListBody, UserBody};
use crate::domain::{Tier, UserId};
use crate::service::admin::AdminPatch;
use crate::service::{AuditQuery, Error, UserQuery};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

type Admin = MinTier<4>;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route(
            "/users",
            idempotent::<Admin>(get(list_users).post(create_user), state),
        )
        .route(
            "/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/users/{id}/unlock", post(unlock_user))
        .route(
            "/users/{id}/sessions",
            axum::routing::delete(revoke_user_sessions),
        )
        .route("/audit", get(query_audit))
        .route("/signing-keys/rotate", post(rotate_signing_keys));
    limit_all(routes, state, Class::Write)
}

fn tier(n: Option<i64>) -> Result<Option<Tier>, Error> {
    n.map(Tier::new).transpose().map_err(Error::from)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct UserListQuery {
    q: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    tier: Option<i64>,
    #[serde(default, deserialize_with = "empty_as_none")]
    active: Option<bool>,
    cursor: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(("q" = Option<String>, Query, description = "substring of email, username or name"), ("tier" = Option<i64>, Query), ("active" = Option<bool>, Query), ("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "users", body = super::views::ListBody<super::views::AdminUserBody>), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    _: Admin,
    AppQuery(q): AppQuery<UserListQuery>,
) -> ApiResult<Json<ListBody<AdminUserBody>>> {
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .page()?;
    let query = UserQuery {
        q: q.q.filter(|s| !s.trim().is_empty()),
        tier: tier(q.tier)?,
        active: q.active,
    };
    let paged = state.service.admin_list_users(query, page).await?;
    Ok(Json(ListBody::from_paged(&paged, |x| {
        AdminUserBody::from(x)
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AdminNewUser {
    #[serde(flatten)]
    user: NewUser,
    permission_tier: Option<i64>,
    is_verified: Option<bool>,
}

#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = AdminNewUser, responses((status = 201, description = "created", body = super::views::AdminUserBody), super::views::CallerErrors, (status = 409, description = "error", body = super::views::ErrorBody), (status = 422, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    MinTier(admin): Admin,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<AdminNewUser>,
) -> ApiResult<Response> {
    let tier = tier(body.permission_tier)?;
    let user = state
        .service
        .admin_create_user(
            Some(admin.user_id),
            body.user.into_account(),
            tier,
            body.is_verified.unwrap_or(false),
            Some(&ctx),
        )
        .await?;
    // An admin view like the others, with the lockout state a new account starts with.
    let body = AdminUserBody {
        user: UserBody::from(&user),
        failed_login_count: 0,
        locked_until: None,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 200, description = "the user with lockout state", body = super::views::AdminUserBody), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    _: Admin,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<Json<AdminUserBody>> {
    let user = state.service.admin_get_user(UserId(id)).await?;
    Ok(Json(AdminUserBody::from(&user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AdminUserUpdate {
    permission_tier: Option<i64>,
    is_active: Option<bool>,
    is_verified: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    full_name: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", request_body = AdminUserUpdate, params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 200, description = "updated", body = super::views::AdminUserBody), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody), (status = 422, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn update_user(
    State(state): State<AppState>,
    MinTier(admin): Admin,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<AdminUserUpdate>,
) -> ApiResult<Json<AdminUserBody>> {
    let patch = AdminPatch {
        permission_tier: tier(body.permission_tier)?,
        is_active: body.is_active,
        is_verified: body.is_verified,
        full_name: body.full_name,
    };
    let user = state
        .service
        .admin_patch_user(Some(admin.user_id), UserId(id), patch, Some(&ctx))
        .await?;
    Ok(Json(AdminUserBody::from(&user)))
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 204, description = "deleted; sessions and keys revoked"), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody), (status = 422, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    MinTier(admin): Admin,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .service
        .admin_delete_user(Some(admin.user_id), UserId(id), Some(&ctx))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/unlock", tag = "admin", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 204, description = "lockout lifted"), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn unlock_user(
    State(state): State<AppState>,
    MinTier(admin): Admin,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .service
        .admin_unlock_user(Some(admin.user_id), UserId(id), Some(&ctx))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/sessions", tag = "admin", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 204, description = "every session revoked"), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn revoke_user_sessions(
    State(state): State<AppState>,
    MinTier(admin): Admin,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .service
        .admin_revoke_sessions(Some(admin.user_id), UserId(id), Some(&ctx))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AuditParams {
    #[serde(default, deserialize_with = "empty_as_none")]
    user_id: Option<Uuid>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    since: Option<DateTime<Utc>>,
    cursor: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(("user_id" = Option<uuid::Uuid>, Query), ("type" = Option<String>, Query), ("since" = Option<String>, Query, description = "RFC 3339"), ("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "audit events, newest first", body = super::views::ListBody<super::views::EventBody>), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn query_audit(
    State(state): State<AppState>,
    _: Admin,
    AppQuery(q): AppQuery<AuditParams>,
) -> ApiResult<Json<ListBody<EventBody>>> {
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .page()?;
    let query = AuditQuery {
        user_id: q.user_id.map(UserId),
        kind: q.kind.filter(|k| !k.is_empty()),
        since: q.since,
    };
    let paged = state.service.admin_audit(query, page).await?;
    Ok(Json(ListBody::from_paged(&paged, |x| EventBody::from(x))))
}

#[utoipa::path(post, path = "/api/v1/admin/signing-keys/rotate", tag = "admin", responses((status = 200, description = "the new active kid", body = super::views::RotatedKey), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn rotate_signing_keys(
    State(state): State<AppState>,
    MinTier(admin): Admin,
    Ctx(ctx): Ctx,
) -> ApiResult<Json<serde_json::Value>> {
    let kid = state
        .service
        .rotate_signing_keys(Some(admin.user_id), Some(&ctx))
        .await?;
    Ok(Json(json!({ "kid": kid })))
}
