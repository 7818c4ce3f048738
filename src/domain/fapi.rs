//! Finance-grade client settings (API.md "Beyond the baseline"): how a client
//! authenticates at the token endpoint (RFC 7591 `token_endpoint_auth_method`, with
//! `private_key_jwt` of RFC 7523 and its keys), whether it must push its authorization
//! requests (RFC 9126) and whether its tokens must be DPoP-bound (RFC 9449).

use super::FieldError;

/// How a client proves itself at the token, PAR, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// The secret in HTTP Basic (the secret in the form is accepted too: both are
    /// `client_secret_*`, and existing clients use either).
    #[default]
    ClientSecretBasic,
    /// The secret in the form (HTTP Basic accepted too, as above).
    ClientSecretPost,
    /// A JWT signed with a key of the client's `jwks` or `jwks_uri` (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A public client: no authentication.
    None,
}

/// The methods discovery advertises, in this order.
pub const AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// The algorithms a `private_key_jwt` assertion or a DPoP proof may be signed with:
/// `Ed25519` is EdDSA over Ed25519 by its RFC 9864 name (what WebCrypto-based clients send).
pub const ASSERTION_ALGS: [&str; 4] = ["RS256", "ES256", "EdDSA", "Ed25519"];

impl AuthMethod {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            "none" => Ok(Self::None),
            _ => Err(FieldError::new(
                "token_endpoint_auth_method",
                format!(
                    "token_endpoint_auth_method must be one of {}",
                    AUTH_METHODS.join(", ")
                ),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Whether the client authenticates with a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// A client's finance-grade settings; the default is a plain OAuth 2.1 client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientFapi {
    pub auth_method: AuthMethod,
    /// The client's public keys (a JWK set object), for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes them instead (https, or http on loopback).
    pub jwks_uri: Option<String>,
    /// Every authorization request must come through `/oauth2/par` (RFC 9126 §6).
    pub require_par: bool,
    /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound: bool,
}

/// Checks a JWK set object: `{"keys": [...]}` with at least one public key of a kind we
/// verify (RSA, EC P-256, OKP Ed25519) and no private part.
pub fn parse_jwks(v: &serde_json::Value) -> Result<serde_json::Value, FieldError> {
    let bad = |m: &str| FieldError::new("jwks", m.to_string());
    let keys = v
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| bad("jwks must be a JWK set: an object with a \"keys\" array"))?;
    if keys.is_empty() {
        return Err(bad("jwks has no keys"));
    }
    for k in keys {
        let kty = k.get("kty").and_then(|t| t.as_str()).unwrap_or_default();
        let ok = match kty {
            "RSA" => k.get("n").is_some() && k.get("e").is_some(),
            "EC" => k.get("crv").and_then(|c| c.as_str()) == Some("P-256") && k.get("x").is_some(),
            "OKP" => {
                k.get("crv").and_then(|c| c.as_str()) == Some("Ed25519") && k.get("x").is_some()
            }
            _ => false,
        };
        if !ok {
            return Err(bad(
                "each key must be a public RSA, EC P-256 or OKP Ed25519 JWK",
            ));
        }
        if k.get("d").is_some() {
            return Err(bad(
                "jwks holds a private key; register the public part only",
            ));
        }
    }
    Ok(v.clone())
}

/// Checks a `jwks_uri`: https, or http on a loopback address (for tests and sidecars).
pub fn parse_jwks_uri(uri: &str) -> Result<String, FieldError> {
    let bad = || {
        FieldError::new(
            "jwks_uri",
            format!("{uri:?} must be an https URL (http only on 127.0.0.1 or [::1])"),
        )
    };
    let u = url::Url::parse(uri).map_err(|_| bad())?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    match u.scheme() {
        "https" => Ok(uri.to_string()),
        "http" if loopback => Ok(uri.to_string()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_methods_round_trip() {
        for m in AUTH_METHODS {
            assert_eq!(AuthMethod::parse(m).unwrap().as_str(), m);
        }
        assert!(AuthMethod::parse("client_secret_jwt").is_err());
    }

    #[test]
    fn jwks_and_jwks_uri_are_checked() {
        let ec = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]});
        assert!(parse_jwks(&ec).is_ok());
        assert!(parse_jwks(&json!({"keys": []})).is_err());
        assert!(parse_jwks(&json!([1])).is_err());
        let private = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "a", "d": "b"}]});
        assert!(parse_jwks(&private).is_err());
        assert!(parse_jwks_uri("https://rp.example/jwks").is_ok());
        assert!(parse_jwks_uri("http://127.0.0.1:8080/jwks").is_ok());
        assert!(parse_jwks_uri("http://rp.example/jwks").is_err());
        assert!(parse_jwks_uri("ftp://rp.example/jwks").is_err());
    }
}
