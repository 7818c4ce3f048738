//! Every native endpoint of the core, through HTTP.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn register_login_me_refresh_logout_walkthrough() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "Jane.Doe@Example.com", "password": PASSWORD, "full_name": "Jane Doe"}),
        )
        .await;
    r.assert(201, None);
    assert_eq!(r.body["verification_required"], false);
    let user = &r.body["user"];
    assert_eq!(user["email"], "jane.doe@example.com");
    assert_eq!(user["username"], "jane.doe");
    assert_eq!(user["full_name"], "Jane Doe");
    assert_eq!(user["permission_tier"], 2);
    assert_eq!(user["role"], "trader");
    assert_eq!(user["is_verified"], false);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["mfa_enabled"], false);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));

    // Login by username and by email (case-insensitive), and with the `email` field.
    app.login("JANE.DOE", PASSWORD).await.assert(200, None);
    app.post(
        "/api/v1/auth/login",
        json!({"email": "jane.doe@example.com", "password": PASSWORD}),
    )
    .await
    .assert(200, None);
    let login = app.login("jane.doe@example.com", PASSWORD).await;
    login.assert(200, None);
    let b = &login.body;
    assert_eq!(b["token_type"], "bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(b["permission_tier"], 2);
    assert!(b["access_expires_at"].is_i64());
    assert!(b["refresh_expires_at"].is_i64());
    let week = b["refresh_expires_at"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (7 * 86400 - 60..=7 * 86400).contains(&week),
        "7-day refresh, got {week}s"
    );
    assert!(b["user"]["last_login_at"].is_string());

    let at = access(b);
    let me = app.get_auth("/api/v1/auth/me", &at).await;
    me.assert(200, None);
    assert_eq!(me.body["email"], "jane.doe@example.com");

    let r2 = app.refresh(&refresh_token(b)).await;
    r2.assert(200, None);
    assert_ne!(
        refresh_token(&r2.body),
        refresh_token(b),
        "rotation is on by default"
    );
    app.post_auth("/api/v1/auth/logout", &at, None)
        .await
        .assert(204, None);
    app.get_auth("/api/v1/auth/me", &at)
        .await
        .assert(401, Some("invalid_token"));
}

#[tokio::test]
async fn remember_me_gets_the_long_refresh_lifetime() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let r = app
        .post(
            "/api/v1/auth/login",
            json!({"username": email, "password": PASSWORD, "remember_me": true}),
        )
        .await;
    r.assert(200, None);
    let left = r.body["refresh_expires_at"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (30 * 86400 - 60..=30 * 86400).contains(&left),
        "30 days, got {left}s"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_answer_alike() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let a = app.login(&email, "Wrong-pass-123").await;
    let b = app.login("nobody@example.com", "Wrong-pass-123").await;
    a.assert(401, Some("invalid_credentials"));
    b.assert(401, Some("invalid_credentials"));
    assert_eq!(a.body, b.body);
    assert_eq!(
        a.header("www-authenticate"),
        Some(r#"Bearer realm="tradeauth""#.into())
    );
}

#[tokio::test]
async fn registration_rules() {
    let app = spawn_app().await;
    app.register("dup@example.com", PASSWORD)
        .await
        .assert(201, None);
    app.register("DUP@example.com", PASSWORD)
        .await
        .assert(409, Some("email_exists"));
    // Derived usernames get a number when taken.
    let r = app.register("dup@example.org", PASSWORD).await;
    r.assert(201, None);
    assert_eq!(r.body["user"]["username"], "dup1");
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "x@example.net", "password": PASSWORD, "username": "DUP"}),
        )
        .await;
    r.assert(409, Some("username_exists"));
    // Weak passwords: common, too short, containing the email's local part.
    for (email, pw) in [
        ("w1@example.com", "password123"),
        ("w2@example.com", "Ab1!"),
        ("johnsmith@example.com", "johnsmith-2024!"),
    ] {
        let r = app.register(email, pw).await;
        r.assert(422, Some("weak_password"));
        assert!(r.body["details"]["password"].is_string(), "{}", r.text);
    }
    let r = app.register("not-an-email", PASSWORD).await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["email"].is_string());
    let r = app
        .post("/api/v1/auth/register", json!({"password": PASSWORD}))
        .await;
    r.assert(400, Some("validation_error"));
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "u@example.com", "password": PASSWORD, "username": "a b"}),
        )
        .await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["username"].is_string());
}

