//! The store's interface: one trait per concern, and [`Store`], all of them at once.
//!
//! Callers hold a [`DynStore`](super::DynStore) (`Arc<dyn Store>`), which answers every
//! concern's methods (a concrete store needs the concern trait in scope).
//! The SQL implementation of each trait is in `sql/<concern>.rs`.

use super::*;
use crate::domain::lockout::{AttemptSlot, LockoutPolicy};
use crate::domain::{Session, User, UserId, Username};
use crate::tokens::StoredKey;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The durable store: every concern, plus what spans them all.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + RevocationStore
    + KeyStore
    + LockoutStore
    + AuditStore
    + ApiKeyStore
    + MailTokenStore
    + MfaStore
    + IdempotencyStore
    + super::oauth::OAuthStore
    + super::grants::GrantStore
    + super::mail::MailOutbox
    + super::oauth::PushedRequests
    + PasskeyStore
    + 'static
{
    /// Succeeds when the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Deletes expired revocations, expired sessions, audit events older than
    /// `audit_before`, stale login-attempt counters, idempotency keys older than 24 h and
    /// mails sent more than a day ago, in one transaction.
    async fn prune(&self, now: DateTime<Utc>, audit_before: DateTime<Utc>) -> StoreResult<()>;
}

/// Accounts: insert, look up, change, list and delete users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts the user; [`Conflict::Email`] or [`Conflict::Username`] if taken.
    async fn insert_user(&self, user: &NewUser) -> StoreResult<User>;
    /// The user with this id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// By username or email (both case-insensitive).
    async fn user_by_login(&self, identifier: &str) -> StoreResult<Option<User>>;
    /// Whether an account has this username.
    async fn username_taken(&self, username: &Username) -> StoreResult<bool>;
    /// The user's password hash (PHC string).
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;
    /// Replaces the user's password hash and, in the same transaction, ends the sessions
    /// `end` names; the ids of the sessions ended.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &str,
        end: Option<EndSessions>,
    ) -> StoreResult<Vec<Uuid>>;
    /// Replaces the hash `old` with `new` (the same password at stronger parameters) only if
    /// `old` is still the account's, so a rehash never undoes a reset that landed meanwhile.
    async fn rehash_password(&self, id: UserId, old: &str, new: &str) -> StoreResult<bool>;
    /// A password reset in one transaction: uses the live reset token (`token`, hashed) of
    /// `user`, replaces the password hash and ends every session. `None` (and nothing
    /// changed) if the token was not live.
    async fn reset_password(
        &self,
        token: &[u8],
        user: UserId,
        hash: &str,
        end: EndSessions,
    ) -> StoreResult<Option<Vec<Uuid>>>;
    /// Applies the patch; `None` when there is no such user. [`Conflict`]s as in
    /// [`insert_user`](Self::insert_user) and [`UserPatch::keep_an_admin`]. With the user,
    /// the sessions the change ended ([`UserPatch::end_sessions`]).
    async fn update_user(
        &self,
        id: UserId,
        patch: &UserPatch,
    ) -> StoreResult<Option<(User, Vec<Uuid>)>>;
    /// Records a successful login at `at`.
    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Users matching the query, newest first.
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
    /// Active tier-4 accounts.
    async fn count_active_admins(&self) -> StoreResult<i64>;
    /// The account created from `ADMIN_EMAIL`, if any.
    async fn bootstrap_user(&self) -> StoreResult<Option<User>>;
}

/// Refresh sessions: create, rotate, list and revoke them.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts a new session.
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    /// Inserts a sign-in's session only if its account is still active with the tier and
    /// password hash the sign-in saw ([`SignInGuard`]), in one statement; `false` (and no
    /// session) if the account changed meanwhile.
    async fn insert_signed_in_session(
        &self,
        session: &Session,
        guard: &SignInGuard,
    ) -> StoreResult<bool>;
    /// The session with this id, live or not (read through the writer: the latest
    /// generation).
    async fn session(&self, id: Uuid) -> StoreResult<Option<Session>>;
    /// The session and its user, read together (the refresh path), and whether it is an
    /// OAuth authorization (whose refresh token only its client may use).
    async fn session_with_user(&self, id: Uuid) -> StoreResult<Option<(Session, User, bool)>>;
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
    /// Records a use of the session at `now`.
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
    /// Sessions neither revoked nor expired at `now`, of every user.
    async fn count_live_sessions(&self, now: DateTime<Utc>) -> StoreResult<i64>;
    /// When the session last proved a password or passkey (its creation, a login, unless
    /// marked since); `None` when there is no such session.
    async fn session_authenticated_at(&self, id: Uuid) -> StoreResult<Option<DateTime<Utc>>>;
    /// How the session's sign-in proved the user (RFC 8176 `amr` values); `None` for a
    /// session from before this was recorded, or none at all.
    async fn session_amr(&self, id: Uuid) -> StoreResult<Option<Vec<String>>>;
    /// Records that the session proved a password or passkey again at `at`.
    async fn mark_session_authenticated(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()>;
}

/// The most rows [`RevocationStore::revocations_since`] answers at once.
pub const REVOCATION_PAGE: usize = 10_000;

