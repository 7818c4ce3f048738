//! Service errors on their way out: [`ApiError`], and the HTTP status of each
//! [`Error`] (API.md's error table), decided here and not in the service.
//!
//! Handlers and extractors return [`ApiError`]; its `IntoResponse` only marks the response
//! with the error. The dialect's renderer (`dialect::render_errors`), outermost in the
//! router, then renders *every* error response — ours and the framework's — in the
//! configured dialect's shape.

use crate::service::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

/// A service error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = status(&self.0).into_response();
        res.extensions_mut().insert(self.0);
        res
    }
}

/// The HTTP status of API.md's table (the native one; a dialect may differ).
pub fn status(error: &Error) -> StatusCode {
    use Error::*;
    match error {
        Validation { .. } | InvalidMailToken => StatusCode::BAD_REQUEST,
        InvalidMfaCode { at_login: false } => StatusCode::BAD_REQUEST,
        MissingToken
        | InvalidToken
        | TokenExpired
        | InvalidCredentials
        | InvalidRefreshToken
        | RefreshTokenReused
        | InvalidApiKey
        | MfaRequired
        | InvalidMfaCode { at_login: true } => StatusCode::UNAUTHORIZED,
        InsufficientTier { .. }
        | AccountDisabled
        | EmailNotVerified
        | InvalidPassword
        | RegistrationClosed
        | ApiKeyNotAllowed
        | IpNotAllowed
        | CsrfFailed(_)
        | ClientNotAllowed => StatusCode::FORBIDDEN,
        NotFound(_) => StatusCode::NOT_FOUND,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        EmailExists | UsernameExists | IdempotencyConflict { .. } | MfaAlreadyEnabled => {
            StatusCode::CONFLICT
        }
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        WeakPassword { .. } | TierNotAllowed(_) | LastAdmin => StatusCode::UNPROCESSABLE_ENTITY,
        AccountLocked { .. } => StatusCode::LOCKED,
        RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Unavailable(_) | NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
        Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SignatureIncomplete { .. } => StatusCode::BAD_REQUEST,
        SignatureInvalid { .. } | SignatureExpired { .. } | SignatureReplayed => {
            StatusCode::UNAUTHORIZED
        }
        InvalidPasskey => StatusCode::UNAUTHORIZED,
        PasskeyChallengeExpired => StatusCode::BAD_REQUEST,
        PasskeyExists => StatusCode::CONFLICT,
        PasskeyLimit { .. } | LastCredential => StatusCode::UNPROCESSABLE_ENTITY,
        ReauthenticationRequired => StatusCode::FORBIDDEN,
        InvalidDpopProof(_) => StatusCode::UNAUTHORIZED,
    }
}

/// The error of a response we did not produce ourselves (routing, body limits), from
/// its status.
pub fn from_status(status: StatusCode) -> Error {
    let n = status.as_u16();
    match n {
        404 => Error::NotFound("resource"),
        405 => Error::MethodNotAllowed,
        413 => Error::PayloadTooLarge,
        401 => Error::MissingToken,
        400 | 415 | 422 => Error::Validation {
            message: "the request is malformed".into(),
            details: BTreeMap::new(),
        },
        408 | 503 | 504 => Error::Unavailable(format!("status {n}")),
        _ => Error::Internal(format!("status {n}")),
    }
}
