//! Credential changes and the sessions they end (code review M1 and M4):
//! - a sign-in in flight when its account is disabled, demoted or its password changed must
//!   not create a session that outlives the change (its session is created only if the
//!   account still looks as the sign-in saw it, in the same statement);
//! - a change and the end of the sessions it demands are one transaction: when the second
//!   fails, the first is undone, and a retry ends the sessions.
//!
//! The races run many rounds against two instances on one database (SQLite, or
//! PostgreSQL and Redis with `TRADEAUTH_TEST_DATABASE=postgres`): the login on one, the
//! change on the other.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};

const ROUNDS: u32 = 24;

/// Two instances on one database: (the one the logins reach, the one the changes reach).
async fn two_instances() -> (TestApp, TestApp) {
    let a = spawn_app().await;
    let b = spawn_on(a.dir.clone(), a.db_url.clone(), |s| s).await;
    (a, b)
}

/// How long one login takes here: the delays of the rounds sweep that window, so the change
/// lands before, during and after the password check.
async fn login_time(app: &TestApp, email: &str) -> Duration {
    let t = Instant::now();
    app.login(email, PASSWORD).await.assert(200, None);
    t.elapsed()
}

fn delay(round: u32, window: Duration) -> Duration {
    window.mul_f64(f64::from(round % 12) / 10.0)
}

/// After the change has answered, a login that succeeded (before or after it) holds no live
/// session: neither its refresh token nor its access token works.
async fn assert_dead(app: &TestApp, login: &serde_json::Value, round: u32) {
    let r = app.refresh(&refresh_token(login)).await;
    assert_eq!(
        r.status, 401,
        "round {round}: the session outlived the change: {r:?}"
    );
    // The access token: refused once the revocation reached this instance (within 1 s).
    let me = eventually_me(app, &access(login), |me| me.status == 401).await;
    assert_eq!(
        me.status, 401,
        "round {round}: the access token outlived the change: {me:?}"
    );
}

