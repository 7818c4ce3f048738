//! Storage: the store's concern traits and [`Store`], which bundles them (`traits.rs`);
//! their one SQL implementation for SQLite and PostgreSQL (`sql/`, opened by `sqlite.rs`
//! and `postgres.rs`, migrations per backend in `migrations/`); and the in-process and
//! Redis-shared state (the revocation list, rate limiters, the revocation bus).
//!
//! Methods speak domain types; SQL and driver errors never leave this module except as
//! [`StoreError`]. Anything that must not be half-written (revoking sessions together with
//! their revocation records, a key rotation) is one method, so one transaction.
//!
//! Callers hold a [`DynStore`] (`Arc<dyn Store>`); a trait object answers the methods of
//! its supertraits without importing them, so callers name no concern trait.

pub mod grants;
pub mod mail;
pub mod oauth;
pub mod postgres;
pub mod ratelimit;
pub mod redis;
pub mod replay;
pub mod revocation;
mod sql;
pub mod sqlite;
mod traits;

use crate::domain::{Email, FullName, Tier, UserId, Username};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

pub use grants::GrantStore;
pub use mail::MailOutbox;
pub use oauth::OAuthStore;
pub use sql::SqlStore;
pub use traits::PasskeyStore;
pub use traits::{
    ApiKeyStore, AuditStore, IdempotencyStore, KeyStore, LockoutStore, MailTokenStore, MfaStore,
    RevocationStore, SessionStore, Store, UserStore, REVOCATION_PAGE,
};

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another account has this email.
    Email,
    /// Another account has this username.
    Username,
    /// The change would leave no active tier-4 account ([`UserPatch::keep_an_admin`]).
    LastAdmin,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conflict::Email => "email",
            Conflict::Username => "username",
            Conflict::LastAdmin => "last_admin",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken: a unique field, or the last admin.
    #[error("{0} already exists")]
    Conflict(Conflict),
    /// The database could not be reached; the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a failed statement, a corrupt row).
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub full_name: Option<FullName>,
    pub password_hash: String,
    pub tier: Tier,
    pub is_verified: bool,
    pub is_bootstrap: bool,
    pub created_at: DateTime<Utc>,
}

/// Changes to a user; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub username: Option<Username>,
    pub full_name: Option<Option<FullName>>,
    pub tier: Option<Tier>,
    pub is_active: Option<bool>,
    pub is_verified: Option<bool>,
    /// Refuse the change ([`Conflict::LastAdmin`]) unless another active tier-4 account
    /// exists — checked in the same statement, so two admins demoting each other at once
    /// cannot both succeed.
    pub keep_an_admin: bool,
    /// When the change disables the account or lowers its tier (judged against the row as
    /// the same transaction reads it), every session ends in that transaction too, so no
    /// failure in between can leave the sessions alive.
    pub end_sessions: Option<EndSessions>,
}

/// Ending a user's sessions in the same transaction as the change that demands it (a new
/// password, a disable, a lower tier): the sessions are marked revoked and their `sid`
/// revocation records written, or nothing is.
#[derive(Debug, Clone, Copy)]
pub struct EndSessions {
    /// The caller's own session, kept on a password change.
    pub except: Option<Uuid>,
    pub now: DateTime<Utc>,
    /// How long the `sid` revocation records live.
    pub until: DateTime<Utc>,
}

/// What a sign-in saw of the account when it checked the credential. Its session is
/// created only if the account still looks the same, in the same statement, so a reset,
/// disable or demotion that lands while the sign-in is in flight (the password check may
/// wait in the hash queue) cannot be outlived by the session it would create.
#[derive(Clone)]
pub struct SignInGuard {
    /// The tier the access token will carry.
    pub tier: Tier,
    /// The password hash the password was checked against (`None`: the sign-in did not
    /// use the password, a passkey say).
    pub password_hash: Option<String>,
    /// How the sign-in proved the user (RFC 8176 values): kept with the session for the
    /// ID tokens of the authorizations it makes.
    pub amr: Vec<String>,
}

/// Filters of the admin user list.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Matches email, username or full name (case-insensitive substring).
    pub q: Option<String>,
    pub tier: Option<Tier>,
    pub active: Option<bool>,
}

