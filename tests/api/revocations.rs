//! Revocation catch-up from the database alone (code review M2): every instance applies
//! revocations written by others within a second, however many land at once and in
//! whatever order PostgreSQL commits them.

use crate::helpers::*;
use std::time::{Duration, Instant};

/// `/me` with `token` until it answers `status`, for at most `within`; whether it did.
async fn refused_within(app: &TestApp, token: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if app.get_auth("/api/v1/auth/me", token).await.status == 401 {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn session_of(login: &serde_json::Value) -> String {
    let token = access(login);
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    claims["sid"].as_str().unwrap().to_string()
}

fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::test]
async fn a_burst_of_revocations_from_another_writer_does_not_starve_the_newest() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let sid = session_of(&login);
    let now = chrono::Utc::now();
    let until = ms(now + chrono::Duration::minutes(10));
    // 25,000 rows at once (2.5 pages), then the one that matters: the old catch-up re-read
    // the first page of the last 10 s over and over and reached it only 10 s later.
    let (burst, last) = if app.db_url.starts_with("postgres") {
        (
            format!(
                "INSERT INTO revocations (kind, value, expires_at, created_at) \
                 SELECT 'jti', gen_random_uuid()::text, {until}, {} \
                 FROM generate_series(1, 25000)",
                ms(now)
            ),
            format!(
                "INSERT INTO revocations (kind, value, expires_at, created_at) \
                 VALUES ('sid', '{sid}', {until}, {})",
                ms(now)
            ),
        )
    } else {
        (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25000) \
                 INSERT INTO revocations (kind, value, expires_at, created_at) \
                 SELECT 'jti', lower(hex(randomblob(16))), {until}, {} FROM n",
                ms(now)
            ),
            format!(
                "INSERT INTO revocations (kind, value, expires_at, created_at) \
                 VALUES ('sid', '{sid}', {until}, {})",
                ms(now)
            ),
        )
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.db_url).await.unwrap();
    sqlx::query(&burst).execute(&pool).await.unwrap();
    sqlx::query(&last).execute(&pool).await.unwrap();
    pool.close().await;
    assert!(
        refused_within(&app, &access(&login), Duration::from_secs(2)).await,
        "the session revoked after a burst was still accepted 2 s later"
    );
}

#[tokio::test]
async fn a_revocation_whose_transaction_commits_late_still_arrives() {
    if !services_available("the late-commit revocation test").await {
        return;
    }
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_on(dir, pg_schema_url().await, |s| s).await;
    let (_, login) = app.new_user().await;
    let sid = session_of(&login);
    let until = ms(chrono::Utc::now() + chrono::Duration::minutes(10));
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    // A writer takes a sequence number and holds its transaction open...
    let mut late = pool.begin().await.unwrap();
    sqlx::query(&format!(
        "INSERT INTO revocations (kind, value, expires_at, created_at) \
         VALUES ('sid', '{sid}', {until}, {})",
        ms(chrono::Utc::now())
    ))
    .execute(&mut *late)
    .await
    .unwrap();
    // ...while another commits a higher one, which the instance applies.
    sqlx::query(&format!(
        "INSERT INTO revocations (kind, value, expires_at, created_at) \
         VALUES ('jti', '{}', {until}, {})",
        uuid::Uuid::new_v4(),
        ms(chrono::Utc::now())
    ))
    .execute(&pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Longer than the old catch-up's 10 s re-read window.
    tokio::time::sleep(Duration::from_secs(11)).await;
    app.get_auth("/api/v1/auth/me", &access(&login))
        .await
        .assert(200, None);
    late.commit().await.unwrap();
    assert!(
        refused_within(&app, &access(&login), Duration::from_secs(1)).await,
        "a revocation committed after a higher sequence number was never applied"
    );
    pool.close().await;
}
