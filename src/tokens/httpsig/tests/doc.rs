//! Keeps docs/SIGNING.md honest. Each worked example there (keys, request, signature base,
//! signature) is rendered here from fixed keys; the test fails unless the doc holds the
//! rendering exactly, and the failure message prints the section to paste. Ed25519 and
//! HMAC signatures are deterministic; an ECDSA signature is random, so the doc's one is
//! kept when it verifies. Every example must also pass `check` + `verify` at its `created`.

use super::super::profile::{check, Policy};
use super::super::verify::VerifyingKey;
use super::super::{digest, Algorithm, PublicKey};
use super::rfc::{
    TEST_KEY_ECC_P256_PRIV, TEST_KEY_ECC_P256_PUB, TEST_KEY_ED25519_PRIV, TEST_KEY_ED25519_PUB,
};
use super::{headers, TestRequest};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

const DOC: &str = include_str!("../../../../docs/SIGNING.md");
const KEYID: &str = "ta_4fJ2kQ9xLm3P";
/// 2026-01-01T00:00:00Z.
const CREATED: i64 = 1_767_225_600;
const HMAC_SECRET: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

/// A client's signing function: signature base bytes in, signature bytes out.
type Signer = Box<dyn Fn(&[u8]) -> Vec<u8>>;

struct Example {
    title: &'static str,
    alg: Algorithm,
    key_text: String,
    request: TestRequest,
    body: &'static str,
    components: &'static [&'static str],
    nonce: &'static str,
}

fn pem(label: &str, b64: &str) -> String {
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----",
        lines.join("\n")
    )
}

fn public_key_text(public: &str) -> String {
    let key = PublicKey::from_pem(public).unwrap();
    format!(
        "Public key (upload as `public_key`, PEM or JWK):\n\n```text\n{public}\n```\n\n```json\n{}\n```\n\n\
         `public_key_thumbprint` (RFC 7638): `{}`\n",
        key.to_jwk(),
        key.thumbprint()
    )
}

fn examples() -> Vec<Example> {
    let order =
        r#"{"symbol":"BTC-USD","side":"buy","type":"limit","qty":"0.5","price":"97000.00"}"#;
    vec![
        Example {
            title: "ed25519",
            alg: Algorithm::Ed25519,
            key_text: format!(
                "Private key (RFC 9421 Appendix B.1.4, `test-key-ed25519`; never sent to tradeauth):\n\n```text\n{}\n```\n\n{}",
                pem("PRIVATE KEY", TEST_KEY_ED25519_PRIV),
                public_key_text(TEST_KEY_ED25519_PUB)
            ),
            request: TestRequest::new("GET", "/api/v1/orders?symbol=BTC-USD&limit=50", headers(&[("host", "api.example.com")])),
            body: "",
            components: &["@method", "@authority", "@path", "@query"],
            nonce: "Zt9mQ2xVb1LkR4pN8sWc3A",
        },
        Example {
            title: "ecdsa-p256-sha256",
            alg: Algorithm::EcdsaP256Sha256,
            key_text: format!(
                "Private key (RFC 9421 Appendix B.1.3, `test-key-ecc-p256`; never sent to tradeauth):\n\n```text\n{}\n```\n\n{}",
                pem("EC PRIVATE KEY", TEST_KEY_ECC_P256_PRIV),
                public_key_text(TEST_KEY_ECC_P256_PUB)
            ),
            request: TestRequest::new(
                "POST",
                "/api/v1/orders",
                headers(&[
                    ("host", "api.example.com"),
                    ("content-type", "application/json"),
                    ("content-length", &order.len().to_string()),
                    ("content-digest", &digest::sha256_field(order.as_bytes())),
                    ("idempotency-key", "5f0c7e8a-1b2d-4c3e-9f40-7a6b5c4d3e2f"),
                ]),
            ),
            body: order,
            components: &["@method", "@authority", "@path", "@query", "content-digest", "content-type", "idempotency-key"],
            nonce: "u7HkP0qYd2TfW9xNc5LmEg",
        },
        Example {
            title: "hmac-sha256",
            alg: Algorithm::HmacSha256,
            key_text: format!(
                "Secret (as tradeauth shows it once in `secret`; the HMAC key is the 32 decoded bytes, here 0x00 to 0x1f):\n\n```text\n{}\n```\n",
                URL_SAFE_NO_PAD.encode(HMAC_SECRET)
            ),
            request: TestRequest::new(
                "DELETE",
                "/api/v1/orders/8123?client_order_id=bot-7%2F42",
                headers(&[("host", "api.example.com")]),
            ),
            body: "",
            components: &["@method", "@authority", "@path", "@query"],
            nonce: "Q1wE3rT5yU7iO9pA2sD4fG",
        },
    ]
}

