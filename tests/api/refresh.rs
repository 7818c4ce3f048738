//! Refresh-token rotation, the grace window, reuse detection and concurrent refreshes.

use crate::helpers::*;
use std::collections::HashSet;

#[tokio::test]
async fn rotation_grace_and_reuse_two_rotations_back() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let t0 = refresh_token(&login);
    let r1 = app.refresh(&t0).await;
    r1.assert(200, None);
    let t1 = refresh_token(&r1.body);
    assert_ne!(t0, t1);
    assert!(r1.body["user"]["id"].is_string());

    // The previous token inside the grace window: 200 with the *current* token, no rotation.
    let retry = app.refresh(&t0).await;
    retry.assert(200, None);
    assert_eq!(refresh_token(&retry.body), t1);
    app.get_auth("/api/v1/auth/me", &access(&retry.body))
        .await
        .assert(200, None);

    let r2 = app.refresh(&t1).await;
    r2.assert(200, None);
    let t2 = refresh_token(&r2.body);
    let at2 = access(&r2.body);

    // t0 is two rotations back: reuse. The whole session dies.
    app.refresh(&t0)
        .await
        .assert(401, Some("refresh_token_reused"));
    app.refresh(&t2)
        .await
        .assert(401, Some("invalid_refresh_token"));
    app.get_auth("/api/v1/auth/me", &at2)
        .await
        .assert(401, Some("invalid_token"));
    let events = app
        .get_auth(
            "/api/v1/auth/events",
            &access(
                &app.login(login["user"]["email"].as_str().unwrap(), PASSWORD)
                    .await
                    .body,
            ),
        )
        .await;
    assert!(events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "refresh.reuse_detected"));
}

#[tokio::test]
async fn the_previous_token_after_the_grace_window_is_reuse() {
    let app = spawn_with(|s| s.set("refresh_reuse_grace", "1s")).await;
    let (_, login) = app.new_user().await;
    let t0 = refresh_token(&login);
    let r1 = app.refresh(&t0).await;
    r1.assert(200, None);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    app.refresh(&t0)
        .await
        .assert(401, Some("refresh_token_reused"));
    app.refresh(&refresh_token(&r1.body))
        .await
        .assert(401, Some("invalid_refresh_token"));
}

#[tokio::test]
async fn twenty_parallel_refreshes_rotate_once_and_agree() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let t0 = refresh_token(&login);
    let calls = (0..20).map(|_| app.refresh(&t0));
    let results = futures::future::join_all(calls).await;
    let mut tokens = HashSet::new();
    for r in &results {
        r.assert(200, None);
        tokens.insert(refresh_token(&r.body));
    }
    assert_eq!(
        tokens.len(),
        1,
        "every caller gets the same new refresh token"
    );
    let t1 = tokens.into_iter().next().unwrap();
    assert_ne!(t1, t0);
    // Exactly one rotation happened: t1 is the current token and rotates normally.
    let r2 = app.refresh(&t1).await;
    r2.assert(200, None);
    assert_ne!(refresh_token(&r2.body), t1);
}

#[tokio::test]
async fn without_rotation_the_same_token_keeps_working() {
    let app = spawn_with(|s| s.set("refresh_rotation", "false")).await;
    let (_, login) = app.new_user().await;
    let t0 = refresh_token(&login);
    for _ in 0..3 {
        let r = app.refresh(&t0).await;
        r.assert(200, None);
        assert_eq!(refresh_token(&r.body), t0);
    }
}

#[tokio::test]
async fn garbage_and_expired_refresh_tokens_are_invalid() {
    let app = spawn_with(|s| s.set("refresh_ttl", "1s")).await;
    app.refresh("not-a-token")
        .await
        .assert(401, Some("invalid_refresh_token"));
    app.post("/api/v1/auth/refresh", serde_json::json!({}))
        .await
        .assert(400, Some("validation_error"));
    let (_, login) = app.new_user().await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    app.refresh(&refresh_token(&login))
        .await
        .assert(401, Some("invalid_refresh_token"));
}

#[tokio::test]
async fn a_session_cannot_outlive_its_absolute_age() {
    let app = spawn_with(|s| {
        s.set("session_max_age", "2s")
            .set("refresh_rotation", "true")
    })
    .await;
    let (_, login) = app.new_user().await;
    let mut t = refresh_token(&login);
    let r = app.refresh(&t).await;
    r.assert(200, None);
    assert!(r.body["refresh_expires_at"].as_i64().unwrap() <= chrono::Utc::now().timestamp() + 2);
    t = refresh_token(&r.body);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    app.refresh(&t)
        .await
        .assert(401, Some("invalid_refresh_token"));
}