#[tokio::test]
async fn closed_registration_is_refused() {
    let app = spawn_with(|s| s.set("registration", "closed")).await;
    app.register("a@example.com", PASSWORD)
        .await
        .assert(403, Some("registration_closed"));
}

#[tokio::test]
async fn profile_update() {
    let app = spawn_app().await;
    let (_, other) = app.new_user().await;
    let taken = other["user"]["username"].as_str().unwrap().to_string();
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let r = app
        .patch_auth(
            "/api/v1/auth/me",
            &at,
            json!({"full_name": "New Name", "username": "New_Handle"}),
        )
        .await;
    r.assert(200, None);
    assert_eq!(r.body["full_name"], "New Name");
    assert_eq!(r.body["username"], "new_handle");
    app.patch_auth(
        "/api/v1/auth/me",
        &at,
        json!({"username": taken.to_uppercase()}),
    )
    .await
    .assert(409, Some("username_exists"));
    app.patch_auth(
        "/api/v1/auth/me",
        &at,
        json!({"full_name": "x".repeat(101)}),
    )
    .await
    .assert(400, Some("validation_error"));
    let r = app
        .patch_auth("/api/v1/auth/me", &at, json!({"full_name": null}))
        .await;
    r.assert(200, None);
    assert!(r.body["full_name"].is_null());
}

#[tokio::test]
async fn password_change_revokes_other_sessions() {
    let app = spawn_app().await;
    let (email, first) = app.new_user().await;
    let second = app.login(&email, PASSWORD).await.body;
    let at = access(&second);
    app.post_auth(
        "/api/v1/auth/password",
        &at,
        Some(json!({"current_password": "nope-nope-1", "new_password": "Zq8-new-Secret"})),
    )
    .await
    .assert(403, Some("invalid_password"));
    app.post_auth(
        "/api/v1/auth/password",
        &at,
        Some(json!({"current_password": PASSWORD, "new_password": "password"})),
    )
    .await
    .assert(422, Some("weak_password"));
    app.post_auth(
        "/api/v1/auth/password",
        &at,
        Some(json!({"current_password": PASSWORD, "new_password": "Zq8-new-Secret"})),
    )
    .await
    .assert(204, None);
    // The other session is gone, this one lives on.
    app.get_auth("/api/v1/auth/me", &access(&first))
        .await
        .assert(401, Some("invalid_token"));
    app.refresh(&refresh_token(&first))
        .await
        .assert(401, Some("invalid_refresh_token"));
    app.get_auth("/api/v1/auth/me", &at).await.assert(200, None);
    app.login(&email, PASSWORD)
        .await
        .assert(401, Some("invalid_credentials"));
    app.login(&email, "Zq8-new-Secret").await.assert(200, None);
}

#[tokio::test]
async fn sessions_list_and_delete() {
    let app = spawn_app().await;
    let (email, first) = app.new_user().await;
    let second = app.login(&email, PASSWORD).await.body;
    let (_, stranger) = app.new_user().await;
    let at = access(&second);
    let r = app.get_auth("/api/v1/auth/sessions", &at).await;
    r.assert(200, None);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(r.body["next_cursor"].is_null());
    let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    for key in [
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "ip",
        "user_agent",
    ] {
        assert!(items[0].get(key).is_some(), "missing {key}");
    }
    let other = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Pagination: limit 1 gives a cursor that leads to the second session.
    let p1 = app.get_auth("/api/v1/auth/sessions?limit=1", &at).await;
    let cursor = p1.body["next_cursor"].as_str().unwrap().to_string();
    let p2 = app
        .get_auth(
            &format!("/api/v1/auth/sessions?limit=1&cursor={cursor}"),
            &at,
        )
        .await;
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 1);
    assert_ne!(p1.body["items"][0]["id"], p2.body["items"][0]["id"]);
    assert!(p2.body["next_cursor"].is_null());
    // Another user's session is not found; the caller's other session can be revoked.
    app.delete_auth(
        &format!("/api/v1/auth/sessions/{other}"),
        &access(&stranger),
    )
    .await
    .assert(404, Some("not_found"));
    app.delete_auth(&format!("/api/v1/auth/sessions/{other}"), &at)
        .await
        .assert(204, None);
    app.get_auth("/api/v1/auth/me", &access(&first))
        .await
        .assert(401, Some("invalid_token"));
    app.delete_auth("/api/v1/auth/sessions/not-a-uuid", &at)
        .await
        .assert(404, Some("not_found"));
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let app = spawn_app().await;
    let (email, first) = app.new_user().await;
    let second = app.login(&email, PASSWORD).await.body;
    app.post_auth("/api/v1/auth/logout-all", &access(&second), None)
        .await
        .assert(204, None);
    for b in [&first, &second] {
        app.get_auth("/api/v1/auth/me", &access(b))
            .await
            .assert(401, Some("invalid_token"));
        app.refresh(&refresh_token(b))
            .await
            .assert(401, Some("invalid_refresh_token"));
    }
}

