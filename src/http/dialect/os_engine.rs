//! `os-engine` — seed `002_d1ef7ae269dbd205.txt` (OS Trading Engine).
//!
//! camelCase: login `{email, password, rememberMe}` → `{accessToken, refreshToken, user:
//! {id, email, createdAt}}`; refresh `{refreshToken}` → `{accessToken, refreshToken}`;
//! logout `{refreshToken?}` → 200 `{"success": true, "message": ...}`; errors `{"error":
//! "..."}` with the seed's messages, 423 adds `lockedUntil`.

use super::super::error::{status, ApiResult};
use super::super::extract::{AppJson, AuthUser, Ctx, MaybeJson};
use super::super::state::AppState;
use super::super::views::rfc3339_ms;
use crate::domain::User;
use crate::service::auth::LoginInput;
use crate::service::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn error(error: &Error) -> (StatusCode, Value) {
    let status = status(error);
    let message = match error {
        Error::InvalidCredentials => "Invalid email or password".to_string(),
        Error::AccountLocked { .. } => {
            "Account is temporarily locked due to too many failed login attempts".to_string()
        }
        Error::MissingToken => "Authorization header required".to_string(),
        Error::InvalidToken | Error::TokenExpired => "Invalid token".to_string(),
        e => e.message(),
    };
    let mut body = json!({ "error": message });
    if let Error::AccountLocked { locked_until } = error {
        body["lockedUntil"] = json!(rfc3339_ms(locked_until));
    }
    if let Error::RateLimited { retry_after } = error {
        body["retryAfter"] = json!(retry_after);
    }
    (status, body)
}

fn user_body(u: &User) -> Value {
    json!({"id": u.id, "email": u.email, "createdAt": rfc3339_ms(&u.created_at)})
}

/// No `Debug`: it holds a password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
    remember_me: Option<bool>,
    pub totp_code: Option<String>,
    pub recovery_code: Option<String>,
}

pub async fn login_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<LoginRequest>,
) -> ApiResult<Json<Value>> {
    let identifier = body
        .email
        .or(body.username)
        .filter(|s| !s.trim().is_empty());
    let password = body.password.filter(|s| !s.is_empty());
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return Err(Error::Validation {
            message: "Email and password are required".into(),
            details: Default::default(),
        }
        .into());
    };
    let input = LoginInput {
        identifier,
        password: SecretString::from(password),
        remember_me: body.remember_me.unwrap_or(false),
        totp_code: body.totp_code,
        recovery_code: body.recovery_code,
    };
    let i = state.service.login(input, &ctx).await?;
    Ok(Json(
        json!({"accessToken": i.access_token, "refreshToken": i.refresh_token, "user": user_body(&i.user)}),
    ))
}

/// No `Debug`: it holds a token.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    refresh_token: Option<String>,
}

pub async fn refresh_tokens(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<RefreshRequest>,
) -> ApiResult<Json<Value>> {
    let token = Error::required(body.refresh_token, "refreshToken")?;
    let i = state.service.refresh(&token, &ctx).await?;
    Ok(Json(
        json!({"accessToken": i.access_token, "refreshToken": i.refresh_token}),
    ))
}

pub async fn logout_user(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    MaybeJson(body): MaybeJson<RefreshRequest>,
) -> ApiResult<Json<Value>> {
    let token = body.and_then(|b| b.refresh_token);
    state
        .service
        .logout(&caller, token.as_deref(), &ctx)
        .await?;
    Ok(Json(
        json!({"success": true, "message": "Logged out successfully"}),
    ))
}

pub async fn get_me(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<Value>> {
    let u = state.service.me(&caller).await?;
    Ok(Json(user_body(&u)))
}
