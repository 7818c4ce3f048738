//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): a receiver on loopback
//! plays the relying party's logout endpoint and checks every logout token against
//! `/.well-known/jwks.json`; sessions end by many paths; a receiver that was down gets
//! the token on a retry; a stopping instance hands what it held to another.

use super::flow::verify_rs256;
use super::*;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const UP: u8 = 0;
const DOWN: u8 = 1;
const HANGING: u8 = 2;

/// The relying party's back-channel logout endpoint: records each `logout_token`; while
/// `DOWN` it answers 503, while `HANGING` it never answers.
#[derive(Clone, Default)]
struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    mode: Arc<AtomicU8>,
    uri: String,
}

impl Receiver {
    async fn start(mode: u8) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            uri: format!("http://{}/backchannel", listener.local_addr().unwrap()),
            ..Default::default()
        };
        r.mode.store(mode, Ordering::SeqCst);
        let state = r.clone();
        let app = axum::Router::new().route(
            "/backchannel",
            axum::routing::post(
                move |form: axum::Form<std::collections::HashMap<String, String>>| {
                    let state = state.clone();
                    async move {
                        match state.mode.load(Ordering::SeqCst) {
                            DOWN => return axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            HANGING => tokio::time::sleep(Duration::from_secs(3600)).await,
                            _ => {}
                        }
                        let token = form.0.get("logout_token").cloned().unwrap_or_default();
                        state.tokens.lock().unwrap().push(token);
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// The verified claims of the logout token for session `sid`, waiting up to `within`.
    async fn token_for(&self, app: &TestApp, sid: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let tokens = self.tokens.lock().unwrap().clone();
            for t in tokens {
                let header =
                    super::flow::jwt_payload(&format!("x.{}", t.split('.').next().unwrap()));
                let claims = verify_rs256(app, &t).await;
                if claims["sid"] == sid {
                    assert_eq!(header["typ"], "logout+jwt");
                    return claims;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no logout token for session {sid}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A confidential client whose logout endpoint is `receiver`.
async fn rp(app: &TestApp, receiver: &Receiver) -> (String, String) {
    let c = register_client(
        app,
        json!({"name": "Dashboard", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "post_logout_redirect_uris": [POST_LOGOUT_URI], "backchannel_logout_uri": receiver.uri}),
    )
    .await;
    assert_eq!(c["backchannel_logout_uri"], receiver.uri.as_str());
    assert_eq!(c["backchannel_logout_session_required"], true);
    (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

/// Signs `email` in to the client: the token response and the session id.
async fn signed_in(app: &TestApp, client: &(String, String), email: &str) -> (Value, String) {
    let mut agent = Agent::new(app);
    let (code, verifier) = code_for(&mut agent, &client.0, "openid offline_access", email).await;
    let r = exchange(app, (&client.0, &client.1), &code, &verifier).await;
    r.assert(200, None);
    let sid = super::flow::jwt_payload(r.body["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_string();
    (r.body, sid)
}

async fn events(app: &TestApp, admin: &str) -> Vec<Value> {
    let r = app
        .get_auth(
            "/api/v1/admin/audit?type=oauth.backchannel_logout&limit=200",
            admin,
        )
        .await;
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_way_a_session_ends_sends_a_verified_logout_token() {
    let app = spawn_provider(|s| s.set("refresh_reuse_grace", "0s")).await;
    let receiver = Receiver::start(UP).await;
    let client = rp(&app, &receiver).await;
    let doc = app.get("/.well-known/openid-configuration").await.body;
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    let (email, user_id) = user(&app).await;
    let admin = admin_token(&app).await;
    let wait = Duration::from_secs(5);

    // RP-initiated logout.
    let (t, sid) = signed_in(&app, &client, &email).await;
    let mut agent = Agent::new(&app);
    let url = format!(
        "/oauth2/logout?id_token_hint={}",
        t["id_token"].as_str().unwrap()
    );
    agent.get(&url).await;
    let c = receiver.token_for(&app, &sid, wait).await;
    assert_eq!(c["iss"], app.base);
    assert_eq!(c["aud"], client.0);
    assert_eq!(c["sub"], user_id);
    assert!(c["jti"].is_string() && c["iat"].is_number() && c["exp"].is_number());
    assert_eq!(c["events"], json!({EVENT: {}}));
    assert!(c.get("nonce").is_none());

    // Revoking the refresh token.
    let (t, sid) = signed_in(&app, &client, &email).await;
    let r = app
        .client
        .post(app.url("/oauth2/revoke"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", t["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    receiver.token_for(&app, &sid, wait).await;

    // Refresh-token reuse.
    let (t, sid) = signed_in(&app, &client, &email).await;
    let old = t["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", old)];
    token_request(&app, (&client.0, &client.1), &form)
        .await
        .assert(200, None);
    let again = token_request(&app, (&client.0, &client.1), &form).await;
    assert_eq!(again.body["error"], "invalid_grant", "{}", again.text);
    receiver.token_for(&app, &sid, wait).await;

    // Withdrawing the grant.
    let (_, sid) = signed_in(&app, &client, &email).await;
    let native = access(&app.login(&email, PASSWORD).await.body);
    app.delete_auth(&format!("/api/v1/auth/oauth-grants/{}", client.0), &native)
        .await
        .assert(204, None);
    receiver.token_for(&app, &sid, wait).await;

    // Sign out everywhere.
    let (_, sid) = signed_in(&app, &client, &email).await;
    let native = access(&app.login(&email, PASSWORD).await.body);
    app.post_auth("/api/v1/auth/logout-all", &native, None)
        .await;
    receiver.token_for(&app, &sid, wait).await;

    // A password change ends the other sessions.
    let (_, sid) = signed_in(&app, &client, &email).await;
    let native = access(&app.login(&email, PASSWORD).await.body);
    app.post_auth(
        "/api/v1/auth/password",
        &native,
        Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Passw0rd!x"})),
    )
    .await
    .assert(204, None);
    receiver.token_for(&app, &sid, wait).await;

    // An admin disables the account, then deletes another.
    let (email2, id2) = user(&app).await;
    let (_, sid) = signed_in(&app, &client, &email2).await;
    app.patch_auth(
        &format!("/api/v1/admin/users/{id2}"),
        &admin,
        json!({"is_active": false}),
    )
    .await
    .assert(200, None);
    receiver.token_for(&app, &sid, wait).await;
    let (email3, id3) = user(&app).await;
    let (_, sid) = signed_in(&app, &client, &email3).await;
    app.delete_auth(&format!("/api/v1/admin/users/{id3}"), &admin)
        .await
        .assert(204, None);
    let c = receiver.token_for(&app, &sid, wait).await;
    assert_eq!(c["sub"], id3);

    // The user revokes the session from their session list.
    let (email4, _) = user(&app).await;
    let (_, sid) = signed_in(&app, &client, &email4).await;
    let native = access(&app.login(&email4, PASSWORD).await.body);
    app.delete_auth(&format!("/api/v1/auth/sessions/{sid}"), &native)
        .await
        .assert(204, None);
    receiver.token_for(&app, &sid, wait).await;

    // Each delivery is audited.
    let delivered = events(&app, &admin).await;
    assert!(delivered.len() >= 9, "{delivered:?}");
    assert!(delivered
        .iter()
        .all(|e| e["details"]["outcome"] == "delivered"
            && e["details"]["client_id"] == client.0.as_str()
            && e["details"]["attempt"] == 1));

    // Deleting the client tells it its sessions are over.
    let (_, sid) = signed_in(&app, &client, &email4).await;
    app.delete_auth(&format!("/api/v1/admin/oauth-clients/{}", client.0), &admin)
        .await
        .assert(204, None);
    let c = receiver.token_for(&app, &sid, wait).await;
    assert_eq!(c["aud"], client.0);
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_the_token_on_a_retry() {
    let app = spawn_provider(|s| s).await;
    let receiver = Receiver::start(DOWN).await;
    let client = rp(&app, &receiver).await;
    let admin = admin_token(&app).await;
    let (email, _) = user(&app).await;
    let (_, sid) = signed_in(&app, &client, &email).await;
    let native = access(&app.login(&email, PASSWORD).await.body);
    app.post_auth("/api/v1/auth/logout-all", &native, None)
        .await;
    // At least one failed attempt, audited.
    let mut failed = Vec::new();
    for _ in 0..50 {
        failed = events(&app, &admin).await;
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed[0]["details"]["outcome"], "failed", "{failed:?}");
    assert_eq!(failed[0]["details"]["error"], "the client answered 503");
    receiver.set(UP);
    receiver
        .token_for(&app, &sid, Duration::from_secs(10))
        .await;
    let all = events(&app, &admin).await;
    let ok = all
        .iter()
        .find(|e| e["details"]["outcome"] == "delivered")
        .expect("a delivered event");
    assert!(ok["details"]["attempt"].as_i64().unwrap() >= 2, "{all:?}");
}

#[tokio::test]
async fn a_stopping_instance_hands_its_deliveries_to_another() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db = database_url(&dir).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let settings = |s: tradeauth::config::Sources| {
        s.set("listen", format!("127.0.0.1:{port}"))
            .set("public_url", base.clone())
    };
    let a = spawn_on(dir.clone(), db.clone(), settings).await;
    let receiver = Receiver::start(HANGING).await;
    let client = rp(&a, &receiver).await;
    let (email, _) = user(&a).await;
    let (_, sid) = signed_in(&a, &client, &email).await;
    let native = access(&a.login(&email, PASSWORD).await.body);
    a.post_auth("/api/v1/auth/logout-all", &native, None).await;
    // `a` is now holding the delivery (the receiver does not answer) under a 30 s lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.tokens.lock().unwrap().is_empty());
    a.stop().await;
    receiver.set(UP);
    // Another instance on the same database delivers it at once, not after the lease.
    let b = spawn_on(dir.clone(), db, |s| {
        s.set("public_url", format!("http://127.0.0.1:{port}"))
    })
    .await;
    receiver.token_for(&b, &sid, Duration::from_secs(5)).await;
}

/// The events of `session`, oldest first.
async fn events_of(app: &TestApp, admin: &str, session: &str) -> Vec<Value> {
    let mut e: Vec<Value> = events(app, admin)
        .await
        .into_iter()
        .filter(|e| e["details"]["session_id"] == session)
        .collect();
    e.reverse();
    e
}

#[tokio::test]
async fn a_crashed_instances_claim_lapses_and_retries_give_up_when_bounded() {
    let app = spawn_provider(|s| s).await;
    let admin = admin_token(&app).await;
    let receiver = Receiver::start(DOWN).await;
    let client = rp(&app, &receiver).await;
    let (email, _) = user(&app).await;
    let (_, held) = signed_in(&app, &client, &email).await;
    let (_, last) = signed_in(&app, &client, &email).await;
    let native = access(&app.login(&email, PASSWORD).await.body);
    app.post_auth("/api/v1/auth/logout-all", &native, None)
        .await;
    for _ in 0..50 {
        if !events_of(&app, &admin, &held).await.is_empty()
            && !events_of(&app, &admin, &last).await.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A crashed instance holds one for 4 s more; the other is on its last attempt.
    let until = chrono::Utc::now().timestamp_millis() + 4000;
    sql(
        &app,
        &format!(
            "UPDATE oauth_backchannel_outbox SET claimed_by = 'crashed', claim_until = {until}, \
             next_at = 0 WHERE session_id = '{held}'"
        ),
    )
    .await;
    sql(
        &app,
        &format!(
            "UPDATE oauth_backchannel_outbox SET attempts = 11, next_at = 0 \
             WHERE session_id = '{last}'"
        ),
    )
    .await;
    let mut gave_up = Value::Null;
    for _ in 0..50 {
        let e = events_of(&app, &admin, &last).await;
        if let Some(g) = e.iter().find(|e| e["details"]["outcome"] == "gave_up") {
            gave_up = g.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gave_up["details"]["attempt"], 12, "{gave_up}");
    assert_eq!(gave_up["details"]["error"], "the client answered 503");

    receiver.set(UP);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        receiver.tokens.lock().unwrap().is_empty(),
        "delivered under another instance's lease"
    );
    receiver
        .token_for(&app, &held, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        receiver.tokens.lock().unwrap().len(),
        1,
        "the given-up token is not sent again"
    );
}

#[tokio::test]
async fn the_logout_uri_is_checked_and_edited_by_the_api_and_the_console() {
    let app = spawn_provider(|s| s).await;
    let (admin_email, _) = app.user_with_tier(4).await;
    let admin = access(&app.login(&admin_email, PASSWORD).await.body);
    for bad in [
        "http://rp.example/logout",
        "https://rp.example/logout#x",
        "logout",
    ] {
        let r = app
            .post_auth(
                "/api/v1/admin/oauth-clients",
                &admin,
                Some(json!({"name": "RP", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "backchannel_logout_uri": bad})),
            )
            .await;
        r.assert(400, Some("validation_error"));
        assert!(
            r.body["details"]["backchannel_logout_uri"].is_string(),
            "{bad}: {}",
            r.text
        );
    }

    // The console's client form: the logout URI and the new grant types.
    let mut agent = Agent::new(&app);
    let login = agent.get("/login").await;
    agent.sign_in(login, &admin_email).await;
    let page = agent.get("/admin/clients").await;
    assert!(
        page.text.contains("Back-channel logout URI"),
        "{}",
        page.text
    );
    assert!(page.text.contains(super::device::DEVICE), "{}", page.text);
    let csrf = page.hidden("csrf_token");
    let made = agent
        .post(
            "/admin/clients",
            &[
                ("csrf_token", &csrf),
                ("name", "Desk terminal"),
                ("client_type", "confidential"),
                ("redirect_uris", REDIRECT_URI),
                ("grant_types", "authorization_code"),
                ("grant_types", super::device::DEVICE),
                ("grant_types", super::exchange::EXCHANGE),
                ("scopes", "openid"),
                ("max_tier", "2"),
                ("backchannel_logout_uri", "https://desk.example/bc"),
            ],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let id = made
        .text
        .split("/admin/clients/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let api = app
        .get_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
        .await;
    assert_eq!(
        api.body["backchannel_logout_uri"],
        "https://desk.example/bc"
    );
    assert_eq!(
        api.body["grant_types"],
        json!([
            "authorization_code",
            super::device::DEVICE,
            super::exchange::EXCHANGE
        ])
    );
    let edit = agent.get(&format!("/admin/clients/{id}")).await;
    assert!(
        edit.text.contains("value=\"https://desk.example/bc\""),
        "{}",
        edit.text
    );

    let r = app
        .patch_auth(
            &format!("/api/v1/admin/oauth-clients/{id}"),
            &admin,
            json!({"backchannel_logout_session_required": false}),
        )
        .await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["backchannel_logout_session_required"].is_string());

    // The API removes it with "".
    let r = app
        .patch_auth(
            &format!("/api/v1/admin/oauth-clients/{id}"),
            &admin,
            json!({"backchannel_logout_uri": ""}),
        )
        .await;
    r.assert(200, None);
    assert!(r.body.get("backchannel_logout_uri").is_none(), "{}", r.text);
}
