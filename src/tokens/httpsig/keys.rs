//! Key material of signing API keys: the uploaded public keys (PEM SubjectPublicKeyInfo or
//! JWK, Ed25519 and P-256), their RFC 7638 thumbprints, and the server-made HMAC secrets
//! with their encryption at rest (AES-256-GCM under `TRADEAUTH_SECRET_KEY`).
//!
//! Owns parsing and validation only; it never stores anything and never sees a private
//! key (an uploaded JWK with a private member is refused, so one cannot be kept by mistake).

use super::Algorithm;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, digest};
use std::fmt;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point (RFC 5480):
/// id-ecPublicKey, prime256v1, then a 66-byte BIT STRING (0 unused bits, 0x04, x, y).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why an uploaded public key was refused; the text is meant for `details.public_key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be a PEM SubjectPublicKeyInfo string or a JWK object")]
    WrongShape,
    #[error("PEM must be one \"PUBLIC KEY\" block")]
    BadPem,
    #[error("not valid base64")]
    BadBase64,
    #[error("unsupported key type: use an Ed25519 or an uncompressed P-256 public key")]
    Unsupported,
    #[error("JWK member `{0}` is missing or not a string")]
    MissingMember(&'static str),
    #[error("JWK has private key material (`d`): upload the public key only")]
    PrivateMaterial,
    #[error("JWK member `{0}` has the wrong length")]
    WrongLength(&'static str),
    #[error("the P-256 point is not on the curve")]
    NotOnCurve,
    #[error("the key is a {found} key, but the algorithm is {expected}")]
    AlgorithmMismatch {
        expected: &'static str,
        found: &'static str,
    },
}

/// A validated public key of a signing API key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    alg: Algorithm,
    /// Ed25519: the 32-byte key; P-256: the 65-byte uncompressed point `04 ‖ x ‖ y`.
    bytes: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.alg.as_str(), self.thumbprint())
    }
}

