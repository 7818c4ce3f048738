//! Dialects: the wire formats of the seed documents. A dialect only reshapes requests,
//! responses and error bodies; every rule stays in the service.
//!
//! This module owns the error shape of each dialect; the per-dialect modules own their
//! routes' request and response shapes.

pub mod native;

use crate::config::Dialect;
use crate::service::Error;
use axum::http::StatusCode;

/// The status and JSON body of an error in `dialect`.
pub fn render_error(dialect: Dialect, error: &Error) -> (StatusCode, Vec<u8>) {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match dialect {
        Dialect::Native | Dialect::Quantum | Dialect::OsEngine | Dialect::Stratify => {
            native::error_body(error)
        }
    };
    (status, serde_json::to_vec(&body).unwrap_or_default())
}
