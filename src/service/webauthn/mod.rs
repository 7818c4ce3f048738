//! The WebAuthn core of passkeys: ceremony options, ceremony state and the verification of
//! what an authenticator returned, in the contract's terms ("Passkeys (WebAuthn)" in API.md).
//! It wraps `webauthn-rs` (passkey flow: user verification required, attestation `none`).
//!
//! It owns:
//! - the relying party (RP ID, name, allowed origins) and the check, at start, that the RP ID
//!   is a registrable suffix of every allowed origin's host ([`Passkeys::new`]);
//! - the options sent to the browser, in the W3C JSON forms inside `{"publicKey": ...}`, so a
//!   page passes them to `PublicKeyCredential.parseCreationOptionsFromJSON` /
//!   `parseRequestOptionsFromJSON` and sends back `credential.toJSON()`;
//! - the ceremony state, as JSON the caller keeps server-side between start and finish
//!   ([`RegistrationState`], [`AuthenticationState`]), so the two may reach different
//!   instances;
//! - the verdict on a response: a new credential to store, or who signed in and the new
//!   signature counter; every refusal as a [`PasskeyError`] whose [`PasskeyError::code`] is
//!   the contract's error code.
//!
//! It must not: touch the store, know about sessions or accounts beyond a user id, write
//! events, or decide limits (10 per account, names). In particular it cannot make a
//! challenge single-use: the caller keeps each state in `webauthn_challenges` and consumes it
//! atomically (`DELETE … RETURNING`) before calling a `finish_*`; a state finished twice
//! verifies twice here. Nor can it see a credential registered to another account: the
//! unique `credential_id` column of `passkeys` gives `passkey_exists`.
//!
//! Layout: this file is the API; `credential` the credential types; `error` its errors and
//! their codes; `soft` (tests only) is an independent software
//! authenticator; `tests` drives both through the API, `refusals` makes every check fail
//! once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

mod credential;
mod error;
pub use credential::{CredentialId, PasskeyCredential};
use error::{deserialize, refusal};
pub use error::{ConfigError, PasskeyError, Refusal};

#[cfg(test)]
mod refusals;
#[cfg(test)]
mod soft;
#[cfg(test)]
mod tests;

/// How long a ceremony may take: the `timeout` sent to the browser. The caller's challenge
/// row lives as long (5 min, API.md).
pub const CEREMONY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The account a registration is for.
#[derive(Debug, Clone, Copy)]
pub struct PasskeyUser<'a> {
    /// Sent as `user.id` (its 16 bytes) and stored by discoverable authenticators: the user
    /// handle a username-less sign-in returns.
    pub id: Uuid,
    /// `user.name`: what the authenticator shows to pick an account (email or username).
    pub name: &'a str,
    /// `user.displayName`.
    pub display_name: &'a str,
}

/// The state of a registration between start and finish. Server-side only (it holds the
/// challenge): the caller stores [`RegistrationState::to_json`] in `webauthn_challenges`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationState {
    user_id: Uuid,
    /// The account's credentials when the ceremony started (`excludeCredentials`).
    existing: Vec<CredentialId>,
    inner: PasskeyRegistration,
}

/// The state of a sign-in between start and finish. Server-side only, like
/// [`RegistrationState`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthenticationState {
    /// `Some`: username-first, only these credentials may answer; `None`: discoverable.
    allowed: Option<Vec<CredentialId>>,
    /// Always the discoverable form of `webauthn-rs`: it verifies against the one stored
    /// credential the caller looked up at finish, with its current counter (the credentials
    /// copied into a username-first state would carry the counters of start time).
    inner: DiscoverableAuthentication,
}

macro_rules! state_json {
    ($t:ty) => {
        impl $t {
            pub fn to_json(&self) -> String {
                serde_json::to_string(self).expect("ceremony state serialises")
            }

            /// A stored state; `Internal` if the row holds something else.
            pub fn from_json(json: &str) -> Result<Self, PasskeyError> {
                serde_json::from_str(json).map_err(|e| {
                    PasskeyError::Internal(format!("stored ceremony state is unreadable: {e}"))
                })
            }
        }
    };
}
state_json!(RegistrationState);
state_json!(AuthenticationState);

impl RegistrationState {
    /// The account the ceremony was started for (the finish must come from its session).
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }
}

impl AuthenticationState {
    /// Whether the ceremony was started with a username (credentials listed).
    pub fn is_username_first(&self) -> bool {
        self.allowed.is_some()
    }
}