impl PublicKey {
    /// Parses the `public_key` field of `POST /api/v1/auth/api-keys`: a PEM string or a JWK
    /// object. `expected` is the requested `algorithm`; the key must be of that type.
    pub fn parse_upload(value: &serde_json::Value, expected: Algorithm) -> Result<Self, KeyError> {
        let key = match value {
            serde_json::Value::String(pem) => Self::from_pem(pem)?,
            serde_json::Value::Object(_) => Self::from_jwk(value)?,
            _ => return Err(KeyError::WrongShape),
        };
        if key.alg != expected {
            return Err(KeyError::AlgorithmMismatch {
                expected: expected.as_str(),
                found: key.alg.as_str(),
            });
        }
        Ok(key)
    }

    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PUBLIC KEY-----")
            .and_then(|rest| rest.strip_suffix("-----END PUBLIC KEY-----"))
            .ok_or(KeyError::BadPem)?;
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = STANDARD.decode(b64).map_err(|_| KeyError::BadBase64)?;
        Self::from_spki_der(&der)
    }

    /// Parses a DER SubjectPublicKeyInfo. Only the two encodings this profile accepts are
    /// recognised; DER is canonical, so each is a fixed prefix followed by the key bytes.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Some(key) = der.strip_prefix(ED25519_SPKI_PREFIX) {
            return Self::ed25519(key);
        }
        if let Some(point) = der.strip_prefix(P256_SPKI_PREFIX) {
            return Self::p256(point);
        }
        Err(KeyError::Unsupported)
    }

    /// Parses a JWK: `{"kty":"OKP","crv":"Ed25519","x":…}` or `{"kty":"EC","crv":"P-256",
    /// "x":…,"y":…}`. Other members (`kid`, `use`, `alg`) are ignored; `d` is refused.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, KeyError> {
        let obj = jwk.as_object().ok_or(KeyError::WrongShape)?;
        let member = |name: &'static str| -> Result<&str, KeyError> {
            obj.get(name)
                .and_then(|v| v.as_str())
                .ok_or(KeyError::MissingMember(name))
        };
        let coordinate = |name: &'static str, len: usize| -> Result<Vec<u8>, KeyError> {
            let bytes = B64URL
                .decode(member(name)?)
                .map_err(|_| KeyError::BadBase64)?;
            if bytes.len() == len {
                Ok(bytes)
            } else {
                Err(KeyError::WrongLength(name))
            }
        };
        if obj.contains_key("d") {
            return Err(KeyError::PrivateMaterial);
        }
        match (member("kty")?, member("crv")?) {
            ("OKP", "Ed25519") => Self::ed25519(&coordinate("x", 32)?),
            ("EC", "P-256") => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&coordinate("x", 32)?);
                point.extend_from_slice(&coordinate("y", 32)?);
                Self::p256(&point)
            }
            _ => Err(KeyError::Unsupported),
        }
    }

    /// An Ed25519 key: 32 bytes. (ring offers no point check for Ed25519; a key that is
    /// not a valid point simply never verifies.)
    fn ed25519(key: &[u8]) -> Result<Self, KeyError> {
        if key.len() != 32 {
            return Err(KeyError::WrongLength("x"));
        }
        Ok(Self {
            alg: Algorithm::Ed25519,
            bytes: key.to_vec(),
        })
    }

    /// A P-256 key: an uncompressed point that lies on the curve. ring checks that when it
    /// parses a peer's ECDH public key, so one ephemeral key agreement is the validation
    /// (ring rejects the point at infinity, coordinates ≥ p and points off the curve).
    fn p256(point: &[u8]) -> Result<Self, KeyError> {
        if point.len() != 65 || point[0] != 0x04 {
            return Err(KeyError::Unsupported);
        }
        let rng = SystemRandom::new();
        let mine = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
            .map_err(|_| KeyError::NotOnCurve)?;
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, point);
        agreement::agree_ephemeral(mine, &peer, |_| ()).map_err(|_| KeyError::NotOnCurve)?;
        Ok(Self {
            alg: Algorithm::EcdsaP256Sha256,
            bytes: point.to_vec(),
        })
    }

    /// Rebuilds a key from what [`PublicKey::to_bytes`] stored (no re-validation of the
    /// curve point: it was validated on upload).
    pub fn from_stored(alg: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        let ok = match alg {
            Algorithm::Ed25519 => bytes.len() == 32,
            Algorithm::EcdsaP256Sha256 => bytes.len() == 65 && bytes[0] == 0x04,
            Algorithm::HmacSha256 => false,
        };
        if !ok {
            return Err(KeyError::Unsupported);
        }
        Ok(Self {
            alg,
            bytes: bytes.to_vec(),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The raw key bytes, for storage (Ed25519: 32 bytes; P-256: 65-byte `04 ‖ x ‖ y`).
    pub fn to_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key as a public JWK (members in RFC 7638 order).
    pub fn to_jwk(&self) -> serde_json::Value {
        let members = self.jwk_members();
        let map = members
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(map)
    }

    /// The JWK's required members, sorted by name (RFC 7638 §3.2).
    fn jwk_members(&self) -> Vec<(&'static str, String)> {
        match self.alg {
            Algorithm::Ed25519 => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", B64URL.encode(&self.bytes)),
            ],
            _ => vec![
                ("crv", "P-256".into()),
                ("kty", "EC".into()),
                ("x", B64URL.encode(&self.bytes[1..33])),
                ("y", B64URL.encode(&self.bytes[33..65])),
            ],
        }
    }

    /// The RFC 7638 JWK thumbprint: base64url (no padding) of SHA-256 over the required
    /// members in lexicographic order, without whitespace.
    pub fn thumbprint(&self) -> String {
        let members = self.jwk_members();
        let borrowed: Vec<(&str, &str)> = members.iter().map(|(k, v)| (*k, v.as_str())).collect();
        jwk_thumbprint(&borrowed)
    }
}

/// RFC 7638 §3: SHA-256 over `{"k1":"v1","k2":"v2",…}` with the members sorted by name,
/// base64url without padding. The members here are the key type's required ones, whose
/// values never need JSON escaping (base64url and fixed names), so the JSON is written
/// directly.
pub fn jwk_thumbprint(members: &[(&str, &str)]) -> String {
    let mut sorted = members.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut json = String::from("{");
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(name);
        json.push_str("\":\"");
        json.push_str(value);
        json.push('"');
    }
    json.push('}');
    B64URL.encode(digest::digest(&digest::SHA256, json.as_bytes()))
}

/// A server-made HMAC secret: 32 random bytes. Shown to its owner once, as base64url
/// without padding; the HMAC key is the decoded 32 bytes.
pub struct HmacSecret([u8; 32]);

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([redacted])")
    }
}

impl HmacSecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random source works");
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The text shown once as `secret`: base64url without padding (43 characters).
    pub fn to_display(&self) -> String {
        B64URL.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why a sealed secret could not be opened: wrong key, wrong associated data, or tampered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sealed secret does not open under this key")]
pub struct OpenError;

const NONCE_LEN: usize = aead::NONCE_LEN;

/// Encrypts a secret for storage with AES-256-GCM under the 32-byte key-encryption key.
/// Output: a random 12-byte nonce ‖ ciphertext ‖ 16-byte tag. `aad` binds the ciphertext
/// to its row (pass the `key_id`), so a sealed secret copied to another key fails to open.
pub fn seal_secret(kek: &[u8; 32], aad: &[u8], secret: &[u8]) -> Vec<u8> {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, kek).expect("a 32-byte AES-256 key"),
    );
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system random source works");
    let mut out = Vec::with_capacity(NONCE_LEN + secret.len() + aead::AES_256_GCM.tag_len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(secret);
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .expect("AES-GCM sealing a short secret cannot fail");
    out.extend_from_slice(tag.as_ref());
    out
}

/// Decrypts what [`seal_secret`] made, with the same key and associated data.
pub fn open_secret(kek: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
        return Err(OpenError);
    }
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, kek).expect("a 32-byte AES-256 key"),
    );
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(nonce, aead::Aad::from(aad), &mut buf)
        .map_err(|_| OpenError)?;
    Ok(plain.to_vec())
}
