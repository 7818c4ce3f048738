//! Lockout (seed 002): exact counting, 423 even for the right password, expiry, unknown
//! identifiers, per-IP scope.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    for _ in 0..5 {
        app.login(&email, "Wrong-pass-123")
            .await
            .assert(401, Some("invalid_credentials"));
    }
    let r = app.login(&email, PASSWORD).await;
    r.assert(423, Some("account_locked"));
    let until =
        chrono::DateTime::parse_from_rfc3339(r.body["locked_until"].as_str().unwrap()).unwrap();
    let left = until.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (14 * 60..=15 * 60).contains(&left),
        "locked for 15 min, got {left}s"
    );
    // The same account by username shares the lock, but a 423 would link the username to
    // the email that failed: it gets 401 like a wrong password (API.md, Login rules).
    let username = app
        .service
        .store
        .user_by_login(&email)
        .await
        .unwrap()
        .unwrap()
        .username
        .to_string();
    app.login(&username, PASSWORD)
        .await
        .assert(401, Some("invalid_credentials"));
}

#[tokio::test]
async fn a_success_resets_the_count() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    for _ in 0..4 {
        app.login(&email, "Wrong-pass-123").await.assert(401, None);
    }
    app.login(&email, PASSWORD).await.assert(200, None);
    for _ in 0..4 {
        app.login(&email, "Wrong-pass-123").await.assert(401, None);
    }
    app.login(&email, PASSWORD).await.assert(200, None);
}

#[tokio::test]
async fn fifty_simultaneous_guesses_evaluate_at_most_five_passwords() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let guesses = (0..50).map(|i| {
        app.login(
            &email,
            if i % 2 == 0 {
                "Wrong-pass-123"
            } else {
                "Other-wrong-456"
            },
        )
    });
    let results = futures::future::join_all(guesses).await;
    let unauthorized = results.iter().filter(|r| r.status == 401).count();
    let locked = results.iter().filter(|r| r.status == 423).count();
    assert_eq!(unauthorized + locked, 50);
    assert_eq!(
        unauthorized, 5,
        "exactly the threshold reaches the password check"
    );
    app.login(&email, PASSWORD)
        .await
        .assert(423, Some("account_locked"));
}

/// Right passwords arriving together (a bot's workers starting at once) are never locked
/// out by each other, nor by wrong ones arriving with them that stay under the threshold.
#[tokio::test]
async fn simultaneous_right_passwords_are_never_locked_out() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let logins = (0..12).map(|_| app.login(&email, PASSWORD));
    for r in futures::future::join_all(logins).await {
        r.assert(200, None);
    }
    // Four wrong guesses among eight right ones: the wrong ones fail, the right ones
    // succeed, nothing is locked.
    let mixed = (0..12).map(|i| {
        app.login(
            &email,
            if i % 3 == 0 {
                "Wrong-pass-123"
            } else {
                PASSWORD
            },
        )
    });
    let results = futures::future::join_all(mixed).await;
    for (i, r) in results.iter().enumerate() {
        if i % 3 == 0 {
            r.assert(401, Some("invalid_credentials"));
        } else {
            r.assert(200, None);
        }
    }
    app.login(&email, PASSWORD).await.assert(200, None);
}

#[tokio::test]
async fn the_lock_lifts_by_itself() {
    let app = spawn_with(|s| {
        s.set("lockout_duration", "1s")
            .set("lockout_threshold", "2")
    })
    .await;
    let (_, admin) = app.user_with_tier(4).await;
    let (email, login) = app.new_user().await;
    let view = format!(
        "/api/v1/admin/users/{}",
        login["user"]["id"].as_str().unwrap()
    );
    app.login(&email, "Wrong-pass-123").await.assert(401, None);
    app.login(&email, "Wrong-pass-123").await.assert(401, None);
    app.login(&email, PASSWORD)
        .await
        .assert(423, Some("account_locked"));
    let r = app.get_auth(&view, &access(&admin)).await;
    assert_eq!(r.body["failed_login_count"], 2);
    assert!(r.body["locked_until"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // Lifted: the admin view shows no lock and no failures that still count.
    let r = app.get_auth(&view, &access(&admin)).await;
    assert_eq!(r.body["failed_login_count"], 0, "{}", r.body);
    assert!(r.body["locked_until"].is_null(), "{}", r.body);
    app.login(&email, PASSWORD).await.assert(200, None);
}

#[tokio::test]
async fn unknown_identifiers_lock_alike() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.login("ghost@example.com", "Wrong-pass-123")
            .await
            .assert(401, Some("invalid_credentials"));
    }
    let r = app.login("ghost@example.com", "Wrong-pass-123").await;
    r.assert(423, Some("account_locked"));
    assert!(r.body["locked_until"].is_string());
}

