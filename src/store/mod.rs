//! Storage: the [`Store`] trait the service talks to, its SQLite implementation (and the
//! PostgreSQL one beside it), migrations per backend, and the in-process shared state
//! (the revocation list) that makes token checks free of database round trips.
//!
//! Methods speak domain types; SQL and driver errors never leave this module except as
//! [`StoreError`]. Anything that must not be half-written (revoking sessions together with
//! their revocation records, a key rotation) is one method, so one transaction.

pub mod postgres;
pub mod ratelimit;
pub mod redis;
pub mod revocation;
mod sql;
pub mod sqlite;

use crate::domain::lockout::{AttemptSlot, LockoutPolicy};
use crate::domain::{Email, FullName, Session, Tier, User, UserId, Username};
use crate::tokens::StoredKey;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint on this field was hit (`email` or `username`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database could not be reached; the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
    /// Refuse the change (`Conflict("last_admin")`) unless another active tier-4 account
    /// exists — checked in the same statement, so two admins demoting each other at once
    /// cannot both succeed.
    pub keep_an_admin: bool,
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

/// The durable store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // --- users ---
    async fn insert_user(&self, user: &NewUser) -> StoreResult<User>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// By username or email (both case-insensitive).
    async fn user_by_login(&self, identifier: &str) -> StoreResult<Option<User>>;
    async fn username_taken(&self, username: &Username) -> StoreResult<bool>;
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()>;
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<User>>;
    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<()>;
    async fn list_users(&self, query: &UserQuery, page: Page) -> StoreResult<Vec<User>>;
    /// Deletes the user; their live sessions get `sid` revocations valid until `until`, in
    /// the same transaction. `None` when there is no such user. With `keep_an_admin`, as
    /// in [`UserPatch::keep_an_admin`].
    async fn delete_user(
        &self,
        id: UserId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        keep_an_admin: bool,
    ) -> StoreResult<Option<Vec<Uuid>>>;
    async fn count_active_admins(&self) -> StoreResult<i64>;
    async fn bootstrap_user(&self) -> StoreResult<Option<User>>;

    // --- sessions ---
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    async fn session(&self, id: Uuid) -> StoreResult<Option<Session>>;
    /// The session and its user, read together (the refresh path).
    async fn session_with_user(&self, id: Uuid) -> StoreResult<Option<(Session, User)>>;
    /// Moves the session from generation `from` to `from + 1` if it is still at `from` and
    /// live: the new token's record and its parent's retirement are this one statement.
    /// `false` when another refresh won the race (or the session died).
    async fn rotate_session(
        &self,
        id: Uuid,
        from: i64,
        now: DateTime<Utc>,
        refresh_expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;
    /// Revokes the target's live sessions and records a `sid` revocation for each, valid
    /// until `until`, in one transaction. Returns the ids revoked.
    async fn revoke_sessions(
        &self,
        target: RevokeTarget,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>>;
    /// Live sessions of a user, newest first.
    async fn list_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: Page,
    ) -> StoreResult<Vec<Session>>;
    async fn count_live_sessions(&self, now: DateTime<Utc>) -> StoreResult<i64>;

    // --- revocations ---
    async fn revoke_jti(&self, jti: Uuid, until: DateTime<Utc>) -> StoreResult<()>;
    /// Unexpired revocations with a sequence number above `seq`, or recorded after
    /// `recent` (in order). The second condition re-reads a short window: PostgreSQL hands
    /// out sequence numbers before commit, so a row with a lower number can become visible
    /// after a higher one has been read. At most 10,000 rows: call again from the last
    /// `seq` for more.
    async fn revocations_since(
        &self,
        seq: i64,
        recent: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>>;

    // --- keys and secrets ---
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Inserts or updates these keys in one transaction.
    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()>;
    /// The named secret, created from `fresh` if absent (first writer wins).
    async fn secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>>;

    // --- lockout (see `domain::lockout`) ---
    /// Reserves an attempt against `key` before its password is evaluated, atomically: an
    /// expired window or lock starts over; a live lock, or as many attempts in flight as
    /// failures are still allowed, refuses the reservation.
    async fn reserve_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<AttemptSlot>;
    /// Ends a reservation as a failure. Returns the lock's end when this failure reached
    /// the threshold and locked `key` until `now + policy.duration`.
    async fn fail_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    /// Ends a reservation as a success (the password was right): the failures start over.
    async fn succeed_attempt(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Ends a reservation with no verdict (a second factor asked for, an internal error).
    async fn release_attempt(&self, key: &str) -> StoreResult<()>;
    /// Clears every counter whose key starts with `prefix` (unlock, password reset).
    async fn clear_attempts(&self, prefix: &str) -> StoreResult<()>;
    /// Failures that still count (inside their window or their lock) and the lock, over
    /// every counter of the account (`prefix`, and `prefix|ip` under `account_ip`).
    async fn lockout_state(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> StoreResult<LockoutState>;

    // --- audit ---
    async fn insert_event(&self, event: &AuditEvent) -> StoreResult<()>;
    async fn list_events(&self, query: &AuditQuery, page: Page) -> StoreResult<Vec<AuditEvent>>;

    // --- API keys ---
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> StoreResult<()>;
    /// The key with this public id and its owner, in one read (the check path).
    async fn api_key_with_owner(
        &self,
        public_id: &str,
    ) -> StoreResult<Option<(ApiKeyRecord, User)>>;
    /// The user's keys that are not revoked, newest first.
    async fn list_api_keys(&self, user: UserId, page: Page) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revokes the user's key; `false` if there is no such live key of theirs.
    async fn revoke_api_key(&self, user: UserId, id: Uuid, now: DateTime<Utc>)
        -> StoreResult<bool>;
    /// Records a use, if the recorded one is older than `older_than`.
    async fn touch_api_key(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        older_than: DateTime<Utc>,
    ) -> StoreResult<()>;

    // --- mail tokens ---
    async fn insert_mail_token(
        &self,
        hash: &[u8],
        user: UserId,
        purpose: MailPurpose,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The user of a live (unused, unexpired) token, without using it.
    async fn peek_mail_token(
        &self,
        hash: &[u8],
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<UserId>>;
    /// Uses a live token, atomically; every other live token of the same user and purpose
    /// dies with it. `None` if it was not live.
    async fn consume_mail_token(
        &self,
        hash: &[u8],
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<UserId>>;

    // --- TOTP ---
    async fn mfa_state(&self, user: UserId) -> StoreResult<MfaState>;
    async fn set_mfa_pending(&self, user: UserId, secret: &[u8]) -> StoreResult<()>;
    /// Turns TOTP on with the pending secret, records `step` as used and stores the
    /// recovery-code hashes, in one transaction. `false` if there was no pending secret
    /// or TOTP was already on.
    async fn enable_mfa(
        &self,
        user: UserId,
        step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool>;
    async fn disable_mfa(&self, user: UserId) -> StoreResult<()>;
    /// Records `step` as used if it is later than the last used one; `false` otherwise
    /// (a replayed code).
    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    /// Uses a recovery code, once.
    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    // --- idempotency ---
    /// Claims `key` for a request whose body hashes to `request_hash`, or tells what the
    /// key already holds. Keys older than 24 h are forgotten.
    async fn idempotency_begin(
        &self,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState>;
    /// Records the response of a claimed key.
    async fn idempotency_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()>;
    /// Releases a claimed key without a response (the request failed with a 5xx).
    async fn idempotency_abandon(&self, key: &str) -> StoreResult<()>;

    /// Deletes expired revocations, expired sessions and audit events older than
    /// `audit_before`.
    async fn prune(&self, now: DateTime<Utc>, audit_before: DateTime<Utc>) -> StoreResult<()>;
}

pub type DynStore = Arc<dyn Store>;

/// Epoch milliseconds ⇄ `DateTime<Utc>`, the time encoding of the SQLite schema.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}
