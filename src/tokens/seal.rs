//! Short-lived sealed values the pages hand to the browser and get back (the sign-in form's
//! second step): AES-256-GCM under a deployment-wide key, with an expiry and a purpose
//! bound in, so a value sealed for one purpose opens for no other and none opens late.
//!
//! The key is generated at first start and kept in the database beside the refresh
//! secret, so any instance opens what another sealed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The deployment-wide sealing key.
pub struct Sealer(LessSafeKey);

impl Sealer {
    pub fn new(bytes: &[u8; 32]) -> Self {
        Self(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"),
        ))
    }

    /// `plaintext`, sealed for `purpose` until `expires_at` (Unix seconds).
    pub fn seal(&self, purpose: &str, expires_at: i64, plaintext: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buf = plaintext.to_vec();
        let aad = [purpose.as_bytes(), &expires_at.to_be_bytes()].concat();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(&aad),
                &mut buf,
            )
            .expect("sealing cannot fail for small inputs");
        let mut out = Vec::with_capacity(8 + NONCE_LEN + buf.len());
        out.extend_from_slice(&expires_at.to_be_bytes());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        B64.encode(out)
    }

    /// The plaintext of a value sealed for `purpose` that has not expired at `now`.
    pub fn open(&self, purpose: &str, now: i64, sealed: &str) -> Option<Vec<u8>> {
        let raw = B64.decode(sealed.trim()).ok()?;
        if raw.len() < 8 + NONCE_LEN + 16 {
            return None;
        }
        let (exp, rest) = raw.split_at(8);
        let expires_at = i64::from_be_bytes(exp.try_into().ok()?);
        if expires_at <= now {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let aad = [purpose.as_bytes(), &expires_at.to_be_bytes()].concat();
        let mut buf = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(&aad), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_purpose_in_time_and_intact() {
        let s = Sealer::new(&[3u8; 32]);
        let sealed = s.seal("login", 1_000, b"secret");
        assert_eq!(
            s.open("login", 999, &sealed).as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(s.open("login", 1_000, &sealed), None, "expired");
        assert_eq!(s.open("other", 999, &sealed), None, "another purpose");
        assert_eq!(Sealer::new(&[4u8; 32]).open("login", 999, &sealed), None);
        let mut raw = B64.decode(&sealed).unwrap();
        raw[0] ^= 1; // a later expiry, forged
        assert_eq!(s.open("login", 999, &B64.encode(&raw)), None);
        assert!(!String::from_utf8_lossy(&B64.decode(&sealed).unwrap()).contains("secret"));
        assert_eq!(s.open("login", 0, "garbage"), None);
    }
}
