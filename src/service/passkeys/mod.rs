//! Passkeys as use cases (API.md, "Passkeys (WebAuthn)"): registering one to the signed-in
//! account, listing, renaming and removing them, and signing in with one.
//!
//! The WebAuthn checks themselves are `service::webauthn`'s; this module owns what it
//! cannot: each ceremony's state in `webauthn_challenges` (kept at start, taken atomically
//! before finishing, so a challenge is single-use on every instance), the per-account
//! limit, names, the last-credential rule, the counter's compare-and-set, events and
//! metrics. A sign-in ends in the same path as a password login (`auth::signin`): the
//! same account rules, the same session and login body. Wrong assertions never touch the
//! password lockout: a passkey cannot be guessed, and a victim's passkey sign-in must not
//! be blockable by someone guessing their password.

use super::auth::{Issued, SignInMethod};
use super::webauthn::{
    Assertion, CredentialId, PasskeyCredential, PasskeyError, PasskeyUser, Passkeys,
    RegistrationState, StoredPasskey, CEREMONY_TIMEOUT,
};
use super::{Audit, Caller, Error, PageRequest, Paged, RequestContext, Result, Service};
use crate::config::Config;
use crate::domain::{AuditKind, UserId};
use crate::store::{ChallengeKind, PasskeyInsert, PasskeyRecord, PasskeyRemoval};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

/// At most this many passkeys per account (`passkey_limit`).
pub const MAX_PER_ACCOUNT: i64 = 10;
/// A passkey's name: 1 to this many characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Adding a passkey needs a session that proved a password or passkey this recently.
pub const RECENT_AUTH_MINUTES: i64 = 10;

/// A started ceremony: what the browser needs (`{challenge_id, options}`).
#[derive(Debug, Clone)]
pub struct Started {
    pub challenge_id: Uuid,
    /// `{"publicKey": {...}}` in the W3C JSON form.
    pub options: serde_json::Value,
}

/// A passkey as its owner sees it (never the key or the credential id).
#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

impl From<&PasskeyRecord> for PasskeyView {
    fn from(p: &PasskeyRecord) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            backup_eligible: p.backup_eligible,
            backed_up: p.backed_up,
        }
    }
}

