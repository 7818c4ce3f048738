//! The profile refusing what was changed or malformed after signing: a wrong `alg`, every
//! altered part of a request, query bytes kept as received, malformed fields and
//! `Content-Digest`. The accepted cases, the tag and the window are in `profile`.

use super::super::digest;
use super::super::profile::{check, InvalidReason, Policy, Rejection};
use super::profile::*;
use super::{headers, TestRequest};

#[test]
fn an_alg_that_is_not_the_keys_is_invalid_with_the_base() {
    let mut req = get_request();
    let p = format!("{};alg=\"hmac-sha256\"", params(NOW_S));
    let err = run(&mut req, &ALWAYS, &p).unwrap_err();
    let Rejection::Invalid {
        reason,
        signature_base: Some(base),
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(reason, InvalidReason::AlgorithmMismatch);
    assert!(base.ends_with(";alg=\"hmac-sha256\""), "{base}");
    let mut req = get_request();
    run(
        &mut req,
        &ALWAYS,
        &format!("{};alg=\"ed25519\"", params(NOW_S)),
    )
    .unwrap();
}

/// Signs `req`, applies `alter`, and expects `signature_invalid` with a base that shows
/// `shown` (what the server saw).
fn altered(
    mut req: TestRequest,
    components: &[&str],
    alter: impl Fn(&mut TestRequest),
    shown: &str,
) {
    let (pair, key) = ed25519();
    req.sign("sig1", components, &params(NOW_S), |m| {
        pair.sign(m).as_ref().to_vec()
    });
    check(&req.view(), &Policy::default(), NOW_MS)
        .unwrap()
        .verify(&key)
        .unwrap();
    alter(&mut req);
    let err = check(&req.view(), &Policy::default(), NOW_MS)
        .unwrap()
        .verify(&key)
        .unwrap_err();
    let Rejection::Invalid {
        reason: InvalidReason::BadSignature,
        signature_base: Some(base),
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(base.contains(shown), "{base}");
}

#[test]
fn altered_method_authority_path_query_body_digest_or_extra_field_is_invalid() {
    altered(
        get_request(),
        &ALWAYS,
        |r| r.method = "DELETE".into(),
        "\"@method\": DELETE\n",
    );
    altered(
        get_request(),
        &ALWAYS,
        |r| r.authority = "evil.example".into(),
        "\"@authority\": evil.example\n",
    );
    altered(
        get_request(),
        &ALWAYS,
        |r| r.path = "/api/v1/withdrawals".into(),
        "\"@path\": /api/v1/withdrawals\n",
    );
    altered(
        get_request(),
        &ALWAYS,
        |r| r.query = Some("symbol=BTC-USD&limit=5000".into()),
        "\"@query\": ?symbol=BTC-USD&limit=5000\n",
    );
    let other_digest = digest::sha256_field(b"{\"qty\":\"500\"}");
    let shown = format!("\"content-digest\": {other_digest}\n");
    altered(
        post_request(),
        &POST_COMPONENTS,
        |r| {
            r.headers
                .insert("content-digest", other_digest.parse().unwrap());
        },
        &shown,
    );
    altered(
        post_request(),
        &POST_COMPONENTS,
        |r| {
            r.headers
                .insert("idempotency-key", "order-2".parse().unwrap());
        },
        "\"idempotency-key\": order-2\n",
    );
}

#[test]
fn query_bytes_are_never_reordered_or_re_encoded() {
    // Signed as sent: `b=2&a=1` with a percent-encoded tilde. Any normalisation by the
    // server would change the base and break the signature, so each variant must fail.
    let req = TestRequest::new("GET", "/api/v1/orders?b=2&a=1&note=x%7Ey+z", headers(&[]));
    let (pair, key) = ed25519();
    let mut signed = req.clone();
    let base = signed.sign("sig1", &ALWAYS, &params(NOW_S), |m| {
        pair.sign(m).as_ref().to_vec()
    });
    assert!(
        base.contains("\"@query\": ?b=2&a=1&note=x%7Ey+z\n"),
        "{base}"
    );
    check(&signed.view(), &Policy::default(), NOW_MS)
        .unwrap()
        .verify(&key)
        .unwrap();
    for variant in [
        "a=1&b=2&note=x%7Ey+z",
        "b=2&a=1&note=x~y+z",
        "b=2&a=1&note=x%7ey+z",
        "b=2&a=1&note=x%7Ey%20z",
    ] {
        let mut changed = signed.clone();
        changed.query = Some(variant.into());
        let err = check(&changed.view(), &Policy::default(), NOW_MS)
            .unwrap()
            .verify(&key)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Rejection::Invalid {
                    reason: InvalidReason::BadSignature,
                    ..
                }
            ),
            "{variant}"
        );
    }
}

