//! `/api/v1/auth/*` in the native dialect.

use super::error::ApiResult;
use super::extract::{presented, AppJson, AppPath, AppQuery, AuthUser, Ctx, MaybeJson, Presented};
use super::views::{double_option, EventBody, ListBody, SessionBody, TokenBody, UserBody};
use super::AppState;
use crate::config::Dialect;
use crate::domain::Tier;
use crate::service::auth::{LoginInput, NewAccount};
use crate::service::{Caller, Error, PageRequest};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// The `/auth` routes. The five a seed describes (register, login, refresh, logout, me)
/// come from the dialect's module where the seed defines them; the rest are native.
pub fn router(dialect: Dialect) -> Router<AppState> {
    use super::dialect::{os_engine, quantum, stratify};
    let (register, login, refresh, logout, me) = match dialect {
        Dialect::Native => (
            post(register_user),
            post(login_user),
            post(refresh_tokens),
            post(logout_user),
            get(get_me),
        ),
        Dialect::Quantum => (
            post(register_user),
            post(quantum::login_user),
            post(quantum::refresh_tokens),
            post(logout_user),
            get(quantum::get_me),
        ),
        Dialect::OsEngine => (
            post(register_user),
            post(os_engine::login_user),
            post(os_engine::refresh_tokens),
            post(os_engine::logout_user),
            get(os_engine::get_me),
        ),
        Dialect::Stratify => (
            post(stratify::register_user),
            post(stratify::login_user),
            post(stratify::refresh_tokens),
            post(logout_user),
            get(get_me),
        ),
    };
    Router::new()
        .route("/register", register)
        .route("/login", login)
        .route("/refresh", refresh)
        .route("/logout", logout)
        .route("/logout-all", post(logout_everywhere))
        .route("/me", me.patch(update_me))
        .route("/password", post(change_password))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/events", get(list_events))
        .route("/verify", get(verify_caller))
}

fn secret(s: Option<String>) -> SecretString {
    SecretString::from(s.unwrap_or_default())
}

/// No `Debug`: it holds a secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    pub email: Option<String>,
    pub password: Option<String>,
    pub username: Option<String>,
    pub full_name: Option<String>,
}