/// A verified registration: what `passkeys` stores.
#[derive(Debug, Clone)]
pub struct NewPasskey {
    pub user_id: Uuid,
    /// Unique across all accounts (`passkey_exists`).
    pub credential_id: CredentialId,
    pub credential: PasskeyCredential,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub counter: u32,
}

/// What the caller looked up by [`Assertion::credential_id`]: the stored passkey and its
/// owner.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub user_id: Uuid,
    pub credential: PasskeyCredential,
}

/// A verified sign-in.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account signing in (the stored owner, equal to the user handle when one was sent).
    pub user_id: Uuid,
    pub credential_id: CredentialId,
    /// The presented signature counter (0: the authenticator keeps none).
    pub counter: u32,
    /// The credential with the new counter and flags; write it back when `changed`, with a
    /// compare-and-set on the counter (see [`Passkeys::finish_authentication`]).
    pub credential: PasskeyCredential,
    pub changed: bool,
    pub backup_eligible: bool,
    pub backed_up: bool,
}

/// A parsed `AuthenticationResponseJSON`: read its credential id (and user handle) to look
/// the stored passkey up, then pass it to [`Passkeys::finish_authentication`].
#[derive(Debug, Clone)]
pub struct Assertion(PublicKeyCredential);

impl Assertion {
    /// `validation_error` if the JSON is not an `AuthenticationResponseJSON`.
    pub fn parse(credential: &serde_json::Value) -> Result<Self, PasskeyError> {
        let pkc: PublicKeyCredential = deserialize(credential)?;
        check_envelope(&pkc.type_, &pkc.id, &pkc.raw_id)?;
        Ok(Self(pkc))
    }

    pub fn credential_id(&self) -> CredentialId {
        CredentialId(self.0.raw_id.to_vec())
    }

    /// The user handle the authenticator returned (always for a discoverable credential).
    pub fn user_handle(&self) -> Option<&[u8]> {
        self.0.get_user_unique_id()
    }