/// The relying party of this configuration. An RP ID that does not fit the allowed
/// origins stops the start (the configuration check says so first); an IP-address RP ID,
/// which the configuration accepts but browsers refuse, turns passkeys off with a warning.
pub fn relying_party(config: &Config) -> anyhow::Result<Option<Passkeys>> {
    let origins: Vec<&str> = config.allowed_origins.iter().map(|o| o.as_str()).collect();
    match Passkeys::new(
        &config.webauthn_rp_id,
        &config.webauthn_rp_name,
        &origins[..],
    ) {
        Ok(p) => Ok(Some(p)),
        Err(e @ super::webauthn::ConfigError::RpIdIsIpAddress { .. }) => {
            tracing::warn!(error = %e, "passkeys are disabled");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// A stored passkey in the WebAuthn core's terms.
fn stored(record: &PasskeyRecord) -> Result<StoredPasskey> {
    Ok(StoredPasskey {
        user_id: record.user_id.0,
        credential: PasskeyCredential::from_json(&record.credential)
            .map_err(|e| Error::Internal(e.to_string()))?,
    })
}

/// A refusal of the core as the service's error (its code is the contract's).
fn refused(e: PasskeyError) -> Error {
    match e {
        PasskeyError::Malformed(m) => Error::field("credential", m),
        PasskeyError::AlreadyRegistered => Error::PasskeyExists,
        PasskeyError::Internal(m) => Error::Internal(m),
        PasskeyError::UnknownCredential
        | PasskeyError::CounterRegression { .. }
        | PasskeyError::Refused(_) => Error::InvalidPasskey,
    }
}

/// A passkey name: trimmed, 1–64 characters.
fn parse_name(name: Option<&str>) -> Result<String> {
    let name = name.map(str::trim).unwrap_or_default();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(Error::field("name", "name is required"));
    }
    if chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::field(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name.to_string())
}

/// A `challenge_id` as sent: missing is a validation error; anything that is not one of
/// ours is an unknown challenge.
fn parse_challenge(id: Option<&str>) -> Result<Uuid> {
    let id = id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::field("challenge_id", "challenge_id is required"))?;
    Uuid::parse_str(id).map_err(|_| Error::PasskeyChallengeExpired)
}

impl Service {
    fn relying_party(&self) -> Result<&Passkeys> {
        self.webauthn
            .as_ref()
            .ok_or(Error::NotFound("passkeys (not available on this server)"))
    }

    async fn keep_challenge(
        &self,
        kind: ChallengeKind,
        user: Option<UserId>,
        state: &str,
    ) -> Result<Uuid> {
        let id = Uuid::new_v4();
        let expires_at =
            Utc::now() + Duration::from_std(CEREMONY_TIMEOUT).expect("the ceremony timeout fits");
        self.store
            .insert_challenge(id, kind, user, state, expires_at)
            .await?;
        Ok(id)
    }

    fn count_ceremony(&self, ceremony: &str, outcome: &Result<impl Sized>) {
        let outcome = match outcome {
            Ok(_) => "succeeded",
            Err(e) => e.code(),
        };
        self.metrics
            .passkeys
            .with_label_values(&[ceremony, outcome])
            .inc();
    }

    async fn credential_ids(&self, user: UserId) -> Result<Vec<CredentialId>> {
        let page = crate::store::Page {
            after: None,
            limit: MAX_PER_ACCOUNT as u32 * 2,
        };
        Ok(self
            .store
            .list_passkeys(user, page)
            .await?
            .into_iter()
            .map(|p| CredentialId::from_bytes(p.credential_id))
            .collect())
    }

    /// Starts adding a passkey to the caller's account (a session that proved itself in
    /// the last 10 min). `excludeCredentials` lists the account's passkeys.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn start_passkey_registration(&self, caller: &Caller) -> Result<Started> {
        let rp = self.relying_party()?;
        self.require_recent_auth(caller, Duration::minutes(RECENT_AUTH_MINUTES))
            .await?;
        let user = self.user(caller.user_id).await?;
        let existing = self.credential_ids(user.id).await?;
        if existing.len() as i64 >= MAX_PER_ACCOUNT {
            return Err(Error::PasskeyLimit {
                max: MAX_PER_ACCOUNT,
            });
        }
        let display = user
            .full_name
            .as_ref()
            .map(|n| n.as_str().to_string())
            .unwrap_or_else(|| user.username.as_str().to_string());
        let (options, state) = rp
            .start_registration(
                &PasskeyUser {
                    id: user.id.0,
                    name: user.email.as_str(),
                    display_name: &display,
                },
                &existing,
            )
            .map_err(refused)?;
        let challenge_id = self
            .keep_challenge(ChallengeKind::Register, Some(user.id), &state.to_json())
            .await?;
        Ok(Started {
            challenge_id,
            options,
        })
    }

    /// Finishes adding a passkey: the challenge is taken (single use), the response
    /// verified, the passkey stored under the limit and the unique credential id.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        challenge_id: Option<&str>,
        name: Option<&str>,
        credential: Option<&serde_json::Value>,
        ctx: &RequestContext,
    ) -> Result<PasskeyView> {
        let result = self
            .register_passkey(caller, challenge_id, name, credential, ctx)
            .await;
        self.count_ceremony("register", &result);
        result
    }

    async fn register_passkey(
        &self,
        caller: &Caller,
        challenge_id: Option<&str>,
        name: Option<&str>,
        credential: Option<&serde_json::Value>,
        ctx: &RequestContext,
    ) -> Result<PasskeyView> {
        let rp = self.relying_party()?;
        caller.require_session()?;
        // The request is checked before the challenge is spent, so a typo can be retried.
        let challenge_id = parse_challenge(challenge_id)?;
        let name = parse_name(name)?;
        let credential = credential
            .filter(|c| !c.is_null())
            .ok_or_else(|| Error::field("credential", "credential is required"))?;
        self.require_recent_auth(caller, Duration::minutes(RECENT_AUTH_MINUTES))
            .await?;
        let now = Utc::now();
        let challenge = self
            .store
            .take_challenge(challenge_id, ChallengeKind::Register, now)
            .await?
            .filter(|c| c.user_id == Some(caller.user_id))
            .ok_or(Error::PasskeyChallengeExpired)?;
        let state = RegistrationState::from_json(&challenge.state)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let new = rp.finish_registration(&state, credential).map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            refused(e)
        })?;
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            user_id: caller.user_id,
            credential_id: new.credential_id.as_bytes().to_vec(),
            name,
            credential: new.credential.to_json(),
            counter: i64::from(new.counter),
            created_at: now,
            last_used_at: None,
            backup_eligible: new.backup_eligible,
            backed_up: new.backed_up,
        };
        match self.store.insert_passkey(&record, MAX_PER_ACCOUNT).await? {
            PasskeyInsert::Inserted => {}
            PasskeyInsert::Exists => return Err(Error::PasskeyExists),
            PasskeyInsert::Limit => {
                return Err(Error::PasskeyLimit {
                    max: MAX_PER_ACCOUNT,
                })
            }
        }
        self.audit(
            Audit::new(AuditKind::PasskeyAdded)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"passkey_id": record.id, "name": record.name})),
        )
        .await;
        Ok(PasskeyView::from(&record))
    }

    /// The caller's passkeys, newest first.
    pub async fn list_passkeys(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Paged<PasskeyView>> {
        caller.require_session()?;
        let rows = self
            .store
            .list_passkeys(caller.user_id, page.store_page())
            .await?;
        let paged = page.finish(rows, |p| p.id);
        Ok(Paged {
            items: paged.items.iter().map(PasskeyView::from).collect(),
            next_cursor: paged.next_cursor,
        })
    }

    /// Renames one of the caller's passkeys (404 for anyone else's).
    pub async fn rename_passkey(
        &self,
        caller: &Caller,
        id: Uuid,
        name: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<PasskeyView> {
        caller.require_session()?;
        let name = parse_name(name)?;
        let record = self
            .store
            .rename_passkey(caller.user_id, id, &name)
            .await?
            .ok_or(Error::NotFound("passkey"))?;
        self.audit(
            Audit::new(AuditKind::PasskeyRenamed)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"passkey_id": id, "name": name})),
        )
        .await;
        Ok(PasskeyView::from(&record))
    }

    /// Removes one of the caller's passkeys, unless it is the last way into an account
    /// without a usable password (`last_credential`).
    pub async fn remove_passkey(
        &self,
        caller: &Caller,
        id: Uuid,
        ctx: &RequestContext,
    ) -> Result<()> {
        caller.require_session()?;
        match self.store.remove_passkey(caller.user_id, id).await? {
            PasskeyRemoval::Removed => {}
            PasskeyRemoval::NotFound => return Err(Error::NotFound("passkey")),
            PasskeyRemoval::LastCredential => return Err(Error::LastCredential),
        }
        self.audit(
            Audit::new(AuditKind::PasskeyRemoved)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"passkey_id": id})),
        )
        .await;
        Ok(())
    }

    /// Stand-in credential ids for `ident`, the same at every call and never none (a real
    /// account's list never is: an empty one would mark the account as unknown). The
    /// generator may draw none for an input; then the next derived input is tried.
    fn decoy_credential_ids(&self, ident: &str) -> Result<Vec<CredentialId>> {
        let ident = ident.to_lowercase();
        for round in 0..16u8 {
            let input = match round {
                0 => ident.clone(),
                n => format!("{ident}\u{0}{n}"),
            };
            let ids =
                Passkeys::fake_credential_ids(&self.passkey_decoy_key, &input).map_err(refused)?;
            if !ids.is_empty() {
                return Ok(ids);
            }
        }
        // Not reached in practice; one HMAC-derived id keeps the shape all the same.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.passkey_decoy_key);
        let tag = ring::hmac::sign(&key, ident.as_bytes());
        Ok(vec![CredentialId::from_bytes(tag.as_ref())])
    }

    /// Starts a passkey sign-in. With `username` (a username or an email) its passkeys
    /// are listed, or, for an unknown account or one without passkeys, stand-ins that are
    /// the same at every call, so the answer does not tell which accounts exist. Without
    /// it, a discoverable-credential request.
    pub async fn start_passkey_login(&self, username: Option<&str>) -> Result<Started> {
        let rp = self.relying_party()?;
        let ident = username.map(str::trim).filter(|s| !s.is_empty());
        let allowed = match ident {
            None => None,
            Some(ident) => {
                let ids = match self.store.user_by_login(ident).await? {
                    Some(user) => self.credential_ids(user.id).await?,
                    None => Vec::new(),
                };
                Some(if ids.is_empty() {
                    self.decoy_credential_ids(ident)?
                } else {
                    ids
                })
            }
        };
        let (options, state) = rp
            .start_authentication(allowed.as_deref())
            .map_err(refused)?;
        let challenge_id = self
            .keep_challenge(ChallengeKind::Login, None, &state.to_json())
            .await?;
        Ok(Started {
            challenge_id,
            options,
        })
    }

    /// Finishes a passkey sign-in: the challenge is taken (single use), the assertion
    /// verified against the stored passkey, the counter moved forward by compare-and-set,
    /// then the shared sign-in (account rules, session, `login.succeeded` with
    /// `method: passkey`). User verification was required, so no TOTP step follows.
    #[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
    pub async fn finish_passkey_login(
        &self,
        challenge_id: Option<&str>,
        credential: Option<&serde_json::Value>,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let result = self
            .passkey_login(challenge_id, credential, remember_me, ctx)
            .await;
        self.count_ceremony("login", &result);
        self.metrics.login(match &result {
            Ok(_) => "succeeded",
            Err(e) => e.code(),
        });
        result
    }

    async fn passkey_login(
        &self,
        challenge_id: Option<&str>,
        credential: Option<&serde_json::Value>,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let rp = self.relying_party()?;
        let challenge_id = parse_challenge(challenge_id)?;
        let credential = credential
            .filter(|c| !c.is_null())
            .ok_or_else(|| Error::field("credential", "credential is required"))?;
        let assertion = Assertion::parse(credential).map_err(refused)?;
        let challenge = self
            .store
            .take_challenge(challenge_id, ChallengeKind::Login, Utc::now())
            .await?
            .ok_or(Error::PasskeyChallengeExpired)?;
        let state = super::webauthn::AuthenticationState::from_json(&challenge.state)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let record = self
            .store
            .passkey_by_credential_id(assertion.credential_id().as_bytes())
            .await?;
        let owner = record.as_ref().map(|r| r.user_id);
        if let Some(uid) = owner {
            tracing::Span::current().record("user_id", tracing::field::display(uid));
        }
        let stored = record.as_ref().map(stored).transpose()?;
        let verified = match rp.finish_authentication(&state, &assertion, stored.as_ref()) {
            Ok(v) => v,
            Err(e) => return Err(self.passkey_refused(e, record.as_ref(), ctx).await),
        };
        let record = record.expect("a verified assertion has a stored passkey");
        let now = Utc::now();
        let moved = self
            .store
            .use_passkey(
                &record.credential_id,
                i64::from(verified.counter),
                &verified.credential.to_json(),
                verified.backed_up,
                now,
            )
            .await?;
        if !moved {
            // Another sign-in with this counter (or a higher one) landed first.
            let e = PasskeyError::CounterRegression {
                stored: u32::try_from(record.counter).unwrap_or(u32::MAX),
                presented: Some(verified.counter),
            };
            return Err(self.passkey_refused(e, Some(&record), ctx).await);
        }
        let user = self.user(record.user_id).await?;
        self.admit(&user, SignInMethod::Passkey, ctx).await?;
        self.sign_in(user, remember_me, SignInMethod::Passkey, ctx)
            .await
    }

    /// Writes what a refused assertion needs (`login.failed`, and
    /// `passkey.clone_suspected` for a counter that went backwards) and turns it into
    /// the answer. The password lockout is not touched.
    async fn passkey_refused(
        &self,
        e: PasskeyError,
        record: Option<&PasskeyRecord>,
        ctx: &RequestContext,
    ) -> Error {
        tracing::info!(error = %e, "passkey sign-in refused");
        let user = record.map(|r| r.user_id);
        if e.is_clone_suspected() {
            if let (Some(r), PasskeyError::CounterRegression { stored, presented }) = (record, &e) {
                self.audit(
                    Audit::new(AuditKind::PasskeyCloneSuspected)
                        .user(r.user_id)
                        .ctx(ctx)
                        .details(json!({
                            "passkey_id": r.id,
                            "name": r.name,
                            "stored_counter": stored,
                            "presented_counter": presented,
                        })),
                )
                .await;
            }
        }
        let error = refused(e);
        if matches!(error, Error::InvalidPasskey) {
            self.audit(
                Audit::new(AuditKind::LoginFailed)
                    .user(user)
                    .ctx(ctx)
                    .details(json!({"reason": "invalid_passkey", "method": "passkey"})),
            )
            .await;
        }
        error
    }
}
