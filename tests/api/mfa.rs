//! TOTP two-factor authentication. Codes are computed here by an independent RFC 6238
//! implementation (ring's HMAC-SHA1 and a base32 decoder below), not the server's helper.

use crate::helpers::*;
use serde_json::{json, Value};

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// RFC 6238 with SHA-1, 6 digits, for the 30-second step `step`.
fn code_at_step(secret: &[u8], step: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &step.to_be_bytes());
    let h = mac.as_ref();
    let offset = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

fn now_step() -> u64 {
    chrono::Utc::now().timestamp() as u64 / 30
}

async fn login_with(app: &TestApp, email: &str, extra: Value) -> Resp {
    let mut body = json!({"username": email, "password": PASSWORD});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    app.post("/api/v1/auth/login", body).await
}

/// Sets up and enables TOTP; returns (secret, the step the enabling code used, recovery codes).
async fn enable(app: &TestApp, at: &str) -> (Vec<u8>, u64, Vec<String>) {
    let r = app.post_auth("/api/v1/auth/mfa/totp/setup", at, None).await;
    r.assert(200, None);
    let url = r.body["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(
        url.contains("algorithm=SHA1") && url.contains("digits=6") && url.contains("period=30"),
        "{url}"
    );
    let secret = base32_decode(r.body["secret"].as_str().unwrap());
    assert!(secret.len() >= 16);
    app.post_auth(
        "/api/v1/auth/mfa/totp/enable",
        at,
        Some(json!({"code": "000000"})),
    )
    .await
    .assert(400, Some("invalid_mfa_code"));
    let step = now_step();
    let r = app
        .post_auth(
            "/api/v1/auth/mfa/totp/enable",
            at,
            Some(json!({"code": code_at_step(&secret, step)})),
        )
        .await;
    r.assert(200, None);
    let codes: Vec<String> = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    for c in &codes {
        // Six groups of four from a 31-character alphabet: about 119 bits (ASVS 6.5.2).
        assert_eq!(c.len(), 29, "six groups of four: {c}");
        assert!(
            c.split('-').all(|g| g.len() == 4
                && g.chars()
                    .all(|ch| "abcdefghjkmnpqrstuvwxyz23456789".contains(ch))),
            "{c}"
        );
    }
    (secret, step, codes)
}

#[tokio::test]
async fn totp_login_replay_recovery_codes_and_disable() {
    let app = spawn_app().await;
    let (email, login) = app.new_user().await;
    let at = access(&login);
    let (secret, step, recovery) = enable(&app, &at).await;
    app.post_auth(
        "/api/v1/auth/mfa/totp/enable",
        &at,
        Some(json!({"code": code_at_step(&secret, step)})),
    )
    .await
    .assert(409, Some("mfa_already_enabled"));
    app.post_auth("/api/v1/auth/mfa/totp/setup", &at, None)
        .await
        .assert(409, Some("mfa_already_enabled"));
    assert_eq!(
        app.get_auth("/api/v1/auth/me", &at).await.body["mfa_enabled"],
        true
    );

    // A missing code is asked for and does not count as a failure (6 > threshold).
    for _ in 0..6 {
        login_with(&app, &email, json!({}))
            .await
            .assert(401, Some("mfa_required"));
    }
    // The enabling code cannot be used again in its time step.
    login_with(
        &app,
        &email,
        json!({"totp_code": code_at_step(&secret, step)}),
    )
    .await
    .assert(401, Some("invalid_mfa_code"));
    // The next step's code works once.
    let next = code_at_step(&secret, step + 1);
    let ok = login_with(&app, &email, json!({"totp_code": next})).await;
    ok.assert(200, None);
    login_with(&app, &email, json!({"totp_code": next}))
        .await
        .assert(401, Some("invalid_mfa_code"));

    // A recovery code works once.
    login_with(&app, &email, json!({"recovery_code": recovery[0]}))
        .await
        .assert(200, None);
    login_with(&app, &email, json!({"recovery_code": recovery[0]}))
        .await
        .assert(401, Some("invalid_mfa_code"));

    // Disable needs the password and a code.
    let at = access(&ok.body);
    let r = app
        .post_auth(
            "/api/v1/auth/mfa/totp/disable",
            &at,
            Some(json!({"code": recovery[1]})),
        )
        .await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["password"].is_string(), "{}", r.body);
    let r = app
        .post_auth("/api/v1/auth/mfa/totp/disable", &at, Some(json!({})))
        .await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["code"].is_string(), "{}", r.body);
    app.post_auth(
        "/api/v1/auth/mfa/totp/disable",
        &at,
        Some(json!({"password": "Wrong-pass-123", "code": recovery[1]})),
    )
    .await
    .assert(403, Some("invalid_password"));
    app.post_auth(
        "/api/v1/auth/mfa/totp/disable",
        &at,
        Some(json!({"password": PASSWORD, "code": "123456"})),
    )
    .await
    .assert(400, Some("invalid_mfa_code"));
    app.post_auth(
        "/api/v1/auth/mfa/totp/disable",
        &at,
        Some(json!({"password": PASSWORD, "code": recovery[1]})),
    )
    .await
    .assert(204, None);
    let plain = app.login(&email, PASSWORD).await;
    plain.assert(200, None);
    assert_eq!(plain.body["user"]["mfa_enabled"], false);
    let types: Vec<String> = app
        .get_auth("/api/v1/auth/events", &access(&plain.body))
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(
        types.contains(&"mfa.enabled".to_string()) && types.contains(&"mfa.disabled".to_string())
    );
}

#[tokio::test]
async fn wrong_codes_feed_the_lockout() {
    let app = spawn_app().await;
    let (email, login) = app.new_user().await;
    let (secret, step, _) = enable(&app, &access(&login)).await;
    for _ in 0..5 {
        login_with(&app, &email, json!({"totp_code": "999999"}))
            .await
            .assert(401, Some("invalid_mfa_code"));
    }
    // Locked now, even with the right password and a good code.
    login_with(
        &app,
        &email,
        json!({"totp_code": code_at_step(&secret, step + 1)}),
    )
    .await
    .assert(423, Some("account_locked"));
}

#[tokio::test]
async fn an_api_key_cannot_touch_mfa() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let key = app
        .post_auth(
            "/api/v1/auth/api-keys",
            &access(&login),
            Some(json!({"name": "k"})),
        )
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = into_resp(
        app.client
            .post(app.url("/api/v1/auth/mfa/totp/setup"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(403, Some("api_key_not_allowed"));
}