    /// The signature counter in the authenticator data, if it is long enough to hold one.
    fn presented_counter(&self) -> Option<u32> {
        let data: &[u8] = self.0.response.authenticator_data.as_ref();
        data.get(33..37)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// `type` is `public-key` and `id` is `rawId` in base64url (WebAuthn §5.1).
fn check_envelope(type_: &str, id: &str, raw_id: &[u8]) -> Result<(), PasskeyError> {
    if type_ != "public-key" {
        return Err(PasskeyError::Malformed(
            "type must be \"public-key\"".into(),
        ));
    }
    if raw_id.is_empty() || B64.decode(id.trim_end_matches('=')).ok().as_deref() != Some(raw_id) {
        return Err(PasskeyError::Malformed(
            "id must be rawId in base64url".into(),
        ));
    }
    Ok(())
}

/// Whether `rp_id` may serve `host`: equal, or a parent domain of it that is not a public
/// suffix. Without the Public Suffix List, a parent must have at least two labels (so
/// `com` or `localhost` never covers `x.com`); a multi-label public suffix such as `co.uk`
/// is not caught here, and the browser would refuse it.
fn covers(rp_id: &str, host: &str) -> bool {
    host == rp_id || (host.ends_with(&format!(".{rp_id}")) && rp_id.contains('.'))
}

fn check_rp_id(rp_id: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::InvalidRpId {
        rp_id: rp_id.to_string(),
        reason: reason.to_string(),
    };
    match url::Host::parse(rp_id) {
        Ok(url::Host::Domain(d)) if d == rp_id => {}
        Ok(url::Host::Domain(_)) => {
            return Err(bad(
                "it must be lowercase ASCII (punycode), without scheme or port",
            ))
        }
        Ok(_) => {
            return Err(ConfigError::RpIdIsIpAddress {
                rp_id: rp_id.to_string(),
            })
        }
        Err(e) => return Err(bad(&e.to_string())),
    }
    if rp_id.is_empty() || rp_id.starts_with('.') || rp_id.ends_with('.') || rp_id.contains("..") {
        return Err(bad("empty label"));
    }
    if !rp_id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(bad(
            "only letters, digits, '-' and '.' (no scheme, port or path)",
        ));
    }
    Ok(())
}

/// The relying party: one per process, built at start from the configuration.
#[derive(Debug, Clone)]
pub struct Passkeys {
    webauthn: Webauthn,
    rp_id: String,
}

impl Passkeys {
    /// `origins`: `TRADEAUTH_ALLOWED_ORIGINS` (exact origins: scheme, host, port). Refused
    /// when the RP ID is not a domain or not a registrable suffix of every origin's host.
    pub fn new(
        rp_id: &str,
        rp_name: &str,
        origins: &[impl AsRef<str>],
    ) -> Result<Self, ConfigError> {
        check_rp_id(rp_id)?;
        let mut urls = Vec::with_capacity(origins.len());
        for o in origins {
            let o = o.as_ref();
            let invalid = |reason: &str| ConfigError::InvalidOrigin {
                origin: o.to_string(),
                reason: reason.to_string(),
            };
            let url = Url::parse(o).map_err(|e| invalid(&e.to_string()))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(invalid("the scheme must be https (or http for localhost)"));
            }
            let Some(host) = url.host_str() else {
                return Err(invalid("no host"));
            };
            if url.domain().is_none() || !covers(rp_id, host) {
                return Err(ConfigError::RpIdNotSuffix {
                    rp_id: rp_id.to_string(),
                    origin: o.to_string(),
                });
            }
            urls.push(url);
        }
        let Some((first, rest)) = urls.split_first() else {
            return Err(ConfigError::NoOrigins);
        };
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(|_| ConfigError::RpIdNotSuffix {
                rp_id: rp_id.to_string(),
                origin: first.to_string(),
            })?
            .rp_name(rp_name)
            .timeout(CEREMONY_TIMEOUT);
        for url in rest {
            builder = builder.append_allowed_origin(url);
        }
        let webauthn = builder.build().map_err(|e| ConfigError::InvalidRpId {
            rp_id: rp_id.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            webauthn,
            rp_id: rp_id.to_string(),
        })
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Options for `navigator.credentials.create` (`{"publicKey": ...}`) and the state to
    /// keep. `existing`: the account's passkeys (`excludeCredentials`, so an authenticator
    /// that already holds one says so instead of making a second).
    pub fn start_registration(
        &self,
        user: &PasskeyUser<'_>,
        existing: &[CredentialId],
    ) -> Result<(serde_json::Value, RegistrationState), PasskeyError> {
        let exclude =
            (!existing.is_empty()).then(|| existing.iter().map(|c| c.0.clone()).collect());
        let (mut ccr, inner) = self
            .webauthn
            .start_passkey_registration(user.id, user.name, user.display_name, exclude)
            .map_err(|e| PasskeyError::Internal(e.to_string()))?;
        // A discoverable credential where the authenticator can keep one, so username-less
        // sign-in works; `preferred`, not `required`, so security keys with little storage
        // still register (and sign in username-first). Finish does not depend on it.
        if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
            sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Preferred);
            sel.require_resident_key = false;
        }
        let options =
            serde_json::to_value(&ccr).map_err(|e| PasskeyError::Internal(e.to_string()))?;
        let state = RegistrationState {
            user_id: user.id,
            existing: existing.to_vec(),
            inner,
        };
        Ok((options, state))
    }

    /// Verifies `credential` (a `RegistrationResponseJSON`, from `credential.toJSON()`)
    /// against the state of its ceremony.
    pub fn finish_registration(
        &self,
        state: &RegistrationState,
        credential: &serde_json::Value,
    ) -> Result<NewPasskey, PasskeyError> {
        let reg: RegisterPublicKeyCredential = deserialize(credential)?;
        check_envelope(&reg.type_, &reg.id, &reg.raw_id)?;
        if state.existing.iter().any(|c| c.0 == reg.raw_id) {
            return Err(PasskeyError::AlreadyRegistered);
        }
        let passkey = self
            .webauthn
            .finish_passkey_registration(&reg, &state.inner)
            .map_err(refusal)?;
        let credential = PasskeyCredential(passkey);
        let credential_id = credential.id();
        if state.existing.contains(&credential_id) {
            return Err(PasskeyError::AlreadyRegistered);
        }
        let internals = credential.internals();
        if !internals.user_verified {
            return Err(PasskeyError::Refused(Refusal::UserNotVerified));
        }
        Ok(NewPasskey {
            user_id: state.user_id,
            credential_id,
            backup_eligible: internals.backup_eligible,
            backed_up: internals.backup_state,
            counter: internals.counter,
            credential,
        })
    }

    /// Options for `navigator.credentials.get` (`{"publicKey": ...}`) and the state to keep.
    /// `Some(ids)`: username-first, `allowCredentials` lists them (an unknown account passes
    /// [`Passkeys::fake_credential_ids`] so the answer has the same shape); `None`: a
    /// discoverable request, `allowCredentials` empty, the authenticator offers what it
    /// holds for this RP ID.
    pub fn start_authentication(
        &self,
        allowed: Option<&[CredentialId]>,
    ) -> Result<(serde_json::Value, AuthenticationState), PasskeyError> {
        let (mut rcr, inner) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| PasskeyError::Internal(e.to_string()))?;
        // webauthn-rs marks this for autofill (`mediation: conditional`); our pages ask on a
        // button, so the plain modal request.
        rcr.mediation = None;
        if let Some(ids) = allowed {
            rcr.public_key.allow_credentials = ids
                .iter()
                .map(|c| webauthn_rs_proto::AllowCredentials {
                    type_: "public-key".to_string(),
                    id: c.0.clone(),
                    transports: None,
                })
                .collect();
        }
        let options =
            serde_json::to_value(&rcr).map_err(|e| PasskeyError::Internal(e.to_string()))?;
        let state = AuthenticationState {
            allowed: allowed.map(<[CredentialId]>::to_vec),
            inner,
        };
        Ok((options, state))
    }

    /// Verifies an assertion against the state of its ceremony and `stored`, the passkey the
    /// caller found by [`Assertion::credential_id`] (`None`: not found). Checks the
    /// credential is allowed by the ceremony, the user handle names its owner, the origin,
    /// RP ID hash, UP and UV flags, the signature, and that the counter increased when the
    /// authenticator keeps one ([`PasskeyError::CounterRegression`]).
    ///
    /// Concurrent sign-ins with one credential can both pass against the same stored
    /// counter; the caller writes the new counter with a compare-and-set
    /// (`UPDATE … SET counter = $new, credential = $json WHERE credential_id = $id AND
    /// counter < $new`, or unconditionally when `counter` is 0) and treats no row updated
    /// as a counter regression.
    pub fn finish_authentication(
        &self,
        state: &AuthenticationState,
        assertion: &Assertion,
        stored: Option<&StoredPasskey>,
    ) -> Result<Authenticated, PasskeyError> {
        let id = assertion.credential_id();
        if let Some(allowed) = &state.allowed {
            if !allowed.contains(&id) {
                return Err(PasskeyError::UnknownCredential);
            }
        }
        let Some(stored) = stored.filter(|s| s.credential.id() == id) else {
            return Err(PasskeyError::UnknownCredential);
        };
        match assertion.user_handle() {
            Some(handle) if handle != stored.user_id.as_bytes() => {
                return Err(PasskeyError::Refused(Refusal::UserHandleMismatch))
            }
            // Username-less: the handle is how the account is identified (§7.2 step 6).
            None if state.allowed.is_none() => {
                return Err(PasskeyError::Refused(Refusal::UserHandleMismatch))
            }
            _ => {}
        }
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(
                &assertion.0,
                state.inner.clone(),
                &stored.credential.0,
            )
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterRegression {
                    stored: stored.credential.counter(),
                    presented: assertion.presented_counter(),
                },
                e => refusal(e),
            })?;
        if !result.user_verified() {
            return Err(PasskeyError::Refused(Refusal::UserNotVerified));
        }
        let mut credential = stored.credential.clone();
        let changed = credential.0.update_credential(&result).unwrap_or(false);
        Ok(Authenticated {
            user_id: stored.user_id,
            credential_id: id,
            counter: result.counter(),
            changed,
            backup_eligible: result.backup_eligible(),
            backed_up: result.backup_state(),
            credential,
        })
    }

    /// Credential ids for an account that does not exist (or has no passkey), the same for
    /// the same `username` under the same `key` (a 32-byte server secret), so a
    /// username-first start does not tell which accounts exist.
    pub fn fake_credential_ids(
        key: &[u8],
        username: &str,
    ) -> Result<Vec<CredentialId>, PasskeyError> {
        use webauthn_rs::fake::{FakePasskeyDistribution, WebauthnFakeCredentialGenerator};
        let generator = WebauthnFakeCredentialGenerator::<FakePasskeyDistribution>::new(key)
            .map_err(|e| PasskeyError::Internal(e.to_string()))?;
        let ids = generator
            .generate(username.to_lowercase().as_bytes())
            .map_err(|e| PasskeyError::Internal(e.to_string()))?;
        Ok(ids.into_iter().map(|c| CredentialId(c.to_vec())).collect())
    }
}
