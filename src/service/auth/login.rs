//! Login: the attempt is reserved against the lockout counter before the password is
//! evaluated, then settled by exactly one verdict; a successful login starts a session.

use super::super::Audit;
use super::super::{Error, RequestContext, Result, Service};
use super::SignInMethod;
use crate::domain::lockout::{counter_key, AttemptSlot, LockoutPolicy};
use crate::domain::session::refresh_expiry;
use crate::domain::AuditKind;
use crate::domain::{Session, User, UserId};
use crate::store::{DynStore, SignInGuard, StoreResult};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;
use uuid::Uuid;

#[derive(Debug)]
pub struct LoginInput {
    /// A username or an email.
    pub identifier: String,
    pub password: SecretString,
    pub remember_me: bool,
    /// A TOTP code, for accounts with TOTP on.
    pub totp_code: Option<String>,
    /// A single-use recovery code, instead of a TOTP code.
    pub recovery_code: Option<String>,
}

/// Tokens handed out by login and refresh. No `Debug`: it holds both tokens.
#[derive(Clone)]
pub struct Issued {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub session_id: Uuid,
    /// Whether the session was started with `remember_me` (its refresh cookie outlives
    /// the browser session).
    pub remember_me: bool,
    pub user: User,
}

/// A reserved login attempt (`domain::lockout`). Exactly one verdict ends it: [`fail`]
/// (counted, and it may lock), [`succeed`] (the count starts over) or [`release`] (not an
/// attempt after all). A login that ends without one, by an error or because the client
/// hung up and the request was dropped, releases it on drop, so it never holds a slot.
///
/// [`fail`]: Reservation::fail
/// [`succeed`]: Reservation::succeed
/// [`release`]: Reservation::release
struct Reservation {
    store: DynStore,
    key: String,
    /// The identifier as lower-cased, noted with a failure (`LockoutStore::failed_with`).
    identifier: String,
    /// A verdict is being recorded. Set before the statement runs (each verdict settles
    /// first, then returns the statement to await): should the request be dropped
    /// mid-statement, a second release would free another attempt's slot, while a lost
    /// one only holds a slot until it expires.
    settled: bool,
}

impl Reservation {
    /// Ends the reservation's watch over its slot, handing back what a verdict needs.
    fn settle(mut self) -> (DynStore, String) {
        self.settled = true;
        (self.store.clone(), std::mem::take(&mut self.key))
    }

    /// A failure: counted; `Some(until)` when it reached the threshold and locked.
    fn fail(
        mut self,
        policy: LockoutPolicy,
    ) -> impl Future<Output = StoreResult<Option<DateTime<Utc>>>> {
        let identifier = std::mem::take(&mut self.identifier);
        let (store, key) = self.settle();
        async move {
            store
                .fail_attempt(&key, &identifier, Utc::now(), &policy)
                .await
        }
    }

    /// The password was right: the count starts over.
    fn succeed(self, now: DateTime<Utc>) -> impl Future<Output = StoreResult<()>> {
        let (store, key) = self.settle();
        async move { store.succeed_attempt(&key, now).await }
    }

    /// Not an attempt after all (the second factor is asked for): the slot is freed.
    fn release(self) -> impl Future<Output = StoreResult<()>> {
        let (store, key) = self.settle();
        async move { store.release_attempt(&key).await }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release_attempt(&key).await {
                    tracing::warn!(error = %e, "could not release a login attempt");
                }
            });
        }
    }
}

