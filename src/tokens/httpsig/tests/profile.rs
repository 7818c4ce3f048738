//! Every outcome of the `tradeauth` profile: accepted, each missing component and
//! parameter named, the tag rules, the window with the skew's sign, `alg`, and every
//! altered part of a request.

use super::super::digest;
use super::super::profile::{check, ExpiredReason, InvalidReason, Policy, Rejection};
use super::super::verify::VerifyingKey;
use super::super::{Algorithm, PublicKey};
use super::{headers, TestRequest};
use ring::signature::{Ed25519KeyPair, KeyPair};

/// 2026-01-01T00:00:00Z.
pub(super) const NOW_S: i64 = 1_767_225_600;
pub(super) const NOW_MS: i64 = NOW_S * 1000;
pub(super) const KEYID: &str = "ta_4fJ2kQ9xLm3P";
pub(super) const ALWAYS: [&str; 4] = ["@method", "@authority", "@path", "@query"];

pub(super) fn ed25519() -> (Ed25519KeyPair, VerifyingKey) {
    let pair = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
    let public = PublicKey::from_stored(Algorithm::Ed25519, pair.public_key().as_ref()).unwrap();
    (pair, VerifyingKey::Public(public))
}

pub(super) fn params(created: i64) -> String {
    format!(
        ";created={created};keyid=\"{KEYID}\";nonce=\"bm9uY2Utb2YtOTYtYml0cw\";tag=\"tradeauth\""
    )
}

pub(super) fn get_request() -> TestRequest {
    TestRequest::new(
        "GET",
        "/api/v1/orders?symbol=BTC-USD&limit=50",
        headers(&[]),
    )
}

pub(super) fn post_request() -> TestRequest {
    let body = br#"{"symbol":"BTC-USD","side":"buy","qty":"0.5"}"#;
    TestRequest::new(
        "POST",
        "/api/v1/orders",
        headers(&[
            ("content-type", "application/json"),
            ("content-length", &body.len().to_string()),
            ("content-digest", &digest::sha256_field(body)),
            ("idempotency-key", "order-1"),
        ]),
    )
}

pub(super) const POST_COMPONENTS: [&str; 7] = [
    "@method",
    "@authority",
    "@path",
    "@query",
    "content-digest",
    "content-type",
    "idempotency-key",
];

/// Signs with Ed25519 and runs both steps at `NOW_MS`.
pub(super) fn run(
    req: &mut TestRequest,
    components: &[&str],
    params: &str,
) -> Result<super::super::Accepted, Rejection> {
    let (pair, key) = ed25519();
    req.sign("sig1", components, params, |m| {
        pair.sign(m).as_ref().to_vec()
    });
    let checked = check(&req.view(), &Policy::default(), NOW_MS)?;
    assert_eq!(checked.keyid(), KEYID);
    checked.verify(&key)
}

