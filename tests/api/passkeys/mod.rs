//! Passkeys (API.md, "Passkeys (WebAuthn)"), through HTTP with a software authenticator.
//!
//! The authenticator is `src/service/webauthn/soft.rs`, compiled here as well: it is
//! written from the WebAuthn spec, independent of `webauthn-rs`, and every byte of its
//! answers can be made wrong on purpose (flags, origin, RP ID, counter, signature, user
//! handle). The server runs with its defaults: public URL `http://localhost:8080`, so the
//! RP ID is `localhost` and the one allowed origin `http://localhost:8080`.
//!
//! - `ceremonies`: register, list, rename, remove, sign in (with and without a username,
//!   cookie mode), the shared sign-in rules, events and metrics;
//! - `refusals`: every negative case of the issue, each with the contract's code;
//! - `instances`: start on one instance and finish on another (PostgreSQL + Redis).

#[allow(dead_code)]
#[path = "../../../src/service/webauthn/soft.rs"]
mod soft;

mod ceremonies;
mod instances;
mod refusals;

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};
pub use soft::SoftAuthenticator;

/// The page origin of the default configuration.
pub const ORIGIN: &str = "http://localhost:8080";

/// A browser with a software authenticator on the default origin.
pub fn authenticator() -> SoftAuthenticator {
    SoftAuthenticator::new(ORIGIN)
}

/// `register/start` as the session `at`.
pub async fn start_registration(app: &TestApp, at: &str) -> Resp {
    app.post_auth("/api/v1/auth/passkeys/register/start", at, Some(json!({})))
        .await
}

/// `register/finish` with `credential` for `challenge_id`.
pub async fn finish_registration(
    app: &TestApp,
    at: &str,
    challenge_id: &Value,
    name: &str,
    credential: Value,
) -> Resp {
    app.post_auth(
        "/api/v1/auth/passkeys/register/finish",
        at,
        Some(json!({"challenge_id": challenge_id, "name": name, "credential": credential})),
    )
    .await
}

/// A whole registration: start, the authenticator's `create`, finish.
pub async fn add_passkey(
    app: &TestApp,
    at: &str,
    auth: &mut SoftAuthenticator,
    name: &str,
) -> Resp {
    let started = start_registration(app, at).await;
    started.assert(200, None);
    let credential = auth
        .create(&started.body["options"])
        .expect("the authenticator creates a credential");
    finish_registration(app, at, &started.body["challenge_id"], name, credential).await
}

/// `login/start`, with a username or without (discoverable).
pub async fn start_login(app: &TestApp, username: Option<&str>) -> Resp {
    let body = match username {
        Some(u) => json!({"username": u}),
        None => json!({}),
    };
    app.post("/api/v1/auth/passkeys/login/start", body).await
}

/// `login/finish` with an assertion.
pub async fn finish_login(app: &TestApp, challenge_id: &Value, credential: Value) -> Resp {
    app.post(
        "/api/v1/auth/passkeys/login/finish",
        json!({"challenge_id": challenge_id, "credential": credential}),
    )
    .await
}

/// A whole sign-in: start, the authenticator's `get`, finish.
pub async fn sign_in(app: &TestApp, auth: &mut SoftAuthenticator, username: Option<&str>) -> Resp {
    let started = start_login(app, username).await;
    started.assert(200, None);
    let assertion = auth
        .get(&started.body["options"])
        .expect("the authenticator holds a credential for this request");
    finish_login(app, &started.body["challenge_id"], assertion).await
}

/// A fresh user with one passkey: (email, login body, authenticator, passkey).
pub async fn user_with_passkey(app: &TestApp) -> (String, Value, SoftAuthenticator, Value) {
    let (email, login) = app.new_user().await;
    let mut auth = authenticator();
    let added = add_passkey(app, &access(&login), &mut auth, "Laptop").await;
    added.assert(201, None);
    (email, login, auth, added.body)
}

/// The claims of an access token (not verified: the server issued it).
pub fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

/// The caller's security events of `kind`, newest first.
pub async fn events(app: &TestApp, at: &str, kind: &str) -> Vec<Value> {
    let r = app.get_auth("/api/v1/auth/events?limit=200", at).await;
    r.assert(200, None);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}
