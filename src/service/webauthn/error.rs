//! The errors of the WebAuthn core: a configuration that cannot serve passkeys, and every
//! refusal of a ceremony response, each with the contract's error code.

use webauthn_rs::prelude::WebauthnError;

/// A configuration that cannot serve passkeys. Its message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("TRADEAUTH_WEBAUTHN_RP_ID {rp_id:?} is not a domain name: {reason}")]
    InvalidRpId { rp_id: String, reason: String },
    /// Browsers refuse IP addresses as RP IDs (WebAuthn §5.1.3: a valid domain).
    #[error("TRADEAUTH_WEBAUTHN_RP_ID {rp_id:?} is an IP address; WebAuthn needs a domain name (use localhost for local development)")]
    RpIdIsIpAddress { rp_id: String },
    #[error("TRADEAUTH_ALLOWED_ORIGINS has an invalid origin {origin:?}: {reason}")]
    InvalidOrigin { origin: String, reason: String },
    #[error("TRADEAUTH_WEBAUTHN_RP_ID {rp_id:?} is not a registrable suffix of the host of allowed origin {origin:?}; passkeys would fail there (set TRADEAUTH_WEBAUTHN_RP_ID to that host or a parent domain of every allowed origin)")]
    RpIdNotSuffix { rp_id: String, origin: String },
    #[error("TRADEAUTH_ALLOWED_ORIGINS is empty; WebAuthn needs at least one origin")]
    NoOrigins,
}

/// Why a ceremony was refused. [`code`](PasskeyError::code) is the contract's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// The `credential` is not a `RegistrationResponseJSON` / `AuthenticationResponseJSON`
    /// (missing field, wrong type, bad base64url, `id` ≠ `rawId`).
    #[error("credential: {0}")]
    Malformed(String),
    /// No stored passkey has this id, or not one this ceremony allows.
    #[error("unknown passkey")]
    UnknownCredential,
    /// A valid signature whose counter did not increase over the stored one, from an
    /// authenticator that keeps a counter: a possible clone. The caller writes
    /// `passkey.clone_suspected`.
    #[error("the passkey's signature counter went backwards ({presented:?} after {stored})")]
    CounterRegression { stored: u32, presented: Option<u32> },
    /// The credential is one this account already has (`excludeCredentials`).
    #[error("this passkey is already registered")]
    AlreadyRegistered,
    /// Any other failed check of the response.
    #[error("passkey refused: {0:?}")]
    Refused(Refusal),
    /// Not the caller's fault: unreadable stored state, a library failure.
    #[error("internal WebAuthn error: {0}")]
    Internal(String),
}

/// The checks a response can fail; for logs and tests, all `invalid_passkey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The UV flag is missing.
    UserNotVerified,
    /// The UP flag is missing.
    UserNotPresent,
    /// `clientDataJSON.origin` is not an allowed origin (or it is a cross-origin call).
    WrongOrigin,
    /// The authenticator data's `rpIdHash` is not SHA-256 of our RP ID.
    WrongRpIdHash,
    /// The signature does not verify with the stored public key.
    BadSignature,
    /// `clientDataJSON.challenge` is not this ceremony's.
    WrongChallenge,
    /// `clientDataJSON.type` is not `webauthn.create` / `webauthn.get`.
    WrongCeremony,
    /// The user handle is missing (username-less) or names another account.
    UserHandleMismatch,
    /// The backup-eligibility flag changed since registration.
    BackupFlagsChanged,
    /// An algorithm or key the passkey flow does not accept.
    UnsupportedKey,
    /// The attestation object or authenticator data does not decode.
    Undecodable,
    /// Anything else `webauthn-rs` refuses.
    Other,
}

impl PasskeyError {
    /// The contract's error code (API.md error table).
    pub fn code(&self) -> &'static str {
        match self {
            PasskeyError::Malformed(_) => "validation_error",
            PasskeyError::AlreadyRegistered => "passkey_exists",
            PasskeyError::UnknownCredential
            | PasskeyError::CounterRegression { .. }
            | PasskeyError::Refused(_) => "invalid_passkey",
            PasskeyError::Internal(_) => "internal_error",
        }
    }

    /// Whether the caller must write `passkey.clone_suspected`.
    pub fn is_clone_suspected(&self) -> bool {
        matches!(self, PasskeyError::CounterRegression { .. })
    }
}

pub(super) fn refusal(e: WebauthnError) -> PasskeyError {
    use WebauthnError as W;
    let r = match e {
        W::UserNotVerified => Refusal::UserNotVerified,
        W::UserNotPresent => Refusal::UserNotPresent,
        W::InvalidRPOrigin | W::CredentialCrossOrigin => Refusal::WrongOrigin,
        W::InvalidRPIDHash => Refusal::WrongRpIdHash,
        W::AuthenticationFailure | W::SignatureInvalid => Refusal::BadSignature,
        W::MismatchedChallenge => Refusal::WrongChallenge,
        W::InvalidClientDataType => Refusal::WrongCeremony,
        W::InvalidUserUniqueId => Refusal::UserHandleMismatch,
        W::CredentialBackupEligibilityInconsistent | W::CredentialMayNotBeHardwareBound => {
            Refusal::BackupFlagsChanged
        }
        W::CredentialAlteredAlgFromRequest
        | W::CredentialInsecureCryptography
        | W::COSEKeyInvalidCBORValue
        | W::COSEKeyInvalidType
        | W::COSEKeyEDUnsupported
        | W::COSEKeyECDSAXYInvalid
        | W::COSEKeyRSANEInvalid
        | W::COSEKeyECDSAInvalidCurve
        | W::COSEKeyEDDSAXInvalid
        | W::COSEKeyEDDSAInvalidCurve
        | W::COSEKeyInvalidAlgorithm
        | W::EcdsaPointInvalid => Refusal::UnsupportedKey,
        W::ParseBase64Failure(_)
        | W::ParseCBORFailure(_)
        | W::ParseJSONFailure(_)
        | W::ParseNOMFailure
        | W::ParseInsufficientBytesAvailable
        | W::MissingAttestationCredentialData
        | W::AttestationStatementMapInvalid => Refusal::Undecodable,
        W::Configuration | W::ChallengePersistenceError => {
            return PasskeyError::Internal(e.to_string())
        }
        other => {
            tracing::debug!(error = %other, "passkey response refused");
            Refusal::Other
        }
    };
    PasskeyError::Refused(r)
}

pub(super) fn deserialize<T: serde::de::DeserializeOwned>(
    v: &serde_json::Value,
) -> Result<T, PasskeyError> {
    T::deserialize(v).map_err(|e| PasskeyError::Malformed(e.to_string()))
}
