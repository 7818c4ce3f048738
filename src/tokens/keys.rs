//! Signing keys: generation, the key ring used on the hot path, and the JWKS document.
//!
//! There is always an *active* key (signs) and a *standby* key (published, so verifiers
//! that cache the JWKS already know it). Rotation promotes the standby; the retired key
//! stays published until every token it signed has expired. HS256 uses the configured
//! shared secret instead and publishes nothing (a symmetric key is never public).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The signing algorithms tradeauth can be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlg {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

impl JwtAlg {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(Self::EdDSA),
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            "HS256" => Some(Self::HS256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
            Self::HS256 => Algorithm::HS256,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Standby,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Standby => "standby",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "standby" => Some(Self::Standby),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// A signing key as the store keeps it.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: JwtAlg,
    /// PKCS#8 DER (Ed25519, P-256) or PKCS#1 DER (RSA).
    pub private_der: Vec<u8>,
    /// The public JWK (RFC 7517), as published.
    pub public_jwk: serde_json::Value,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    /// For a retired key: when its last token expires and it leaves the JWKS.
    pub retire_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn random_kid() -> String {
    let bytes: [u8; 12] = rand::random();
    B64.encode(bytes)
}

/// Generates a new asymmetric key pair. `HS256` has no key pair (it uses the shared secret).
pub fn generate(alg: JwtAlg, state: KeyState, now: DateTime<Utc>) -> anyhow::Result<StoredKey> {
    let rng = SystemRandom::new();
    let kid = random_kid();
    let (private_der, jwk) = match alg {
        JwtAlg::EdDSA => {
            let doc = signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
            let pair = signature::Ed25519KeyPair::from_pkcs8(doc.as_ref())
                .map_err(|_| anyhow::anyhow!("Ed25519 key rejected"))?;
            let x = B64.encode(pair.public_key().as_ref());
            (
                doc.as_ref().to_vec(),
                json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            )
        }
        JwtAlg::ES256 => {
            let a = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let doc = signature::EcdsaKeyPair::generate_pkcs8(a, &rng)
                .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
            let pair = signature::EcdsaKeyPair::from_pkcs8(a, doc.as_ref(), &rng)
                .map_err(|_| anyhow::anyhow!("P-256 key rejected"))?;
            let point = pair.public_key().as_ref(); // 0x04 || x || y
            let (x, y) = (B64.encode(&point[1..33]), B64.encode(&point[33..65]));
            (
                doc.as_ref().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            )
        }
        JwtAlg::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
            let der = key.to_pkcs1_der()?.as_bytes().to_vec();
            let n = B64.encode(key.n().to_bytes_be());
            let e = B64.encode(key.e().to_bytes_be());
            (der, json!({"kty": "RSA", "n": n, "e": e}))
        }
        JwtAlg::HS256 => anyhow::bail!("HS256 uses the configured secret, not a key pair"),
    };
    let mut public_jwk = jwk;
    public_jwk["kid"] = json!(kid);
    public_jwk["alg"] = json!(alg.as_str());
    public_jwk["use"] = json!("sig");
    Ok(StoredKey {
        kid,
        alg,
        private_der,
        public_jwk,
        state,
        created_at: now,
        retire_at: None,
    })
}

fn decoding_key(k: &StoredKey) -> anyhow::Result<DecodingKey> {
    let s = |name: &str| {
        k.public_jwk[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("key {} lacks {name}", k.kid))
    };
    Ok(match k.alg {
        JwtAlg::EdDSA => DecodingKey::from_ed_components(&s("x")?)?,
        JwtAlg::ES256 => DecodingKey::from_ec_components(&s("x")?, &s("y")?)?,
        JwtAlg::RS256 => DecodingKey::from_rsa_components(&s("n")?, &s("e")?)?,
        JwtAlg::HS256 => anyhow::bail!("HS256 keys are not stored"),
    })
}

/// The active private key, parsed once per key-set reload. (`jsonwebtoken::encode`
/// parses its key again for every token: for EdDSA that derives the public key, a second
/// scalar multiplication per signature; for RS256 it parses and checks the whole RSA key.)
pub enum Signer {
    Ed(signature::Ed25519KeyPair),
    Ec(signature::EcdsaKeyPair),
    Rsa(signature::RsaKeyPair),
    Hmac(ring::hmac::Key),
}

impl Signer {
    fn from_stored(k: &StoredKey) -> anyhow::Result<Self> {
        let bad = |_| {
            anyhow::anyhow!(
                "signing key {} is not a valid {} key",
                k.kid,
                k.alg.as_str()
            )
        };
        Ok(match k.alg {
            JwtAlg::EdDSA => Self::Ed(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&k.private_der)
                    .map_err(bad)?,
            ),
            JwtAlg::ES256 => Self::Ec(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &k.private_der,
                    &SystemRandom::new(),
                )
                .map_err(bad)?,
            ),
            JwtAlg::RS256 => {
                Self::Rsa(signature::RsaKeyPair::from_der(&k.private_der).map_err(bad)?)
            }
            JwtAlg::HS256 => anyhow::bail!("HS256 keys are not stored"),
        })
    }

    /// The JWS signature of `message` (`header.claims` in base64url).
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let failed = |_| anyhow::anyhow!("signing failed");
        Ok(match self {
            Self::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Self::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            Self::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(failed)?;
                sig
            }
            Self::Hmac(key) => ring::hmac::sign(key, message).as_ref().to_vec(),
        })
    }
}

