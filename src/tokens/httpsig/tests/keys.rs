//! Key material: PEM and JWK parsing and their errors, P-256 point validation, RFC 7638
//! thumbprints, HMAC secrets, and the AEAD that keeps them at rest.

use super::super::keys::{
    jwk_thumbprint, open_secret, seal_secret, HmacSecret, KeyError, OpenError, PublicKey,
};
use super::super::Algorithm;
use super::rfc::{TEST_KEY_ECC_P256_PUB, TEST_KEY_ED25519_PUB};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;

/// RFC 9421 Appendix B.1.1's RSA public key (from pyauth/http-message-signatures'
/// `test/test-key-rsa-pss.pem`): a valid SPKI of a type this profile does not take.
const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----";

#[test]
fn rfc_7638_section_3_1_thumbprint() {
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    // Members given out of order on purpose: the function sorts them.
    assert_eq!(
        jwk_thumbprint(&[("n", n), ("kty", "RSA"), ("e", "AQAB")]),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn okp_and_ec_thumbprints_of_published_examples() {
    // RFC 8037 Appendix A.3.
    let okp = PublicKey::from_jwk(&json!({
        "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }))
    .unwrap();
    assert_eq!(
        okp.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    // The `calculateJwkThumbprint` example of the `jose` npm package's documentation.
    let ec = PublicKey::from_jwk(&json!({
        "kty": "EC", "crv": "P-256",
        "x": "jJ6Flys3zK9jUhnOHf6G49Dyp5hah6CNP84-gY-n9eo",
        "y": "nhI6iD5eFXgBTLt_1p3aip-5VbZeMhxeFSpjfEAf7Ww"
    }))
    .unwrap();
    assert_eq!(
        ec.thumbprint(),
        "w9eYdC6_s_tLQ8lH6PUpc0mddazaqtPgeC2IgWDiqY8"
    );
}

#[test]
fn pem_and_jwk_of_the_same_key_agree() {
    for (pem, alg) in [
        (TEST_KEY_ED25519_PUB, Algorithm::Ed25519),
        (TEST_KEY_ECC_P256_PUB, Algorithm::EcdsaP256Sha256),
    ] {
        let from_pem = PublicKey::parse_upload(&json!(pem), alg).unwrap();
        let mut jwk = from_pem.to_jwk();
        jwk["kid"] = json!("ignored");
        let from_jwk = PublicKey::parse_upload(&jwk, alg).unwrap();
        assert_eq!(from_pem, from_jwk);
        assert_eq!(from_pem.thumbprint(), from_jwk.thumbprint());
        assert_eq!(from_pem.algorithm(), alg);
        let stored = PublicKey::from_stored(alg, from_pem.to_bytes()).unwrap();
        assert_eq!(stored, from_pem);
    }
    // PEM with Windows line ends and surrounding blanks is still one block.
    let crlf = format!("\n{}\n", TEST_KEY_ED25519_PUB.replace('\n', "\r\n"));
    PublicKey::from_pem(&crlf).unwrap();
    let jwk = PublicKey::from_pem(TEST_KEY_ED25519_PUB).unwrap().to_jwk();
    assert_eq!(
        jwk,
        json!({"crv": "Ed25519", "kty": "OKP", "x": "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"})
    );
}

#[test]
fn upload_errors_are_precise() {
    let ed = Algorithm::Ed25519;
    let ec = Algorithm::EcdsaP256Sha256;
    let p256 = PublicKey::from_pem(TEST_KEY_ECC_P256_PUB).unwrap().to_jwk();
    let cases: Vec<(serde_json::Value, Algorithm, KeyError)> = vec![
        (json!(42), ed, KeyError::WrongShape),
        (json!("not a pem"), ed, KeyError::BadPem),
        (
            json!("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----"),
            ed,
            KeyError::BadBase64,
        ),
        (json!(RSA_PUB), ed, KeyError::Unsupported),
        (
            json!(TEST_KEY_ED25519_PUB),
            ec,
            KeyError::AlgorithmMismatch {
                expected: "ecdsa-p256-sha256",
                found: "ed25519",
            },
        ),
        (
            json!({"crv": "Ed25519", "x": "AAAA"}),
            ed,
            KeyError::MissingMember("kty"),
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519"}),
            ed,
            KeyError::MissingMember("x"),
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
            ed,
            KeyError::WrongLength("x"),
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "*"}),
            ed,
            KeyError::BadBase64,
        ),
        (
            json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"}),
            ed,
            KeyError::Unsupported,
        ),
        (
            json!({"kty": "RSA", "crv": "P-256"}),
            ed,
            KeyError::Unsupported,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs", "d": "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"}),
            ed,
            KeyError::PrivateMaterial,
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": p256["x"]}),
            ec,
            KeyError::MissingMember("y"),
        ),
        (
            json!({"kty": "EC", "crv": "P-384", "x": p256["x"], "y": p256["y"]}),
            ec,
            KeyError::Unsupported,
        ),
    ];
    for (value, alg, expected) in cases {
        assert_eq!(
            PublicKey::parse_upload(&value, alg),
            Err(expected.clone()),
            "{value}"
        );
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn a_p256_point_off_the_curve_is_refused() {
    let jwk = PublicKey::from_pem(TEST_KEY_ECC_P256_PUB).unwrap().to_jwk();
    let mut y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    y[31] ^= 1;
    let bad = json!({"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": URL_SAFE_NO_PAD.encode(&y)});
    assert_eq!(PublicKey::from_jwk(&bad), Err(KeyError::NotOnCurve));
    // Coordinates ≥ p (all ones) are refused too.
    let ff = URL_SAFE_NO_PAD.encode([0xff; 32]);
    let big = json!({"kty": "EC", "crv": "P-256", "x": ff, "y": ff});
    assert_eq!(PublicKey::from_jwk(&big), Err(KeyError::NotOnCurve));
    // The same in PEM: flip a bit of the point's last byte.
    let der_b64: String = TEST_KEY_ECC_P256_PUB
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(der_b64)
        .unwrap();
    *der.last_mut().unwrap() ^= 1;
    assert_eq!(PublicKey::from_spki_der(&der), Err(KeyError::NotOnCurve));
    // A compressed point is not accepted (uncompressed only).
    let mut compressed = der[..26].to_vec();
    compressed[1] = 0x39;
    compressed[25 - 1] = 0x22;
    compressed.extend_from_slice(&[0x02; 33]);
    assert_eq!(
        PublicKey::from_spki_der(&compressed),
        Err(KeyError::Unsupported)
    );
}

#[test]
fn hmac_secrets_are_32_random_bytes_in_base64url() {
    let a = HmacSecret::generate();
    let b = HmacSecret::generate();
    assert_ne!(a.as_bytes(), b.as_bytes());
    let shown = a.to_display();
    assert_eq!(shown.len(), 43);
    assert!(!shown.contains('='));
    assert_eq!(URL_SAFE_NO_PAD.decode(&shown).unwrap(), a.as_bytes());
    assert_eq!(format!("{a:?}"), "HmacSecret([redacted])");
    assert!(!format!("{:?}", super::super::VerifyingKey::hmac(a.as_bytes())).contains(&shown));
}

#[test]
fn sealed_secrets_round_trip_and_detect_tampering() {
    let kek = [9u8; 32];
    let secret = HmacSecret::from_bytes([5u8; 32]);
    let sealed = seal_secret(&kek, b"ta_4fJ2kQ9xLm3P", secret.as_bytes());
    assert_eq!(sealed.len(), 12 + 32 + 16);
    assert_eq!(
        open_secret(&kek, b"ta_4fJ2kQ9xLm3P", &sealed).unwrap(),
        secret.as_bytes()
    );
    // A fresh nonce each time.
    assert_ne!(
        seal_secret(&kek, b"ta_4fJ2kQ9xLm3P", secret.as_bytes()),
        sealed
    );
    for i in [0, 12, sealed.len() - 1] {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x80;
        assert_eq!(
            open_secret(&kek, b"ta_4fJ2kQ9xLm3P", &tampered),
            Err(OpenError),
            "byte {i}"
        );
    }
    assert_eq!(open_secret(&kek, b"ta_other", &sealed), Err(OpenError));
    assert_eq!(
        open_secret(&[8u8; 32], b"ta_4fJ2kQ9xLm3P", &sealed),
        Err(OpenError)
    );
    assert_eq!(
        open_secret(&kek, b"ta_4fJ2kQ9xLm3P", &sealed[..27]),
        Err(OpenError)
    );
}
