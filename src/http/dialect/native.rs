//! The native dialect (API.md; a superset of seed 001).

use super::super::views::rfc3339_ms;
use crate::service::Error;
use serde::Serialize;
use std::collections::BTreeMap;

/// `{error, code}` (seed 001's order) plus `details`, `locked_until`, `retry_after`,
/// `checks`, `server_time` or `skew_ms` where API.md lists them.
#[derive(Serialize)]
pub struct ErrorBody {
    error: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<BTreeMap<String, String>>,
    /// `signature_expired`: the server's clock (RFC 3339 with ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    server_time: Option<String>,
    /// `signature_expired`: `created` minus the server's clock, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    skew_ms: Option<i64>,
}

pub fn error_body(error: &Error) -> ErrorBody {
    ErrorBody {
        error: error.message(),
        code: error.code(),
        details: match error {
            // Signed requests (API.md): `details.missing` is a list, and a 401
            // `signature_invalid` carries the base the server built.
            Error::SignatureIncomplete { missing } => {
                Some(serde_json::json!({ "missing": missing }))
            }
            Error::SignatureInvalid {
                signature_base: Some(base),
                ..
            } => Some(serde_json::json!({ "signature_base": base })),
            _ => error
                .details()
                .map(|d| serde_json::to_value(d).unwrap_or_default()),
        },
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
        server_time: match error {
            Error::SignatureExpired { server_time, .. } => Some(rfc3339_ms(server_time)),
            _ => None,
        },
        skew_ms: match error {
            Error::SignatureExpired { skew_ms, .. } => Some(*skew_ms),
            _ => None,
        },
    }
}