/// `/me` with `token`, asked until `done` holds or 2 s passed (the revocation fan-out
/// reaches every instance within 1 s); the last answer.
async fn eventually_me(app: &TestApp, token: &str, done: impl Fn(&Resp) -> bool) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let me = app.get_auth("/api/v1/auth/me", token).await;
        if done(&me) || Instant::now() > deadline {
            return me;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_disable_while_a_login_is_in_flight_ends_that_login_too() {
    let (a, b) = two_instances().await;
    let (_, admin) = b.user_with_tier(4).await;
    let admin = access(&admin);
    let (email, body) = a.new_user().await;
    let path = format!(
        "/api/v1/admin/users/{}",
        body["user"]["id"].as_str().unwrap()
    );
    let window = login_time(&a, &email).await;
    let (mut before, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let disable = async {
            tokio::time::sleep(delay(round, window)).await;
            b.patch_auth(&path, &admin, json!({"is_active": false}))
                .await
        };
        let (login, disabled) = tokio::join!(a.login(&email, PASSWORD), disable);
        disabled.assert(200, None);
        match login.status {
            200 => {
                before += 1;
                assert_dead(&a, &login.body, round).await;
            }
            _ => {
                refused += 1;
                login.assert(403, Some("account_disabled"));
            }
        }
        b.patch_auth(&path, &admin, json!({"is_active": true}))
            .await
            .assert(200, None);
    }
    eprintln!("{before} logins finished first, {refused} were refused");
}

#[tokio::test]
async fn a_demotion_while_a_login_is_in_flight_never_leaves_the_old_tier_alive() {
    let (a, b) = two_instances().await;
    let (_, admin) = b.user_with_tier(4).await;
    let admin = access(&admin);
    let (email, body) = a.user_with_tier(3).await;
    let path = format!(
        "/api/v1/admin/users/{}",
        body["user"]["id"].as_str().unwrap()
    );
    let window = login_time(&a, &email).await;
    for round in 0..ROUNDS {
        let demote = async {
            tokio::time::sleep(delay(round, window)).await;
            b.patch_auth(&path, &admin, json!({"permission_tier": 1}))
                .await
        };
        let (login, demoted) = tokio::join!(a.login(&email, PASSWORD), demote);
        demoted.assert(200, None);
        login.assert(200, None);
        // Either the login finished first (and the demotion ended its session), or it
        // went on with the new tier: a tier-3 token is never alive after the demotion.
        // Forward-auth tells the tier the token carries (`/me` reads the account).
        let token = access(&login.body);
        let deadline = Instant::now() + Duration::from_secs(2);
        let verdict = loop {
            let v = a.get_auth("/api/v1/auth/verify", &token).await;
            let tier = v.header("x-auth-tier");
            if v.status == 401 || tier.as_deref() == Some("1") || Instant::now() > deadline {
                break (v.status, tier);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            verdict.0 == 401 || verdict == (204, Some("1".into())),
            "round {round}: a tier-3 token outlived the demotion: {verdict:?}"
        );
        b.patch_auth(&path, &admin, json!({"permission_tier": 3}))
            .await
            .assert(200, None);
    }
}

#[tokio::test]
async fn a_password_change_while_a_login_with_the_old_password_is_in_flight_ends_it() {
    let (a, b) = two_instances().await;
    let (email, body) = a.new_user().await;
    let mut session = access(&body);
    let window = login_time(&a, &email).await;
    let passwords = [PASSWORD, "Another-pass-456"];
    for round in 0..ROUNDS {
        let (old, new) = (
            passwords[round as usize % 2],
            passwords[(round as usize + 1) % 2],
        );
        // The change checks the current password and hashes the new one (two password
        // hashes) before it writes: the login starts later, so that write lands before,
        // during and after the login's own check.
        let change = async {
            b.post_auth(
                "/api/v1/auth/password",
                &session,
                Some(json!({"current_password": old, "new_password": new})),
            )
            .await
        };
        let login = async {
            let lag = window.mul_f64(0.5 + 2.0 * f64::from(round % 12) / 11.0);
            tokio::time::sleep(lag).await;
            a.login(&email, old).await
        };
        let (login, changed) = tokio::join!(login, change);
        changed.assert(204, None);
        match login.status {
            200 => assert_dead(&a, &login.body, round).await,
            _ => {
                login.assert(401, Some("invalid_credentials"));
            }
        }
        // The changing session is kept; go on with it.
        let me = b.get_auth("/api/v1/auth/me", &session).await;
        assert_eq!(
            me.status, 200,
            "round {round}: the changing session was kept"
        );
        session = access(&a.login(&email, new).await.body);
    }
}

/// Makes every write of a revocation record fail, on either backend: the change that would
/// end sessions fails in its own transaction. `false` takes it away.
async fn fail_revocation_writes(app: &TestApp, on: bool) {
    if app.db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
        let sql: Vec<&str> = if on {
            vec![
                "CREATE OR REPLACE FUNCTION refuse_revocation() RETURNS trigger AS \
                 $$ BEGIN RAISE EXCEPTION 'revocation writes refused by the test'; END $$ \
                 LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_revocation BEFORE INSERT ON revocations \
                 FOR EACH ROW EXECUTE FUNCTION refuse_revocation()",
            ]
        } else {
            vec!["DROP TRIGGER refuse_revocation ON revocations"]
        };
        for q in sql {
            sqlx::query(q).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
        let q = if on {
            "CREATE TRIGGER refuse_revocation BEFORE INSERT ON revocations \
             BEGIN SELECT RAISE(ABORT, 'revocation writes refused by the test'); END"
        } else {
            "DROP TRIGGER refuse_revocation"
        };
        sqlx::query(q).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

#[tokio::test]
async fn a_disable_whose_revocations_fail_changes_nothing_and_its_retry_ends_the_sessions() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let admin = access(&admin);
    let (_, body) = app.new_user().await;
    let path = format!(
        "/api/v1/admin/users/{}",
        body["user"]["id"].as_str().unwrap()
    );
    fail_revocation_writes(&app, true).await;
    let r = app
        .patch_auth(&path, &admin, json!({"is_active": false}))
        .await;
    assert!(r.status >= 500, "the disable failed: {r:?}");
    fail_revocation_writes(&app, false).await;
    // Nothing half-written: the account is still active, its session still works.
    let user = app.get_auth(&path, &admin).await;
    assert_eq!(user.body["is_active"], true, "{user:?}");
    app.get_auth("/api/v1/auth/me", &access(&body))
        .await
        .assert(200, None);
    // The retry does the whole change.
    app.patch_auth(&path, &admin, json!({"is_active": false}))
        .await
        .assert(200, None);
    assert_dead(&app, &body, 0).await;
}

#[tokio::test]
async fn a_password_change_whose_revocations_fail_keeps_the_old_password() {
    let app = spawn_app().await;
    let (email, mine) = app.new_user().await;
    let other = app.login(&email, PASSWORD).await;
    other.assert(200, None);
    let change = json!({"current_password": PASSWORD, "new_password": "Another-pass-456"});
    fail_revocation_writes(&app, true).await;
    let r = app
        .post_auth(
            "/api/v1/auth/password",
            &access(&mine),
            Some(change.clone()),
        )
        .await;
    assert!(r.status >= 500, "the change failed: {r:?}");
    fail_revocation_writes(&app, false).await;
    // The old password still signs in, the other session still lives.
    app.login(&email, PASSWORD).await.assert(200, None);
    app.refresh(&refresh_token(&other.body))
        .await
        .assert(200, None);
    let r = app
        .post_auth("/api/v1/auth/password", &access(&mine), Some(change))
        .await;
    r.assert(204, None);
    app.login(&email, PASSWORD)
        .await
        .assert(401, Some("invalid_credentials"));
}
