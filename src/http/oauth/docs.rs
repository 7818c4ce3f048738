//! The shapes of the `/oauth2/` endpoints as the OpenAPI document describes them (the
//! handlers build their JSON directly; these types exist for the document only).

use serde::Serialize;

/// An RFC 6749 §5.2 error, as every `/oauth2/` endpoint answers one.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`,
    /// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`, ...
    error: String,
    /// What did not match.
    error_description: String,
}

/// The form of `POST /oauth2/device_authorization` (RFC 8628 §3.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceAuthorizationForm {
    /// A public client's id (confidential clients may use HTTP Basic instead).
    client_id: Option<String>,
    client_secret: Option<String>,
    /// Space-separated; default `openid`; clamped to the client's scopes.
    scope: Option<String>,
}

/// The answer of `POST /oauth2/device_authorization` (RFC 8628 §3.2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceAuthorizationBody {
    /// The device's secret for polling the token endpoint (single use).
    device_code: String,
    /// What the user types on `verification_uri`: `XXXX-XXXX`.
    user_code: String,
    /// `<public url>/device`.
    verification_uri: String,
    /// `verification_uri` with the code filled in.
    verification_uri_complete: String,
    /// Seconds (600).
    expires_in: i64,
    /// Seconds between polls (5; 5 more after each `slow_down`).
    interval: i64,
}

/// The form of `POST /oauth2/token`: the fields each grant reads.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenForm {
    /// `authorization_code`, `refresh_token`, `client_credentials`,
    /// `urn:ietf:params:oauth:grant-type:device_code` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// The device grant's code.
    device_code: Option<String>,
    /// Token exchange: an access token, or a bearer API key.
    subject_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:access_token` or
    /// `urn:tradeauth:params:token-type:api-key`.
    subject_token_type: Option<String>,
    /// Token exchange: `urn:ietf:params:oauth:token-type:access_token` only.
    requested_token_type: Option<String>,
    /// Token exchange (RFC 8707): an absolute https URI, the new token's `aud`.
    resource: Option<String>,
    /// Token exchange: tradeauth's own audience only.
    audience: Option<String>,
}

/// A token response (RFC 6749 §5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct OAuthTokenBody {
    access_token: String,
    /// `Bearer`.
    token_type: String,
    expires_in: i64,
    scope: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
    /// Token exchange only: `urn:ietf:params:oauth:token-type:access_token`.
    issued_token_type: Option<String>,
}
