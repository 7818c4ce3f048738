//! The CSRF token of a browser session (API.md, "Browser sessions"): a MAC over the
//! session id under a deployment-wide key.
//!
//! Nothing is stored: every instance derives the same token from the session id it reads
//! in the access or refresh token, and the token dies with its session (a new session has
//! a new id). The key is generated at first start and kept in the database beside the
//! refresh secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use uuid::Uuid;

const CONTEXT: &[u8] = b"tradeauth csrf v1";

/// The deployment-wide CSRF MAC key.
pub struct CsrfSecret(hmac::Key);

impl CsrfSecret {
    pub fn new(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn tag(&self, session: Uuid) -> hmac::Tag {
        hmac::sign(&self.0, &[CONTEXT, session.as_bytes()].concat())
    }

    /// The CSRF token of `session` (43 base64url characters).
    pub fn issue(&self, session: Uuid) -> String {
        B64.encode(self.tag(session))
    }

    /// Whether `presented` is the token of `session`, compared in constant time.
    pub fn matches(&self, session: Uuid, presented: &str) -> bool {
        let Ok(bytes) = B64.decode(presented.trim()) else {
            return false;
        };
        // `verify` compares in constant time.
        hmac::verify(&self.0, &[CONTEXT, session.as_bytes()].concat(), &bytes).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_one_session_and_one_deployment() {
        let s = CsrfSecret::new(&[1u8; 32]);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let t = s.issue(a);
        assert_eq!(t.len(), 43);
        assert!(s.matches(a, &t));
        assert!(!s.matches(b, &t), "another session's token");
        assert!(!CsrfSecret::new(&[2u8; 32]).matches(a, &t), "another key");
        assert!(!s.matches(a, ""));
        assert!(!s.matches(a, "not base64 !"));
        assert!(!s.matches(a, &t[..42]), "truncated");
        assert_eq!(s.issue(a), t, "the same on every instance");
    }
}
