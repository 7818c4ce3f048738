//! Micro-benchmarks of the hot pieces: access-token verification per algorithm (cached
//! and uncached), the revocation lookup, refresh-token derivation and parsing.
//! `cargo bench --bench hot_path`.

use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use tradeauth::domain::Tier;
use tradeauth::store::revocation::RevocationList;
use tradeauth::store::Revoked;
use tradeauth::tokens::keys::{generate, KeySet};
use tradeauth::tokens::{JwtAlg, KeyRing, KeyState, RefreshSecret, TokenIssuer};
use uuid::Uuid;

fn issuer(alg: JwtAlg) -> TokenIssuer {
    let now = Utc::now();
    let set = match alg {
        JwtAlg::HS256 => KeySet::from_secret(b"a-benchmark-secret-of-32-bytes!!"),
        _ => {
            KeySet::from_stored(alg, &[generate(alg, KeyState::Active, now).unwrap()], now).unwrap()
        }
    };
    TokenIssuer::new(
        Arc::new(KeyRing::new(alg, set)),
        "tradeauth".into(),
        "tradeauth-api".into(),
    )
}

fn token_verification(c: &mut Criterion) {
    for alg in [JwtAlg::EdDSA, JwtAlg::ES256, JwtAlg::RS256, JwtAlg::HS256] {
        let issuer = issuer(alg);
        let now = Utc::now();
        let (token, _) = issuer
            .sign(
                Uuid::new_v4(),
                Uuid::new_v4(),
                Tier::TRADER,
                now,
                now + chrono::Duration::minutes(15),
            )
            .unwrap();
        c.bench_function(
            &format!("verify {} (signature checked)", alg.as_str()),
            |b| b.iter(|| issuer.verify_uncached(black_box(&token)).unwrap()),
        );
        issuer.verify(&token).unwrap();
        c.bench_function(
            &format!("verify {} (already verified)", alg.as_str()),
            |b| b.iter(|| issuer.verify(black_box(&token)).unwrap()),
        );
    }
}

fn revocation_lookup(c: &mut Criterion) {
    let list = RevocationList::default();
    let until = Utc::now() + chrono::Duration::hours(1);
    for _ in 0..100_000 {
        list.insert(Revoked::Jti(Uuid::new_v4()), until);
        list.insert(Revoked::Sid(Uuid::new_v4()), until);
    }
    let (jti, sid) = (Uuid::new_v4(), Uuid::new_v4());
    c.bench_function("revocation lookup (miss, 200k entries)", |b| {
        b.iter(|| list.is_revoked(black_box(&jti), black_box(&sid)))
    });
    list.insert(Revoked::Sid(sid), until);
    c.bench_function("revocation lookup (hit, 200k entries)", |b| {
        b.iter(|| list.is_revoked(black_box(&jti), black_box(&sid)))
    });
}

fn refresh_tokens(c: &mut Criterion) {
    let secret = RefreshSecret::new(&[7u8; 32]);
    let sid = Uuid::now_v7();
    c.bench_function("refresh token derivation", |b| {
        b.iter(|| secret.issue(black_box(sid), black_box(42)))
    });
    let token = secret.issue(sid, 42);
    c.bench_function("refresh token parse + MAC check", |b| {
        b.iter(|| secret.parse(black_box(&token)).unwrap())
    });
}

criterion_group!(
    benches,
    token_verification,
    revocation_lookup,
    refresh_tokens
);
criterion_main!(benches);
