//! API keys: format, storage, effective tier, allowed IPs, expiry, revocation, and what a
//! key may not do.

use crate::helpers::*;
use serde_json::{json, Value};

async fn with_key(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    header: bool,
) -> Resp {
    let req = app.client.request(method, app.url(path));
    let req = if header {
        req.header("x-api-key", key)
    } else {
        req.header("authorization", format!("ApiKey {key}"))
    };
    into_resp(req.send().await.unwrap()).await
}

async fn create(app: &TestApp, at: &str, body: Value) -> Resp {
    app.post_auth("/api/v1/auth/api-keys", at, Some(body)).await
}

#[tokio::test]
async fn create_use_list_and_revoke_a_key() {
    let app = spawn_app().await;
    let (_, login) = app.user_with_tier(3).await;
    let at = access(&login);
    let r = create(&app, &at, json!({"name": "bot", "permission_tier": 2})).await;
    r.assert(201, None);
    let key = r.body["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("ta_"), "{key}");
    assert!(key.starts_with(r.body["prefix"].as_str().unwrap()));
    for f in [
        "id",
        "name",
        "key",
        "prefix",
        "permission_tier",
        "created_at",
        "expires_at",
        "allowed_ips",
    ] {
        assert!(
            r.body.get(f).is_some(),
            "creation answer lacks {f}: {}",
            r.text
        );
    }
    assert_eq!(r.body["permission_tier"], 2);
    assert!(r.body["expires_at"].is_null());
    let id = r.body["id"].as_str().unwrap().to_string();

    // Both headers work; the effective tier is the key's (lower than the owner's).
    let me = with_key(&app, reqwest::Method::GET, "/api/v1/auth/me", &key, true).await;
    me.assert(200, None);
    assert_eq!(me.body["id"], login["user"]["id"]);
    let v = with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/verify",
        &key,
        false,
    )
    .await;
    v.assert(204, None);
    assert_eq!(v.header("x-auth-tier").as_deref(), Some("2"));
    assert_eq!(
        v.header("x-auth-user-id").as_deref(),
        login["user"]["id"].as_str()
    );
    with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/verify?min_tier=3",
        &key,
        true,
    )
    .await
    .assert(403, Some("insufficient_tier"));

    // Listed without the secret, with last_used_at recorded (once a minute at most).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let list = app.get_auth("/api/v1/auth/api-keys", &at).await;
    list.assert(200, None);
    assert!(
        !list.text.contains(&key[key.len() - 20..]),
        "the secret is never listed"
    );
    let item = &list.body["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert!(item.get("key").is_none());
    let used = item["last_used_at"]
        .as_str()
        .expect("last_used_at recorded")
        .to_string();
    with_key(&app, reqwest::Method::GET, "/api/v1/auth/me", &key, true)
        .await
        .assert(200, None);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let list = app.get_auth("/api/v1/auth/api-keys", &at).await;
    assert_eq!(
        list.body["items"][0]["last_used_at"],
        used.as_str(),
        "not rewritten within a minute"
    );

    app.delete_auth(&format!("/api/v1/auth/api-keys/{id}"), &at)
        .await
        .assert(204, None);
    let r = with_key(&app, reqwest::Method::GET, "/api/v1/auth/me", &key, true).await;
    r.assert(401, Some("invalid_api_key"));
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="tradeauth", error="invalid_token""#.into())
    );
    app.delete_auth(&format!("/api/v1/auth/api-keys/{id}"), &at)
        .await
        .assert(404, Some("not_found"));
    assert_eq!(
        app.get_auth("/api/v1/auth/api-keys", &at).await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn a_key_cannot_manage_keys_sessions_passwords() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let key = create(&app, &access(&login), json!({"name": "k"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let c = &app.client;
    let reqs = [
        c.post(app.url("/api/v1/auth/api-keys"))
            .json(&json!({"name": "x"})),
        c.get(app.url("/api/v1/auth/api-keys")),
        c.get(app.url("/api/v1/auth/sessions")),
        c.post(app.url("/api/v1/auth/password"))
            .json(&json!({"current_password": PASSWORD, "new_password": "Zq8-new-Secret"})),
        c.post(app.url("/api/v1/auth/logout")),
        c.post(app.url("/api/v1/auth/logout-all")),
        c.patch(app.url("/api/v1/auth/me"))
            .json(&json!({"full_name": "x"})),
    ];
    for req in reqs {
        let req = req.header("x-api-key", &key).build().unwrap();
        let what = format!("{} {}", req.method(), req.url().path());
        let r = into_resp(c.execute(req).await.unwrap()).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "api_key_not_allowed"),
            "{what}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn key_rules() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    create(&app, &at, json!({"name": "too high", "permission_tier": 3}))
        .await
        .assert(422, Some("tier_not_allowed"));
    create(&app, &at, json!({}))
        .await
        .assert(400, Some("validation_error"));
    create(
        &app,
        &at,
        json!({"name": "x", "allowed_ips": ["not-an-ip"]}),
    )
    .await
    .assert(400, Some("validation_error"));
    create(
        &app,
        &at,
        json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await
    .assert(400, Some("validation_error"));

    // allowed_ips: the loopback client is outside 10.0.0.0/8, inside 127.0.0.0/8.
    let far = create(
        &app,
        &at,
        json!({"name": "far", "allowed_ips": ["10.0.0.0/8", "192.168.1.5"]}),
    )
    .await;
    far.assert(201, None);
    assert_eq!(
        far.body["allowed_ips"],
        json!(["10.0.0.0/8", "192.168.1.5"])
    );
    let r = with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/me",
        far.body["key"].as_str().unwrap(),
        true,
    )
    .await;
    r.assert(403, Some("ip_not_allowed"));
    let near = create(
        &app,
        &at,
        json!({"name": "near", "allowed_ips": ["127.0.0.0/8"]}),
    )
    .await;
    with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/me",
        near.body["key"].as_str().unwrap(),
        true,
    )
    .await
    .assert(200, None);

    // A mistyped key is refused; so is an expired one.
    let key = near.body["key"].as_str().unwrap();
    let mut typo = key.to_string();
    typo.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    with_key(&app, reqwest::Method::GET, "/api/v1/auth/me", &typo, true)
        .await
        .assert(401, Some("invalid_api_key"));
    with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/me",
        "ta_nonsense",
        true,
    )
    .await
    .assert(401, Some("invalid_api_key"));
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let short = create(&app, &at, json!({"name": "short", "expires_at": soon})).await;
    short.assert(201, None);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    with_key(
        &app,
        reqwest::Method::GET,
        "/api/v1/auth/me",
        short.body["key"].as_str().unwrap(),
        true,
    )
    .await
    .assert(401, Some("invalid_api_key"));

    // The owner's tier caps the key's, now; the owner's disablement kills it.
    let id = login["user"]["id"].as_str().unwrap();
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &access(&admin),
        json!({"permission_tier": 1}),
    )
    .await
    .assert(200, None);
    let v = with_key(&app, reqwest::Method::GET, "/api/v1/auth/verify", key, true).await;
    assert_eq!(v.header("x-auth-tier").as_deref(), Some("1"));
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &access(&admin),
        json!({"is_active": false}),
    )
    .await
    .assert(200, None);
    with_key(&app, reqwest::Method::GET, "/api/v1/auth/me", key, true)
        .await
        .assert(401, Some("invalid_api_key"));
}
