//! The device authorization grant (RFC 8628): panva's `openid-client` as the terminal tool
//! (`initiateDeviceAuthorization`, `pollDeviceAuthorizationGrant`) while the user answers
//! on the hosted `/device` page, driven here by plain form posts; then every polling
//! answer, single use, expiry and the brute-force limit on code entry.

use super::relying_parties::{oidc_dir, require_node};
use super::*;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public client registered for the device grant (and refresh tokens).
async fn terminal_client(app: &TestApp) -> String {
    let c = register_client(
        app,
        json!({"name": "Terminal trader", "client_type": "public", "grant_types": [DEVICE, "refresh_token"], "max_tier": 3}),
    )
    .await;
    c["client_id"].as_str().unwrap().to_string()
}

async fn start_device(app: &TestApp, client_id: &str, scope: &str) -> Resp {
    into_resp(
        app.client
            .post(app.url("/oauth2/device_authorization"))
            .form(&[("client_id", client_id), ("scope", scope)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> Resp {
    into_resp(
        app.client
            .post(app.url("/oauth2/token"))
            .form(&[
                ("grant_type", DEVICE),
                ("device_code", device_code),
                ("client_id", client_id),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Types `code` on `/device`, signs in as `email` if asked, and answers the consent page.
async fn answer_on_page(agent: &mut Agent, code: &str, email: &str, allow: bool) -> Page {
    let form = agent.get("/device").await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains(">Code</label>"), "{}", form.text);
    assert!(form.text.contains(">Continue</button>"), "{}", form.text);
    let r = agent.post("/device", &[("user_code", code)]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let mut page = agent.follow(r).await;
    if page.text.contains("id=\"login-form\"") {
        page = agent.sign_in(page, email).await;
    }
    assert!(
        page.text.contains("Allow Terminal trader?"),
        "{}",
        page.text
    );
    agent.consent(&page, allow).await
}

#[tokio::test]
async fn openid_client_completes_the_device_flow_through_the_device_page() {
    if !require_node() {
        return;
    }
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let client_id = terminal_client(&app).await;
    let mut node = tokio::process::Command::new("node")
        .arg("device_flow.mjs")
        .current_dir(oidc_dir())
        .env("TRADEAUTH_URL", &app.base)
        .env("CLIENT_ID", &client_id)
        .env("SCOPE", "openid profile offline_access trade:read")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the device authorization answers")
        .unwrap()
        .expect("a line");
    let device: Value = serde_json::from_str(&first).unwrap();
    let code = device["user_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 9, "{device}");
    assert_eq!(&code[4..5], "-");
    assert!(code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(device["verification_uri"], format!("{}/device", app.base));
    assert!(device["verification_uri_complete"]
        .as_str()
        .unwrap()
        .contains(&code.replace('-', "")));
    assert_eq!(device["interval"], 5);
    assert_eq!(device["expires_in"], 600);

    // The user types it in lower case without the dash, signs in and allows.
    let mut agent = Agent::new(&app);
    let typed = code.replace('-', "").to_lowercase();
    let done = answer_on_page(&mut agent, &typed, &email, true).await;
    assert!(done.text.contains("Device connected"), "{}", done.text);

    let last = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the device gets its tokens")
        .unwrap()
        .expect("a line");
    let out: Value = serde_json::from_str(&last).unwrap();
    let tokens = &out["tokens"];
    assert!(tokens["access_token"].is_string(), "{out}");
    assert!(tokens["refresh_token"].is_string(), "{out}");
    assert_eq!(tokens["scope"], "openid profile offline_access trade:read");
    assert_eq!(out["claims"]["sub"], user_id);
    assert_eq!(out["claims"]["aud"], client_id);
    assert!(node.wait().await.unwrap().success());

    // The authorization is a session with a remembered grant, like a code flow's.
    let at = access(&app.login(&email, PASSWORD).await.body);
    let grants = app.get_auth("/api/v1/auth/oauth-grants", &at).await;
    assert!(grants.text.contains(&client_id), "{}", grants.text);
    let me = app
        .get_auth("/api/v1/auth/me", tokens["access_token"].as_str().unwrap())
        .await;
    me.assert(200, None);
}

#[tokio::test]
async fn polling_answers_pending_slow_down_denied_expired_and_used() {
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let client_id = terminal_client(&app).await;
    let doc = app.get("/.well-known/openid-configuration").await.body;
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{}/oauth2/device_authorization", app.base)
    );
    assert!(doc["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(DEVICE)));
    let api = app.get("/openapi.json").await.body;
    for path in ["/oauth2/device_authorization", "/oauth2/token"] {
        assert!(
            api["paths"][path]["post"]["responses"]["400"].is_object(),
            "{path}"
        );
    }

    let d = start_device(&app, &client_id, "openid").await;
    d.assert(200, None);
    assert_eq!(d.header("cache-control").as_deref(), Some("no-store"));
    let device_code = d.body["device_code"].as_str().unwrap().to_string();
    let user_code = d.body["user_code"].as_str().unwrap().to_string();
    let complete = d.body["verification_uri_complete"].as_str().unwrap();
    let mut agent = Agent::new(&app);
    let page = agent.get(complete).await;
    assert!(
        page.text
            .contains(&format!("value=\"{}\"", user_code.replace('-', ""))),
        "{}",
        page.text
    );
    let r = poll(&app, &client_id, &device_code).await;
    assert_eq!(r.body["error"], "authorization_pending", "{}", r.text);
    // Faster than the interval: slow down, and the interval grows by 5 s each time.
    let r = poll(&app, &client_id, &device_code).await;
    assert_eq!(r.body["error"], "slow_down", "{}", r.text);
    assert!(r.text.contains("now 10 s"), "{}", r.text);
    let r = poll(&app, &client_id, &device_code).await;
    assert!(r.text.contains("now 15 s"), "{}", r.text);

    // Another client's poll, an unknown code.
    let other = terminal_client(&app).await;
    let r = poll(&app, &other, &device_code).await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);
    let r = poll(&app, &client_id, "nope").await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);

    // The user says no.
    let done = answer_on_page(&mut agent, &user_code, &email, false).await;
    assert!(done.text.contains("Request denied"), "{}", done.text);
    let r = poll(&app, &client_id, &device_code).await;
    assert_eq!(r.body["error"], "access_denied", "{}", r.text);
    // The code is spent.
    let again = agent.post("/device", &[("user_code", &user_code)]).await;
    assert_eq!(again.status, 400);
    assert!(again.text.contains("not valid"), "{}", again.text);

    // Allowed: one poll gets the tokens, the next is refused.
    let d = start_device(&app, &client_id, "openid").await;
    let device_code = d.body["device_code"].as_str().unwrap().to_string();
    let user_code = d.body["user_code"].as_str().unwrap().to_string();
    let done = answer_on_page(&mut agent, &user_code, &email, true).await;
    assert!(done.text.contains("Device connected"), "{}", done.text);
    let r = poll(&app, &client_id, &device_code).await;
    r.assert(200, None);
    assert!(r.body["id_token"].is_string(), "{}", r.text);
    assert!(
        r.body.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    let r = poll(&app, &client_id, &device_code).await;
    assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);

    // Expired.
    let d = start_device(&app, &client_id, "openid").await;
    let device_code = d.body["device_code"].as_str().unwrap().to_string();
    sql(
        &app,
        "UPDATE oauth_device_codes SET expires_at = 0 WHERE status = 'pending'",
    )
    .await;
    let r = poll(&app, &client_id, &device_code).await;
    assert_eq!(r.body["error"], "expired_token", "{}", r.text);

    // Only clients registered for the grant.
    let (id, secret) = confidential_client(&app).await;
    let r = into_resp(
        app.client
            .post(app.url("/oauth2/device_authorization"))
            .basic_auth(&id, Some(&secret))
            .form(&[("scope", "openid")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["error"], "unauthorized_client", "{}", r.text);
}

#[tokio::test]
async fn wrong_user_codes_are_limited_per_address() {
    let app = spawn_provider(|s| s).await;
    let client_id = terminal_client(&app).await;
    let d = start_device(&app, &client_id, "openid").await;
    let real = d.body["user_code"].as_str().unwrap().to_string();
    let mut agent = Agent::new(&app);
    for i in 0..10 {
        let wrong = if real.starts_with('B') {
            "CCCC-CCCC"
        } else {
            "BBBB-BBBB"
        };
        let r = agent.post("/device", &[("user_code", wrong)]).await;
        assert_eq!(r.status, 400, "entry {i}: {}", r.text);
    }
    // The limit holds for the right code too: guessing cannot go on.
    let r = agent.post("/device", &[("user_code", &real)]).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.text.contains("Too many codes"), "{}", r.text);
}
