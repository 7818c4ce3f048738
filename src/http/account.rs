//! `/api/v1/auth/*` account recovery and second factor: email verification, password
//! reset, TOTP setup/enable/disable.

use super::error::ApiResult;
use super::extract::{AppJson, AuthUser, Ctx};
use super::ratelimit::{limit_all, Class};
use super::state::AppState;
use super::views::UserBody;
use crate::service::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

pub fn router(state: &AppState) -> Router<AppState> {
    let mail = Router::new()
        .route("/verify-email", post(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/password-reset", post(request_password_reset))
        .route("/password-reset/confirm", post(confirm_password_reset));
    let mfa = Router::new()
        .route("/mfa/totp/setup", post(setup_totp))
        .route("/mfa/totp/enable", post(enable_totp))
        .route("/mfa/totp/disable", post(disable_totp));
    limit_all(mail, state, Class::Mail).merge(limit_all(mfa, state, Class::Write))
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
}

/// No `Debug`: it holds a token.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct MailTokenRequest {
    token: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "account", request_body = MailTokenRequest, responses((status = 200, description = "verified", body = super::views::UserBody), super::views::Errors))]
pub(crate) async fn verify_email(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<MailTokenRequest>,
) -> ApiResult<Json<UserBody>> {
    let user = state
        .service
        .verify_email(&body.token.unwrap_or_default(), &ctx)
        .await?;
    Ok(Json(UserBody::from(&user)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct EmailBody {
    email: Option<String>,
}

/// 202 whatever the address: no account enumeration.
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", tag = "account", request_body = EmailBody, responses((status = 202, description = "accepted, whatever the address", body = super::views::Accepted), super::views::Errors))]
pub(crate) async fn resend_verification(
    State(state): State<AppState>,
    AppJson(body): AppJson<EmailBody>,
) -> ApiResult<Response> {
    state
        .service
        .resend_verification(&body.email.unwrap_or_default())
        .await?;
    Ok(accepted())
}

/// 202 whatever the address: no account enumeration.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "account", request_body = EmailBody, responses((status = 202, description = "accepted, whatever the address", body = super::views::Accepted), super::views::Errors))]
pub(crate) async fn request_password_reset(
    State(state): State<AppState>,
    AppJson(body): AppJson<EmailBody>,
) -> ApiResult<Response> {
    state
        .service
        .request_password_reset(&body.email.unwrap_or_default())
        .await?;
    Ok(accepted())
}

/// No `Debug`: it holds a token and a password.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ResetConfirm {
    token: Option<String>,
    new_password: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "account", request_body = ResetConfirm, responses((status = 204, description = "password set; every session ended"), super::views::Errors, (status = 422, description = "error", body = super::views::ErrorBody)))]
pub(crate) async fn confirm_password_reset(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<ResetConfirm>,
) -> ApiResult<StatusCode> {
    state
        .service
        .confirm_password_reset(
            &body.token.unwrap_or_default(),
            SecretString::from(body.new_password.unwrap_or_default()),
            &ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/setup", tag = "mfa", responses((status = 200, description = "a new secret to enrol", body = super::views::TotpSetup), super::views::CallerErrors, (status = 409, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn setup_totp(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<serde_json::Value>> {
    let (secret, otpauth_url) = state.service.setup_totp(&caller).await?;
    Ok(Json(json!({"secret": secret, "otpauth_url": otpauth_url})))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct CodeBody {
    code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/enable", tag = "mfa", request_body = CodeBody, responses((status = 200, description = "enabled; single-use recovery codes", body = super::views::RecoveryCodes), super::views::CallerErrors, (status = 409, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn enable_totp(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let code = Error::required(body.code, "code")?;
    let codes = state.service.enable_totp(&caller, &code, &ctx).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

/// No `Debug`: it holds a password.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct DisableBody {
    password: Option<String>,
    code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/totp/disable", tag = "mfa", request_body = DisableBody, responses((status = 204, description = "disabled"), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn disable_totp(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<DisableBody>,
) -> ApiResult<StatusCode> {
    let password = SecretString::from(body.password.unwrap_or_default());
    let code = body.code.unwrap_or_default();
    state
        .service
        .disable_totp(&caller, password, &code, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
