//! Durability: revocations, sessions and keys survive a restart on the same database file;
//! instances starting together on one empty database agree.

use crate::helpers::*;
use std::sync::Arc;

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

/// Instances started at the same moment on one empty database (a first deployment of
/// several replicas) agree on one key set and one bootstrap admin, and all of them start:
/// on a brand-new database, and on one a `tradeauth migrate` job prepared.
#[tokio::test]
async fn instances_starting_together_on_an_empty_database_share_one_key_set_and_admin() {
    start_together(false).await;
    start_together(true).await;
}

async fn start_together(migrated_first: bool) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = database_url(&dir).await;
    let admin = |s: tradeauth::config::Sources| {
        s.set("admin_email", "root@example.com")
            .set("admin_password", "Bootstrap-Pass-1")
    };
    if migrated_first {
        let config = tradeauth::config::Sources::default()
            .set("database_url", url.clone())
            .build(false)
            .unwrap();
        tradeauth::app::open_store(&config).await.unwrap();
    }
    let apps =
        futures::future::join_all((0..3).map(|_| spawn_on(dir.clone(), url.clone(), admin))).await;

    let jwks = apps[0].get("/.well-known/jwks.json").await.body;
    for alg in ["EdDSA", "RS256", "ES256"] {
        assert_eq!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| k["alg"] == alg)
                .count(),
            2,
            "one active and one standby {alg} key (migrated first: {migrated_first}): {jwks}"
        );
    }
    for app in &apps[1..] {
        assert_eq!(app.get("/.well-known/jwks.json").await.body, jwks);
    }
    // A token from any instance works on every other one at once.
    let mut token = String::new();
    for from in &apps {
        let login = from.login("root@example.com", "Bootstrap-Pass-1").await;
        login.assert(200, None);
        token = access(&login.body);
        for to in &apps {
            to.get_auth("/api/v1/auth/verify", &token)
                .await
                .assert(204, None);
        }
    }
    let admins = apps[0].get_auth("/api/v1/admin/users?tier=4", &token).await;
    admins.assert(200, None);
    assert_eq!(
        admins.body["items"].as_array().unwrap().len(),
        1,
        "one bootstrap admin: {}",
        admins.body
    );
}

/// The upgrade that brought the one-active-key rule repairs a database an earlier race
/// left with two active and two standby keys: the newest active key stays, the older
/// one is retired but still published (its tokens keep working), extra standbys go.
#[tokio::test]
async fn an_upgrade_repairs_key_pairs_a_start_race_left_behind() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let old = app.login(&email, PASSWORD).await.body;
    let url = app.db_url.clone();
    let dir = app.stop().await;

    let (migration, now_ms) = (
        if url.starts_with("postgres") {
            include_str!("../../src/store/migrations/postgres/0005_one_live_key.sql")
        } else {
            include_str!("../../src/store/migrations/sqlite/0005_one_live_key.sql")
        },
        chrono::Utc::now().timestamp_millis(),
    );
    // What a race left: the standby promoted too (two active keys), two more standbys.
    let race = "DROP INDEX signing_keys_one_active; DROP INDEX signing_keys_one_standby;
        UPDATE signing_keys SET state = 'active', created_at = created_at + 1
         WHERE state = 'standby' AND alg = 'EdDSA';
        INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at)
            SELECT kid || '-s1', alg, private_der, public_jwk, 'standby', created_at + 1
              FROM signing_keys WHERE state = 'active' AND alg = 'EdDSA';";
    // The access-token keys (the ID tokens' RS256 pair beside them is left alone).
    let count = "SELECT state || ':' || kid FROM signing_keys WHERE alg = 'EdDSA' \
                 ORDER BY state, created_at, kid";
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let before: Vec<String> = sqlx::query_scalar(count).fetch_all(&pool).await.unwrap();
    sqlx::raw_sql(race).execute(&pool).await.unwrap();
    sqlx::raw_sql(migration).execute(&pool).await.unwrap();
    let after: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT kid, state, retire_at FROM signing_keys WHERE alg = 'EdDSA' ORDER BY kid",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    // before: ["active:A", "standby:S"]
    let kid = |s: &str| s.split_once(':').unwrap().1.to_string();
    let (a, s) = (kid(&before[0]), kid(&before[1]));
    let state = |k: &str| after.iter().find(|r| r.0 == k).map(|r| r.1.as_str());
    assert_eq!(
        state(&s),
        Some("active"),
        "the newest active key stays: {after:?}"
    );
    assert_eq!(state(&a), Some("retired"), "{after:?}");
    let retire_at = after.iter().find(|r| r.0 == a).unwrap().2.unwrap();
    assert!(retire_at > now_ms + 3_600_000, "published for a while yet");
    let standbys: Vec<_> = after.iter().filter(|r| r.1 == "standby").collect();
    assert_eq!(standbys.len(), 1, "{after:?}");
    assert_eq!(standbys[0].0, format!("{s}-s1"), "the newest standby stays");

    // The instance starts; the token signed with the retired key still works, new ones
    // are signed with the surviving active key.
    let app = spawn_in(dir, |s| s).await;
    app.get_auth("/api/v1/auth/me", &access(&old))
        .await
        .assert(200, None);
    let new = app.login(&email, PASSWORD).await.body;
    let header = access(&new).split('.').next().unwrap().to_string();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], serde_json::json!(s));
}

/// Signing-key changes may be listed in any order: the store applies retirements, then
/// the promotion, then the new standby, so the one-active rule never trips mid-way.
#[tokio::test]
async fn a_promotion_listed_before_the_retirement_is_saved() {
    use tradeauth::tokens::KeyState;
    let app = spawn_app().await;
    let store = &app.service.store;
    let alg = tradeauth::tokens::JwtAlg::EdDSA;
    let keys = store.signing_keys().await.unwrap();
    let mut promoted = keys
        .iter()
        .find(|k| k.state == KeyState::Standby && k.alg == alg)
        .unwrap()
        .clone();
    let mut retired = keys
        .iter()
        .find(|k| k.state == KeyState::Active && k.alg == alg)
        .unwrap()
        .clone();
    promoted.state = KeyState::Active;
    retired.state = KeyState::Retired;
    retired.retire_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    store
        .save_signing_keys(&[promoted.clone(), retired])
        .await
        .unwrap();
    let after = store.signing_keys().await.unwrap();
    let active: Vec<_> = after
        .iter()
        .filter(|k| k.state == KeyState::Active && k.alg == alg)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kid, promoted.kid);
}
