//! The account's own use cases: creating one (registration, admin, CLI), the profile,
//! the password, the security events.

use super::super::Audit;
use super::super::{Caller, Error, PageRequest, Paged, RequestContext, Result, Service};
use crate::domain::password::{self, PolicyInput};
use crate::domain::AuditKind;
use crate::domain::{Email, FieldError, FullName, Tier, User, UserId, Username};
use crate::store::{AuditEvent, AuditQuery, NewUser, StoreError, UserPatch};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeMap;

/// A registration or admin-created account, as received.
#[derive(Debug)]
pub struct NewAccount {
    pub email: String,
    pub password: SecretString,
    pub username: Option<String>,
    pub full_name: Option<String>,
}

/// The parsed value, or `None` with its field's message added to `details`.
fn push_field_error<T>(
    r: std::result::Result<T, FieldError>,
    details: &mut BTreeMap<String, String>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            details.insert(e.field.to_string(), e.message);
            None
        }
    }
}

impl Service {
    fn check_policy(
        &self,
        password: &SecretString,
        email: &Email,
        username: &Username,
    ) -> Result<()> {
        password::check(
            password.expose_secret(),
            &PolicyInput {
                email_local_part: Some(email.local_part()),
                username: Some(username.as_str()),
            },
        )
        .map_err(|e| Error::WeakPassword {
            details: e.details("password"),
        })
    }

    /// Creates an account (registration, admin creation, the CLI). The password policy
    /// applies unless `check_policy` is false (the bootstrap admin).
    #[tracing::instrument(skip_all)]
    pub async fn create_account(
        &self,
        input: NewAccount,
        tier: Tier,
        is_verified: bool,
        is_bootstrap: bool,
        check_policy: bool,
    ) -> Result<User> {
        let mut details = BTreeMap::new();
        let email = push_field_error(Email::parse(&input.email), &mut details);
        let username = match &input.username {
            Some(u) => push_field_error(Username::parse(u), &mut details),
            None => None,
        };
        let full_name = match &input.full_name {
            Some(f) => push_field_error(FullName::parse(f), &mut details),
            None => None,
        };
        if input.password.expose_secret().is_empty() {
            details.insert("password".into(), "password is required".into());
        }
        let Some(email) = email else {
            return Err(Error::fields(details));
        };
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let explicit = username.is_some();
        let base = username.unwrap_or_else(|| Username::derive_from(&email));
        if check_policy {
            self.check_policy(&input.password, &email, &base)?;
        }
        let hash = self.hasher.hash(&input.password).await?;
        let mut candidate = base.clone();
        let mut n = 0u32;
        loop {
            if !explicit && self.store.username_taken(&candidate).await? {
                n += 1;
                candidate = base.with_suffix(n);
                continue;
            }
            let new = NewUser {
                id: UserId::new(),
                email: email.clone(),
                username: candidate.clone(),
                full_name: full_name.clone().filter(|f| !f.as_str().is_empty()),
                password_hash: hash.clone(),
                tier,
                is_verified,
                is_bootstrap,
                created_at: Utc::now(),
            };
            match self.store.insert_user(&new).await {
                Ok(user) => return Ok(user),
                // A derived username taken between the check and the insert: next number.
                Err(StoreError::Conflict(crate::store::Conflict::Username)) if !explicit => {
                    n += 1;
                    candidate = base.with_suffix(n);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn register(&self, input: NewAccount, ctx: &RequestContext) -> Result<(User, bool)> {
        if !self.config.registration_open {
            return Err(Error::RegistrationClosed);
        }
        let user = self
            .create_account(input, self.config.default_tier, false, false, true)
            .await?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        self.audit(
            Audit::new(AuditKind::UserRegistered)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx),
        )
        .await;
        // A verification mail goes out at every registration; a failure to queue it does
        // not undo the registration (the user can ask for another).
        if let Err(e) = self.send_verification(&user).await {
            tracing::error!(error = %e, "could not issue a verification mail");
        }
        Ok((user, self.config.require_email_verification))
    }

    /// The caller's user object. Not instrumented: it is the hot path of `/auth/me`.
    pub async fn me(&self, caller: &Caller) -> Result<User> {
        let user = self
            .cached_user(caller.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        if !user.is_active {
            return Err(Error::AccountDisabled);
        }
        Ok(user)
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn update_me(
        &self,
        caller: &Caller,
        username: Option<String>,
        full_name: Option<Option<String>>,
        ctx: &RequestContext,
    ) -> Result<User> {
        caller.require_session()?;
        let mut details = BTreeMap::new();
        let username = username.and_then(|u| push_field_error(Username::parse(&u), &mut details));
        let full_name = match full_name {
            Some(Some(f)) => push_field_error(FullName::parse(&f), &mut details)
                .map(|f| Some(f).filter(|f| !f.as_str().is_empty())),
            Some(None) => Some(None),
            None => None,
        };
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let changed: Vec<&str> = [
            username.as_ref().map(|_| "username"),
            full_name.as_ref().map(|_| "full_name"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let patch = UserPatch {
            username,
            full_name,
            ..Default::default()
        };
        let user = self
            .store
            .update_user(caller.user_id, &patch)
            .await?
            .map(|(user, _)| user)
            .ok_or(Error::InvalidToken)?;
        self.user_cache.forget(user.id);
        if !changed.is_empty() {
            self.audit(
                Audit::new(AuditKind::UserUpdated)
                    .user(user.id)
                    .actor(user.id)
                    .ctx(ctx)
                    .details(json!({"fields": changed})),
            )
            .await;
        }
        Ok(user)
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: SecretString,
        new: SecretString,
        ctx: &RequestContext,
    ) -> Result<()> {
        let (sid, _, _) = caller.require_session()?;
        let mut details = BTreeMap::new();
        if current.expose_secret().is_empty() {
            details.insert(
                "current_password".into(),
                "current_password is required".into(),
            );
        }
        if new.expose_secret().is_empty() {
            details.insert("new_password".into(), "new_password is required".into());
        }
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let user = self.me(caller).await?;
        let stored = self.store.password_hash(user.id).await?;
        if !self.hasher.verify(&current, stored.as_deref()).await?.ok {
            return Err(Error::InvalidPassword);
        }
        self.check_policy(&new, &user.email, &user.username)
            .map_err(|e| match e {
                Error::WeakPassword { details } => Error::WeakPassword {
                    details: details
                        .into_values()
                        .map(|v| ("new_password".to_string(), v))
                        .collect(),
                },
                other => other,
            })?;
        let hash = self.hasher.hash(&new).await?;
        // The new hash and the end of every other session, in one transaction.
        let end = self.end_sessions(Some(sid));
        let ended = self
            .store
            .set_password_hash(user.id, &hash, Some(end))
            .await?;
        self.sessions_ended(&ended, end.until).await;
        self.audit(
            Audit::new(AuditKind::PasswordChanged)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx),
        )
        .await;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn own_events(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Paged<AuditEvent>> {
        let q = AuditQuery {
            user_id: Some(caller.user_id),
            ..Default::default()
        };
        let rows = self.store.list_events(&q, page.store_page()).await?;
        Ok(page.finish(rows, |e| e.id))
    }
}
