//! Rate limits and idempotency keys.

use crate::helpers::*;
use serde_json::json;

async fn login_from(app: &TestApp, xff: Option<&str>, ident: &str) -> Resp {
    let mut req = app.client.post(app.url("/api/v1/auth/login"));
    if let Some(ip) = xff {
        req = req.header("x-forwarded-for", ip);
    }
    into_resp(
        req.json(&json!({"username": ident, "password": "Wrong-pass-123"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn login_is_limited_per_account_and_ip_with_honest_headers() {
    let app = spawn_with(|s| {
        // Per minute, not per second: on a busy machine four logins may take a second.
        s.set("rate_limit", "on")
            .set("rate_limit_login", "3/min")
            .set("lockout_threshold", "100")
    })
    .await;
    for left in [2, 1, 0] {
        let r = login_from(&app, None, "someone@example.com").await;
        r.assert(401, Some("invalid_credentials"));
        assert_eq!(r.header("ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(r.header("ratelimit-remaining"), Some(left.to_string()));
        assert!(r.header("ratelimit-reset").is_some());
    }
    let r = login_from(&app, None, "someone@example.com").await;
    r.assert(429, Some("rate_limited"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(r.body["retry_after"], retry);
    assert_eq!(r.header("ratelimit-remaining").as_deref(), Some("0"));
    // Another account from the same address has its own bucket.
    login_from(&app, None, "other@example.com")
        .await
        .assert(401, None);
    // Waiting Retry-After seconds lets the next request through.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    login_from(&app, None, "someone@example.com")
        .await
        .assert(401, Some("invalid_credentials"));
}

/// Login buckets are keyed by the identifier as lower-cased, not by the account: the
/// `RateLimit-*` headers of an account's username say nothing about its email (API.md,
/// Login rules), while the case of one identifier does not buy a fresh bucket.
#[tokio::test]
async fn login_buckets_are_per_identifier_and_do_not_link_an_accounts_email_and_username() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login", "3/min")
            .set("lockout_threshold", "100")
    })
    .await;
    // `new_user` logs in once by email: the first of the email's three.
    let (email, login) = app.new_user().await;
    let username = login["user"]["username"].as_str().unwrap().to_string();
    let r = login_from(&app, None, &email.to_uppercase()).await;
    r.assert(401, None);
    assert_eq!(r.header("ratelimit-remaining").as_deref(), Some("1"));
    login_from(&app, None, &email).await.assert(401, None);
    login_from(&app, None, &email)
        .await
        .assert(429, Some("rate_limited"));
    // The username starts with a full bucket: nothing tells it shares the account.
    let r = login_from(&app, None, &username).await;
    r.assert(401, Some("invalid_credentials"));
    assert_eq!(r.header("ratelimit-remaining").as_deref(), Some("2"));
}

/// After failures with an account's email lock it, its username gets 401 as a wrong
/// password would, not 423 — and the account stays locked for every identifier, so the
/// right password by username does not get in either.
#[tokio::test]
async fn a_lock_answers_423_only_to_the_identifiers_that_failed() {
    let app = spawn_with(|s| s.set("lockout_threshold", "3")).await;
    let (email, login) = app.new_user().await;
    let username = login["user"]["username"].as_str().unwrap().to_string();
    for _ in 0..3 {
        login_from(&app, None, &email).await.assert(401, None);
    }
    app.login(&email.to_uppercase(), PASSWORD)
        .await
        .assert(423, Some("account_locked"));
    let r = login_from(&app, None, &username).await;
    r.assert(401, Some("invalid_credentials"));
    assert!(r.body.get("locked_until").is_none(), "{}", r.text);
    app.login(&username, PASSWORD)
        .await
        .assert(401, Some("invalid_credentials"));
    app.login(&email, PASSWORD)
        .await
        .assert(423, Some("account_locked"));
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login_ip", "2/min")
            .set("lockout_threshold", "100")
    })
    .await;
    login_from(&app, Some("1.1.1.1"), "a@example.com")
        .await
        .assert(401, None);
    login_from(&app, Some("2.2.2.2"), "b@example.com")
        .await
        .assert(401, None);
    // Different claimed addresses, but the peer (127.0.0.1) is not a trusted proxy.
    login_from(&app, Some("3.3.3.3"), "c@example.com")
        .await
        .assert(429, Some("rate_limited"));

    let trusted = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login_ip", "2/min")
            .set("lockout_threshold", "100")
            .set("trusted_proxies", "127.0.0.0/8")
    })
    .await;
    for ip in ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"] {
        login_from(&trusted, Some(ip), "a@example.com")
            .await
            .assert(401, None);
    }
    login_from(&trusted, Some("9.9.9.9, 1.1.1.1"), "z@example.com")
        .await
        .assert(401, None);
    login_from(&trusted, Some("1.1.1.1"), "y@example.com")
        .await
        .assert(429, Some("rate_limited"));
}

/// One host is given a whole IPv6 /64 and can rotate through it: the per-address limits
/// count an IPv6 client by its /64 (code review L7), an IPv4 client by its address.
#[tokio::test]
async fn an_ipv6_client_is_counted_by_its_64() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login_ip", "2/min")
            .set("lockout_threshold", "100")
            .set("trusted_proxies", "127.0.0.0/8")
    })
    .await;
    for (ip, who) in [("2001:db8:1:2::1", "a"), ("2001:db8:1:2::ffff:7", "b")] {
        login_from(&app, Some(ip), &format!("{who}@example.com"))
            .await
            .assert(401, None);
    }
    // A third address of the same /64: the same bucket, spent.
    login_from(&app, Some("2001:db8:1:2:9::3"), "c@example.com")
        .await
        .assert(429, Some("rate_limited"));
    // The next /64 is another client.
    login_from(&app, Some("2001:db8:1:3::1"), "d@example.com")
        .await
        .assert(401, None);
}

