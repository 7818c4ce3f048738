//! Durability: revocations, sessions and keys survive a restart on the same database file.

use crate::helpers::*;

#[tokio::test]
async fn revocations_and_sessions_survive_a_restart() {
    let app = spawn_app().await;
    let (email, kept) = app.new_user().await;
    let ended = app.login(&email, PASSWORD).await.body;
    app.post_auth("/api/v1/auth/logout", &access(&ended), None)
        .await
        .assert(204, None);
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let dir = app.stop().await;

    let app = spawn_in(dir, |s| s).await;
    assert_eq!(
        app.get("/.well-known/jwks.json").await.body,
        jwks,
        "the same keys"
    );
    app.get_auth("/api/v1/auth/me", &access(&ended))
        .await
        .assert(401, Some("invalid_token"));
    app.refresh(&refresh_token(&ended))
        .await
        .assert(401, Some("invalid_refresh_token"));
    app.get_auth("/api/v1/auth/me", &access(&kept))
        .await
        .assert(200, None);
    app.refresh(&refresh_token(&kept)).await.assert(200, None);
}

#[tokio::test]
async fn a_revocation_by_another_writer_reaches_the_running_server() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    app.get_auth("/api/v1/auth/me", &at).await.assert(200, None);
    // A second service on the same file (as the CLI would be) disables the user.
    let config = tradeauth::config::Sources::default()
        .set("database_url", app.db_url.clone())
        .build(false)
        .unwrap();
    let other = tradeauth::app::build_service(config, false).await.unwrap();
    let id = tradeauth::domain::UserId(login["user"]["id"].as_str().unwrap().parse().unwrap());
    let patch = tradeauth::service::admin::AdminPatch {
        is_active: Some(false),
        ..Default::default()
    };
    other.admin_patch_user(None, id, patch, None).await.unwrap();
    let start = std::time::Instant::now();
    loop {
        let r = app.get_auth("/api/v1/auth/verify", &at).await;
        if r.status == 401 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "not revoked within 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn passwords_are_rehashed_when_the_parameters_change() {
    let app = spawn_app().await;
    let (email, login) = app.new_user().await;
    let id = tradeauth::domain::UserId(login["user"]["id"].as_str().unwrap().parse().unwrap());
    let before = app.service.store.password_hash(id).await.unwrap().unwrap();
    assert!(
        before.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{before}"
    );
    let dir = app.stop().await;
    let app = spawn_in(dir, |s| s.set("argon2_iterations", "3")).await;
    app.login(&email, PASSWORD).await.assert(200, None);
    let after = app.service.store.password_hash(id).await.unwrap().unwrap();
    assert!(
        after.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"),
        "{after}"
    );
    app.login(&email, PASSWORD).await.assert(200, None);
}