#[test]
fn malformed_fields_and_unsupported_components_are_invalid() {
    let invalid = |req: &TestRequest| check(&req.view(), &Policy::default(), NOW_MS).unwrap_err();
    let with = |input: &str, sig: &str| {
        TestRequest::new(
            "GET",
            "/x",
            headers(&[("signature-input", input), ("signature", sig)]),
        )
    };
    for (input, sig) in [
        ("sig1=(\"@method\"", "sig1=:AAAA:"), // not a dictionary
        ("sig1=\"@method\";tag=\"tradeauth\"", "sig1=:AAAA:"), // not an inner list
        ("sig1=(@method);tag=\"tradeauth\"", "sig1=:AAAA:"), // a token, not a string
        ("sig1=(\"@Method\");tag=\"tradeauth\"", "sig1=:AAAA:"), // not lower-case
        (
            "sig1=(\"@method\" \"@method\");tag=\"tradeauth\"",
            "sig1=:AAAA:",
        ), // covered twice
        (
            "sig1=(\"@method\");created=\"1\";tag=\"tradeauth\"",
            "sig1=:AAAA:",
        ), // created a string
        (
            "sig1=(\"@method\");keyid=1;tag=\"tradeauth\"",
            "sig1=:AAAA:",
        ), // keyid an integer
        ("sig1=(\"@method\");tag=\"tradeauth\"", "sig2=:AAAA:"), // no such label
        ("sig1=(\"@method\");tag=\"tradeauth\"", "sig1=\"AAAA\""), // not bytes
    ] {
        let err = invalid(&with(input, sig));
        assert!(
            matches!(
                err,
                Rejection::Invalid {
                    reason: InvalidReason::Malformed(_),
                    signature_base: None
                }
            ),
            "{input} / {sig}: {err:?}"
        );
    }
    for (input, name) in [
        ("sig1=(\"@status\");tag=\"tradeauth\"", "@status"),
        (
            "sig1=(\"@query-param\";name=\"a\");tag=\"tradeauth\"",
            "@query-param",
        ),
        (
            "sig1=(\"content-type\";sf);tag=\"tradeauth\"",
            "content-type",
        ),
    ] {
        assert_eq!(
            invalid(&with(input, "sig1=:AAAA:")),
            Rejection::Invalid {
                reason: InvalidReason::UnsupportedComponent(name.into()),
                signature_base: None
            }
        );
    }
}

#[test]
fn a_content_digest_without_a_supported_algorithm_or_malformed() {
    let mut req = post_request();
    req.headers.insert(
        "content-digest",
        "md5=:AAAAAAAAAAAAAAAAAAAAAA==:".parse().unwrap(),
    );
    assert_eq!(
        run(&mut req, &POST_COMPONENTS, &params(NOW_S)).unwrap_err(),
        missing(&["content-digest"])
    );
    let mut req = post_request();
    req.headers
        .insert("content-digest", "sha-256=:AAAA:".parse().unwrap());
    assert_eq!(
        run(&mut req, &POST_COMPONENTS, &params(NOW_S)).unwrap_err(),
        Rejection::Invalid {
            reason: InvalidReason::MalformedContentDigest,
            signature_base: None
        }
    );
}

#[test]
fn content_digest_parsing_and_checking() {
    use digest::{check as digest_check, ContentDigest, DigestError};
    let body = b"{\"hello\": \"world\"}";
    let both = format!(
        "{}, {}",
        digest::sha256_field(body),
        digest::sha512_field(body)
    );
    assert_eq!(digest_check(&both, body), Ok(()));
    assert_eq!(
        digest_check(&both, b"{\"hello\": \"world!\"}"),
        Err(DigestError::Mismatch)
    );
    // One wrong digest among two is a mismatch.
    let mixed = format!(
        "{}, {}",
        digest::sha256_field(body),
        digest::sha512_field(b"x")
    );
    assert_eq!(digest_check(&mixed, body), Err(DigestError::Mismatch));
    // Unknown algorithms are skipped, not trusted.
    let with_md5 = format!("md5=:AAAA:, {}", digest::sha256_field(body));
    assert_eq!(digest_check(&with_md5, body), Ok(()));
    assert_eq!(
        ContentDigest::parse("md5=:AAAA:"),
        Err(DigestError::NoSupportedAlgorithm)
    );
    assert_eq!(
        ContentDigest::parse("sha-256=abc"),
        Err(DigestError::Malformed)
    );
    assert_eq!(
        ContentDigest::parse("sha-256=:AAAA:"),
        Err(DigestError::Malformed)
    );
    assert_eq!(ContentDigest::parse("sha-256"), Err(DigestError::Malformed));
}

#[test]
fn incomplete_maps_to_400() {
    let err = missing(&["keyid"]);
    assert_eq!((err.code(), err.status()), ("signature_incomplete", 400));
}
