//! Signed requests (API.md "Signed requests (trading bots)"): signing keys on
//! `POST /api/v1/auth/api-keys`, every refusal code of the profile, replay protection
//! (in-process, across instances sharing Redis, and fail-closed with Redis down), the
//! forward-auth headers, `GET /api/v1/time`, the metric — and two independent RFC 9421
//! implementations signing real requests: the PyPI `http-message-signatures` package
//! (tests/signers/sign.py) and the npm `http-message-signatures` package
//! (tests/js/sign.mjs). Install them with `pip install -r tests/signers/requirements.txt`
//! and `npm ci --prefix tests/js` (.ci/run does both); without them these tests fail.

use crate::helpers::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tradeauth::tokens::httpsig::base::{signature_base, RequestView};

/// 32 bytes, base64: the key that seals HMAC secrets in these tests.
const SECRET_KEY: &str = "c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE=";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A server that can hold HMAC keys, and that believes X-Original-* from loopback (so
/// the tests can play the proxy).
async fn app() -> TestApp {
    spawn_with(|s| {
        s.set("secret_key", SECRET_KEY)
            .set("trusted_proxies", "127.0.0.1/32")
    })
    .await
}

async fn create_key(app: &TestApp, token: &str, body: Value) -> Resp {
    app.post_auth("/api/v1/auth/api-keys", token, Some(body))
        .await
}

/// An Ed25519 signing key made in this test (ring), registered with tradeauth by JWK.
struct Bot {
    key_id: String,
    pair: Ed25519KeyPair,
}

impl Bot {
    async fn new(app: &TestApp, token: &str, extra: Value) -> Bot {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let mut body = json!({"name": "bot", "algorithm": "ed25519", "public_key": jwk});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = create_key(app, token, body).await;
        r.assert(201, None);
        Bot {
            key_id: r.body["key_id"].as_str().unwrap().to_string(),
            pair,
        }
    }

    /// Signature headers over `method` `url` with `headers` (as sent), covering
    /// `components` with the serialised `params` (e.g. `;created=…;keyid="…"`).
    fn sign_with(
        &self,
        method: &str,
        url: &str,
        headers: &HeaderMap,
        components: &[&str],
        params: &str,
    ) -> HeaderMap {
        let url = reqwest::Url::parse(url).unwrap();
        let authority = format!(
            "{}:{}",
            url.host_str().unwrap(),
            url.port_or_known_default().unwrap()
        );
        let view = RequestView {
            method,
            scheme: "http",
            authority: &authority,
            path: url.path(),
            query: url.query(),
            headers: &convert(headers),
            has_body: false,
        };
        let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
        let sig_params = format!("({}){params}", list.join(" "));
        let covered: Vec<String> = components.iter().map(|c| c.to_string()).collect();
        let base = signature_base(&view, &covered, &sig_params).unwrap();
        let sig = self.pair.sign(base.as_bytes());
        let mut out = headers.clone();
        out.insert(
            "signature-input",
            HeaderValue::from_str(&format!("bot={sig_params}")).unwrap(),
        );
        out.insert(
            "signature",
            HeaderValue::from_str(&format!("bot=:{}:", STANDARD.encode(sig.as_ref()))).unwrap(),
        );
        out
    }

    /// The usual signature: the four required components, fresh `created` and `nonce`.
    fn sign(&self, method: &str, url: &str) -> HeaderMap {
        self.sign_with(
            method,
            url,
            &HeaderMap::new(),
            &["@method", "@authority", "@path", "@query"],
            &self.params(now()),
        )
    }

    fn params(&self, created: i64) -> String {
        format!(
            ";created={created};keyid=\"{}\";nonce=\"{}\";tag=\"tradeauth\"",
            self.key_id,
            uuid::Uuid::new_v4().simple()
        )
    }
}

fn convert(h: &HeaderMap) -> axum::http::HeaderMap {
    let mut out = axum::http::HeaderMap::new();
    for (k, v) in h {
        out.append(
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    out
}

async fn send(app: &TestApp, method: &str, path: &str, headers: HeaderMap) -> Resp {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    into_resp(
        app.client
            .request(m, app.url(path))
            .headers(headers)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Which independent implementation signs.
#[derive(Clone, Copy, Debug)]
enum Signer {
    /// PyPI `http-message-signatures` (tests/signers/sign.py).
    Python,
    /// npm `http-message-signatures` (tests/js/sign.mjs).
    JavaScript,
}

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Installs the two independent signers on first use (a fresh clone has neither): the
/// npm package with `npm ci` in tests/js, the PyPI one with pip. Fails if either cannot be
/// installed: these tests are never skipped.
fn install_signers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let js = root().join("tests/js");
        if !js.join("node_modules/http-message-signatures").exists() {
            let ok = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&js)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "npm ci in tests/js failed");
        }
        let has_python_signer = std::process::Command::new("python3")
            .args(["-c", "import http_message_signatures"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_python_signer {
            let ok = std::process::Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(root().join("tests/signers/requirements.txt"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "pip install -r tests/signers/requirements.txt failed");
        }
    });
}

async fn run(mut cmd: tokio::process::Command, input: &str, what: &str) -> Value {
    tokio::task::spawn_blocking(install_signers).await.unwrap();
    let mut child = cmd
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{what} failed (install: pip install -r tests/signers/requirements.txt; npm ci --prefix tests/js): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A key pair made by the Python package's `cryptography` (PKCS#8 and SPKI PEM).
async fn keygen(alg: &str) -> (String, String) {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["tests/signers/sign.py", "keygen", alg]);
    let v = run(cmd, "", "keygen").await;
    (
        v["private_pem"].as_str().unwrap().to_string(),
        v["public_pem"].as_str().unwrap().to_string(),
    )
}

/// The headers `signer` adds to a request (its own, plus Content-Digest when there is a
/// body, Signature-Input and Signature).
async fn external_sign(signer: Signer, spec: Value) -> HeaderMap {
    let cmd = match signer {
        Signer::Python => {
            let mut c = tokio::process::Command::new("python3");
            c.args(["tests/signers/sign.py", "sign"]);
            c
        }
        Signer::JavaScript => {
            let mut c = tokio::process::Command::new("node");
            c.arg("tests/js/sign.mjs");
            c
        }
    };
    let v = run(cmd, &spec.to_string(), &format!("{signer:?} signer")).await;
    let mut out = HeaderMap::new();
    for (k, val) in v["headers"].as_object().unwrap() {
        out.insert(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
        );
    }
    out
}

/// A signing key of `alg` and the material a client signs with: (key_id, key), where
/// key is a private PEM or the HMAC secret tradeauth showed.
async fn signing_key(app: &TestApp, token: &str, alg: &str) -> (String, String, Value) {
    if alg == "hmac-sha256" {
        let r = create_key(app, token, json!({"name": "hmac bot", "algorithm": alg})).await;
        r.assert(201, None);
        let secret = r.body["secret"].as_str().unwrap().to_string();
        return (
            r.body["key_id"].as_str().unwrap().to_string(),
            secret,
            r.body,
        );
    }
    let (private, public) = keygen(alg).await;
    let r = create_key(
        app,
        token,
        json!({"name": format!("{alg} bot"), "algorithm": alg, "public_key": public}),
    )
    .await;
    r.assert(201, None);
    (
        r.body["key_id"].as_str().unwrap().to_string(),
        private,
        r.body,
    )
}

const ALGS: [&str; 3] = ["ed25519", "ecdsa-p256-sha256", "hmac-sha256"];

#[tokio::test]
async fn signing_keys_are_made_validated_and_listed_and_never_bearer_keys() {
    let app = app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);

    for alg in ALGS {
        let (key_id, _, body) = signing_key(&app, &at, alg).await;
        assert!(key_id.starts_with("ta_") && key_id.len() == 15, "{body}");
        assert_eq!(body["algorithm"], alg);
        assert!(
            body.get("key").is_none(),
            "a signing key has no bearer key: {body}"
        );
        if alg == "hmac-sha256" {
            let secret = body["secret"].as_str().unwrap();
            assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
            assert!(body.get("public_key_thumbprint").is_none());
        } else {
            assert_eq!(
                body["public_key_thumbprint"].as_str().unwrap().len(),
                43,
                "{body}"
            );
            assert!(body.get("secret").is_none());
        }
        // Nothing presented as a bearer key can use it.
        for header in ["x-api-key", "authorization"] {
            let value = if header == "x-api-key" {
                key_id.clone()
            } else {
                format!("ApiKey {key_id}")
            };
            let r = into_resp(
                app.client
                    .get(app.url("/api/v1/auth/me"))
                    .header(header, value)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            r.assert(401, Some("invalid_api_key"));
        }
    }

    // The JWK of a key gives the same thumbprint as its PEM (RFC 7638).
    let (_, public) = keygen("ecdsa-p256-sha256").await;
    let by_pem = create_key(
        &app,
        &at,
        json!({"name": "pem", "algorithm": "ecdsa-p256-sha256", "public_key": public}),
    )
    .await;
    let der = STANDARD
        .decode(
            public
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let point = &der[der.len() - 64..];
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[..32]),
        "y": URL_SAFE_NO_PAD.encode(&point[32..])});
    let by_jwk = create_key(
        &app,
        &at,
        json!({"name": "jwk", "algorithm": "ecdsa-p256-sha256", "public_key": jwk}),
    )
    .await;
    assert_eq!(
        by_pem.body["public_key_thumbprint"],
        by_jwk.body["public_key_thumbprint"]
    );

    // The listing shows key_id, algorithm and thumbprint, never a secret.
    let list = app.get_auth("/api/v1/auth/api-keys", &at).await;
    list.assert(200, None);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    for k in items {
        assert!(k["key_id"].as_str().unwrap().starts_with("ta_"));
        assert!(k.get("secret").is_none() && k.get("key").is_none(), "{k}");
    }
    assert!(items
        .iter()
        .any(|k| k["algorithm"] == "hmac-sha256" && k.get("public_key_thumbprint").is_none()));

    // Refused uploads name the field.
    let cases = [
        (
            json!({"name": "x", "algorithm": "rsa-pss-sha512"}),
            "algorithm",
        ),
        (json!({"name": "x", "algorithm": "ed25519"}), "public_key"),
        (
            json!({"name": "x", "algorithm": "ed25519", "public_key": "not a key"}),
            "public_key",
        ),
        // A P-256 key offered as Ed25519.
        (
            json!({"name": "x", "algorithm": "ed25519", "public_key": public}),
            "public_key",
        ),
        // A point that is not on the curve.
        (
            json!({"name": "x", "algorithm": "ecdsa-p256-sha256", "public_key":
            {"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode([1u8; 32]),
             "y": URL_SAFE_NO_PAD.encode([2u8; 32])}}),
            "public_key",
        ),
        // Private material is refused.
        (
            json!({"name": "x", "algorithm": "ed25519", "public_key":
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32]),
             "d": URL_SAFE_NO_PAD.encode([2u8; 32])}}),
            "public_key",
        ),
        (
            json!({"name": "x", "algorithm": "hmac-sha256", "public_key": public}),
            "public_key",
        ),
    ];
    for (body, field) in cases {
        let r = create_key(&app, &at, body.clone()).await;
        r.assert(400, Some("validation_error"));
        assert!(r.body["details"][field].is_string(), "{body} → {}", r.text);
    }
}