#[tokio::test]
async fn account_ip_scope_counts_per_client_address() {
    let app = spawn_with(|s| {
        s.set("lockout_scope", "account_ip")
            .set("trusted_proxies", "127.0.0.1")
    })
    .await;
    let (email, _) = app.new_user().await;
    let from = |ip: &'static str, pw: &'static str| {
        let email = email.clone();
        let app = &app;
        async move {
            into_resp(
                app.client
                    .post(app.url("/api/v1/auth/login"))
                    .header("x-forwarded-for", ip)
                    .json(&json!({"username": email, "password": pw}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    for _ in 0..5 {
        from("203.0.113.7", "Wrong-pass-123")
            .await
            .assert(401, None);
    }
    from("203.0.113.7", PASSWORD)
        .await
        .assert(423, Some("account_locked"));
    from("198.51.100.9", PASSWORD).await.assert(200, None);
}

#[tokio::test]
async fn an_admin_can_lift_a_lock_and_sees_it() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let (email, login) = app.new_user().await;
    let id = login["user"]["id"].as_str().unwrap().to_string();
    for _ in 0..5 {
        app.login(&email, "Wrong-pass-123").await.assert(401, None);
    }
    let r = app
        .get_auth(&format!("/api/v1/admin/users/{id}"), &access(&admin))
        .await;
    r.assert(200, None);
    assert_eq!(r.body["failed_login_count"], 5);
    assert!(r.body["locked_until"].is_string());
    app.post_auth(
        &format!("/api/v1/admin/users/{id}/unlock"),
        &access(&admin),
        None,
    )
    .await
    .assert(204, None);
    app.login(&email, PASSWORD).await.assert(200, None);
}

/// Reservations of attempts that never ended (a process that died mid-login) hold an
/// account's further attempts back only until they expire, and never count as failures.
#[tokio::test]
async fn abandoned_attempts_expire_and_are_not_failures() {
    use tradeauth::domain::lockout::{AttemptSlot, LockoutPolicy, LockoutScope};
    let app = spawn_app().await;
    let store = &app.service.store;
    let policy = LockoutPolicy {
        threshold: 5,
        window: chrono::Duration::minutes(15),
        duration: chrono::Duration::minutes(15),
        scope: LockoutScope::Account,
    };
    let now = chrono::Utc::now();
    for _ in 0..5 {
        assert_eq!(
            store
                .reserve_attempt("ident:gone", now, &policy)
                .await
                .unwrap(),
            AttemptSlot::Allowed
        );
    }
    assert_eq!(
        store
            .reserve_attempt("ident:gone", now, &policy)
            .await
            .unwrap(),
        AttemptSlot::Busy,
        "five in flight: the sixth waits"
    );
    let later = now + tradeauth::domain::lockout::RESERVATION_TTL + chrono::Duration::seconds(1);
    // The store keeps milliseconds.
    let until =
        chrono::DateTime::from_timestamp_millis((later + policy.duration).timestamp_millis())
            .unwrap();
    for _ in 0..4 {
        assert_eq!(
            store
                .reserve_attempt("ident:gone", later, &policy)
                .await
                .unwrap(),
            AttemptSlot::Allowed,
            "the abandoned five no longer count"
        );
    }
    // Four failures, then the fifth locks.
    for _ in 0..4 {
        assert_eq!(
            store
                .fail_attempt("ident:gone", "gone", later, &policy)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .reserve_attempt("ident:gone", later, &policy)
            .await
            .unwrap(),
        AttemptSlot::Allowed
    );
    assert_eq!(
        store
            .fail_attempt("ident:gone", "gone", later, &policy)
            .await
            .unwrap(),
        Some(until)
    );
    assert_eq!(
        store
            .reserve_attempt("ident:gone", later, &policy)
            .await
            .unwrap(),
        AttemptSlot::Locked { until }
    );
}

/// Clients that hang up in the middle of their logins leave no attempt behind: the next
/// login is evaluated at once, not held back by attempts nobody waits for.
#[tokio::test]
async fn logins_whose_clients_hung_up_hold_nothing_back() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let body = json!({"username": email, "password": PASSWORD}).to_string();
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        conns.push(conn);
    }
    // Gone while their passwords wait for the hasher.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    drop(conns);
    // A login held back by abandoned attempts would wait for them and end in 429.
    app.login(&email, PASSWORD).await.assert(200, None);
}

fn policy(threshold: u32) -> tradeauth::domain::lockout::LockoutPolicy {
    tradeauth::domain::lockout::LockoutPolicy {
        threshold,
        window: chrono::Duration::minutes(15),
        duration: chrono::Duration::minutes(15),
        scope: tradeauth::domain::lockout::LockoutScope::Account,
    }
}

/// Edge cases of the counter, at the store: the window after a success, an unlock in
/// the middle of a flood, a threshold lowered since the failures were counted.
#[tokio::test]
async fn the_counter_keeps_its_rules_at_the_edges() {
    use tradeauth::domain::lockout::AttemptSlot;
    let app = spawn_app().await;
    let store = &app.service.store;
    let p = policy(5);
    let t0 = chrono::Utc::now();
    let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
    let fail = |key: &'static str, t| async move {
        assert_eq!(
            store.reserve_attempt(key, t, &p).await.unwrap(),
            AttemptSlot::Allowed
        );
        store.fail_attempt(key, "someone", t, &p).await.unwrap()
    };

    // A success, then four failures just before 15 min after it and a fifth just after:
    // five failures within two seconds lock (the window opens at the first failure, not
    // at the success).
    assert_eq!(
        store.reserve_attempt("ident:edge", t0, &p).await.unwrap(),
        AttemptSlot::Allowed
    );
    store.succeed_attempt("ident:edge", t0).await.unwrap();
    for _ in 0..4 {
        assert_eq!(fail("ident:edge", at(899)).await, None);
    }
    assert!(
        fail("ident:edge", at(901)).await.is_some(),
        "the fifth locks"
    );

    // An unlock while five attempts are in flight clears the failures, not the five.
    for _ in 0..5 {
        assert_eq!(
            store.reserve_attempt("ident:flood", t0, &p).await.unwrap(),
            AttemptSlot::Allowed
        );
    }
    store.clear_attempts("ident:flood").await.unwrap();
    assert_eq!(
        store.reserve_attempt("ident:flood", t0, &p).await.unwrap(),
        AttemptSlot::Busy,
        "no second round of guesses beside the five in flight"
    );

    // Four failures under a threshold of 5, then a restart with 3: locked, not stuck.
    for _ in 0..4 {
        assert_eq!(fail("ident:lowered", t0).await, None);
    }
    assert!(matches!(
        store
            .reserve_attempt("ident:lowered", t0, &policy(3))
            .await
            .unwrap(),
        AttemptSlot::Locked { .. }
    ));
}

/// Logins queued behind the attempts in flight wait by reading, not writing: 50
/// simultaneous guesses cost one reservation write each and one per verdict, not a write
/// per poll (counted by a trigger on the counters' table, on either backend).
#[tokio::test]
async fn waiting_logins_poll_by_reading_not_writing() {
    let app = spawn_app().await;
    let (email, _) = app.new_user().await;
    let writes = WriteCounter::install(&app.db_url).await;

    let guesses = (0..50).map(|_| app.login(&email, "Wrong-pass-123"));
    let results = futures::future::join_all(guesses).await;
    assert_eq!(results.iter().filter(|r| r.status == 401).count(), 5);
    assert_eq!(results.iter().filter(|r| r.status == 423).count(), 45);

    let n = writes.count().await;
    // 50 reservations, 5 failures; a few more where a waiter saw a slot come free.
    assert!(n >= 55, "every attempt is reserved: {n}");
    assert!(n <= 65, "waiting logins wrote {n} times");
}

/// Counts inserts and updates of `login_attempts` with a trigger.
enum WriteCounter {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl WriteCounter {
    async fn install(db_url: &str) -> Self {
        if db_url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(db_url).await.unwrap();
            for sql in [
                "CREATE TABLE write_count (n BIGINT NOT NULL)",
                "INSERT INTO write_count VALUES (0)",
                "CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN UPDATE write_count SET n = n + 1; RETURN NULL; END $$",
                "CREATE TRIGGER count_writes AFTER INSERT OR UPDATE ON login_attempts \
                 FOR EACH ROW EXECUTE FUNCTION count_write()",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            WriteCounter::Postgres(pool)
        } else {
            let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
            for sql in [
                "CREATE TABLE write_count (n INTEGER NOT NULL)",
                "INSERT INTO write_count VALUES (0)",
                "CREATE TRIGGER count_inserts AFTER INSERT ON login_attempts \
                 BEGIN UPDATE write_count SET n = n + 1; END",
                "CREATE TRIGGER count_updates AFTER UPDATE ON login_attempts \
                 BEGIN UPDATE write_count SET n = n + 1; END",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            WriteCounter::Sqlite(pool)
        }
    }

    async fn count(&self) -> i64 {
        use sqlx::Row;
        match self {
            WriteCounter::Sqlite(p) => sqlx::query("SELECT n FROM write_count")
                .fetch_one(p)
                .await
                .unwrap()
                .get(0),
            WriteCounter::Postgres(p) => sqlx::query("SELECT n FROM write_count")
                .fetch_one(p)
                .await
                .unwrap()
                .get(0),
        }
    }
}
