//! The keys that sign ID tokens, and the JWKS that publishes them with the access-token
//! keys.
//!
//! OpenID Connect Discovery requires RS256, so an RS256 pair (active and standby) is always
//! published, whatever `TRADEAUTH_JWT_ALG` is. When access tokens are RS256 too, the
//! access-token key ring is used (one pair, rotated together); otherwise the RS256 pair is
//! stored beside the access keys (the store allows one active and one standby key per
//! algorithm). A client may instead ask for the access tokens' algorithm when it is ES256
//! or EdDSA. HS256 never signs an ID token.

use crate::config::Config;
use crate::service::{Error, Result, Service};
use crate::store::DynStore;
use crate::tokens::keys::{generate, KeySet};
use crate::tokens::{JwtAlg, KeyState};
use chrono::Utc;
use serde_json::Value;

/// The ID-token keys of this instance.
pub enum IdKeys {
    /// Access tokens are RS256: the access-token ring signs ID tokens too.
    Shared,
    /// The stored RS256 pair.
    Own(Box<KeySet>),
    /// A CLI command that found no RS256 pair: it signs no ID tokens.
    Missing,
}

impl IdKeys {
    /// The RS256 keys: created (active and standby) by a serving instance when missing.
    pub async fn load(config: &Config, store: &DynStore, manage: bool) -> anyhow::Result<Self> {
        if config.jwt_alg == JwtAlg::RS256 {
            return Ok(Self::Shared);
        }
        let alg = JwtAlg::RS256;
        let mut keys = store.signing_keys().await?;
        let live = |keys: &[crate::tokens::StoredKey], state| {
            keys.iter().any(|k| k.alg == alg && k.state == state)
        };
        if manage && !(live(&keys, KeyState::Active) && live(&keys, KeyState::Standby)) {
            let now = Utc::now();
            let mut fresh = Vec::new();
            if !live(&keys, KeyState::Active) {
                fresh.push(generate(alg, KeyState::Active, now)?);
            }
            if !live(&keys, KeyState::Standby) {
                fresh.push(generate(alg, KeyState::Standby, now)?);
            }
            // Another instance starting at the same moment may have saved its pair first
            // (one active and one standby per algorithm): then use that one.
            if let Err(e) = store.save_signing_keys(&fresh).await {
                keys = store.signing_keys().await?;
                if !live(&keys, KeyState::Active) {
                    return Err(e.into());
                }
            }
            keys = store.signing_keys().await?;
        }
        Ok(match KeySet::from_stored(alg, &keys, Utc::now()) {
            Ok(set) => Self::Own(Box::new(set)),
            Err(_) if !manage => Self::Missing,
            Err(e) => return Err(e),
        })
    }
}

impl Service {
    /// The algorithms an ID token can be signed with here (discovery's
    /// `id_token_signing_alg_values_supported`): RS256, and the access tokens' algorithm
    /// when it is asymmetric.
    pub fn id_token_algs(&self) -> Vec<&'static str> {
        let mut algs = vec!["RS256"];
        match self.config.jwt_alg {
            JwtAlg::ES256 | JwtAlg::EdDSA => algs.push(self.config.jwt_alg.as_str()),
            JwtAlg::RS256 | JwtAlg::HS256 => {}
        }
        algs
    }

    /// `claims` signed as an ID token with `alg` (one of [`Self::id_token_algs`]).
    pub(super) fn sign_id_token(&self, alg: &str, claims: &Value) -> Result<String> {
        let via_ring = |alg: JwtAlg| -> Result<String> {
            let set = self.tokens.ring().current();
            Ok(crate::tokens::idtoken::sign(&set, alg, "JWT", claims)?)
        };
        match (alg, &self.id_keys) {
            ("RS256", IdKeys::Shared) => via_ring(JwtAlg::RS256),
            ("RS256", IdKeys::Own(set)) => Ok(crate::tokens::idtoken::sign(
                set,
                JwtAlg::RS256,
                "JWT",
                claims,
            )?),
            (a, _) if a != "HS256" && a == self.config.jwt_alg.as_str() => {
                via_ring(self.config.jwt_alg)
            }
            _ => Err(Error::Internal(format!(
                "no {alg} key signs ID tokens here"
            ))),
        }
    }

    /// The verification keys of ID tokens by `kid`, for `id_token_hint`.
    pub(super) fn id_token_key(&self, kid: &str) -> Option<(JwtAlg, jsonwebtoken::DecodingKey)> {
        if let IdKeys::Own(set) = &self.id_keys {
            if let Some(k) = set.verifying.get(kid) {
                return Some((JwtAlg::RS256, k.clone()));
            }
        }
        let ring = self.tokens.ring();
        let set = ring.current();
        set.verifying
            .get(kid)
            .filter(|_| ring.alg != JwtAlg::HS256)
            .map(|k| (ring.alg, k.clone()))
    }

    /// The JWKS: the access-token keys and, when separate, the ID-token keys.
    pub fn published_keys(&self) -> Vec<u8> {
        let access = self.tokens.ring().current().jwks.to_vec();
        let IdKeys::Own(set) = &self.id_keys else {
            return access;
        };
        let mut doc: Value = serde_json::from_slice(&access).unwrap_or_default();
        let extra: Value = serde_json::from_slice(&set.jwks).unwrap_or_default();
        if let (Some(keys), Some(more)) = (doc["keys"].as_array_mut(), extra["keys"].as_array()) {
            keys.extend(more.iter().cloned());
        }
        serde_json::to_vec(&doc).unwrap_or(access)
    }
}
