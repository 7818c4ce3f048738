//! Native JSON shapes of the domain objects (API.md field names), and the schemas of the
//! OpenAPI document that are not built from a view: the error body, the error response
//! lists, and the bodies handlers build with `json!`.

use crate::domain::{Session, User};
use crate::service::admin::AdminUser;
use crate::service::auth::{Issued, SessionView};
use crate::service::{AuditEvent, Paged};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// RFC 3339 UTC with milliseconds (`2024-01-15T10:30:00.000Z`), the one time format of
/// every dialect.
pub fn rfc3339_ms(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Serialises a time as [`rfc3339_ms`].
pub fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_ms(t))
}

pub fn rfc3339_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// "The user object".
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub full_name: Option<String>,
    pub permission_tier: u8,
    pub role: &'static str,
    pub is_active: bool,
    pub is_verified: bool,
    pub mfa_enabled: bool,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserBody {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.0,
            email: u.email.to_string(),
            username: u.username.to_string(),
            full_name: u.full_name.as_ref().map(|f| f.as_str().to_string()),
            permission_tier: u.tier.get(),
            role: u.tier.role().as_str(),
            is_active: u.is_active,
            is_verified: u.is_verified,
            mfa_enabled: u.mfa_enabled,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// The user object with the lockout state admins see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminUserBody {
    #[serde(flatten)]
    pub user: UserBody,
    pub failed_login_count: u32,
    #[serde(serialize_with = "rfc3339_opt")]
    pub locked_until: Option<DateTime<Utc>>,
}

impl From<&AdminUser> for AdminUserBody {
    fn from(a: &AdminUser) -> Self {
        Self {
            user: UserBody::from(&a.user),
            failed_login_count: a.lockout.failed_login_count,
            locked_until: a.lockout.locked_until,
        }
    }
}

/// Login and refresh answer (seed 001's epoch-second expiries).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenBody {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub access_expires_at: i64,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
    pub permission_tier: u8,
    pub user: UserBody,
}

impl From<&Issued> for TokenBody {
    fn from(i: &Issued) -> Self {
        Self {
            access_token: i.access_token.clone(),
            token_type: "bearer",
            expires_in: i.expires_in,
            access_expires_at: i.access_expires_at.timestamp(),
            refresh_token: i.refresh_token.clone(),
            refresh_expires_at: i.refresh_expires_at.timestamp(),
            permission_tier: i.user.tier.get(),
            user: UserBody::from(&i.user),
        }
    }
}

/// What login and refresh answer: the tokens (`token_transport: "body"`, the default) or,
/// in cookie mode, the body without them. For the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginBody {
    Tokens(TokenBody),
    Cookie(CookieTokenBody),
}

/// Login and refresh answer in cookie mode: the login body without the tokens (they are
/// in `HttpOnly` cookies), with the session's CSRF token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CookieTokenBody {
    /// Always `cookie`.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub access_expires_at: i64,
    pub refresh_expires_at: i64,
    pub permission_tier: u8,
    pub user: UserBody,
    /// Send it as `X-CSRF-Token` on every cookie-authenticated write; also in the
    /// readable `__Host-tradeauth_csrf` cookie.
    pub csrf_token: String,
}

impl CookieTokenBody {
    pub fn new(i: &Issued, csrf_token: String) -> Self {
        Self {
            token_type: "cookie",
            expires_in: i.expires_in,
            access_expires_at: i.access_expires_at.timestamp(),
            refresh_expires_at: i.refresh_expires_at.timestamp(),
            permission_tier: i.user.tier.get(),
            user: UserBody::from(&i.user),
            csrf_token,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    pub id: Uuid,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub last_used_at: DateTime<Utc>,
    /// When the session's current refresh token expires.
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub current: bool,
}

impl SessionBody {
    pub fn new(s: &Session, current: bool) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.refresh_expires_at,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current,
        }
    }
}

impl From<&SessionView> for SessionBody {
    fn from(v: &SessionView) -> Self {
        Self::new(&v.session, v.current)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventBody {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub actor_id: Option<Uuid>,
    pub details: serde_json::Value,
}

impl From<&AuditEvent> for EventBody {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind.clone(),
            at: e.at,
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            actor_id: e.actor_id.map(|a| a.0),
            details: e.details.clone(),
        }
    }
}

/// `{items, next_cursor}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListBody<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> ListBody<T> {
    pub fn from_paged<S>(p: &Paged<S>, f: impl for<'a> Fn(&'a S) -> T) -> Self {
        Self {
            items: p.items.iter().map(f).collect(),
            next_cursor: p.next_cursor.clone(),
        }
    }
}

/// Deserialises a query value, treating an empty one (`?tier=`) as absent.
pub fn empty_as_none<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw: Option<String> = serde::Deserialize::deserialize(de)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Deserialises a field that may be absent (`None`), null (`Some(None)`) or a value.
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

/// Every error, from every endpoint (API.md, "Errors"). Documentation only: the body is
/// built by the dialect's renderer.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Human-readable message.
    error: String,
    /// Machine code (`validation_error`, `invalid_token`, ...).
    code: String,
    /// `{field: message}` on 400 and 422; `{missing: [component or parameter]}` on
    /// `signature_incomplete`; `{signature_base}` (the base the server built) on
    /// `signature_invalid`.
    #[schema(value_type = Option<Object>)]
    details: Option<BTreeMap<String, serde_json::Value>>,
    /// On 423: when the lock lifts (RFC 3339).
    locked_until: Option<String>,
    /// On 429: seconds to wait.
    retry_after: Option<u64>,
    /// On 503 from `/readyz`: the state of each store.
    checks: Option<BTreeMap<String, String>>,
    /// On `signature_expired`: the server's clock (RFC 3339 with ms).
    server_time: Option<String>,
    /// On `signature_expired`: the signature's `created` minus the server's clock, in ms.
    skew_ms: Option<i64>,
}

/// The errors any endpoint may answer: a malformed request, a rate limit, a failure of
/// ours or of a backing store. Listed in `#[utoipa::path(responses(...))]` next to the
/// endpoint's own statuses.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    #[response(status = 400, description = "error")]
    BadRequest(ErrorBody),
    #[response(status = 429, description = "error")]
    TooManyRequests(ErrorBody),
    #[response(status = 500, description = "error")]
    Internal(ErrorBody),
    #[response(status = 503, description = "error")]
    Unavailable(ErrorBody),
}

/// [`Errors`] plus those of an endpoint that checks a credential: 401 and 403.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CallerErrors {
    #[response(status = 400, description = "error")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "error")]
    Unauthorized(ErrorBody),
    #[response(status = 403, description = "error")]
    Forbidden(ErrorBody),
    #[response(status = 429, description = "error")]
    TooManyRequests(ErrorBody),
    #[response(status = 500, description = "error")]
    Internal(ErrorBody),
    #[response(status = 503, description = "error")]
    Unavailable(ErrorBody),
}

/// `POST /auth/register`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Registered {
    user: UserBody,
    verification_required: bool,
}

/// `202 {"status": "accepted"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Accepted {
    status: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TotpSetup {
    /// Base32 shared secret.
    secret: String,
    /// `otpauth://totp/...` for authenticator apps.
    otpauth_url: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RotatedKey {
    kid: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Health {
    status: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Ready {
    status: String,
    checks: BTreeMap<String, String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<serde_json::Value>,
}
