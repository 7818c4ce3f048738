//! RFC 9421 Appendix B.2.4, B.2.5 and B.2.6, byte for byte. The texts (test request and
//! response, keys, bases, signatures) are those of RFC 9421 Appendix B, as carried in the
//! test data of remitly-oss/httpsig-go (`testdata/rfc-test-request.txt`,
//! `b24_response_sigbase.txt`, `b25_request_sigbase.txt`, `b26_request_sigbase.txt`, the
//! `*_signed.txt` files, `test-key-*.pub`/`.key`, `test-shared-secret`).

use super::super::base::{self, RequestView};
use super::super::header;
use super::super::keys::PublicKey;
use super::super::verify::VerifyingKey;
use super::{headers, TestRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// Appendix B.2: the test request (its body is `{"hello": "world"}`).
fn test_request(signature_input: &str, signature: &str) -> TestRequest {
    TestRequest {
        method: "POST".into(),
        scheme: "https".into(),
        authority: "example.com".into(),
        path: "/foo".into(),
        query: Some("param=Value&Pet=dog".into()),
        headers: headers(&[
            ("host", "example.com"),
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("content-type", "application/json"),
            (
                "content-digest",
                "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            ),
            ("content-length", "18"),
            ("signature-input", signature_input),
            ("signature", signature),
        ]),
    }
}

const TEST_SHARED_SECRET: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";
pub(super) const TEST_KEY_ED25519_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----";
/// PKCS#8 (RFC 8410) body of test-key-ed25519's private key.
pub(super) const TEST_KEY_ED25519_PRIV: &str =
    "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
pub(super) const TEST_KEY_ECC_P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----";
/// SEC1 `EC PRIVATE KEY` body of test-key-ecc-p256.
pub(super) const TEST_KEY_ECC_P256_PRIV: &str = "MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==";

fn build(req: &TestRequest, label: &str) -> (String, Vec<u8>) {
    let (input, sig) = header::by_label(&req.headers, label).unwrap();
    let base = base::signature_base(&req.view(), &input.covered, &input.signature_params).unwrap();
    (base, sig)
}

#[test]
fn b25_hmac_sha256_base_and_signature() {
    let req = test_request(
        r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#,
        "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:",
    );
    let (base, sig) = build(&req, "sig-b25");
    assert_eq!(
        base,
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
         \"@authority\": example.com\n\
         \"content-type\": application/json\n\
         \"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\""
    );
    let secret = STANDARD.decode(TEST_SHARED_SECRET).unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    assert_eq!(ring::hmac::sign(&key, base.as_bytes()).as_ref(), &sig[..]);
    assert!(VerifyingKey::hmac(&secret).verify(base.as_bytes(), &sig));
    assert!(!VerifyingKey::hmac(&secret[1..]).verify(base.as_bytes(), &sig));
}

#[test]
fn b26_ed25519_base_and_signature() {
    let req = test_request(
        r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#,
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:",
    );
    let (base, sig) = build(&req, "sig-b26");
    assert_eq!(
        base,
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
         \"@method\": POST\n\
         \"@path\": /foo\n\
         \"@authority\": example.com\n\
         \"content-type\": application/json\n\
         \"content-length\": 18\n\
         \"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
    );
    // Ed25519 is deterministic: the RFC's private key gives the RFC's signature.
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(
        &STANDARD.decode(TEST_KEY_ED25519_PRIV).unwrap(),
    )
    .unwrap();
    assert_eq!(pair.sign(base.as_bytes()).as_ref(), &sig[..]);
    let public = PublicKey::from_pem(TEST_KEY_ED25519_PUB).unwrap();
    assert_eq!(public.to_bytes(), pair.public_key().as_ref());
    let key = VerifyingKey::Public(public);
    assert!(key.verify(base.as_bytes(), &sig));
    assert!(!key.verify(base.replace("POST", "GET").as_bytes(), &sig));
}

#[test]
fn b24_ecdsa_p256_sha256_verifies_the_rfc_signature() {
    // B.2.4 signs a response; `@status` is not a request component, so its line is
    // written here and the field lines and `@signature-params` come from our code.
    let response = headers(&[
        ("date", "Tue, 20 Apr 2021 02:07:56 GMT"),
        ("content-type", "application/json"),
        (
            "content-digest",
            "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:",
        ),
        ("content-length", "23"),
        (
            "signature-input",
            r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#,
        ),
        (
            "signature",
            "sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:",
        ),
    ]);
    let (input, sig) = header::by_label(&response, "sig-b24").unwrap();
    let mut built = String::new();
    for name in &input.covered {
        let value = if name == "@status" {
            "200".into()
        } else {
            base::field_value(&response, name).unwrap().into_owned()
        };
        base::push_line(&mut built, name, &value);
    }
    built.push_str("\"@signature-params\": ");
    built.push_str(&input.signature_params);
    assert_eq!(
        built,
        "\"@status\": 200\n\
         \"content-type\": application/json\n\
         \"content-digest\": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:\n\
         \"content-length\": 23\n\
         \"@signature-params\": (\"@status\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-ecc-p256\""
    );
    assert_eq!(sig.len(), 64, "raw r‖s");
    let key = VerifyingKey::Public(PublicKey::from_pem(TEST_KEY_ECC_P256_PUB).unwrap());
    assert!(key.verify(built.as_bytes(), &sig));
    assert!(!key.verify(built.replace("200", "201").as_bytes(), &sig));
}

#[test]
fn rfc_test_request_content_digest_matches_its_body() {
    let body = br#"{"hello": "world"}"#;
    assert_eq!(
        crate::tokens::httpsig::digest::sha512_field(body),
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
    );
    // RFC 9530 Appendix B.1 / §2: the sha-256 of the same body.
    assert_eq!(
        crate::tokens::httpsig::digest::sha256_field(body),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
}

#[test]
fn derived_components_of_rfc_9421_section_2_2() {
    // §2.2's example request: POST /path?param=value&foo=bar&baz=bat%2Dman on www.example.com.
    let h = headers(&[]);
    let view = RequestView {
        method: "POST",
        scheme: "https",
        authority: "www.example.com",
        path: "/path",
        query: Some("param=value&foo=bar&baz=bat%2Dman"),
        headers: &h,
        has_body: false,
    };
    let v = |n: &str| base::component_value(&view, n).unwrap().into_owned();
    assert_eq!(v("@method"), "POST");
    assert_eq!(
        v("@target-uri"),
        "https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(v("@authority"), "www.example.com");
    assert_eq!(v("@scheme"), "https");
    assert_eq!(
        v("@request-target"),
        "/path?param=value&foo=bar&baz=bat%2Dman"
    );
    assert_eq!(v("@path"), "/path");
    assert_eq!(v("@query"), "?param=value&foo=bar&baz=bat%2Dman");

    // §2.2.3: lower-cased, default port dropped; §2.2.7: no query is `?`; empty path is `/`.
    let other = RequestView {
        method: "GET",
        scheme: "HTTPS",
        authority: "WWW.Example.com:443",
        path: "",
        query: None,
        headers: &h,
        has_body: false,
    };
    let v = |n: &str| base::component_value(&other, n).unwrap().into_owned();
    assert_eq!(v("@authority"), "www.example.com");
    assert_eq!(v("@scheme"), "https");
    assert_eq!(v("@query"), "?");
    assert_eq!(v("@path"), "/");
    assert_eq!(v("@request-target"), "/");
    assert_eq!(v("@target-uri"), "https://www.example.com/");
    let with_port = RequestView {
        authority: "example.com:8443",
        ..other
    };
    assert_eq!(
        base::component_value(&with_port, "@authority").unwrap(),
        "example.com:8443"
    );
}

#[test]
fn fields_are_trimmed_and_repeated_lines_joined_as_section_2_1_says() {
    // §2.1's example: `X-OWS-Header:   Leading and trailing whitespace.   ` and the two
    // `X-Obs-Fold-Header` lines (folding is refused by the HTTP stack, so two lines here).
    let h = headers(&[
        ("x-ows-header", "   Leading and trailing whitespace.   "),
        ("cache-control", "max-age=60"),
        ("cache-control", "    must-revalidate"),
        ("x-empty-header", ""),
    ]);
    assert_eq!(
        base::field_value(&h, "x-ows-header").unwrap(),
        "Leading and trailing whitespace."
    );
    assert_eq!(
        base::field_value(&h, "cache-control").unwrap(),
        "max-age=60, must-revalidate"
    );
    assert_eq!(base::field_value(&h, "x-empty-header").unwrap(), "");
    assert!(matches!(
        base::field_value(&h, "x-absent"),
        Err(base::ComponentError::Absent(name)) if name == "x-absent"
    ));
}