#[tokio::test]
async fn creating_a_signing_key_needs_a_recent_sign_in() {
    let app = app().await;
    let (email, login) = app.new_user().await;
    let at = access(&login);
    let caller = app.service.check_access_token(&at).unwrap();
    let sid = caller.session_id().unwrap();
    let age = |minutes: i64| {
        let store = app.service.store.clone();
        async move {
            store
                .mark_session_authenticated(
                    sid,
                    chrono::Utc::now() - chrono::Duration::minutes(minutes),
                )
                .await
                .unwrap()
        }
    };
    let signing = json!({"name": "late", "algorithm": "hmac-sha256"});
    age(11).await;
    create_key(&app, &at, signing.clone())
        .await
        .assert(403, Some("reauthentication_required"));
    // A bearer key is not a signing key: no fresh proof needed.
    create_key(&app, &at, json!({"name": "bearer"}))
        .await
        .assert(201, None);
    age(9).await;
    create_key(&app, &at, signing.clone())
        .await
        .assert(201, None);
    // A fresh sign-in is the proof.
    age(30).await;
    let again = app.login(&email, PASSWORD).await;
    create_key(&app, &access(&again.body), signing)
        .await
        .assert(201, None);
}

#[tokio::test]
async fn hmac_keys_need_the_secret_key_setting() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let r = create_key(
        &app,
        &access(&login),
        json!({"name": "hmac", "algorithm": "hmac-sha256"}),
    )
    .await;
    r.assert(400, Some("validation_error"));
    assert!(
        r.body["details"]["algorithm"]
            .as_str()
            .unwrap()
            .contains("TRADEAUTH_SECRET_KEY"),
        "{}",
        r.text
    );
}

