//! The refresh-token format.
//!
//! A refresh token is `base64url(session id ‖ generation ‖ HMAC-SHA256(secret, both))`:
//! 256 bits of keyed MAC output that only the holder of the deployment's refresh secret
//! can produce. Because the token of a generation can be re-derived, nothing about it is
//! ever stored — not even a hash — and the grace-window retry and concurrent refreshes can
//! hand out the session's current token again. The secret is generated at first start and
//! kept in the database beside the signing keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use uuid::Uuid;

const CONTEXT: &[u8] = b"tradeauth refresh v1";
const BODY_LEN: usize = 16 + 8;
const TOKEN_LEN: usize = BODY_LEN + 32;

/// The deployment-wide refresh-token MAC key.
pub struct RefreshSecret(hmac::Key);

impl RefreshSecret {
    pub fn new(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn mac(&self, body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(CONTEXT);
        ctx.update(body);
        ctx.sign()
    }

    /// The token of `session` at `generation`.
    pub fn issue(&self, session: Uuid, generation: i64) -> String {
        let mut buf = Vec::with_capacity(TOKEN_LEN);
        buf.extend_from_slice(session.as_bytes());
        buf.extend_from_slice(&generation.to_be_bytes());
        let tag = self.mac(&buf);
        buf.extend_from_slice(tag.as_ref());
        B64.encode(buf)
    }

    /// The session and generation of a genuine token; `None` for anything else.
    pub fn parse(&self, token: &str) -> Option<(Uuid, i64)> {
        if token.len() > 100 {
            return None;
        }
        let raw = B64.decode(token.trim()).ok()?;
        if raw.len() != TOKEN_LEN {
            return None;
        }
        let (body, tag) = raw.split_at(BODY_LEN);
        // `hmac::verify` compares in constant time.
        let mut signed = Vec::with_capacity(CONTEXT.len() + BODY_LEN);
        signed.extend_from_slice(CONTEXT);
        signed.extend_from_slice(body);
        hmac::verify(&self.0, &signed, tag).ok()?;
        let session = Uuid::from_slice(&body[..16]).ok()?;
        let generation = i64::from_be_bytes(body[16..24].try_into().ok()?);
        Some((session, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = RefreshSecret::new(&[7u8; 32]);
        let sid = Uuid::now_v7();
        let t = s.issue(sid, 3);
        assert_eq!(s.parse(&t), Some((sid, 3)));
        assert_eq!(s.issue(sid, 3), t, "derivation is deterministic");
        assert_ne!(s.issue(sid, 4), t);
        let mut bad = t.clone().into_bytes();
        bad[5] = if bad[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.parse(std::str::from_utf8(&bad).unwrap()), None);
        assert_eq!(RefreshSecret::new(&[8u8; 32]).parse(&t), None);
        assert_eq!(s.parse("garbage"), None);
    }
}