pub(super) fn missing(names: &[&str]) -> Rejection {
    Rejection::Incomplete {
        missing: names.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn a_correct_get_is_accepted_with_its_replay_key_and_expiry() {
    let mut req = get_request();
    let accepted = run(&mut req, &ALWAYS, &params(NOW_S)).unwrap();
    assert_eq!(accepted.keyid, KEYID);
    assert_eq!(accepted.label, "sig1");
    assert_eq!(accepted.nonce.as_deref(), Some("bm9uY2Utb2YtOTYtYml0cw"));
    assert_eq!(accepted.content_digest, None);
    assert_eq!(accepted.replay_expires_at_ms, NOW_MS + 30_000 + 1);
    assert_eq!(accepted.replay_ttl_ms(NOW_MS), 30_001);
    // The same signature gives the same replay key; another nonce another one.
    let again = check(&req.view(), &Policy::default(), NOW_MS + 10).unwrap();
    assert_eq!(
        again.verify(&ed25519().1).unwrap().replay_key,
        accepted.replay_key
    );
    let mut other = get_request();
    let other = run(
        &mut other,
        &ALWAYS,
        &params(NOW_S).replace("bm9uY2", "b3RoZX"),
    )
    .unwrap();
    assert_ne!(other.replay_key, accepted.replay_key);
}

#[test]
fn a_correct_post_with_extra_components_is_accepted_by_every_algorithm() {
    // Ed25519
    let mut req = post_request();
    let accepted = run(&mut req, &POST_COMPONENTS, &params(NOW_S)).unwrap();
    let body = br#"{"symbol":"BTC-USD","side":"buy","qty":"0.5"}"#;
    let digest_value = accepted.content_digest.unwrap();
    assert_eq!(digest_value, digest::sha256_field(body));
    assert_eq!(digest::check(&digest_value, body), Ok(()));
    assert_eq!(
        digest::check(&digest_value, b"{}"),
        Err(digest::DigestError::Mismatch)
    );

    // ECDSA P-256 (raw r‖s) and HMAC-SHA256, with `alg` given.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let ec = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let ec_key = VerifyingKey::Public(
        PublicKey::from_stored(Algorithm::EcdsaP256Sha256, ec.public_key().as_ref()).unwrap(),
    );
    let mut req = post_request();
    let p = format!("{};alg=\"ecdsa-p256-sha256\"", params(NOW_S));
    req.sign("sig1", &POST_COMPONENTS, &p, |m| {
        ec.sign(&rng, m).unwrap().as_ref().to_vec()
    });
    let checked = check(&req.view(), &Policy::default(), NOW_MS).unwrap();
    assert_eq!(checked.alg(), Some("ecdsa-p256-sha256"));
    checked.verify(&ec_key).unwrap();

    let secret = [42u8; 32];
    let hkey = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let mut req = post_request();
    let p = format!("{};alg=\"hmac-sha256\"", params(NOW_S));
    req.sign("sig1", &POST_COMPONENTS, &p, |m| {
        ring::hmac::sign(&hkey, m).as_ref().to_vec()
    });
    let checked = check(&req.view(), &Policy::default(), NOW_MS).unwrap();
    checked
        .clone()
        .verify(&VerifyingKey::hmac(&secret))
        .unwrap();
    let wrong = checked
        .verify(&VerifyingKey::hmac(&[43u8; 32]))
        .unwrap_err();
    assert!(matches!(
        wrong,
        Rejection::Invalid {
            reason: InvalidReason::BadSignature,
            ..
        }
    ));
}

#[test]
fn each_missing_required_component_is_named() {
    for dropped in ALWAYS {
        let kept: Vec<&str> = ALWAYS.iter().copied().filter(|c| *c != dropped).collect();
        let mut req = get_request();
        assert_eq!(
            run(&mut req, &kept, &params(NOW_S)).unwrap_err(),
            missing(&[dropped])
        );
    }
    for dropped in ["content-digest", "content-type"] {
        let kept: Vec<&str> = POST_COMPONENTS
            .iter()
            .copied()
            .filter(|c| *c != dropped)
            .collect();
        let mut req = post_request();
        assert_eq!(
            run(&mut req, &kept, &params(NOW_S)).unwrap_err(),
            missing(&[dropped])
        );
    }
    // A body with only the four: both body components named, in the profile's order.
    let mut req = post_request();
    assert_eq!(
        run(&mut req, &ALWAYS, &params(NOW_S)).unwrap_err(),
        missing(&["content-digest", "content-type"])
    );
    // Nothing covered, no parameters but the tag: everything, components first.
    let mut req = post_request();
    assert_eq!(
        run(&mut req, &[], ";tag=\"tradeauth\"").unwrap_err(),
        missing(&[
            "@method",
            "@authority",
            "@path",
            "@query",
            "content-digest",
            "content-type",
            "keyid",
            "created"
        ])
    );
}

#[test]
fn each_missing_required_parameter_is_named() {
    let mut req = get_request();
    let no_keyid = format!(";created={NOW_S};tag=\"tradeauth\"");
    assert_eq!(
        run(&mut req, &ALWAYS, &no_keyid).unwrap_err(),
        missing(&["keyid"])
    );
    let mut req = get_request();
    let no_created = format!(";keyid=\"{KEYID}\";tag=\"tradeauth\"");
    assert_eq!(
        run(&mut req, &ALWAYS, &no_created).unwrap_err(),
        missing(&["created"])
    );
}

#[test]
fn a_covered_field_the_request_lacks_is_named() {
    let mut req = get_request();
    let mut components = ALWAYS.to_vec();
    components.push("idempotency-key");
    // Sign with the header present, then drop it as a proxy might.
    req.headers.insert("idempotency-key", "k1".parse().unwrap());
    let (pair, _) = ed25519();
    req.sign("sig1", &components, &params(NOW_S), |m| {
        pair.sign(m).as_ref().to_vec()
    });
    req.headers.remove("idempotency-key");
    let err = check(&req.view(), &Policy::default(), NOW_MS).unwrap_err();
    assert_eq!(err, missing(&["idempotency-key"]));
}

#[test]
fn a_request_without_signature_fields_or_tag() {
    let req = get_request();
    assert_eq!(
        check(&req.view(), &Policy::default(), NOW_MS).unwrap_err(),
        missing(&["signature-input"])
    );

    let mut req = get_request();
    let untagged = format!(";created={NOW_S};keyid=\"{KEYID}\"");
    assert_eq!(
        run(&mut req, &ALWAYS, &untagged).unwrap_err(),
        missing(&["tag"])
    );

    let mut req = get_request();
    let (pair, _) = ed25519();
    req.sign("sig1", &ALWAYS, &params(NOW_S), |m| {
        pair.sign(m).as_ref().to_vec()
    });
    req.headers.remove("signature");
    assert_eq!(
        check(&req.view(), &Policy::default(), NOW_MS).unwrap_err(),
        missing(&["signature"])
    );
}

#[test]
fn signatures_with_another_tag_are_ignored_and_two_with_ours_refused() {
    let (pair, key) = ed25519();
    let sign = |m: &[u8]| pair.sign(m).as_ref().to_vec();
    // Another system's signature first (its signature bytes are garbage: never checked).
    let mut req = get_request();
    req.sign(
        "other",
        &["@method"],
        ";created=1;keyid=\"x\";tag=\"someone-else\"",
        |_| vec![0; 8],
    );
    req.sign("mine", &ALWAYS, &params(NOW_S), sign);
    let accepted = check(&req.view(), &Policy::default(), NOW_MS)
        .unwrap()
        .verify(&key)
        .unwrap();
    assert_eq!(accepted.label, "mine");

    let mut req = get_request();
    req.sign("a", &ALWAYS, &params(NOW_S), sign);
    req.sign("b", &ALWAYS, &params(NOW_S), sign);
    let err = check(&req.view(), &Policy::default(), NOW_MS).unwrap_err();
    assert_eq!(
        err,
        Rejection::Invalid {
            reason: InvalidReason::DuplicateTag,
            signature_base: None
        }
    );
    assert_eq!((err.code(), err.status()), ("signature_invalid", 401));
}

#[test]
fn the_window_and_the_sign_of_the_skew() {
    let cases = [
        (NOW_S - 31, Some((ExpiredReason::TooOld, -31_000))),
        (NOW_S - 30, None),
        (NOW_S + 5, None),
        (NOW_S + 6, Some((ExpiredReason::FromFuture, 6_000))),
    ];
    for (created, expected) in cases {
        let mut req = get_request();
        let got = run(&mut req, &ALWAYS, &params(created));
        match expected {
            None => assert!(got.is_ok(), "created {created}: {got:?}"),
            Some((reason, skew_ms)) => {
                let err = got.unwrap_err();
                assert_eq!(
                    err,
                    Rejection::Expired {
                        server_time_ms: NOW_MS,
                        skew_ms,
                        reason
                    }
                );
                assert_eq!((err.code(), err.status()), ("signature_expired", 401));
            }
        }
    }
    // A clock 700 ms ahead of created: the skew keeps the milliseconds.
    let mut req = get_request();
    req.sign("sig1", &ALWAYS, &params(NOW_S - 40), |m| {
        ed25519().0.sign(m).as_ref().to_vec()
    });
    let err = check(&req.view(), &Policy::default(), NOW_MS + 700).unwrap_err();
    assert!(matches!(
        err,
        Rejection::Expired {
            skew_ms: -40_700,
            ..
        }
    ));
}

#[test]
fn expires_narrows_the_window_and_never_widens_it() {
    // Passed `expires`: refused although `created` is fresh.
    let mut req = get_request();
    let p = format!("{};expires={}", params(NOW_S - 10), NOW_S);
    assert_eq!(
        run(&mut req, &ALWAYS, &p).unwrap_err(),
        Rejection::Expired {
            server_time_ms: NOW_MS,
            skew_ms: -10_000,
            reason: ExpiredReason::PastExpires
        }
    );
    // A near `expires` shortens the replay entry's life to it.
    let mut req = get_request();
    let p = format!("{};expires={}", params(NOW_S), NOW_S + 3);
    assert_eq!(
        run(&mut req, &ALWAYS, &p).unwrap().replay_expires_at_ms,
        (NOW_S + 3) * 1000
    );
    // A far `expires` does not rescue an old `created`.
    let mut req = get_request();
    let p = format!("{};expires={}", params(NOW_S - 60), NOW_S + 3600);
    assert!(matches!(
        run(&mut req, &ALWAYS, &p).unwrap_err(),
        Rejection::Expired {
            reason: ExpiredReason::TooOld,
            skew_ms: -60_000,
            ..
        }
    ));
}