/// The doc's `Signature:` line of the section titled `title`, if there is one.
fn doc_signature(title: &str) -> Option<Vec<u8>> {
    let heading = format!("## Example: {title}\n");
    let section = DOC.split_once(&heading)?.1.split("\n## ").next()?;
    let line = section
        .lines()
        .find(|l| l.starts_with("Signature: sig1=:"))?;
    STANDARD
        .decode(
            line.trim_start_matches("Signature: sig1=:")
                .trim_end_matches(':'),
        )
        .ok()
}

fn render(ex: &mut Example) -> String {
    let params = format!(
        ";created={CREATED};keyid=\"{KEYID}\";nonce=\"{}\";alg=\"{}\";tag=\"tradeauth\"",
        ex.nonce,
        ex.alg.as_str()
    );
    let rng = ring::rand::SystemRandom::new();
    let (sign, key): (Signer, VerifyingKey) = match ex.alg {
        Algorithm::Ed25519 => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(
                &STANDARD.decode(TEST_KEY_ED25519_PRIV).unwrap(),
            )
            .unwrap();
            let key = VerifyingKey::Public(PublicKey::from_pem(TEST_KEY_ED25519_PUB).unwrap());
            (Box::new(move |m| pair.sign(m).as_ref().to_vec()), key)
        }
        Algorithm::EcdsaP256Sha256 => {
            // SEC1: 30 77 02 01 01 04 20 <scalar> … 03 42 00 <04 ‖ x ‖ y>.
            let der = STANDARD.decode(TEST_KEY_ECC_P256_PRIV).unwrap();
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &der[7..39],
                &der[der.len() - 65..],
                &rng,
            )
            .unwrap();
            let key = VerifyingKey::Public(PublicKey::from_pem(TEST_KEY_ECC_P256_PUB).unwrap());
            let kept = doc_signature(ex.title);
            let verifier = key.clone();
            (
                Box::new(move |m| match &kept {
                    Some(sig) if verifier.verify(m, sig) => sig.clone(),
                    _ => pair.sign(&rng, m).unwrap().as_ref().to_vec(),
                }),
                key,
            )
        }
        Algorithm::HmacSha256 => {
            let hkey = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &HMAC_SECRET);
            (
                Box::new(move |m| ring::hmac::sign(&hkey, m).as_ref().to_vec()),
                VerifyingKey::hmac(&HMAC_SECRET),
            )
        }
    };
    let base = ex.request.sign("sig1", ex.components, &params, sign);

    // What the doc shows must be what tradeauth accepts at that moment.
    let checked = check(&ex.request.view(), &Policy::default(), CREATED * 1000).unwrap();
    let accepted = checked.verify(&key).unwrap();
    assert_eq!(accepted.keyid, KEYID);

    let r = &ex.request;
    let mut http = format!("{} {}", r.method, r.path);
    if let Some(q) = &r.query {
        http.push('?');
        http.push_str(q);
    }
    http.push_str(" HTTP/1.1\n");
    for (name, value) in &r.headers {
        let name = name.as_str();
        let shown = match name {
            "host" => "Host".to_owned(),
            other => other
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-"),
        };
        http.push_str(&format!("{shown}: {}\n", value.to_str().unwrap()));
    }
    if !ex.body.is_empty() {
        http.push('\n');
        http.push_str(ex.body);
        http.push('\n');
    }
    format!(
        "## Example: {}\n\n{}\nThe request (`created` is 2026-01-01T00:00:00Z):\n\n```http\n{http}```\n\n\
         The signature base tradeauth builds (no newline after the last line):\n\n```text\n{base}\n```\n",
        ex.title, ex.key_text
    )
}

#[test]
fn the_worked_examples_in_signing_md_are_what_the_code_builds() {
    let stale: Vec<String> = examples()
        .iter_mut()
        .map(render)
        .filter(|section| !DOC.contains(section.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/SIGNING.md is out of date; these sections should read:\n<<<\n{}>>>",
        stale.join("\n")
    );
}
