//! The one error enum of the service. Each variant is one row of API.md's error table;
//! the HTTP layer decides its status and shapes its body, each in exactly one place.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Validation {
        message: String,
        details: BTreeMap<String, String>,
    },
    #[error("authentication required")]
    MissingToken,
    #[error("the access token is invalid")]
    InvalidToken,
    #[error("the access token has expired")]
    TokenExpired,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("the API key is invalid")]
    InvalidApiKey,
    #[error("a TOTP code is required")]
    MfaRequired,
    #[error("the TOTP code is invalid")]
    InvalidMfaCode { at_login: bool },
    #[error("the token is invalid, used or expired")]
    InvalidMailToken,
    #[error("this endpoint requires permission tier {required}")]
    InsufficientTier { required: u8 },
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the email address has not been verified")]
    EmailNotVerified,
    #[error("the password is incorrect")]
    InvalidPassword,
    #[error("registration is closed")]
    RegistrationClosed,
    #[error("API keys cannot be used for this endpoint; sign in with a session")]
    ApiKeyNotAllowed,
    #[error("this API key may not be used from this address")]
    IpNotAllowed,
    /// A cookie-authenticated write that fails the CSRF rules; the message says which.
    #[error("{0}")]
    CsrfFailed(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("an account with this email already exists")]
    EmailExists,
    #[error("this username is taken")]
    UsernameExists,
    #[error("{}", if *in_flight { "a request with this Idempotency-Key is still running; retry later" } else { "this Idempotency-Key was used with a different request" })]
    IdempotencyConflict { in_flight: bool },
    #[error("TOTP is already enabled")]
    MfaAlreadyEnabled,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("the password does not meet the policy: {}", details.values().cloned().collect::<Vec<_>>().join("; "))]
    WeakPassword { details: BTreeMap<String, String> },
    #[error("{0}")]
    TierNotAllowed(String),
    #[error("this change would leave no active administrator")]
    LastAdmin,
    #[error("the account is temporarily locked after too many failed logins")]
    AccountLocked { locked_until: DateTime<Utc> },
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("a backing store is unavailable; retry shortly")]
    Unavailable(String),
    /// `/readyz`: which dependency is down (`{"database": "down"}`).
    #[error("not ready: {}", .0.iter().filter(|(_, v)| *v != "ok").map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "))]
    NotReady(BTreeMap<String, String>),
    #[error("internal error")]
    Internal(String),
    #[error("an OAuth client-credentials token cannot act for a user here")]
    ClientNotAllowed,
    /// A signed request without a required component or parameter (`details.missing`).
    #[error("the signature does not cover everything required: {}", missing.join(", "))]
    SignatureIncomplete { missing: Vec<String> },
    /// A signature that does not verify, is malformed, or names another algorithm;
    /// `signature_base` is the base the server built, when it got that far.
    #[error("{reason}")]
    SignatureInvalid {
        reason: String,
        signature_base: Option<String>,
    },
    /// `created` outside the window (or past `expires`); `skew_ms` is `created` minus the
    /// server's clock.
    #[error("{reason} (created is {skew_ms} ms from the server's clock)")]
    SignatureExpired {
        reason: &'static str,
        server_time: DateTime<Utc>,
        skew_ms: i64,
    },
    #[error("this signature was already used; sign every request anew (with a fresh nonce)")]
    SignatureReplayed,
    /// A passkey assertion (or registration response) that fails a check; the reason is
    /// logged, never sent.
    #[error("the passkey could not be verified")]
    InvalidPasskey,
    #[error("the passkey challenge is unknown, used or expired; start again")]
    PasskeyChallengeExpired,
    #[error("this passkey is already registered")]
    PasskeyExists,
    #[error("the account already has the maximum of {max} passkeys")]
    PasskeyLimit { max: i64 },
    #[error("this is the account's last way to sign in: add a password or another passkey first")]
    LastCredential,
    #[error("please sign in again to confirm it is you, then retry")]
    ReauthenticationRequired,
    /// A DPoP-bound token without a valid proof, or a proof that does not match (RFC
    /// 9449 §7.1); the message says what.
    #[error("{0}")]
    InvalidDpopProof(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The machine code of API.md's table.
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            Validation { .. } => "validation_error",
            MissingToken => "missing_token",
            InvalidToken => "invalid_token",
            TokenExpired => "token_expired",
            InvalidCredentials => "invalid_credentials",
            InvalidRefreshToken => "invalid_refresh_token",
            RefreshTokenReused => "refresh_token_reused",
            InvalidApiKey => "invalid_api_key",
            MfaRequired => "mfa_required",
            InvalidMfaCode { .. } => "invalid_mfa_code",
            InvalidMailToken => "invalid_mail_token",
            InsufficientTier { .. } => "insufficient_tier",
            AccountDisabled => "account_disabled",
            EmailNotVerified => "email_not_verified",
            InvalidPassword => "invalid_password",
            RegistrationClosed => "registration_closed",
            ApiKeyNotAllowed => "api_key_not_allowed",
            IpNotAllowed => "ip_not_allowed",
            CsrfFailed(_) => "csrf_failed",
            NotFound(_) => "not_found",
            MethodNotAllowed => "method_not_allowed",
            EmailExists => "email_exists",
            UsernameExists => "username_exists",
            IdempotencyConflict { .. } => "idempotency_conflict",
            MfaAlreadyEnabled => "mfa_already_enabled",
            PayloadTooLarge => "payload_too_large",
            WeakPassword { .. } => "weak_password",
            TierNotAllowed(_) => "tier_not_allowed",
            LastAdmin => "last_admin",
            AccountLocked { .. } => "account_locked",
            RateLimited { .. } => "rate_limited",
            Unavailable(_) | NotReady(_) => "unavailable",
            Internal(_) => "internal_error",
            ClientNotAllowed => "client_not_allowed",
            SignatureIncomplete { .. } => "signature_incomplete",
            SignatureInvalid { .. } => "signature_invalid",
            SignatureExpired { .. } => "signature_expired",
            SignatureReplayed => "signature_replayed",
            InvalidPasskey => "invalid_passkey",
            PasskeyChallengeExpired => "passkey_challenge_expired",
            PasskeyExists => "passkey_exists",
            PasskeyLimit { .. } => "passkey_limit",
            LastCredential => "last_credential",
            ReauthenticationRequired => "reauthentication_required",
            InvalidDpopProof(_) => "invalid_dpop_proof",
        }
    }

    /// The message shown to the caller (never internals).
    pub fn message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".into(),
            Error::Unavailable(_) => "a backing store is unavailable; retry shortly".into(),
            other => other.to_string(),
        }
    }

    /// `{field: message}` for 400 and 422 answers; `None` for other statuses.
    pub fn details(&self) -> Option<BTreeMap<String, String>> {
        let one = |field: &str| Some(BTreeMap::from([(field.to_string(), self.message())]));
        match self {
            Error::Validation { details, .. } | Error::WeakPassword { details }
                if !details.is_empty() =>
            {
                Some(details.clone())
            }
            Error::Validation { .. } | Error::WeakPassword { .. } => one("body"),
            Error::LastAdmin => one("permission_tier"),
            Error::TierNotAllowed(_) => one("permission_tier"),
            Error::InvalidMailToken => one("token"),
            Error::InvalidMfaCode { at_login: false } => one("code"),
            Error::PasskeyChallengeExpired => one("challenge_id"),
            Error::PasskeyLimit { .. } => one("credential"),
            Error::LastCredential => one("id"),
            _ => None,
        }
    }

    /// The value of a required field, or a 400 naming it.
    pub fn required(value: Option<String>, field: &str) -> Result<String> {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::field(field, format!("{field} is required")))
    }

    /// A 400 for several fields, one message naming each.
    pub fn fields(details: std::collections::BTreeMap<String, String>) -> Self {
        let message = details
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ");
        Error::Validation { message, details }
    }

    /// A 400 for one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error::Validation {
            message: message.clone(),
            details: BTreeMap::from([(field.to_string(), message)]),
        }
    }

    /// Whether this rejects a presented token or key (RFC 6750 `error="invalid_token"`).
    pub fn rejects_credential(&self) -> bool {
        matches!(
            self,
            Error::InvalidToken
                | Error::TokenExpired
                | Error::InvalidApiKey
                | Error::InvalidRefreshToken
                | Error::RefreshTokenReused
                | Error::SignatureInvalid { .. }
                | Error::SignatureExpired { .. }
                | Error::SignatureReplayed
        )
    }
}

impl From<crate::domain::FieldError> for Error {
    fn from(e: crate::domain::FieldError) -> Self {
        Error::field(e.field, e.message)
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::{Conflict, StoreError};
        match e {
            StoreError::Conflict(Conflict::Email) => Error::EmailExists,
            StoreError::Conflict(Conflict::LastAdmin) => Error::LastAdmin,
            StoreError::Conflict(Conflict::Username) => Error::UsernameExists,
            StoreError::Unavailable(m) => Error::Unavailable(m),
            StoreError::Other(m) => Error::Internal(m),
        }
    }
}

impl From<crate::tokens::TokenError> for Error {
    fn from(e: crate::tokens::TokenError) -> Self {
        match e {
            crate::tokens::TokenError::Invalid => Error::InvalidToken,
            crate::tokens::TokenError::Expired => Error::TokenExpired,
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<super::passwords::Overloaded>().is_some() {
            return Error::Unavailable(e.to_string());
        }
        // A store error that travelled as `anyhow` (key rotation) keeps its meaning.
        if let Some(crate::store::StoreError::Unavailable(m)) = e.downcast_ref() {
            return Error::Unavailable(m.clone());
        }
        Error::Internal(format!("{e:#}"))
    }
}
