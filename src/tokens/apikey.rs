//! The API-key format: `ta_<public id>_<secret><checksum>`.
//!
//! The fixed `ta_` prefix lets secret scanners recognise a leaked key; the checksum (CRC32
//! of everything before it, 6 base62 characters) lets the server refuse a mistyped key
//! without a database lookup. The public id (12 base62 characters) finds the record; the
//! secret (43 base62 characters, ≥ 256 bits) is stored only as its SHA-256 — a fast hash
//! is right here because the secret is random, not chosen by a person.

use rand::Rng;
use ring::digest::{digest, SHA256};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const PREFIX: &str = "ta_";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 43;
const CHECK_LEN: usize = 6;

fn random_base62(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// A freshly made key: the full text (shown once) and what is stored.
pub struct NewKey {
    pub key: String,
    pub public_id: String,
    pub secret_hash: Vec<u8>,
}

pub fn generate() -> NewKey {
    let public_id = random_base62(ID_LEN);
    let secret = random_base62(SECRET_LEN);
    let body = format!("{PREFIX}{public_id}_{secret}");
    let key = format!("{body}{}", checksum(&body));
    NewKey {
        key,
        public_id,
        secret_hash: hash_secret(&secret),
    }
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

/// A key that passed the format and checksum checks.
pub struct ParsedKey<'a> {
    pub public_id: &'a str,
    pub secret: &'a str,
}

/// Splits and checks a presented key; `None` for anything malformed or mistyped.
pub fn parse(key: &str) -> Option<ParsedKey<'_>> {
    let rest = key.strip_prefix(PREFIX)?;
    if rest.len() != ID_LEN + 1 + SECRET_LEN + CHECK_LEN || !rest.is_ascii() {
        return None;
    }
    let (public_id, tail) = rest.split_at(ID_LEN);
    let tail = tail.strip_prefix('_')?;
    let (secret, check) = tail.split_at(SECRET_LEN);
    let all_base62 = |s: &str| s.bytes().all(|b| ALPHABET.contains(&b));
    if !all_base62(public_id) || !all_base62(secret) || !all_base62(check) {
        return None;
    }
    let body = &key[..key.len() - CHECK_LEN];
    (checksum(body) == check).then_some(ParsedKey { public_id, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_typos_are_caught() {
        let k = generate();
        assert!(k.key.starts_with("ta_"));
        let p = parse(&k.key).expect("a fresh key parses");
        assert_eq!(p.public_id, k.public_id);
        assert_eq!(hash_secret(p.secret), k.secret_hash);
        // One changed character anywhere is refused without a lookup.
        for i in 3..k.key.len() {
            let mut b = k.key.clone().into_bytes();
            if b[i] == b'_' {
                continue;
            }
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            assert!(
                parse(std::str::from_utf8(&b).unwrap()).is_none(),
                "typo at {i} accepted"
            );
        }
        assert!(parse("ta_short").is_none());
        assert!(parse(&k.key.replace("ta_", "tb_")).is_none());
    }
}
