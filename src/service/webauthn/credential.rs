//! A credential as the rest of tradeauth sees it: its id (bytes, base64url in JSON) and the
//! stored passkey that `webauthn-rs` verifies against, with its counter and backup flags.

use super::PasskeyError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Credential, Passkey};

/// A credential id: the authenticator's opaque bytes (at most 1023). Stored as bytes
/// (unique); JSON shows it base64url without padding, as WebAuthn does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialId(pub(super) Vec<u8>);

impl CredentialId {
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_base64url(&self) -> String {
        B64.encode(&self.0)
    }
}

impl std::fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialId({})", self.to_base64url())
    }
}

impl Serialize for CredentialId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for CredentialId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.trim_end_matches('='))
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A stored passkey: the public key, algorithm, signature counter and flags, as
/// `webauthn-rs` keeps them. Serialises to JSON (`passkeys.credential`); read back with
/// [`PasskeyCredential::from_json`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasskeyCredential(pub(super) Passkey);

impl PasskeyCredential {
    pub fn id(&self) -> CredentialId {
        CredentialId(self.0.cred_id().to_vec())
    }

    pub(super) fn internals(&self) -> Credential {
        Credential::from(self.0.clone())
    }

    /// The last signature counter seen (0: the authenticator keeps none, so far).
    pub fn counter(&self) -> u32 {
        self.internals().counter
    }

    /// The authenticator may sync this credential (BE flag).
    pub fn backup_eligible(&self) -> bool {
        self.internals().backup_eligible
    }

    /// The credential is synced now (BS flag).
    pub fn backed_up(&self) -> bool {
        self.internals().backup_state
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a passkey serialises")
    }

    /// A stored passkey; `Internal` if the column holds something else.
    pub fn from_json(json: &str) -> Result<Self, PasskeyError> {
        serde_json::from_str(json)
            .map_err(|e| PasskeyError::Internal(format!("stored passkey is unreadable: {e}")))
    }
}
