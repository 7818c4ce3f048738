//! The admin API and the rules around it.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn every_admin_route_needs_tier_four() {
    let app = spawn_app().await;
    let (_, power) = app.user_with_tier(3).await;
    let at = access(&power);
    let id = power["user"]["id"].as_str().unwrap();
    let c = &app.client;
    let routes = [
        c.get(app.url("/api/v1/admin/users")),
        c.post(app.url("/api/v1/admin/users")).json(&json!({})),
        c.get(app.url(&format!("/api/v1/admin/users/{id}"))),
        c.patch(app.url(&format!("/api/v1/admin/users/{id}")))
            .json(&json!({})),
        c.delete(app.url(&format!("/api/v1/admin/users/{id}"))),
        c.post(app.url(&format!("/api/v1/admin/users/{id}/unlock"))),
        c.delete(app.url(&format!("/api/v1/admin/users/{id}/sessions"))),
        c.get(app.url("/api/v1/admin/audit")),
        c.post(app.url("/api/v1/admin/signing-keys/rotate")),
    ];
    for req in routes {
        let req = req.bearer_auth(&at).build().unwrap();
        let what = format!("{} {}", req.method(), req.url().path());
        let r = into_resp(c.execute(req).await.unwrap()).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "insufficient_tier"),
            "{what}: {}",
            r.text
        );
    }
}

#[tokio::test]
async fn create_list_get_patch_delete() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let at = access(&admin);
    let r = app
        .post_auth(
            "/api/v1/admin/users",
            &at,
            Some(json!({"email": "Power@Example.com", "password": PASSWORD, "permission_tier": 3, "is_verified": true, "full_name": "P"})),
        )
        .await;
    r.assert(201, None);
    assert_eq!(r.body["permission_tier"], 3);
    assert_eq!(r.body["role"], "power");
    assert_eq!(r.body["is_verified"], true);
    // The admin view, as from GET: with the lockout state.
    assert_eq!(r.body["failed_login_count"], 0);
    assert_eq!(r.body.get("locked_until"), Some(&serde_json::Value::Null));
    let id = r.body["id"].as_str().unwrap().to_string();
    app.post_auth(
        "/api/v1/admin/users",
        &at,
        Some(json!({"email": "power@example.com", "password": PASSWORD})),
    )
    .await
    .assert(409, Some("email_exists"));
    app.post_auth(
        "/api/v1/admin/users",
        &at,
        Some(json!({"email": "x@example.com", "password": PASSWORD, "permission_tier": 7})),
    )
    .await
    .assert(400, Some("validation_error"));

    for i in 0..3 {
        app.register(&format!("list{i}@example.com"), PASSWORD)
            .await
            .assert(201, None);
    }
    let r = app
        .get_auth("/api/v1/admin/users?q=LIST&limit=2", &at)
        .await;
    r.assert(200, None);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"].as_str().unwrap();
    let r2 = app
        .get_auth(
            &format!("/api/v1/admin/users?q=list&limit=2&cursor={cursor}"),
            &at,
        )
        .await;
    assert_eq!(r2.body["items"].as_array().unwrap().len(), 1);
    assert!(r2.body["next_cursor"].is_null());
    // The contract's own example: empty values mean "no filter".
    let r = app
        .get_auth("/api/v1/admin/users?q=&tier=&active=&cursor=&limit=", &at)
        .await;
    r.assert(200, None);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5);
    app.get_auth(
        "/api/v1/admin/audit?user_id=&type=&since=&cursor=&limit=",
        &at,
    )
    .await
    .assert(200, None);
    let r = app.get_auth("/api/v1/admin/users?tier=3", &at).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["failed_login_count"], 0);

    let r = app
        .get_auth(&format!("/api/v1/admin/users/{id}"), &at)
        .await;
    r.assert(200, None);
    assert!(r.body.get("locked_until").is_some());
    let r = app
        .patch_auth(
            &format!("/api/v1/admin/users/{id}"),
            &at,
            json!({"full_name": "Renamed", "is_verified": false}),
        )
        .await;
    r.assert(200, None);
    assert_eq!(r.body["full_name"], "Renamed");
    assert_eq!(r.body["is_verified"], false);
    app.delete_auth(&format!("/api/v1/admin/users/{id}"), &at)
        .await
        .assert(204, None);
    app.get_auth(&format!("/api/v1/admin/users/{id}"), &at)
        .await
        .assert(404, Some("not_found"));
    app.login("power@example.com", PASSWORD)
        .await
        .assert(401, Some("invalid_credentials"));
}

