//! `stratify` — seed `003_eb2784998d5cc9b5.txt` (Stratify).
//!
//! Envelope `{"success": true, "data": {...}}`; register → 201 `{user_id, email,
//! verification_required}` + `message`; login → `{access_token, refresh_token, token_type,
//! expires_in}`; refresh → `{access_token, expires_in}` (no rotation by default); errors
//! `{"success": false, "error": {"code": "INVALID_CREDENTIALS", "message": "..."}}` —
//! codes the seed does not list are the native code in upper case.

use super::super::error::status;
use super::super::views::rfc3339_ms;
use crate::domain::User;
use crate::service::auth::Issued;
use crate::service::Error;
use axum::http::StatusCode;
use serde_json::{json, Value};

pub fn error(error: &Error) -> (StatusCode, Value) {
    let status = status(error);
    let mut inner = json!({ "code": error.code().to_uppercase(), "message": error.message() });
    if let Some(details) = error.details() {
        inner["details"] = json!(details);
    }
    match error {
        Error::AccountLocked { locked_until } => {
            inner["locked_until"] = json!(rfc3339_ms(locked_until));
        }
        Error::RateLimited { retry_after } => inner["retry_after"] = json!(retry_after),
        _ => {}
    }
    (status, json!({ "success": false, "error": inner }))
}

fn ok(data: Value) -> Value {
    json!({ "success": true, "data": data })
}

pub fn registered(user: &User, verification_required: bool) -> Value {
    json!({
        "success": true,
        "data": {"user_id": user.id, "email": user.email, "verification_required": verification_required},
        "message": if verification_required {
            "Registration successful. Check email for verification."
        } else {
            "Registration successful."
        },
    })
}

pub fn signed_in(i: &Issued) -> Value {
    ok(json!({
        "access_token": i.access_token,
        "refresh_token": i.refresh_token,
        "token_type": "bearer",
        "expires_in": i.expires_in,
    }))
}

/// With rotation turned on explicitly, the client needs the new refresh token.
pub fn refreshed(i: &Issued, rotation: bool) -> Value {
    let mut data = json!({"access_token": i.access_token, "expires_in": i.expires_in});
    if rotation {
        data["refresh_token"] = json!(i.refresh_token);
    }
    ok(data)
}