/// Both independent libraries, every algorithm: a signed GET to tradeauth itself, and a
/// signed POST with a body described by a proxy at forward-auth (X-Original-*), which
/// answers with the key, the method and the signed digest.
#[tokio::test]
async fn independent_signers_are_accepted_for_every_algorithm() {
    let app = app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let user_id = login["user"]["id"].as_str().unwrap().to_string();
    for alg in ALGS {
        let (key_id, key, _) = signing_key(&app, &at, alg).await;
        for signer in [Signer::Python, Signer::JavaScript] {
            let what = format!("{signer:?} {alg}");
            // Directly: GET /api/v1/auth/me with a query, as sent.
            let path = "/api/v1/auth/me?b=2&a=1&q=%7Eraw";
            let headers = external_sign(
                signer,
                json!({"alg": alg, "key": key, "keyid": key_id, "method": "GET",
                       "url": app.url(path), "headers": {}, "body": null}),
            )
            .await;
            let r = send(&app, "GET", path, headers).await;
            r.assert(200, None);
            assert_eq!(r.body["id"], user_id.as_str(), "{what}");

            // At forward-auth, for an order placed through the proxy.
            let body = r#"{"symbol":"BTC-USD","side":"buy","qty":"0.5"}"#;
            let target = "https://api.example.com/orders?client_order_id=7";
            let mut headers = external_sign(
                signer,
                json!({"alg": alg, "key": key, "keyid": key_id, "method": "POST",
                       "url": target, "headers": {"content-type": "application/json"},
                       "body": body}),
            )
            .await;
            let digest = headers["content-digest"].to_str().unwrap().to_string();
            headers.insert("x-original-method", HeaderValue::from_static("POST"));
            headers.insert(
                "x-original-uri",
                HeaderValue::from_static("/orders?client_order_id=7"),
            );
            headers.insert(
                "x-original-host",
                HeaderValue::from_static("api.example.com"),
            );
            headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
            headers.insert("x-original-content-length", HeaderValue::from(body.len()));
            let r = send(&app, "GET", "/api/v1/auth/verify", headers.clone()).await;
            assert_eq!(r.status, 204, "{what}: {}", r.text);
            assert_eq!(
                r.header("x-auth-user-id").as_deref(),
                Some(user_id.as_str())
            );
            assert_eq!(r.header("x-auth-key-id").as_deref(), Some(key_id.as_str()));
            assert_eq!(r.header("x-auth-method").as_deref(), Some("signature"));
            assert_eq!(r.header("x-auth-content-digest"), Some(digest), "{what}");
            assert_eq!(r.header("x-auth-tier").as_deref(), Some("2"));
            assert!(r.header("x-auth-session-id").is_none());

            // The same request again is a replay.
            let again = send(&app, "GET", "/api/v1/auth/verify", headers.clone()).await;
            again.assert(401, Some("signature_replayed"));
            assert_eq!(
                again.header("x-auth-error").as_deref(),
                Some("signature_replayed")
            );

            // A proxy that says the body was altered (another method) gets the base.
            headers.insert("x-original-method", HeaderValue::from_static("PUT"));
            let r = send(&app, "GET", "/api/v1/auth/verify", headers).await;
            r.assert(401, Some("signature_invalid"));
            assert!(
                r.body["details"]["signature_base"]
                    .as_str()
                    .unwrap()
                    .starts_with("\"@method\": PUT\n"),
                "{what}: {}",
                r.text
            );
        }
    }
}

