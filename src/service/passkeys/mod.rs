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

use super::webauthn::{
    CredentialId, PasskeyCredential, PasskeyError, PasskeyUser, Passkeys, RegistrationState,
    StoredPasskey, CEREMONY_TIMEOUT,
};
use super::{Audit, Caller, Error, PageRequest, Paged, RequestContext, Result, Service};
use crate::config::Config;
use crate::domain::{AuditKind, UserId};
use crate::store::{ChallengeKind, PasskeyInsert, PasskeyRecord, PasskeyRemoval};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

mod login;

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
}