/// One immutable snapshot of the keys in use; swapped whole on reload.
pub struct KeySet {
    pub signing_kid: String,
    pub signer: Signer,
    pub verifying: HashMap<String, DecodingKey>,
    /// The JWKS document, serialised once per reload.
    pub jwks: Arc<[u8]>,
}

impl KeySet {
    /// Builds the set from stored keys of `alg`: the active key signs; active, standby and
    /// unexpired retired keys verify and are published.
    pub fn from_stored(
        alg: JwtAlg,
        keys: &[StoredKey],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        let mut signing = None;
        for k in keys.iter().filter(|k| k.alg == alg) {
            if k.state == KeyState::Retired && k.retire_at.is_some_and(|t| t <= now) {
                continue;
            }
            verifying.insert(k.kid.clone(), decoding_key(k)?);
            published.push(k.public_jwk.clone());
            if k.state == KeyState::Active {
                signing = Some((k.kid.clone(), Signer::from_stored(k)?));
            }
        }
        let (signing_kid, signer) =
            signing.ok_or_else(|| anyhow::anyhow!("no active {} signing key", alg.as_str()))?;
        let jwks = serde_json::to_vec(&json!({ "keys": published }))?;
        Ok(Self {
            signing_kid,
            signer,
            verifying,
            jwks: jwks.into(),
        })
    }

    /// The HS256 set: one shared secret, nothing published.
    pub fn from_secret(secret: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, secret);
        let kid = format!("hs-{}", B64.encode(&digest.as_ref()[..9]));
        let mut verifying = HashMap::new();
        verifying.insert(kid.clone(), DecodingKey::from_secret(secret));
        Self {
            signing_kid: kid,
            signer: Signer::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret)),
            verifying,
            jwks: serde_json::to_vec(&json!({"keys": []}))
                .expect("static json")
                .into(),
        }
    }
}

/// The key set in use, swappable while requests read it.
///
/// A std `RwLock` around an `Arc`: readers hold the lock only to clone the `Arc`, nothing
/// async happens while it is held, and writers (reloads) are rare.
pub struct KeyRing {
    pub alg: JwtAlg,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    pub fn new(alg: JwtAlg, set: KeySet) -> Self {
        Self {
            alg,
            current: RwLock::new(Arc::new(set)),
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().expect("key ring lock poisoned").clone()
    }

    pub fn replace(&self, set: KeySet) {
        *self.current.write().expect("key ring lock poisoned") = Arc::new(set);
    }
}
