//! A compact JWS checked against a public JWK the caller chose (a `private_key_jwt`
//! client's key, a DPoP proof's own key): the header, the signature, the claims as JSON.
//! The claims are the caller's to judge. `RS256`, `ES256` and EdDSA over Ed25519, named
//! `EdDSA` or, as RFC 9864 and WebCrypto-based clients (oauth4webapi) spell it, `Ed25519`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// The verifier of an accepted algorithm name.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" | "Ed25519" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Whether a JWK is of the kind `alg` verifies with.
pub fn key_fits(jwk: &Value, alg: Algorithm) -> bool {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    matches!(
        (kty, alg),
        ("RSA", Algorithm::RS256) | ("EC", Algorithm::ES256) | ("OKP", Algorithm::EdDSA)
    )
}

/// The parts of a compact JWS: its header and claims as JSON (unverified).
pub struct Parsed<'a> {
    pub header: Value,
    pub claims: Value,
    signing_input: &'a str,
    signature: &'a str,
}

impl<'a> Parsed<'a> {
    /// Splits and decodes a compact JWS; `None` unless it has three parts, JSON in the
    /// first two.
    pub fn new(jws: &'a str) -> Option<Self> {
        let (signing_input, signature) = jws.rsplit_once('.')?;
        let (h, c) = signing_input.split_once('.')?;
        if c.contains('.') {
            return None;
        }
        let json = |s: &str| -> Option<Value> { serde_json::from_slice(&B64.decode(s).ok()?).ok() };
        Some(Self {
            header: json(h)?,
            claims: json(c)?,
            signing_input,
            signature,
        })
    }

    /// The header's `alg`, if accepted.
    pub fn algorithm(&self) -> Option<Algorithm> {
        algorithm(self.header.get("alg")?.as_str()?)
    }

    /// Whether the signature verifies with `jwk` under `alg`.
    pub fn verifies_with(&self, jwk: &Value, alg: Algorithm) -> bool {
        if !key_fits(jwk, alg) {
            return false;
        }
        // Only the key material: `alg` may be a name the parser does not know (`Ed25519`).
        let mut bare = jwk.clone();
        if let Some(o) = bare.as_object_mut() {
            for k in ["alg", "key_ops", "use"] {
                o.remove(k);
            }
        }
        let Some(key) = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(bare)
            .ok()
            .and_then(|k| DecodingKey::from_jwk(&k).ok())
        else {
            return false;
        };
        jsonwebtoken::crypto::verify(self.signature, self.signing_input.as_bytes(), &key, alg)
            .unwrap_or(false)
    }
}
