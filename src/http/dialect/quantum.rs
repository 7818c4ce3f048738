//! `quantum` — seed `000_7ab2bce4182ce456.txt` (Quantum Trader).
//!
//! Login `{username (or email), password}` → `{access_token, refresh_token, token_type}`;
//! refresh rotates and returns the same three; logout takes `{refresh_token}` → 204 (the
//! native answer); `/me` names roles `user`/`premium`/`admin`; errors are FastAPI's
//! `{"detail": "..."}`, with validation errors as 422.

use super::super::error::status;
use super::super::views::{rfc3339, rfc3339_opt};
use crate::domain::User;
use crate::service::auth::Issued;
use crate::service::Error;
use axum::http::StatusCode;

/// FastAPI's `{detail}`.
#[derive(serde::Serialize)]
pub struct ErrorBody {
    detail: String,
}

pub fn error(error: &Error) -> (StatusCode, ErrorBody) {
    let status = match error {
        Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        e => status(e),
    };
    let detail = match error {
        Error::InvalidCredentials => "Incorrect username or password".to_string(),
        Error::AccountDisabled => "User account is disabled".to_string(),
        e => e.message(),
    };
    (status, ErrorBody { detail })
}

/// `{access_token, refresh_token, token_type}`.
#[derive(serde::Serialize)]
pub struct Tokens<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
    token_type: &'static str,
}

/// Login and refresh answer alike.
pub fn tokens(i: &Issued) -> Tokens<'_> {
    Tokens {
        access_token: &i.access_token,
        refresh_token: &i.refresh_token,
        token_type: "bearer",
    }
}

/// The seed's table order: `id` first, `last_login_at` last.
#[derive(serde::Serialize)]
pub struct Me {
    id: uuid::Uuid,
    email: String,
    username: String,
    full_name: Option<String>,
    role: &'static str,
    is_active: bool,
    is_verified: bool,
    #[serde(serialize_with = "rfc3339")]
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "rfc3339_opt")]
    last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn user(u: &User) -> Me {
    Me {
        id: u.id.0,
        email: u.email.to_string(),
        username: u.username.to_string(),
        full_name: u.full_name.as_ref().map(|f| f.as_str().to_string()),
        role: u.tier.role().seed_name(),
        is_active: u.is_active,
        is_verified: u.is_verified,
        created_at: u.created_at,
        last_login_at: u.last_login_at,
    }
}
