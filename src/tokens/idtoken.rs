//! Signing any JWT with a key set: the OpenID Connect ID token (RFC 7519 claims chosen by
//! the caller). Access tokens have their own path ([`super::TokenIssuer`]).

use super::keys::KeySet;
use super::JwtAlg;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;

/// `claims` as a compact JWS signed by `set`'s active key, with `alg`, `kid` and `typ`.
pub fn sign(
    set: &KeySet,
    alg: JwtAlg,
    typ: &str,
    claims: &impl Serialize,
) -> anyhow::Result<String> {
    let header = serde_json::json!({"alg": alg.as_str(), "kid": set.signing_kid, "typ": typ});
    let mut token = format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(&header)?),
        B64.encode(serde_json::to_vec(claims)?)
    );
    let signature = set.signer.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&B64.encode(signature));
    Ok(token)
}