/// Called directly (not by a trusted proxy), forward-auth checks the signature over the
/// verify request itself: a "check my signature" probe for client authors.
#[tokio::test]
async fn forward_auth_called_directly_checks_its_own_request() {
    let app = app().await;
    let (_, login) = app.new_user().await;
    let bot = Bot::new(&app, &access(&login), json!({})).await;
    let path = "/api/v1/auth/verify?min_tier=2";
    let r = send(&app, "GET", path, bot.sign("GET", &app.url(path))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.header("x-auth-key-id"), Some(bot.key_id.clone()));
    assert_eq!(r.header("x-auth-method").as_deref(), Some("signature"));
    assert!(r.header("x-auth-content-digest").is_none());
    // X-Original-* from an untrusted peer describe nothing: the base is the call's own.
    let mut h = bot.sign("GET", &app.url(path));
    h.insert("x-original-uri", HeaderValue::from_static("/orders"));
    let untrusted = spawn_with(|s| s.set("secret_key", SECRET_KEY)).await;
    let (_, login) = untrusted.new_user().await;
    let other = Bot::new(&untrusted, &access(&login), json!({})).await;
    let mut h2 = other.sign("GET", &untrusted.url(path));
    h2.insert("x-original-uri", HeaderValue::from_static("/orders"));
    h2.insert("x-original-method", HeaderValue::from_static("POST"));
    let r = send(&untrusted, "GET", path, h2).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // A trusted proxy's X-Original-URI is believed: the same signature no longer fits.
    let r = send(&app, "GET", path, h).await;
    r.assert(401, Some("signature_invalid"));
    assert!(r.body["details"]["signature_base"]
        .as_str()
        .unwrap()
        .contains("\"@path\": /orders\n"));
}