#[tokio::test]
async fn registration_and_writes_are_limited() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_register", "2/hour")
            .set("rate_limit_write", "2/min")
    })
    .await;
    app.register("r1@example.com", PASSWORD)
        .await
        .assert(201, None);
    app.register("r2@example.com", PASSWORD)
        .await
        .assert(201, None);
    let r = app.register("r3@example.com", PASSWORD).await;
    r.assert(429, Some("rate_limited"));
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 60);
    let login = app.login("r1@example.com", PASSWORD).await.body;
    let at = access(&login);
    app.patch_auth("/api/v1/auth/me", &at, json!({"full_name": "A"}))
        .await
        .assert(200, None);
    app.patch_auth("/api/v1/auth/me", &at, json!({"full_name": "B"}))
        .await
        .assert(200, None);
    app.patch_auth("/api/v1/auth/me", &at, json!({"full_name": "C"}))
        .await
        .assert(429, Some("rate_limited"));
    // Reads are not limited.
    for _ in 0..5 {
        let r = app.get_auth("/api/v1/auth/me", &at).await;
        r.assert(200, None);
        assert!(r.header("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn refresh_is_limited_per_session() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_refresh", "2/min")
            .set("refresh_rotation", "false")
    })
    .await;
    let (email, a) = app.new_user().await;
    let b = app.login(&email, PASSWORD).await.body;
    app.refresh(&refresh_token(&a)).await.assert(200, None);
    app.refresh(&refresh_token(&a)).await.assert(200, None);
    app.refresh(&refresh_token(&a))
        .await
        .assert(429, Some("rate_limited"));
    app.refresh(&refresh_token(&b)).await.assert(200, None);
}

