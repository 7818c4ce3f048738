//! DPoP proofs (RFC 9449 §4): parsing and verifying one on its own — its header (`typ:
//! dpop+jwt`, an allowed `alg`, a public `jwk`), its signature by that key and the shape
//! of its claims — and the RFC 7638 thumbprint of the key. What a proof must match (the
//! method, the URL, the clock, a nonce, the access token, single use) is the service's
//! to check; nothing here reads the clock or keeps state.

use super::jws::{key_fits, Parsed};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;

/// A proof whose signature verified with the key in its header.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The thumbprint of the proof's key (what `cnf.jkt` binds to).
    pub jkt: String,
    pub jti: String,
    pub htm: String,
    pub htu: String,
    pub iat: i64,
    pub ath: Option<String>,
    pub nonce: Option<String>,
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over its required members in
/// lexicographic order, without whitespace, base64url.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        _ => return None,
    };
    let d = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Some(B64.encode(d.as_ref()))
}

/// The `ath` of an access token: base64url SHA-256 of its ASCII text (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    B64.encode(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// Whether a proof's `htu` names `expected`: the same scheme, host, port and path; the
/// query and fragment are ignored (RFC 9449 §4.3, RFC 3986 §6 normalisation through the
/// URL parser).
pub fn htu_matches(htu: &str, expected: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(expected)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// Verifies a proof's header and signature and reads its claims. The error says what is
/// wrong, for `error_description`.
pub fn verify(proof: &str) -> Result<Proof, &'static str> {
    let jws = Parsed::new(proof).ok_or("the DPoP proof is not a compact JWS of JSON parts")?;
    let header = &jws.header;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("the DPoP proof's typ must be dpop+jwt");
    }
    let alg = jws
        .algorithm()
        .ok_or("the DPoP proof's alg must be RS256, ES256 or EdDSA (Ed25519)")?;
    let jwk = header
        .get("jwk")
        .ok_or("the DPoP proof's header has no jwk")?;
    if jwk.get("d").is_some() || jwk.get("p").is_some() {
        return Err("the DPoP proof's jwk must be a public key");
    }
    if !key_fits(jwk, alg) {
        return Err("the DPoP proof's jwk does not fit its alg");
    }
    let jkt = thumbprint(jwk).ok_or("the DPoP proof's jwk is incomplete")?;
    if !jws.verifies_with(jwk, alg) {
        return Err("the DPoP proof's signature does not verify with its jwk");
    }
    let claims = &jws.claims;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(Proof {
        jkt,
        jti: text("jti")
            .filter(|j| !j.is_empty())
            .ok_or("the DPoP proof has no jti")?,
        htm: text("htm").ok_or("the DPoP proof has no htm")?,
        htu: text("htu").ok_or("the DPoP proof has no htu")?,
        iat: claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or("the DPoP proof has no iat")?,
        ath: text("ath"),
        nonce: text("nonce"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn htu_ignores_query_and_fragment_but_nothing_else() {
        let e = "https://as.example/oauth2/token";
        assert!(htu_matches("https://as.example/oauth2/token?x=1#f", e));
        assert!(htu_matches("https://AS.example:443/oauth2/token", e));
        assert!(!htu_matches("http://as.example/oauth2/token", e));
        assert!(!htu_matches("https://as.example/oauth2/token/", e));
        assert!(!htu_matches("https://as.example:8443/oauth2/token", e));
    }

    #[test]
    fn malformed_proofs_say_why() {
        assert!(verify("a.b").is_err());
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        assert_eq!(
            verify(&format!("{header}.e30.c2ln")).unwrap_err(),
            "the DPoP proof's typ must be dpop+jwt"
        );
        let header = B64.encode(br#"{"typ":"dpop+jwt","alg":"HS256"}"#);
        assert_eq!(
            verify(&format!("{header}.e30.c2ln")).unwrap_err(),
            "the DPoP proof's alg must be RS256, ES256 or EdDSA (Ed25519)"
        );
    }
}
