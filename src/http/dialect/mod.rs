//! Dialects: the wire formats of the seed documents. A dialect only reshapes requests,
//! responses and error bodies; every rule stays in the service.
//!
//! Each module owns its seed's routes (login, refresh, logout, me, register — where the
//! seed describes them) and its error shape. [`render_error`] is called for every error
//! response, so one client error handler works for every endpoint.

pub mod native;
pub mod os_engine;
pub mod quantum;
pub mod stratify;

use crate::config::Dialect;
use crate::service::Error;
use axum::http::StatusCode;

/// The status and JSON body of an error in `dialect`.
pub fn render_error(dialect: Dialect, error: &Error) -> (StatusCode, Vec<u8>) {
    let (status, body) = match dialect {
        Dialect::Native => (
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            native::error_body(error),
        ),
        Dialect::Quantum => quantum::error(error),
        Dialect::OsEngine => os_engine::error(error),
        Dialect::Stratify => stratify::error(error),
    };
    (status, serde_json::to_vec(&body).unwrap_or_default())
}