#[tokio::test]
async fn a_forwarded_body_is_compared_with_the_signed_digest() {
    let app = app().await;
    let (_, login) = app.new_user().await;
    let (key_id, key, _) = signing_key(&app, &access(&login), "ed25519").await;
    let body = r#"{"qty":1}"#;
    let sign = || async {
        external_sign(
            Signer::Python,
            json!({"alg": "ed25519", "key": key, "keyid": key_id, "method": "POST",
                   "url": "https://api.example.com/orders",
                   "headers": {"content-type": "application/json"}, "body": body}),
        )
        .await
    };
    let proxied = |mut h: HeaderMap| {
        h.insert("x-forwarded-method", HeaderValue::from_static("POST"));
        h.insert("x-forwarded-uri", HeaderValue::from_static("/orders"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("api.example.com"),
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h
    };
    // Traefik `forwardBody`: the body comes along; the same bytes pass, others do not.
    let ok = into_resp(
        app.client
            .get(app.url("/api/v1/auth/verify"))
            .headers(proxied(sign().await))
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 204, "{}", ok.text);
    let swapped = into_resp(
        app.client
            .get(app.url("/api/v1/auth/verify"))
            .headers(proxied(sign().await))
            .body(r#"{"qty":100}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    swapped.assert(401, Some("signature_invalid"));
}

#[tokio::test]
async fn every_refusal_has_its_code_and_its_details() {
    let app = app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let bot = Bot::new(&app, &at, json!({})).await;
    let url = app.url("/api/v1/auth/me?x=1");
    let all = ["@method", "@authority", "@path", "@query"];

    // Accepted, as a baseline.
    send(&app, "GET", "/api/v1/auth/me?x=1", bot.sign("GET", &url))
        .await
        .assert(200, None);

    // 400 signature_incomplete: a required component, `created`, a body's digest.
    let h = bot.sign_with(
        "GET",
        &url,
        &HeaderMap::new(),
        &["@method", "@authority", "@path"],
        &bot.params(now()),
    );
    let r = send(&app, "GET", "/api/v1/auth/me?x=1", h).await;
    r.assert(400, Some("signature_incomplete"));
    assert_eq!(r.body["details"]["missing"], json!(["@query"]));
    let params = format!(";keyid=\"{}\";tag=\"tradeauth\"", bot.key_id);
    let h = bot.sign_with("GET", &url, &HeaderMap::new(), &all, &params);
    let r = send(&app, "GET", "/api/v1/auth/me?x=1", h).await;
    r.assert(400, Some("signature_incomplete"));
    assert_eq!(r.body["details"]["missing"], json!(["created"]));
    let mut with_body = HeaderMap::new();
    with_body.insert("content-type", HeaderValue::from_static("application/json"));
    let h = bot.sign_with("PATCH", &url, &with_body, &all, &bot.params(now()));
    let r = into_resp(
        app.client
            .patch(&url)
            .headers(h)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(400, Some("signature_incomplete"));
    assert_eq!(
        r.body["details"]["missing"],
        json!(["content-digest", "content-type"])
    );
    // No signature tagged tradeauth.
    let mut h = bot.sign("GET", &url);
    let input = h["signature-input"]
        .to_str()
        .unwrap()
        .replace("tradeauth", "other");
    h.insert("signature-input", HeaderValue::from_str(&input).unwrap());
    let r = send(&app, "GET", "/api/v1/auth/me?x=1", h).await;
    r.assert(400, Some("signature_incomplete"));
    assert_eq!(r.body["details"]["missing"], json!(["tag"]));

    // 401 signature_expired: too old, too far ahead, past its own expires.
    for (created, sign) in [(now() - 120, -1), (now() + 60, 1)] {
        let h = bot.sign_with("GET", &url, &HeaderMap::new(), &all, &bot.params(created));
        let r = send(&app, "GET", "/api/v1/auth/me?x=1", h).await;
        r.assert(401, Some("signature_expired"));
        let skew = r.body["skew_ms"].as_i64().unwrap();
        assert!(
            skew.signum() == sign && skew.abs() > 50_000 && skew.abs() < 130_000,
            "{}",
            r.text
        );
        let server_time = r.body["server_time"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(server_time).is_ok() && server_time.len() == 24
        );
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some(r#"Bearer realm="tradeauth", error="invalid_token""#)
        );
    }
    let params = format!("{};expires={}", bot.params(now() - 5), now() - 2);
    let h = bot.sign_with("GET", &url, &HeaderMap::new(), &all, &params);
    send(&app, "GET", "/api/v1/auth/me?x=1", h)
        .await
        .assert(401, Some("signature_expired"));

    // 401 invalid_api_key: unknown, malformed or revoked key.
    for keyid in ["ta_AAAAAAAAAAAA", "garbage"] {
        let params = format!(";created={};keyid=\"{keyid}\";tag=\"tradeauth\"", now());
        let h = bot.sign_with("GET", &url, &HeaderMap::new(), &all, &params);
        send(&app, "GET", "/api/v1/auth/me?x=1", h)
            .await
            .assert(401, Some("invalid_api_key"));
    }

    // 401 signature_invalid: a changed query (with the base), a wrong alg, garbage.
    let h = bot.sign("GET", &url);
    let r = send(&app, "GET", "/api/v1/auth/me?x=2", h).await;
    r.assert(401, Some("signature_invalid"));
    let base = r.body["details"]["signature_base"].as_str().unwrap();
    assert!(base.contains("\"@query\": ?x=2\n"), "{base}");
    assert!(
        base.contains("\"@signature-params\": (\"@method\""),
        "{base}"
    );
    let params = format!("{};alg=\"hmac-sha256\"", bot.params(now()));
    let h = bot.sign_with("GET", &url, &HeaderMap::new(), &all, &params);
    send(&app, "GET", "/api/v1/auth/me?x=1", h)
        .await
        .assert(401, Some("signature_invalid"));
    let mut h = bot.sign("GET", &url);
    h.insert(
        "signature",
        HeaderValue::from_static("bot=not-a-byte-sequence"),
    );
    send(&app, "GET", "/api/v1/auth/me?x=1", h)
        .await
        .assert(401, Some("signature_invalid"));
    // Two signatures tagged tradeauth.
    let one = bot.sign("GET", &url);
    let two = bot.sign("GET", &url);
    let mut h = HeaderMap::new();
    let relabel = |v: &HeaderValue| v.to_str().unwrap().replacen("bot=", "two=", 1);
    h.insert(
        "signature-input",
        HeaderValue::from_str(&format!(
            "{}, {}",
            one["signature-input"].to_str().unwrap(),
            relabel(&two["signature-input"])
        ))
        .unwrap(),
    );
    h.insert(
        "signature",
        HeaderValue::from_str(&format!(
            "{}, {}",
            one["signature"].to_str().unwrap(),
            relabel(&two["signature"])
        ))
        .unwrap(),
    );
    send(&app, "GET", "/api/v1/auth/me?x=1", h)
        .await
        .assert(401, Some("signature_invalid"));

    // 401 signature_replayed: the same signed request twice.
    let h = bot.sign("GET", &url);
    send(&app, "GET", "/api/v1/auth/me?x=1", h.clone())
        .await
        .assert(200, None);
    send(&app, "GET", "/api/v1/auth/me?x=1", h)
        .await
        .assert(401, Some("signature_replayed"));

    // 403 ip_not_allowed: a key pinned elsewhere.
    let pinned = Bot::new(&app, &at, json!({"allowed_ips": ["203.0.113.0/24"]})).await;
    send(&app, "GET", "/api/v1/auth/me?x=1", pinned.sign("GET", &url))
        .await
        .assert(403, Some("ip_not_allowed"));

    // 403 api_key_not_allowed: a signing key cannot manage keys.
    let u = app.url("/api/v1/auth/api-keys");
    send(&app, "GET", "/api/v1/auth/api-keys", bot.sign("GET", &u))
        .await
        .assert(403, Some("api_key_not_allowed"));

    // Revoked: refused within the key cache's second.
    let list = app.get_auth("/api/v1/auth/api-keys", &at).await;
    let id = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == bot.key_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete_auth(&format!("/api/v1/auth/api-keys/{id}"), &at)
        .await
        .assert(204, None);
    send(&app, "GET", "/api/v1/auth/me?x=1", bot.sign("GET", &url))
        .await
        .assert(401, Some("invalid_api_key"));

    // Each outcome is counted.
    let metrics = app.get("/metrics").await.text;
    for outcome in ["accepted", "expired", "replayed", "invalid"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("tradeauth_signed_requests_total")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .unwrap_or_else(|| panic!("no {outcome} series"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
}

#[tokio::test]
async fn a_signed_body_sent_to_tradeauth_must_match_its_digest() {
    let app = app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let bot = Bot::new(&app, &at, json!({})).await;
    let url = app.url("/api/v1/auth/logout");
    let body = "{}";
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "content-digest",
        HeaderValue::from_str(&tradeauth::tokens::httpsig::digest::sha256_field(
            body.as_bytes(),
        ))
        .unwrap(),
    );
    let all = [
        "@method",
        "@authority",
        "@path",
        "@query",
        "content-type",
        "content-digest",
    ];
    let h = bot.sign_with("POST", &url, &headers, &all, &bot.params(now()));
    let r = into_resp(
        app.client
            .post(&url)
            .headers(h)
            .body("{\"refresh_token\":\"swapped\"}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(401, Some("signature_invalid"));
}

#[tokio::test]
async fn the_server_clock_and_a_date_on_every_response() {
    let app = spawn_app().await;
    let before = chrono::Utc::now().timestamp_millis();
    let r = app.get("/api/v1/time").await;
    r.assert(200, None);
    let epoch_ms = r.body["epoch_ms"].as_i64().unwrap();
    assert!(epoch_ms >= before && epoch_ms <= chrono::Utc::now().timestamp_millis());
    let text = r.body["server_time"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    assert_eq!(parsed.timestamp_millis(), epoch_ms);
    assert_eq!(text.len(), "2026-01-01T00:00:00.000Z".len(), "{text}");
    for path in ["/api/v1/time", "/healthz", "/nope", "/api/v1/auth/me"] {
        let r = app.get(path).await;
        let date = r
            .header("date")
            .unwrap_or_else(|| panic!("{path}: no Date"));
        assert!(
            chrono::DateTime::parse_from_rfc2822(&date).is_ok(),
            "{path}: {date}"
        );
    }
}

/// A loopback TCP proxy to Redis that can be cut (as in scaleout.rs).
struct Proxy {
    port: u16,
    tasks: Arc<Mutex<JoinSet<()>>>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<JoinSet<()>>> = Arc::default();
        let t = tasks.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                t.lock().unwrap().spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Proxy {
            port,
            tasks,
            acceptor,
        }
    }

    fn cut(&self) {
        self.acceptor.abort();
        self.tasks.lock().unwrap().abort_all();
    }
}

#[tokio::test]
async fn a_replay_is_caught_on_another_instance_sharing_redis() {
    if !services_available("the signed-request replay test across instances").await {
        return;
    }
    let db = pg_schema_url().await;
    let prefix = format!("ta_test:{}:", uuid::Uuid::new_v4().simple());
    let mut apps = Vec::new();
    for _ in 0..2 {
        let prefix = prefix.clone();
        apps.push(
            spawn_on(
                Arc::new(tempfile::tempdir().unwrap()),
                db.clone(),
                move |s| {
                    s.set("redis_url", "redis://127.0.0.1:6379")
                        .set("redis_prefix", prefix)
                },
            )
            .await,
        );
    }
    let (a, b) = (&apps[0], &apps[1]);
    let (_, login) = a.new_user().await;
    let bot = Bot::new(a, &access(&login), json!({})).await;
    // Both instances are addressed by one name, as behind a load balancer.
    let mut signed = bot.sign("GET", "http://api.example.com:80/api/v1/auth/me");
    signed.insert("host", HeaderValue::from_static("api.example.com"));
    send(a, "GET", "/api/v1/auth/me", signed.clone())
        .await
        .assert(200, None);
    send(b, "GET", "/api/v1/auth/me", signed.clone())
        .await
        .assert(401, Some("signature_replayed"));
    send(a, "GET", "/api/v1/auth/me", signed)
        .await
        .assert(401, Some("signature_replayed"));
}

#[tokio::test]
async fn with_redis_down_a_signed_request_is_never_accepted() {
    if !services_available("the signed-request Redis fault test").await {
        return;
    }
    let proxy = Proxy::start(6379).await;
    let redis_url = format!("redis://127.0.0.1:{}", proxy.port);
    let db = pg_schema_url().await;
    let app = spawn_on(Arc::new(tempfile::tempdir().unwrap()), db, move |s| {
        s.set("redis_url", redis_url)
    })
    .await;
    let (_, login) = app.new_user().await;
    let bot = Bot::new(&app, &access(&login), json!({})).await;
    let url = app.url("/api/v1/auth/me");
    send(&app, "GET", "/api/v1/auth/me", bot.sign("GET", &url))
        .await
        .assert(200, None);

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        let h = bot.sign("GET", &url);
        let r = send(&app, "GET", "/api/v1/auth/me", h.clone()).await;
        r.assert(503, Some("unavailable"));
        // And the same signature is not accepted later either while Redis is away.
        send(&app, "GET", "/api/v1/auth/me", h)
            .await
            .assert(503, Some("unavailable"));
    }
    // A bearer token still works: only signatures need the shared replay cache.
    app.get_auth("/api/v1/auth/me", &access(&login))
        .await
        .assert(200, None);
}

/// The console (`/account`) creates signing keys (a public key pasted as PEM or a JWK, or
/// an HMAC secret shown once) and lists them with their algorithm.
#[tokio::test]
async fn the_console_creates_and_lists_signing_keys() {
    let app = app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (email, login) = app.new_user().await;
    let r = client
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("username", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let jar = cookies.join("; ");
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("__Host-tradeauth_csrf="))
        .unwrap()
        .to_string();
    let create = |fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf_token", csrf.clone())];
        form.extend(fields);
        client
            .post(app.url("/account/api-keys"))
            .header("cookie", &jar)
            .header("sec-fetch-site", "same-origin")
            .form(&form)
            .send()
    };

    let r = create(vec![
        ("name", "hmac bot".into()),
        ("algorithm", "hmac-sha256".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let html = r.text().await.unwrap();
    assert!(html.contains("Signing key created. Its key_id"), "{html}");
    let secret = html
        .split("id=\"new-api-key\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);

    let (_, public) = keygen("ed25519").await;
    let r = create(vec![
        ("name", "ed bot".into()),
        ("algorithm", "ed25519".into()),
        ("public_key", public),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let html = r.text().await.unwrap();
    assert!(html.contains("signing key, ed25519") && html.contains("signing key, hmac-sha256"));
    assert!(
        !html.contains("id=\"new-api-key\""),
        "a public key has no secret to show"
    );

    // A bad public key is refused with the field's message.
    let r = create(vec![
        ("name", "bad".into()),
        ("algorithm", "ecdsa-p256-sha256".into()),
        (
            "public_key",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("role=\"alert\""));

    let list = app.get_auth("/api/v1/auth/api-keys", &access(&login)).await;
    let algs: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algs.len(), 2);
    assert!(algs.contains(&"ed25519") && algs.contains(&"hmac-sha256"));
}
