//! The native dialect (API.md; a superset of seed 001).

use super::super::views::rfc3339_ms;
use crate::service::Error;
use serde::Serialize;
use std::collections::BTreeMap;

/// `{error, code}` (seed 001's order) plus `details`, `locked_until`, `retry_after` or
/// `checks` where API.md lists them.
#[derive(Serialize)]
pub struct ErrorBody {
    error: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<BTreeMap<String, String>>,
}

pub fn error_body(error: &Error) -> ErrorBody {
    ErrorBody {
        error: error.message(),
        code: error.code(),
        details: error.details(),
        locked_until: match error {
            Error::AccountLocked { locked_until } => Some(rfc3339_ms(locked_until)),
            _ => None,
        },
        retry_after: match error {
            Error::RateLimited { retry_after } => Some((*retry_after).max(1)),
            _ => None,
        },
        checks: match error {
            Error::NotReady(checks) => Some(checks.clone()),
            _ => None,
        },
    }
}
