//! Two instances on one PostgreSQL database (and Redis): a ceremony started on one
//! finishes on the other, and a challenge is single-use across both. Needs both
//! services: without them this says so loudly and skips (`TRADEAUTH_TEST_REQUIRE_SERVICES=1`
//! turns that into a failure), like `scaleout`.

use super::*;
use std::sync::Arc;
use tokio::task::JoinSet;

#[tokio::test]
async fn a_ceremony_started_on_one_instance_finishes_on_another() {
    if !services_available("the two-instance passkey test").await {
        return;
    }
    let db = pg_schema_url().await;
    let a = Arc::new(spawn_on(Arc::new(tempfile::tempdir().unwrap()), db.clone(), |s| s).await);
    let b = Arc::new(spawn_on(Arc::new(tempfile::tempdir().unwrap()), db, |s| s).await);
    let (email, login) = a.new_user().await;
    let at = access(&login);
    let mut auth = authenticator();

    // Registration: start on A, finish on B.
    let started = start_registration(&a, &at).await;
    started.assert(200, None);
    let credential = auth.create(&started.body["options"]).unwrap();
    finish_registration(
        &b,
        &at,
        &started.body["challenge_id"],
        "Laptop",
        credential.clone(),
    )
    .await
    .assert(201, None);
    // Spent everywhere.
    finish_registration(&a, &at, &started.body["challenge_id"], "Again", credential)
        .await
        .assert(400, Some("passkey_challenge_expired"));

    // Sign-in: start on B, finish on A; the replay on B is refused.
    let started = start_login(&b, Some(&email)).await;
    let assertion = auth.get(&started.body["options"]).unwrap();
    let r = finish_login(&a, &started.body["challenge_id"], assertion.clone()).await;
    r.assert(200, None);
    b.get_auth("/api/v1/auth/me", &access(&r.body))
        .await
        .assert(200, None);
    finish_login(&b, &started.body["challenge_id"], assertion)
        .await
        .assert(400, Some("passkey_challenge_expired"));

    // Concurrent finishes of one challenge, spread over both: one success.
    let started = start_login(&a, None).await;
    let assertion = auth.get(&started.body["options"]).unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (challenge, assertion) = (started.body["challenge_id"].clone(), assertion.clone());
        tasks.spawn(async move { finish_login(&app, &challenge, assertion).await });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        if r.status == 200 {
            ok += 1;
        } else {
            r.assert(400, Some("passkey_challenge_expired"));
        }
    }
    assert_eq!(ok, 1);

    // The counter moved on the shared row: a replayed old counter is a clone on either.
    auth.counter_override = Some(1);
    sign_in(&b, &mut auth, Some(&email))
        .await
        .assert(401, Some("invalid_passkey"));
}
