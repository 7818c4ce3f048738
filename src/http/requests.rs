//! Request bodies and queries shared by several resources (and by the dialects that take
//! the native shape): what the client sends, before the service parses it.
//!
//! A type used by one handler only stays next to that handler.

use super::views::{double_option, empty_as_none};
use crate::service::auth::{LoginInput, NewAccount};
use crate::service::{Error, PageRequest};
use secrecy::SecretString;
use serde::Deserialize;

/// An absent secret is an empty one: the service reports it as a missing field.
pub fn secret(s: Option<String>) -> SecretString {
    SecretString::from(s.unwrap_or_default())
}

/// `POST /auth/register` and, flattened, `POST /admin/users`. No `Debug`: it holds a
/// secret.
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

/// `POST /auth/login`. No `Debug`: it holds a secret.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    #[serde(default)]
    pub remember_me: Option<bool>,
    pub totp_code: Option<String>,
    pub recovery_code: Option<String>,
    /// `cookie`: the tokens go into cookies (browser sessions); default `body`.
    #[serde(default)]
    pub token_transport: Option<TokenTransport>,
}

/// Where a login puts the tokens (API.md, "Browser sessions (cookie mode)").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenTransport {
    /// In the response body (today's behaviour).
    #[default]
    Body,
    /// In `HttpOnly` cookies; the body carries the CSRF token instead.
    Cookie,
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

/// `POST /auth/refresh`, and the optional body of `POST /auth/logout`. No `Debug`: it
/// holds a token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

/// `PATCH /auth/me`: an absent field is left alone, a null `full_name` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProfileUpdate {
    pub username: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub full_name: Option<Option<String>>,
}

/// `POST /auth/password`. No `Debug`: it holds secrets.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

/// `?cursor=&limit=` of every list.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PageQuery {
    pub cursor: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, Error> {
        PageRequest::parse(self.cursor.as_deref(), self.limit)
    }
}
