//! `/api/v1/auth/passkeys/*`: adding, listing, renaming and removing the signed-in
//! account's passkeys, and signing in with one (API.md, "Passkeys (WebAuthn)").
//!
//! Handlers only translate: the ceremonies' options and results pass through as the W3C
//! JSON forms (`{"publicKey": ...}` out, `credential.toJSON()` in) and the service decides.
//! The management endpoints take a session (cookie sessions under the CSRF rules, API
//! keys refused) and count as writes; the sign-in endpoints are limited as login.

use super::auth::{cookie_session, no_store};
use super::csrf;
use super::dialect;
use super::error::ApiResult;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser, Ctx, MaybeJson};
use super::ratelimit::{limit_all, limited, Class};
use super::requests::{PageQuery, TokenTransport};
use super::state::AppState;
use super::views::ListBody;
use crate::service::passkeys::{PasskeyView, Started};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn router(state: &AppState) -> Router<AppState> {
    let manage = Router::new()
        .route("/passkeys", get(list_passkeys))
        .route("/passkeys/register/start", post(start_registration))
        .route("/passkeys/register/finish", post(finish_registration))
        .route(
            "/passkeys/{id}",
            patch(rename_passkey).delete(remove_passkey),
        );
    limit_all(manage, state, Class::Write)
        .route(
            "/passkeys/login/start",
            limited(post(start_login), state, Class::Login),
        )
        .route(
            "/passkeys/login/finish",
            limited(post(finish_login), state, Class::Login),
        )
}

/// A passkey as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyBody {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The authenticator may sync this passkey to other devices (BE flag).
    pub backup_eligible: bool,
    /// It is synced now (BS flag).
    pub backed_up: bool,
}

impl From<&PasskeyView> for PasskeyBody {
    fn from(p: &PasskeyView) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            backup_eligible: p.backup_eligible,
            backed_up: p.backed_up,
        }
    }
}

/// A started ceremony.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CeremonyBody {
    /// Single-use, valid 5 min; send it back with the result.
    pub challenge_id: Uuid,
    /// `{"publicKey": PublicKeyCredentialCreationOptionsJSON}` (registration) or
    /// `{"publicKey": PublicKeyCredentialRequestOptionsJSON}` (sign-in).
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

impl From<Started> for CeremonyBody {
    fn from(s: Started) -> Self {
        Self {
            challenge_id: s.challenge_id,
            options: s.options,
        }
    }
}

/// The end of a registration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FinishRegistration {
    pub challenge_id: Option<String>,
    /// 1–64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
    /// `RegistrationResponseJSON` (`credential.toJSON()`).
    #[schema(value_type = Object)]
    pub credential: Option<serde_json::Value>,
}

/// A new name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RenamePasskey {
    /// 1–64 characters.
    #[schema(min_length = 1, max_length = 64)]
    pub name: Option<String>,
}

/// The start of a sign-in.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct StartLogin {
    /// A username or an email: its passkeys are listed. Absent: a discoverable-credential
    /// request (the authenticator offers what it holds).
    pub username: Option<String>,
}

/// The end of a sign-in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct FinishLogin {
    pub challenge_id: Option<String>,
    /// `AuthenticationResponseJSON` (`credential.toJSON()`).
    #[schema(value_type = Object)]
    pub credential: Option<serde_json::Value>,
    #[serde(default)]
    pub remember_me: bool,
    pub token_transport: Option<TokenTransport>,
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/start", tag = "passkeys", responses((status = 200, description = "options for navigator.credentials.create; excludeCredentials lists the account's passkeys", body = CeremonyBody), super::views::CallerErrors, (status = 422, description = "error (passkey_limit)", body = super::views::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn start_registration(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Response> {
    let started = state.service.start_passkey_registration(&caller).await?;
    Ok(no_store(Json(CeremonyBody::from(started)).into_response()))
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/register/finish", tag = "passkeys", request_body = FinishRegistration, responses((status = 201, description = "added", body = PasskeyBody), super::views::CallerErrors, (status = 409, description = "error (passkey_exists)", body = super::views::ErrorBody), (status = 422, description = "error (passkey_limit)", body = super::views::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn finish_registration(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<FinishRegistration>,
) -> ApiResult<Response> {
    let passkey = state
        .service
        .finish_passkey_registration(
            &caller,
            body.challenge_id.as_deref(),
            body.name.as_deref(),
            body.credential.as_ref(),
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(PasskeyBody::from(&passkey))).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/passkeys", tag = "passkeys", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the caller's passkeys, newest first", body = ListBody<PasskeyBody>), super::views::CallerErrors), security(("bearer" = [])))]
pub(crate) async fn list_passkeys(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<ListBody<PasskeyBody>>> {
    let paged = state.service.list_passkeys(&caller, q.page()?).await?;
    Ok(Json(ListBody::from_paged(&paged, |p| PasskeyBody::from(p))))
}

#[utoipa::path(patch, path = "/api/v1/auth/passkeys/{id}", tag = "passkeys", params(("id" = uuid::Uuid, Path, description = "the passkey's id")), request_body = RenamePasskey, responses((status = 200, description = "renamed", body = PasskeyBody), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn rename_passkey(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<RenamePasskey>,
) -> ApiResult<Json<PasskeyBody>> {
    let passkey = state
        .service
        .rename_passkey(&caller, id, body.name.as_deref(), &ctx)
        .await?;
    Ok(Json(PasskeyBody::from(&passkey)))
}

#[utoipa::path(delete, path = "/api/v1/auth/passkeys/{id}", tag = "passkeys", params(("id" = uuid::Uuid, Path, description = "the passkey's id")), responses((status = 204, description = "removed"), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody), (status = 422, description = "error (last_credential)", body = super::views::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn remove_passkey(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.remove_passkey(&caller, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/login/start", tag = "passkeys", request_body = Option<StartLogin>, responses((status = 200, description = "options for navigator.credentials.get; the same shape whether or not the account exists", body = CeremonyBody), super::views::Errors))]
pub(crate) async fn start_login(
    State(state): State<AppState>,
    MaybeJson(body): MaybeJson<StartLogin>,
) -> ApiResult<Response> {
    let username = body.and_then(|b| b.username);
    let started = state
        .service
        .start_passkey_login(username.as_deref())
        .await?;
    Ok(no_store(Json(CeremonyBody::from(started)).into_response()))
}

#[utoipa::path(post, path = "/api/v1/auth/passkeys/login/finish", tag = "passkeys", request_body = FinishLogin, responses((status = 200, description = "signed in: the login body; with `token_transport: \"cookie\"` the tokens are in cookies and the body carries `csrf_token` instead", body = super::views::LoginBody), super::views::CallerErrors))]
pub(crate) async fn finish_login(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    AppJson(body): AppJson<FinishLogin>,
) -> ApiResult<Response> {
    let transport = body.token_transport.unwrap_or_default();
    if transport == TokenTransport::Cookie {
        // As a password login in cookie mode: no session yet, the origin rule alone.
        csrf::check_origin(&headers, &state.service)?;
    }
    let issued = state
        .service
        .finish_passkey_login(
            body.challenge_id.as_deref(),
            body.credential.as_ref(),
            body.remember_me,
            &ctx,
        )
        .await?;
    Ok(no_store(match transport {
        TokenTransport::Cookie => cookie_session(&state, &issued, true),
        TokenTransport::Body => dialect::signed_in(state.dialect(), &issued),
    }))
}