impl NewUser {
    pub fn into_account(self) -> NewAccount {
        NewAccount {
            email: self.email.unwrap_or_default(),
            password: secret(self.password),
            username: self.username,
            full_name: self.full_name,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = NewUser, responses((status = 201, description = "registered", body = crate::http::openapi::Registered), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 409, description = "error", body = crate::http::openapi::ErrorBody), (status = 422, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn register_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<NewUser>,
) -> ApiResult<Response> {
    let (user, verification_required) = state.service.register(body.into_account(), &ctx).await?;
    let body =
        json!({ "user": UserBody::from(&user), "verification_required": verification_required });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// No `Debug`: it holds a secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub remember_me: Option<bool>,
    pub totp_code: Option<String>,
    pub recovery_code: Option<String>,
}

impl LoginRequest {
    /// The login use case's input; `username` may hold a username or an email. The
    /// quantum and stratify dialects take this same body.
    pub fn into_input(self) -> LoginInput {
        LoginInput {
            identifier: self.username.or(self.email).unwrap_or_default(),
            password: secret(self.password),
            remember_me: self.remember_me.unwrap_or(false),
            totp_code: self.totp_code,
            recovery_code: self.recovery_code,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses((status = 200, description = "signed in", body = super::views::TokenBody), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 423, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn login_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<LoginRequest>,
) -> ApiResult<Json<TokenBody>> {
    let issued = state.service.login(body.into_input(), &ctx).await?;
    Ok(Json(TokenBody::from(&issued)))
}

/// No `Debug`: it holds a secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, responses((status = 200, description = "new tokens", body = super::views::TokenBody), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)))]
pub(crate) async fn refresh_tokens(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<RefreshRequest>,
) -> ApiResult<Json<TokenBody>> {
    let token = Error::required(body.refresh_token, "refresh_token")?;
    let issued = state.service.refresh(&token, &ctx).await?;
    Ok(Json(TokenBody::from(&issued)))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = Option<RefreshRequest>, responses((status = 204, description = "logged out"), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn logout_user(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    MaybeJson(body): MaybeJson<RefreshRequest>,
) -> ApiResult<StatusCode> {
    let token = body.and_then(|b| b.refresh_token);
    state
        .service
        .logout(&caller, token.as_deref(), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", responses((status = 204, description = "every session ended"), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn logout_everywhere(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
) -> ApiResult<StatusCode> {
    state.service.logout_all(&caller, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, description = "the user object", body = super::views::UserBody), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get_me(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<UserBody>> {
    let user = state.service.me(&caller).await?;
    Ok(Json(UserBody::from(&user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProfileUpdate {
    pub username: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub full_name: Option<Option<String>>,
}

#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = ProfileUpdate, responses((status = 200, description = "updated", body = super::views::UserBody), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 409, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn update_me(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<ProfileUpdate>,
) -> ApiResult<Json<UserBody>> {
    let user = state
        .service
        .update_me(&caller, body.username, body.full_name, &ctx)
        .await?;
    Ok(Json(UserBody::from(&user)))
}

/// No `Debug`: it holds a secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange, responses((status = 204, description = "changed; other sessions ended"), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 422, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    state
        .service
        .change_password(
            &caller,
            secret(body.current_password),
            secret(body.new_password),
            &ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PageQuery {
    pub cursor: Option<String>,
    #[serde(default, deserialize_with = "super::views::empty_as_none")]
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, Error> {
        PageRequest::parse(self.cursor.as_deref(), self.limit)
    }
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "sessions", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the caller's sessions", body = super::views::ListBody<super::views::SessionBody>), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<ListBody<SessionBody>>> {
    let paged = state.service.list_sessions(&caller, q.page()?).await?;
    Ok(Json(ListBody::from_paged(&paged, |x| SessionBody::from(x))))
}

#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "sessions", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 204, description = "revoked"), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 404, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.revoke_own_session(&caller, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/events", tag = "auth", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the caller's security events, newest first", body = super::views::ListBody<super::views::EventBody>), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<ListBody<EventBody>>> {
    let paged = state.service.own_events(&caller, q.page()?).await?;
    Ok(Json(ListBody::from_paged(&paged, |x| EventBody::from(x))))
}

/// No `Debug`: it may hold a token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyQuery {
    pub token: Option<String>,
    pub min_tier: Option<String>,
}

/// Forward-auth: 204 with the caller in `X-Auth-*` headers, or the usual 401/403.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "forward-auth", params(("token" = Option<String>, Query, description = "access token, for clients that cannot send headers"), ("min_tier" = Option<i64>, Query, description = "minimum tier, 1-4")), responses((status = 204, description = "allowed; X-Auth-User-Id, X-Auth-Tier, X-Auth-Role, X-Auth-Session-Id headers"), (status = 400, description = "error", body = crate::http::openapi::ErrorBody), (status = 401, description = "error", body = crate::http::openapi::ErrorBody), (status = 403, description = "error", body = crate::http::openapi::ErrorBody), (status = 429, description = "error", body = crate::http::openapi::ErrorBody), (status = 500, description = "error", body = crate::http::openapi::ErrorBody), (status = 503, description = "error", body = crate::http::openapi::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn verify_caller(
    State(state): State<AppState>,
    headers: HeaderMap,
    Ctx(ctx): Ctx,
    AppQuery(q): AppQuery<VerifyQuery>,
) -> ApiResult<Response> {
    let caller: Caller = match (presented(&headers), q.token.as_deref()) {
        (Presented::Bearer(t), _) => state.service.check_access_token(t)?,
        (Presented::ApiKey(k), _) => state.service.check_api_key(k, ctx.ip).await?,
        (Presented::None, Some(t)) if !t.is_empty() => state.service.check_access_token(t)?,
        (Presented::None, _) => return Err(Error::MissingToken.into()),
    };
    if let Some(min) = q.min_tier.as_deref().filter(|s| !s.is_empty()) {
        let min = min
            .parse::<i64>()
            .ok()
            .and_then(|n| Tier::new(n).ok())
            .ok_or_else(|| Error::field("min_tier", "min_tier must be 1, 2, 3 or 4"))?;
        caller.require_tier(min)?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    let val =
        |s: String| HeaderValue::from_str(&s).expect("ids and numbers are valid header values");
    h.insert("x-auth-user-id", val(caller.user_id.to_string()));
    h.insert("x-auth-tier", val(caller.tier.to_string()));
    h.insert(
        "x-auth-role",
        HeaderValue::from_static(caller.tier.role().as_str()),
    );
    if let Some(sid) = caller.session_id() {
        h.insert("x-auth-session-id", val(sid.to_string()));
    }
    Ok(res)
}