#[tokio::test]
async fn disabling_or_demoting_takes_effect_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let at = access(&admin);
    let (email, victim) = app.user_with_tier(3).await;
    let id = victim["user"]["id"].as_str().unwrap().to_string();
    app.get_auth("/api/v1/auth/me", &access(&victim))
        .await
        .assert(200, None);
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &at,
        json!({"permission_tier": 1}),
    )
    .await
    .assert(200, None);
    app.get_auth("/api/v1/auth/me", &access(&victim))
        .await
        .assert(401, Some("invalid_token"));
    let again = app.login(&email, PASSWORD).await;
    assert_eq!(again.body["permission_tier"], 1);
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &at,
        json!({"is_active": false}),
    )
    .await
    .assert(200, None);
    app.get_auth("/api/v1/auth/me", &access(&again.body))
        .await
        .assert(401, Some("invalid_token"));
    app.refresh(&refresh_token(&again.body))
        .await
        .assert(401, Some("invalid_refresh_token"));
    // Disabled: the right password gets 403, the wrong one 401.
    app.login(&email, PASSWORD)
        .await
        .assert(403, Some("account_disabled"));
    app.login(&email, "Wrong-pass-123")
        .await
        .assert(401, Some("invalid_credentials"));
}

#[tokio::test]
async fn raising_a_tier_waits_for_the_next_refresh() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let (_, user) = app.new_user().await;
    let id = user["user"]["id"].as_str().unwrap();
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &access(&admin),
        json!({"permission_tier": 3}),
    )
    .await
    .assert(200, None);
    let r = app.get_auth("/api/v1/auth/verify", &access(&user)).await;
    assert_eq!(r.header("x-auth-tier").as_deref(), Some("2"));
    let fresh = app.refresh(&refresh_token(&user)).await;
    assert_eq!(fresh.body["permission_tier"], 3);
    let r = app
        .get_auth("/api/v1/auth/verify", &access(&fresh.body))
        .await;
    assert_eq!(r.header("x-auth-tier").as_deref(), Some("3"));
}

#[tokio::test]
async fn the_last_admin_stays() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let at = access(&admin);
    let id = admin["user"]["id"].as_str().unwrap().to_string();
    for body in [json!({"permission_tier": 3}), json!({"is_active": false})] {
        app.patch_auth(&format!("/api/v1/admin/users/{id}"), &at, body)
            .await
            .assert(422, Some("last_admin"));
    }
    app.delete_auth(&format!("/api/v1/admin/users/{id}"), &at)
        .await
        .assert(422, Some("last_admin"));
    // With a second admin, the first may step down.
    app.user_with_tier(4).await;
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &at,
        json!({"permission_tier": 3}),
    )
    .await
    .assert(200, None);
}

#[tokio::test]
async fn admin_revokes_sessions_and_reads_the_audit_log() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let at = access(&admin);
    let (email, user) = app.new_user().await;
    let id = user["user"]["id"].as_str().unwrap().to_string();
    app.login(&email, "Wrong-pass-123").await.assert(401, None);
    app.delete_auth(&format!("/api/v1/admin/users/{id}/sessions"), &at)
        .await
        .assert(204, None);
    app.get_auth("/api/v1/auth/me", &access(&user))
        .await
        .assert(401, Some("invalid_token"));
    let r = app
        .get_auth(&format!("/api/v1/admin/audit?user_id={id}"), &at)
        .await;
    r.assert(200, None);
    let types: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "session.revoked",
            "login.failed",
            "login.succeeded",
            "user.registered"
        ]
    );
    let r = app
        .get_auth("/api/v1/admin/audit?type=login.failed", &at)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let since = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let r = app
        .get_auth(&format!("/api/v1/admin/audit?since={since}"), &at)
        .await;
    r.assert(200, None);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn bootstrap_admin_keeps_a_password_changed_through_the_api() {
    let settings = |s: tradeauth::config::Sources| {
        s.set("admin_email", "root@example.com")
            .set("admin_password", "from-env")
    };
    let app = spawn_with(settings).await;
    let r = app.login("root@example.com", "from-env").await;
    r.assert(200, None);
    app.post_auth(
        "/api/v1/auth/password",
        &access(&r.body),
        Some(json!({"current_password": "from-env", "new_password": PASSWORD})),
    )
    .await
    .assert(204, None);
    let session = app.login("root@example.com", PASSWORD).await;
    session.assert(200, None);
    // Restarts with the same settings (a deploy, a new replica) leave the account alone:
    // the new password works, the old one does not, and the admin stays signed in.
    let mut dir = app.stop().await;
    for _ in 0..2 {
        let app = spawn_in(dir.clone(), settings).await;
        app.get_auth("/api/v1/auth/me", &access(&session.body))
            .await
            .assert(200, None);
        app.login("root@example.com", "from-env")
            .await
            .assert(401, Some("invalid_credentials"));
        app.login("root@example.com", PASSWORD)
            .await
            .assert(200, None);
        dir = app.stop().await;
    }
    // A changed setting is applied again, once.
    let app = spawn_in(dir.clone(), |s| {
        s.set("admin_email", "root@example.com")
            .set("admin_password", "rotated")
    })
    .await;
    app.login("root@example.com", "rotated")
        .await
        .assert(200, None);
    app.get_auth("/api/v1/auth/me", &access(&session.body))
        .await
        .assert(401, Some("invalid_token"));
    app.stop().await;
}