/// Keyset pagination: items strictly after `after` (ids sort by creation, newest first).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// Which sessions to revoke.
#[derive(Debug, Clone, Copy)]
pub enum RevokeTarget {
    Session(Uuid),
    /// Every live session of the user, except `except` (the caller's own, on a password
    /// change).
    User {
        user: UserId,
        except: Option<Uuid>,
    },
}

/// A revocation record: an access token (`jti`) or a whole session (`sid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Jti(Uuid),
    Sid(Uuid),
}

#[derive(Debug, Clone)]
pub struct RevocationRow {
    pub seq: i64,
    pub what: Revoked,
    pub expires_at: DateTime<Utc>,
    /// When it was recorded (for the propagation-lag metric).
    pub created_at: DateTime<Utc>,
}

/// A security event (API.md, `/auth/events`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    pub id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    /// The account the event is about.
    pub user_id: Option<UserId>,
    /// Who did it (the user themselves, an admin, or nobody for the system).
    pub actor_id: Option<UserId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user_id: Option<UserId>,
    pub kind: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// Lockout state of an account, for admin views.
#[derive(Debug, Clone, Default)]
pub struct LockoutState {
    pub failed_login_count: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

/// An API key as stored (never the secret itself).
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub public_id: String,
    pub secret_hash: Vec<u8>,
    pub name: String,
    pub tier: Tier,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<crate::domain::network::AllowedIp>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `bearer`, or a signing key's algorithm (`ed25519`, `ecdsa-p256-sha256`,
    /// `hmac-sha256`); a signing key's `secret_hash` is empty.
    pub algorithm: String,
    /// A signing key's public key: Ed25519's 32 bytes, or P-256's 65-byte uncompressed point.
    pub public_key: Option<Vec<u8>>,
    /// An `hmac-sha256` key's secret, sealed (AES-256-GCM under `TRADEAUTH_SECRET_KEY`,
    /// the key's `key_id` as associated data).
    pub sealed_secret: Option<Vec<u8>>,
}

/// What a single-use mail token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPurpose {
    Verify,
    Reset,
}

impl MailPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            MailPurpose::Verify => "verify",
            MailPurpose::Reset => "reset",
        }
    }
}

/// A user's TOTP state. No `Debug`: it holds the shared secrets.
#[derive(Clone, Default)]
pub struct MfaState {
    pub enabled: bool,
    pub secret: Option<Vec<u8>>,
    /// A secret from `setup`, waiting for `enable`.
    pub pending: Option<Vec<u8>>,
    /// The last time step a code was accepted for (a code is good once per step).
    pub last_step: i64,
}

/// What an `Idempotency-Key` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// The key was free and is now claimed by this request.
    Claimed,
    /// Another request with this key is still running.
    InFlight { request_hash: String },
    /// The key's first response.
    Done {
        request_hash: String,
        status: u16,
        body: String,
    },
}

/// The store as callers hold it.
pub type DynStore = Arc<dyn Store>;

/// `DateTime<Utc>` as epoch milliseconds, the time encoding of both schemas.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Epoch milliseconds as `DateTime<Utc>` (the inverse of [`ms`]).
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// A stored passkey: a `passkeys` row.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub user_id: UserId,
    /// The authenticator's credential id (unique across all accounts).
    pub credential_id: Vec<u8>,
    pub name: String,
    /// The credential as the WebAuthn core keeps it (public key, counter, flags), JSON.
    pub credential: String,
    /// The last signature counter seen (0: the authenticator keeps none).
    pub counter: i64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// Which ceremony a `webauthn_challenges` row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Register,
    Login,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Register => "register",
            ChallengeKind::Login => "login",
        }
    }
}

/// A ceremony's state, taken (deleted) from `webauthn_challenges`.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The account a registration is for (none for a sign-in).
    pub user_id: Option<UserId>,
    /// The WebAuthn core's state, JSON.
    pub state: String,
}

/// What inserting a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyInsert {
    Inserted,
    /// The credential id is registered already (to any account).
    Exists,
    /// The account has the maximum number of passkeys already.
    Limit,
}

/// What removing a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyRemoval {
    Removed,
    /// No such passkey of this user.
    NotFound,
    /// It is the account's last passkey and the account has no usable password.
    LastCredential,
}
