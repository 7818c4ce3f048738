//! The OAuth 2.1 / OpenID Connect provider's use cases (API.md, "OAuth 2.1 and OpenID
//! Connect provider"): the client registry, the authorization request and consent, the
//! token endpoint's grants, ID tokens, userinfo and the user's grants.
//!
//! Layout:
//! - `keys`: the ID-token keys (an RS256 pair is always published) and the JWKS;
//! - `clients`: the tier-4 client registry (hashed secrets, rotation, deletion);
//! - `authorize`: checking an authorization request and leading the user through
//!   sign-in; `consent`: the consent answer and issuing codes; `par`: pushed
//!   authorization requests (RFC 9126);
//! - `client_auth`: client authentication (secrets, `none`, `private_key_jwt`), with
//!   `jwks`: the fetched `jwks_uri` key sets;
//! - `token`: the grants, ID tokens, userinfo, grants list;
//! - `lifecycle`: introspection, revocation and RP-initiated logout;
//! - `exchange`: token exchange (RFC 8693), down-scoping only;
//! - `device`: the device authorization grant (RFC 8628);
//! - `backchannel`: back-channel logout tokens and their delivery from the outbox.
//!
//! An authorization is a session: the code exchange starts a row in `sessions` (linked to
//! its client in `oauth_sessions`), so listing, refresh rotation, reuse detection and every
//! revocation path work on it unchanged. Errors of `/oauth2/` endpoints are
//! [`OAuthError`]s (RFC 6749 §5.2 shape), not the native [`Error`](super::Error).

pub mod authorize;
pub mod backchannel;
mod bound;
pub mod client_auth;
pub mod clients;
mod consent;
pub mod device;
pub mod exchange;
pub mod jwks;
pub mod keys;
pub mod lifecycle;
pub mod par;
pub mod token;
pub mod userinfo;

pub use authorize::{AuthorizeError, AuthorizeParams, Authorized, Pending};
pub use clients::{ClientInput, NewClientSecret};
pub use keys::IdKeys;
pub use lifecycle::{HintClaims, LoggedOut};
pub use token::{TokenParams, TokenResponse};
pub use userinfo::UserInfo;

/// An error of an `/oauth2/` endpoint: the RFC 6749 `error` code, a description saying
/// what did not match, and the HTTP status.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// `invalid_client` after HTTP Basic: the answer asks for Basic again (RFC 6749 §5.2).
    pub basic_challenge: bool,
    /// `use_dpop_nonce`: the nonce to retry with (`DPoP-Nonce`, RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
            dpop_nonce: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(401, "invalid_client", description)
    }

    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(401, "invalid_token", description)
    }
}

impl From<super::Error> for OAuthError {
    fn from(e: super::Error) -> Self {
        use super::Error;
        match e {
            Error::RateLimited { retry_after } => Self::new(
                429,
                "slow_down",
                format!("too many requests; retry in {retry_after} s"),
            ),
            Error::Unavailable(_) => Self::new(503, "temporarily_unavailable", e.message()),
            Error::Validation { .. } => Self::invalid_request(e.message()),
            other => {
                if let Error::Internal(detail) = &other {
                    tracing::error!(error = %detail, "internal error");
                }
                Self::new(500, "server_error", other.message())
            }
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        super::Error::from(e).into()
    }
}

/// A fresh random secret: `n` bytes, base64url.
pub(crate) fn random_token(n: usize) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    B64.encode(bytes)
}

/// A new client id: 16 random bytes, base64url, never starting with `-` or `_`, so it can
/// be passed to a command line (`tradeauth client delete ID`) or typed without surprise.
pub(crate) fn new_client_id() -> String {
    loop {
        let id = random_token(16);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

/// SHA-256 of a secret, as stored.
pub(crate) fn hash(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}
