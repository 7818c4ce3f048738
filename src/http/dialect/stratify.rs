//! `stratify` — seed `003_eb2784998d5cc9b5.txt` (Stratify).
//!
//! Envelope `{"success": true, "data": {...}}`; register → 201 `{user_id, email,
//! verification_required}` + `message`; login → `{access_token, refresh_token, token_type,
//! expires_in}`; refresh → `{access_token, expires_in}` (no rotation by default); errors
//! `{"success": false, "error": {"code": "INVALID_CREDENTIALS", "message": "..."}}` —
//! codes the seed does not list are the native code in upper case.

use super::super::error::status;
use super::super::views::rfc3339_ms;
use crate::domain::{Email, User, UserId};
use crate::service::auth::Issued;
use crate::service::Error;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;

/// `{success, data}`, in that order (the seed's envelope).
#[derive(Serialize)]
pub struct Envelope<T> {
    success: bool,
    data: T,
}

fn ok<T>(data: T) -> Envelope<T> {
    Envelope {
        success: true,
        data,
    }
}

/// `{success: false, error: {code, message, ...}}`.
#[derive(Serialize)]
pub struct ErrorEnvelope {
    success: bool,
    error: ErrorBody,
}

#[derive(Serialize)]
pub struct ErrorBody {
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

pub fn error(error: &Error) -> (StatusCode, ErrorEnvelope) {
    let status = status(error);
    let inner = ErrorBody {
        code: error.code().to_uppercase(),
        message: error.message(),
        details: error.details(),
        locked_until: match error {
            Error::AccountLocked { locked_until } => Some(rfc3339_ms(locked_until)),
            _ => None,
        },
        retry_after: match error {
            Error::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        },
    };
    (
        status,
        ErrorEnvelope {
            success: false,
            error: inner,
        },
    )
}

/// `{success, data: {user_id, email, verification_required}, message}`.
#[derive(Serialize)]
pub struct Registered<'a> {
    success: bool,
    data: RegisteredData<'a>,
    message: &'static str,
}

#[derive(Serialize)]
pub struct RegisteredData<'a> {
    user_id: UserId,
    email: &'a Email,
    verification_required: bool,
}

pub fn registered(user: &User, verification_required: bool) -> Registered<'_> {
    Registered {
        success: true,
        data: RegisteredData {
            user_id: user.id,
            email: &user.email,
            verification_required,
        },
        message: if verification_required {
            "Registration successful. Check email for verification."
        } else {
            "Registration successful."
        },
    }
}

/// `{access_token, refresh_token, token_type, expires_in}`.
#[derive(Serialize)]
pub struct SignedIn<'a> {
    access_token: &'a str,
    refresh_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
}

pub fn signed_in(i: &Issued) -> Envelope<SignedIn<'_>> {
    ok(SignedIn {
        access_token: &i.access_token,
        refresh_token: &i.refresh_token,
        token_type: "bearer",
        expires_in: i.expires_in,
    })
}

/// `{access_token, expires_in}`; `refresh_token` after the access token when rotation is
/// on (the client needs the new one).
#[derive(Serialize)]
pub struct Refreshed<'a> {
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    expires_in: i64,
}

pub fn refreshed(i: &Issued, rotation: bool) -> Envelope<Refreshed<'_>> {
    ok(Refreshed {
        access_token: &i.access_token,
        refresh_token: rotation.then_some(i.refresh_token.as_str()),
        expires_in: i.expires_in,
    })
}
