//! The native dialect (API.md; a superset of seed 001).

use super::super::views::rfc3339_ms;
use crate::service::Error;
use serde_json::{json, Value};

/// `{error, code}` plus `locked_until`, `retry_after` or `details` where API.md lists them.
pub fn error_body(error: &Error) -> Value {
    let mut body = json!({ "error": error.message(), "code": error.code() });
    match error {
        Error::AccountLocked { locked_until } => {
            body["locked_until"] = json!(rfc3339_ms(locked_until));
        }
        Error::RateLimited { retry_after } => {
            body["retry_after"] = json!((*retry_after).max(1));
        }
        _ => {}
    }
    if let Some(details) = error.details() {
        body["details"] = json!(details);
    }
    if let Error::NotReady(checks) = error {
        body["checks"] = json!(checks);
    }
    body
}