#[tokio::test]
async fn bootstrap_admin_is_created_and_kept_in_step() {
    let app = spawn_with(|s| {
        s.set("admin_email", "root@example.com")
            .set("admin_password", "short")
    })
    .await;
    let r = app.login("root@example.com", "short").await;
    r.assert(200, None);
    assert_eq!(r.body["permission_tier"], 4);
    assert_eq!(r.body["user"]["is_verified"], true);
    let old = r.body.clone();
    let dir = app.stop().await;
    // A later start with a changed password updates that account and ends its sessions.
    let app = spawn_in(dir.clone(), |s| {
        s.set("admin_email", "root@example.com")
            .set("admin_password", "changed")
    })
    .await;
    app.login("root@example.com", "short")
        .await
        .assert(401, Some("invalid_credentials"));
    app.login("root@example.com", "changed")
        .await
        .assert(200, None);
    app.get_auth("/api/v1/auth/me", &access(&old))
        .await
        .assert(401, Some("invalid_token"));
    // A changed email moves the same account.
    app.register("taken@example.com", PASSWORD)
        .await
        .assert(201, None);
    let dir = app.stop().await;
    let app = spawn_in(dir.clone(), |s| {
        s.set("admin_email", "boss@example.com")
            .set("admin_password", "changed")
    })
    .await;
    let r = app.login("boss@example.com", "changed").await;
    r.assert(200, None);
    assert_eq!(r.body["user"]["id"], old["user"]["id"]);
    let app_db_url = app.db_url.clone();
    app.stop().await;
    // An email that belongs to another user stops the start with a message.
    let db_url = app_db_url;
    let config = tradeauth::config::Sources::default()
        .set("listen", "127.0.0.1:0")
        .set("database_url", db_url)
        .set("admin_email", "taken@example.com")
        .set("admin_password", "changed")
        .build(false)
        .unwrap();
    let err = tradeauth::app::Application::build(config)
        .await
        .err()
        .expect("start fails");
    assert!(err.to_string().contains("belongs to another user"), "{err}");
}

#[tokio::test]
async fn a_demoted_admin_gets_no_idempotent_replay() {
    let app = spawn_app().await;
    let (_, boss) = app.user_with_tier(4).await;
    let (email, demoted) = app.user_with_tier(4).await;
    let create = |at: String| {
        let req = app
            .client
            .post(app.url("/api/v1/admin/users"))
            .bearer_auth(at)
            .header("idempotency-key", "create-1")
            .json(&json!({"email": "made@example.com", "password": PASSWORD}));
        async move { into_resp(req.send().await.unwrap()).await }
    };
    create(access(&demoted)).await.assert(201, None);
    let id = demoted["user"]["id"].as_str().unwrap();
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &access(&boss),
        json!({"permission_tier": 2}),
    )
    .await
    .assert(200, None);
    let again = app.login(&email, PASSWORD).await;
    again.assert(200, None);
    assert_eq!(again.body["permission_tier"], 2);
    // The same key and body: the tier check answers, not the stored 201.
    let r = create(access(&again.body)).await;
    r.assert(403, Some("insufficient_tier"));
    assert!(r.header("idempotent-replayed").is_none());
    assert!(r.body.get("id").is_none(), "{}", r.body);
    // Without a credential: 401, whatever the key.
    let r = into_resp(
        app.client
            .post(app.url("/api/v1/admin/users"))
            .header("idempotency-key", "create-1")
            .json(&json!({"email": "made@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(401, Some("missing_token"));
}
