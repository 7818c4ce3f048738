//! `/api/v1/auth/*` account recovery and second factor: email verification, password
//! reset, TOTP setup/enable/disable.

use super::error::ApiResult;
use super::extract::{AppJson, AuthUser, Ctx};
use super::views::UserBody;
use super::AppState;
use crate::service::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/verify-email", post(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/password-reset", post(request_password_reset))
        .route("/password-reset/confirm", post(confirm_password_reset))
        .route("/mfa/totp/setup", post(setup_totp))
        .route("/mfa/totp/enable", post(enable_totp))
        .route("/mfa/totp/disable", post(disable_totp))
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
}

/// No `Debug`: it holds a token.
#[derive(Deserialize)]
struct TokenBody {
    token: Option<String>,
}

async fn verify_email(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<TokenBody>,
) -> ApiResult<Json<UserBody>> {
    let user = state
        .service
        .verify_email(&body.token.unwrap_or_default(), &ctx)
        .await?;
    Ok(Json(UserBody::from(&user)))
}

#[derive(Debug, Deserialize)]
struct EmailBody {
    email: Option<String>,
}

/// 202 whatever the address: no account enumeration.
async fn resend_verification(
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
async fn request_password_reset(
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
#[derive(Deserialize)]
struct ResetConfirm {
    token: Option<String>,
    new_password: Option<String>,
}

async fn confirm_password_reset(
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

async fn setup_totp(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<serde_json::Value>> {
    let (secret, otpauth_url) = state.service.setup_totp(&caller).await?;
    Ok(Json(json!({"secret": secret, "otpauth_url": otpauth_url})))
}

#[derive(Debug, Deserialize)]
struct CodeBody {
    code: Option<String>,
}

async fn enable_totp(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let code = body
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::field("code", "code is required"))?;
    let codes = state.service.enable_totp(&caller, &code, &ctx).await?;
    Ok(Json(json!({"recovery_codes": codes})))
}

/// No `Debug`: it holds a password.
#[derive(Deserialize)]
struct DisableBody {
    password: Option<String>,
    code: Option<String>,
}

async fn disable_totp(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<DisableBody>,
) -> ApiResult<StatusCode> {
    let code = body
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::field("code", "code is required"))?;
    let password = SecretString::from(body.password.unwrap_or_default());
    state
        .service
        .disable_totp(&caller, password, &code, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