#[tokio::test]
async fn logout_with_refresh_token_revokes_only_the_callers() {
    let app = spawn_app().await;
    let (email, first) = app.new_user().await;
    let second = app.login(&email, PASSWORD).await.body;
    let (_, stranger) = app.new_user().await;
    // A stranger's refresh token is silently ignored.
    app.post_auth(
        "/api/v1/auth/logout",
        &access(&first),
        Some(json!({"refresh_token": refresh_token(&stranger)})),
    )
    .await
    .assert(204, None);
    app.refresh(&refresh_token(&stranger))
        .await
        .assert(200, None);
    // First is logged out; second still works until named.
    app.refresh(&refresh_token(&first))
        .await
        .assert(401, Some("invalid_refresh_token"));
    app.get_auth("/api/v1/auth/me", &access(&second))
        .await
        .assert(200, None);
    let third = app.login(&email, PASSWORD).await.body;
    app.post_auth(
        "/api/v1/auth/logout",
        &access(&third),
        Some(json!({"refresh_token": refresh_token(&second)})),
    )
    .await
    .assert(204, None);
    app.refresh(&refresh_token(&second))
        .await
        .assert(401, Some("invalid_refresh_token"));
}

#[tokio::test]
async fn forward_auth_verify() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let r = app.get_auth("/api/v1/auth/verify", &at).await;
    r.assert(204, None);
    assert_eq!(
        r.header("x-auth-user-id").as_deref(),
        login["user"]["id"].as_str()
    );
    assert_eq!(r.header("x-auth-tier").as_deref(), Some("2"));
    assert_eq!(r.header("x-auth-role").as_deref(), Some("trader"));
    assert!(r.header("x-auth-session-id").is_some());
    app.get(&format!("/api/v1/auth/verify?token={at}"))
        .await
        .assert(204, None);
    app.get_auth("/api/v1/auth/verify?min_tier=2", &at)
        .await
        .assert(204, None);
    app.get_auth("/api/v1/auth/verify?min_tier=3", &at)
        .await
        .assert(403, Some("insufficient_tier"));
    app.get_auth("/api/v1/auth/verify?min_tier=9", &at)
        .await
        .assert(400, Some("validation_error"));
    let r = app.get("/api/v1/auth/verify").await;
    r.assert(401, Some("missing_token"));
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="tradeauth""#.into())
    );
    app.get("/api/v1/auth/verify?token=garbage")
        .await
        .assert(401, Some("invalid_token"));
}

#[tokio::test]
async fn health_readiness_and_events() {
    let app = spawn_app().await;
    app.get("/healthz").await.assert(200, None);
    let r = app.get("/readyz").await;
    r.assert(200, None);
    assert_eq!(r.body["checks"]["database"], "ok");

    let (email, login) = app.new_user().await;
    app.login(&email, "Wrong-pass-123").await.assert(401, None);
    let r = app.get_auth("/api/v1/auth/events", &access(&login)).await;
    r.assert(200, None);
    let types: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["login.failed", "login.succeeded", "user.registered"],
        "newest first"
    );
    let e = &r.body["items"][1];
    for key in [
        "id",
        "type",
        "at",
        "ip",
        "user_agent",
        "actor_id",
        "details",
    ] {
        assert!(e.get(key).is_some(), "event lacks {key}");
    }
    assert_eq!(e["ip"], "127.0.0.1");
}

#[tokio::test]
async fn tier_guard_refuses_lower_tiers() {
    let app = spawn_app().await;
    let (_, trader) = app.new_user().await;
    let r = app.get_auth("/api/v1/admin/users", &access(&trader)).await;
    r.assert(403, Some("insufficient_tier"));
    let (_, admin) = app.user_with_tier(4).await;
    app.get_auth("/api/v1/admin/users", &access(&admin))
        .await
        .assert(200, None);
}