/// Revocation records, the durable half of the revocation list.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records the revocation of one access token, valid until `until`.
    async fn revoke_jti(&self, jti: Uuid, until: DateTime<Utc>) -> StoreResult<()>;
    /// Records a `sid` revocation with no session row behind it (the tokens exchanged
    /// from an API key carry the key's id as their `sid`), valid until `until`.
    async fn revoke_sid(&self, sid: Uuid, until: DateTime<Utc>) -> StoreResult<()>;
    /// Unexpired revocations with a sequence number above `seq`, in order. At most 10,000
    /// rows ([`REVOCATION_PAGE`]): call again from the last `seq` for more.
    async fn revocations_since(
        &self,
        seq: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>>;
    /// Unexpired revocations whose sequence number lies in one of the inclusive `ranges`
    /// (numbers skipped earlier, whose transactions may have committed since), in order.
    async fn revocations_in(
        &self,
        ranges: &[(i64, i64)],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>>;
}

/// Token signing keys and named secrets.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored signing key, oldest first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// Inserts or updates these keys in one transaction.
    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()>;
    /// The named secret, created from `fresh` if absent (first writer wins).
    async fn secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>>;
    /// The named secret, if one is stored.
    async fn find_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores `value` as the named secret, replacing any stored one.
    async fn put_secret(&self, name: &str, value: &[u8]) -> StoreResult<()>;
}

/// Login-attempt counters (see `domain::lockout`).
#[async_trait]
pub trait LockoutStore: Send + Sync {
    /// Reserves an attempt against `key` before its password is evaluated, atomically: an
    /// expired window or lock starts over; a live lock, or as many attempts in flight as
    /// failures are still allowed, refuses the reservation.
    async fn reserve_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<AttemptSlot>;
    /// What [`LockoutStore::reserve_attempt`] would answer at `now`, read without writing:
    /// `Allowed` only says a slot looks free (reserve to take it). Waiting logins poll
    /// this, so a queue of them adds no writes to the single writer.
    async fn peek_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<AttemptSlot>;
    /// Ends a reservation as a failure with `identifier` (lower-cased), which is noted
    /// for [`LockoutStore::failed_with`]. Returns the lock's end when this failure reached
    /// the threshold and locked `key` until `now + policy.duration`.
    async fn fail_attempt(
        &self,
        key: &str,
        identifier: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<DateTime<Utc>>>;
    /// Whether `identifier` was used in one of the failures `key` counts now (its window
    /// or its lock).
    async fn failed_with(&self, key: &str, identifier: &str) -> StoreResult<bool>;
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
}

/// Security events.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records an event.
    async fn insert_event(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Events matching the query, newest first.
    async fn list_events(&self, query: &AuditQuery, page: Page) -> StoreResult<Vec<AuditEvent>>;
}

/// API keys (never their secrets).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Inserts a new key.
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
}

/// Single-use mail tokens (address verification, password reset).
#[async_trait]
pub trait MailTokenStore: Send + Sync {
    /// Records a token (by its hash) for `user`, live until `expires_at`.
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
}

/// TOTP state and recovery codes.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The user's TOTP state (the default when there is no such user).
    async fn mfa_state(&self, user: UserId) -> StoreResult<MfaState>;
    /// Stores a secret from `setup`, waiting for `enable`.
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
    /// Turns TOTP off and deletes the secrets and recovery codes, in one transaction.
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
}

/// `Idempotency-Key` records.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
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
}

/// Passkeys and the state of WebAuthn ceremonies between start and finish.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Keeps a ceremony's state until `expires_at`, under a fresh random `id`.
    async fn insert_challenge(
        &self,
        id: Uuid,
        kind: ChallengeKind,
        user: Option<UserId>,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Takes a ceremony's state, atomically (`DELETE … RETURNING`): of two concurrent
    /// takers one gets it. `None` if unknown, of another kind, used or expired at `now`.
    async fn take_challenge(
        &self,
        id: Uuid,
        kind: ChallengeKind,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Challenge>>;
    /// Inserts a passkey unless its credential id exists (to anyone) or its user has
    /// `max_per_user` already, in one transaction holding the user's row.
    async fn insert_passkey(
        &self,
        passkey: &PasskeyRecord,
        max_per_user: i64,
    ) -> StoreResult<PasskeyInsert>;
    /// The user's passkeys, newest first.
    async fn list_passkeys(&self, user: UserId, page: Page) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey with this credential id, whoever owns it.
    async fn passkey_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>>;
    /// Renames the user's passkey; `None` if there is no such passkey of theirs.
    async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: &str,
    ) -> StoreResult<Option<PasskeyRecord>>;
    /// Removes the user's passkey unless it is the last one of an account without a usable
    /// password (a PHC string), in one transaction holding the user's row.
    async fn remove_passkey(&self, user: UserId, id: Uuid) -> StoreResult<PasskeyRemoval>;
    /// Records a sign-in with the passkey: the new counter and credential, `last_used_at`,
    /// as a compare-and-set: only if the stored counter is below `counter` (or both are 0,
    /// an authenticator without a counter). `false`: the counter did not increase.
    async fn use_passkey(
        &self,
        credential_id: &[u8],
        counter: i64,
        credential: &str,
        backed_up: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
