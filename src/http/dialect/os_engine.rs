//! `os-engine` — seed `002_d1ef7ae269dbd205.txt` (OS Trading Engine).
//!
//! camelCase: login `{email, password, rememberMe}` → `{accessToken, refreshToken, user:
//! {id, email, createdAt}}`; refresh `{refreshToken}` → `{accessToken, refreshToken}`;
//! logout `{refreshToken?}` → 200 `{"success": true, "message": ...}`; errors `{"error":
//! "..."}` with the seed's messages, 423 adds `lockedUntil`.

use super::super::error::status;
use super::super::requests::LoginRequest;
use super::super::views::rfc3339_ms;
use crate::domain::{Email, User, UserId};
use crate::service::auth::{Issued, LoginInput};
use crate::service::Error;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};

/// The seed's camelCase keys and the native names they stand for.
const KEYS: &[(&str, &str)] = &[
    ("rememberMe", "remember_me"),
    ("totpCode", "totp_code"),
    ("recoveryCode", "recovery_code"),
    ("refreshToken", "refresh_token"),
];

/// A request body in native spelling: camelCase keys renamed; their snake_case twins,
/// which this dialect does not accept, dropped.
pub fn native_keys(body: Value) -> Value {
    let Value::Object(fields) = body else {
        return body;
    };
    let mut out = Map::with_capacity(fields.len());
    for (key, value) in fields {
        if let Some((_, native)) = KEYS.iter().find(|(camel, _)| *camel == key) {
            out.insert((*native).to_string(), value);
        } else if !KEYS.iter().any(|(_, native)| *native == key) {
            out.insert(key, value);
        }
    }
    Value::Object(out)
}

/// The seed's name of a native field.
pub fn field_name(native: &'static str) -> &'static str {
    KEYS.iter()
        .find(|(_, n)| *n == native)
        .map_or(native, |(camel, _)| camel)
}

/// Login takes `email` first, and both fields are required together.
pub fn login_input(body: LoginRequest) -> Result<LoginInput, Error> {
    let identifier = body
        .email
        .or(body.username)
        .filter(|s| !s.trim().is_empty());
    let password = body.password.filter(|s| !s.is_empty());
    let (Some(identifier), Some(password)) = (identifier, password) else {
        return Err(Error::Validation {
            message: "Email and password are required".into(),
            details: Default::default(),
        });
    };
    Ok(LoginInput {
        identifier,
        password: SecretString::from(password),
        remember_me: body.remember_me.unwrap_or(false),
        totp_code: body.totp_code,
        recovery_code: body.recovery_code,
    })
}

/// An error body: `{error}`, then `lockedUntil` on 423 (the seed's order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

pub fn error(error: &Error) -> (StatusCode, ErrorBody) {
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
    let body = ErrorBody {
        error: message,
        locked_until: match error {
            Error::AccountLocked { locked_until } => Some(rfc3339_ms(locked_until)),
            _ => None,
        },
        retry_after: match error {
            Error::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        },
    };
    (status, body)
}

/// `{id, email, createdAt}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBody<'a> {
    id: UserId,
    email: &'a Email,
    created_at: String,
}

pub fn user(u: &User) -> UserBody<'_> {
    UserBody {
        id: u.id,
        email: &u.email,
        created_at: rfc3339_ms(&u.created_at),
    }
}

/// `{accessToken, refreshToken, user}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
    user: UserBody<'a>,
}

pub fn signed_in(i: &Issued) -> SignedIn<'_> {
    SignedIn {
        access_token: &i.access_token,
        refresh_token: &i.refresh_token,
        user: user(&i.user),
    }
}

/// `{accessToken, refreshToken}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
}

pub fn refreshed(i: &Issued) -> Refreshed<'_> {
    Refreshed {
        access_token: &i.access_token,
        refresh_token: &i.refresh_token,
    }
}

/// `{success, message}`, in that order.
#[derive(Serialize)]
pub struct LoggedOut {
    success: bool,
    message: &'static str,
}

pub fn logged_out() -> LoggedOut {
    LoggedOut {
        success: true,
        message: "Logged out successfully",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn camel_case_keys_become_native_and_their_twins_are_ignored() {
        let body = json!({"email": "a@b.c", "rememberMe": true, "remember_me": false, "x": 1});
        assert_eq!(
            native_keys(body),
            json!({"email": "a@b.c", "remember_me": true, "x": 1})
        );
        assert_eq!(native_keys(json!("text")), json!("text"));
        assert_eq!(field_name("refresh_token"), "refreshToken");
        assert_eq!(field_name("password"), "password");
    }
}