#[tokio::test]
async fn rate_limit_off_disables_limits() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "off")
            .set("rate_limit_login", "1/hour")
            .set("lockout_threshold", "100")
    })
    .await;
    for _ in 0..4 {
        let r = login_from(&app, None, "x@example.com").await;
        r.assert(401, None);
        assert!(r.header("ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn idempotency_keys_replay_and_conflict() {
    let app = spawn_app().await;
    let body = json!({"email": "idem@example.com", "password": PASSWORD});
    let send = |b: serde_json::Value, key: &'static str| {
        let req = app
            .client
            .post(app.url("/api/v1/auth/register"))
            .header("idempotency-key", key)
            .json(&b);
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let first = send(body.clone(), "key-1").await;
    first.assert(201, None);
    let again = send(body.clone(), "key-1").await;
    again.assert(201, None);
    assert_eq!(again.body, first.body, "the first response is replayed");
    let other = send(
        json!({"email": "idem2@example.com", "password": PASSWORD}),
        "key-1",
    )
    .await;
    other.assert(409, Some("idempotency_conflict"));
    // Without the key the same body is a new request (and collides).
    app.post("/api/v1/auth/register", body)
        .await
        .assert(409, Some("email_exists"));

    // Parallel requests with one key run once.
    let b = json!({"email": "para@example.com", "password": PASSWORD});
    let results = futures::future::join_all((0..5).map(|_| send(b.clone(), "key-par"))).await;
    for r in &results {
        r.assert(201, None);
        assert_eq!(r.body["user"]["id"], results[0].body["user"]["id"]);
    }

    // Admin creation honours keys too, scoped to the caller.
    let (_, admin) = app.user_with_tier(4).await;
    let create = |auth: (&'static str, String), key: &'static str| {
        let req = app
            .client
            .post(app.url("/api/v1/admin/users"))
            .header(auth.0, auth.1)
            .header("idempotency-key", key)
            .json(&json!({"email": "made@example.com", "password": PASSWORD}));
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let bearer = |at: &str| ("authorization", format!("Bearer {at}"));
    let a = create(bearer(&access(&admin)), "adm-1").await;
    a.assert(201, None);
    let b = create(bearer(&access(&admin)), "adm-1").await;
    b.assert(201, None);
    assert_eq!(a.body["id"], b.body["id"]);
    // The same admin with a refreshed token is the same caller: replayed.
    let fresh = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh_token(&admin)}),
        )
        .await;
    let c = create(bearer(&access(&fresh.body)), "adm-1").await;
    c.assert(201, None);
    assert_eq!(a.body["id"], c.body["id"]);
    // Another admin, through an API key, with the same key and body: not a replay of the
    // first admin's response; the request runs (and the address is taken).
    let (_, other) = app.user_with_tier(4).await;
    let made = app
        .post_auth(
            "/api/v1/auth/api-keys",
            &access(&other),
            Some(json!({"name": "ops"})),
        )
        .await;
    made.assert(201, None);
    let api_key = made.body["key"].as_str().unwrap().to_string();
    create(("x-api-key", api_key.clone()), "adm-1")
        .await
        .assert(409, Some("email_exists"));
    create(("authorization", format!("ApiKey {api_key}")), "adm-1")
        .await
        .assert(409, Some("email_exists"));
}

#[tokio::test]
async fn api_key_writes_count_against_their_owner() {
    let app = spawn_with(|s| s.set("rate_limit", "on").set("rate_limit_write", "2/min")).await;
    let (_, login) = app.new_user().await;
    let key = app
        .post_auth(
            "/api/v1/auth/api-keys",
            &access(&login),
            Some(json!({"name": "bot"})),
        )
        .await;
    key.assert(201, None);
    let key = key.body["key"].as_str().unwrap().to_string();
    // The key creation was the owner's first write; one more passes, then the limit holds.
    let write = || {
        let req = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .header("x-api-key", &key);
        async move { into_resp(req.send().await.unwrap()).await }
    };
    write().await.assert(403, Some("api_key_not_allowed"));
    write().await.assert(429, Some("rate_limited"));
}

/// A client that hangs up before the answer (a dropped connection) retries with the same
/// key and gets the response it missed, not a 409 or a second account.
#[tokio::test]
async fn a_retry_after_a_dropped_connection_gets_the_missed_response() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let body = json!({"email": "hangup@example.com", "password": PASSWORD}).to_string();
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         idempotency-key: hangup-1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    // Gone while the password is hashed: time for the server to start on the request,
    // not to finish it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    drop(conn);

    let retry = || async {
        into_resp(
            app.client
                .post(app.url("/api/v1/auth/register"))
                .header("idempotency-key", "hangup-1")
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    // A replay of the first request's response; or, when the server saw the hang-up
    // before it started on the request, the request's first run.
    let first = retry().await;
    first.assert(201, None);
    let again = retry().await;
    again.assert(201, None);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.body["user"]["id"], first.body["user"]["id"]);
    app.login("hangup@example.com", PASSWORD)
        .await
        .assert(200, None);
}

/// A claim whose request never finishes (its instance stopped or died mid-request) frees
/// the key after a minute; a finished one replays for 24 h.
#[tokio::test]
async fn an_abandoned_idempotency_claim_frees_its_key_after_a_minute() {
    use tradeauth::store::IdempotencyState;
    let app = spawn_app().await;
    let store = &app.service.store;
    let t0 = chrono::Utc::now();
    let at = |secs: i64| t0 + chrono::Duration::seconds(secs);
    assert!(matches!(
        store.idempotency_begin("k-stale", "h1", t0).await.unwrap(),
        IdempotencyState::Claimed
    ));
    assert!(matches!(
        store
            .idempotency_begin("k-stale", "h1", at(30))
            .await
            .unwrap(),
        IdempotencyState::InFlight { .. }
    ));
    assert!(matches!(
        store
            .idempotency_begin("k-stale", "h1", at(61))
            .await
            .unwrap(),
        IdempotencyState::Claimed
    ));
    store
        .idempotency_finish("k-stale", 201, "{}")
        .await
        .unwrap();
    assert!(matches!(
        store
            .idempotency_begin("k-stale", "h1", at(3600))
            .await
            .unwrap(),
        IdempotencyState::Done { .. }
    ));
}

/// The limiter keys a login by the identifier the dialect's login handler signs in with,
/// and a refresh by the token the handler rotates: a decoy field beside the real one
/// (os-engine reads `email` before `username`, and `refreshToken`) buys no fresh bucket.
#[tokio::test]
async fn a_decoy_field_does_not_move_a_login_or_refresh_to_another_bucket() {
    let app = spawn_with(|s| {
        s.set("dialect", "os-engine")
            .set("rate_limit", "on")
            .set("rate_limit_login", "3/min")
            .set("rate_limit_refresh", "2/min")
            .set("lockout_threshold", "100")
    })
    .await;
    let victim = "victim@example.com";
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = app
            .post(
                "/api/v1/auth/login",
                json!({"username": format!("decoy-{i}"), "email": victim, "password": "Wrong-pass-123"}),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "the victim's bucket counts");

    app.register("refresher@example.com", PASSWORD)
        .await
        .assert(201, None);
    let login = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "refresher@example.com", "password": PASSWORD}),
        )
        .await;
    login.assert(200, None);
    let mut token = login.body["refreshToken"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let r = app
            .post(
                "/api/v1/auth/refresh",
                json!({"refresh_token": format!("decoy-{i}"), "refreshToken": token}),
            )
            .await;
        statuses.push(r.status);
        if r.status == 200 {
            token = r.body["refreshToken"].as_str().unwrap().to_string();
        }
    }
    assert_eq!(statuses, [200, 200, 429], "the session's bucket counts");
}