impl Service {
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn login(&self, input: LoginInput, ctx: &RequestContext) -> Result<Issued> {
        let ident = input.identifier.trim();
        let mut details = BTreeMap::new();
        if ident.is_empty() {
            details.insert("username".into(), "username or email is required".into());
        }
        if input.password.expose_secret().is_empty() {
            details.insert("password".into(), "password is required".into());
        }
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let user = self.store.user_by_login(ident).await?;
        if let Some(u) = &user {
            tracing::Span::current().record("user_id", tracing::field::display(u.id));
        }
        let user_key = user.as_ref().map(|u| u.id.to_string());
        let key = counter_key(self.lockout_scope(), user_key.as_deref(), ident, ctx.ip);
        let policy = self.lockout_policy();
        let lowered = ident.to_lowercase();
        // The attempt is reserved before the password is evaluated, so however many
        // guesses arrive at once, no more reach the hash than failures are still allowed.
        // One beyond that waits for an attempt in flight to end (`domain::lockout`).
        // The wait reads (`peek_attempt`) and writes again only when a slot looks free, so
        // a queue of waiting logins adds no writes to the store's single writer.
        let waiting = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        let now = loop {
            let now = Utc::now();
            match self.store.reserve_attempt(&key, now, &policy).await? {
                AttemptSlot::Allowed => break now,
                AttemptSlot::Locked { until } => {
                    return Err(self.locked(&key, &lowered, &user, until, input, ctx).await)
                }
                AttemptSlot::Busy => loop {
                    if waiting.elapsed() >= std::time::Duration::from_secs(10) {
                        self.metrics.login("rate_limited");
                        return Err(Error::RateLimited { retry_after: 1 });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                    match self.store.peek_attempt(&key, Utc::now(), &policy).await? {
                        AttemptSlot::Busy => continue,
                        AttemptSlot::Locked { until } => {
                            return Err(self.locked(&key, &lowered, &user, until, input, ctx).await)
                        }
                        AttemptSlot::Allowed => break,
                    }
                },
            }
        };
        let attempt = Reservation {
            store: self.store.clone(),
            key,
            identifier: lowered,
            settled: false,
        };
        let result = self.finish_login(input, user, attempt, now, ctx).await;
        self.metrics.login(match &result {
            Ok(_) => "succeeded",
            Err(e) => e.code(),
        });
        result
    }

    /// The answer to an attempt on a locked counter; no password is evaluated. 423 only
    /// for an identifier that took part in the failures; another identifier of the account
    /// gets what a wrong password gets (401, after the same hashing time, not counted), so
    /// nothing links two identifiers of one account (API.md, Login rules).
    async fn locked(
        &self,
        key: &str,
        identifier: &str,
        user: &Option<User>,
        until: DateTime<Utc>,
        input: LoginInput,
        ctx: &RequestContext,
    ) -> Error {
        let linked = match self.store.failed_with(key, identifier).await {
            Ok(linked) => linked,
            Err(e) => return e.into(),
        };
        if user.is_none() || linked {
            return self.refused_locked(user, until, ctx).await;
        }
        if let Err(e) = self.hasher.verify(&input.password, None).await {
            return e.into();
        }
        self.audit(
            Audit::new(AuditKind::LoginFailed)
                .user(user.as_ref().map(|u| u.id))
                .ctx(ctx)
                .details(json!({"reason": "account_locked", "identifier_answered": "invalid_credentials"})),
        )
        .await;
        self.metrics.login("invalid_credentials");
        Error::InvalidCredentials
    }

    /// The answer to an attempt on a locked counter: no password is evaluated.
    async fn refused_locked(
        &self,
        user: &Option<User>,
        until: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Error {
        let uid = user.as_ref().map(|u| u.id);
        self.audit(
            Audit::new(AuditKind::LoginFailed)
                .user(uid)
                .ctx(ctx)
                .details(json!({"reason": "account_locked"})),
        )
        .await;
        self.metrics.login("account_locked");
        Error::AccountLocked {
            locked_until: until,
        }
    }

    async fn finish_login(
        &self,
        input: LoginInput,
        user: Option<User>,
        attempt: Reservation,
        now: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let stored = match &user {
            Some(u) => self.store.password_hash(u.id).await?,
            None => None,
        };
        let verified = self
            .hasher
            .verify(&input.password, stored.as_deref())
            .await?;
        let uid = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|_| verified.ok) else {
            self.login_failed(attempt, uid, "invalid_credentials", ctx)
                .await?;
            return Err(Error::InvalidCredentials);
        };
        if let Err(refusal) = self.admit(&user, SignInMethod::Password, ctx).await {
            // The password was right: not a failure.
            attempt.succeed(now).await?;
            return Err(refusal);
        }
        if user.mfa_enabled {
            let totp = input.totp_code.as_deref().filter(|c| !c.trim().is_empty());
            let recovery = input
                .recovery_code
                .as_deref()
                .filter(|c| !c.trim().is_empty());
            if totp.is_none() && recovery.is_none() {
                // Asking for the second factor is not a failure.
                attempt.release().await?;
                return Err(Error::MfaRequired);
            }
            if !self.second_factor_ok(&user, totp, recovery).await? {
                self.login_failed(attempt, Some(user.id), "invalid_mfa_code", ctx)
                    .await?;
                return Err(Error::InvalidMfaCode { at_login: true });
            }
        }
        // Password (and second factor) right: the count starts over.
        attempt.succeed(now).await?;
        // The hash this password was checked against: the session is created only if it is
        // still the account's (a reset meanwhile wins).
        let mut checked = stored.unwrap_or_default();
        if verified.needs_rehash {
            match self.hasher.hash(&input.password).await {
                Ok(h) => {
                    if self.store.rehash_password(user.id, &checked, &h).await? {
                        checked = h;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "rehash failed"),
            }
        }
        let issued = self
            .sign_in(
                user,
                input.remember_me,
                Some(checked),
                SignInMethod::Password,
                ctx,
            )
            .await?;
        Ok(issued)
    }

    /// Records a failed attempt: the count, the audit event, and the lock when this failure
    /// reached the threshold.
    async fn login_failed(
        &self,
        attempt: Reservation,
        user: Option<UserId>,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let failed = attempt.fail(self.lockout_policy());
        self.audit(
            Audit::new(AuditKind::LoginFailed)
                .user(user)
                .ctx(ctx)
                .details(json!({"reason": reason})),
        )
        .await;
        if let Some(until) = failed.await? {
            self.metrics.lockouts.inc();
            self.audit(
                Audit::new(AuditKind::AccountLocked)
                    .user(user)
                    .ctx(ctx)
                    .details(json!({"locked_until": until})),
            )
            .await;
        }
        Ok(())
    }

    pub(super) fn refresh_lifetime(&self, remember_me: bool) -> Duration {
        if remember_me {
            self.config.remember_me_ttl
        } else {
            self.config.refresh_ttl
        }
    }

    /// The session of a sign-in, if the account still matches `guard`; `None` if it
    /// changed meanwhile (see `sign_in`).
    pub(super) async fn start_session(
        &self,
        user: &User,
        guard: &SignInGuard,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<Option<Issued>> {
        let now = Utc::now();
        let absolute = now + self.config.session_max_age;
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user.id,
            generation: 0,
            remember_me,
            created_at: now,
            last_used_at: now,
            rotated_at: None,
            refresh_expires_at: refresh_expiry(now, self.refresh_lifetime(remember_me), absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
            ip: Some(ctx.ip.to_string()),
            user_agent: ctx.user_agent.clone(),
        };
        if !self.store.insert_signed_in_session(&session, guard).await? {
            return Ok(None);
        }
        self.store.record_login(user.id, now).await?;
        self.user_cache.forget(user.id);
        let mut user = user.clone();
        user.last_login_at = Some(now);
        self.issue(user, &session, now).map(Some)
    }

    pub(super) fn issue(
        &self,
        user: User,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<Issued> {
        let exp = now + self.config.access_ttl;
        let (access_token, _) = self
            .tokens
            .sign(user.id.0, session.id, user.tier, now, exp)?;
        Ok(Issued {
            access_token,
            access_expires_at: DateTime::from_timestamp(exp.timestamp(), 0).unwrap_or(exp),
            expires_in: exp.timestamp() - now.timestamp(),
            refresh_token: self.refresh.issue(session.id, session.generation),
            refresh_expires_at: session.refresh_expires_at,
            session_id: session.id,
            remember_me: session.remember_me,
            user,
        })
    }
}
