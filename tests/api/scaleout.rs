//! Many instances on one PostgreSQL database and one Redis, and what happens when either
//! goes away. Needs both services: without them these tests say so loudly and skip
//! (`TRADEAUTH_TEST_REQUIRE_SERVICES=1` turns that into a failure).
//!
//! Faults are injected with a TCP proxy between the instances and the service, which the
//! test cuts and restores: the shared servers keep running for the tests beside this one.

use crate::helpers::*;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A loopback TCP proxy to `upstream` that can be cut (connections dropped, new ones
/// refused) and restored on the same port.
struct Proxy {
    port: u16,
    upstream: u16,
    tasks: Arc<Mutex<JoinSet<()>>>,
    acceptor: Option<tokio::task::JoinHandle<()>>,
    /// What a new connection gets: forwarded, reset at once, or held without an answer.
    fault: Arc<Mutex<Fault>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    /// Accepted, then closed before a byte (a reset mid-handshake).
    Reset,
    /// Accepted and never answered (a network that drops packets).
    Hang,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut p = Proxy {
            port,
            upstream,
            tasks: Arc::default(),
            acceptor: None,
            fault: Arc::new(Mutex::new(Fault::None)),
        };
        p.accept(listener);
        p
    }

    fn accept(&mut self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let upstream = self.upstream;
        let fault = self.fault.clone();
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let fault = *fault.lock().unwrap();
                tasks.lock().unwrap().spawn(async move {
                    match fault {
                        Fault::Reset => return,
                        Fault::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Fault::None => {}
                    }
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Existing connections dropped; new ones get `fault` instead of the database.
    fn fail(&mut self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        self.tasks.lock().unwrap().abort_all();
    }

    fn heal(&mut self) {
        *self.fault.lock().unwrap() = Fault::None;
    }

    fn cut(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        self.tasks.lock().unwrap().abort_all();
    }

    async fn restore(&mut self) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.accept(listener);
    }
}

fn redis_prefix() -> String {
    format!("ta_test:{}:", uuid::Uuid::new_v4().simple())
}

async fn cluster(
    n: usize,
    db_url: &str,
    redis_url: &str,
    extra: fn(tradeauth::config::Sources) -> tradeauth::config::Sources,
) -> Vec<TestApp> {
    let prefix = redis_prefix();
    let mut apps = Vec::new();
    for _ in 0..n {
        let (db, redis, prefix) = (db_url.to_string(), redis_url.to_string(), prefix.clone());
        let dir = Arc::new(tempfile::tempdir().unwrap());
        apps.push(
            spawn_on(dir, db, move |s| {
                extra(s.set("redis_url", redis).set("redis_prefix", prefix))
            })
            .await,
        );
    }
    apps
}

/// Polls `check` until it holds, for at most `within`; returns how long it took.
async fn within<F, Fut>(within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn three_instances_share_keys_sessions_revocations_lockout_and_limits() {
    if !services_available("the multi-instance test").await {
        return;
    }
    let db = pg_schema_url().await;
    let apps = cluster(3, &db, "redis://127.0.0.1:6379", |s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login", "100/min")
            .set("rate_limit_login_ip", "1000/min")
    })
    .await;
    let (a, b, c) = (&apps[0], &apps[1], &apps[2]);

    // One key set: the JWKS is identical everywhere; a token from A works on B and C.
    let jwks = a.get("/.well-known/jwks.json").await.body;
    assert_eq!(b.get("/.well-known/jwks.json").await.body, jwks);
    assert_eq!(c.get("/.well-known/jwks.json").await.body, jwks);
    for app in [a, b, c] {
        let r = app.get("/readyz").await;
        r.assert(200, None);
        assert_eq!(r.body["checks"], json!({"database": "ok", "redis": "ok"}));
    }
    let (email, login) = a.new_user().await;
    let at = access(&login);
    b.get_auth("/api/v1/auth/me", &at).await.assert(200, None);
    c.get_auth("/api/v1/auth/verify", &at)
        .await
        .assert(204, None);

    // Logout on A: B and C refuse the token within a second.
    a.post_auth("/api/v1/auth/logout", &at, None)
        .await
        .assert(204, None);
    for app in [b, c] {
        let took = within(Duration::from_secs(1), || async {
            app.get_auth("/api/v1/auth/verify", &at).await.status == 401
        })
        .await;
        eprintln!("revocation seen after {took:?}");
    }

    // A refresh token rotated on A and replayed on B: reuse, the session dies everywhere.
    let s = b.login(&email, PASSWORD).await.body;
    let t0 = refresh_token(&s);
    let t1 = refresh_token(&a.refresh(&t0).await.body);
    let r2 = a.refresh(&t1).await;
    r2.assert(200, None);
    b.refresh(&t0)
        .await
        .assert(401, Some("refresh_token_reused"));
    c.refresh(&refresh_token(&r2.body))
        .await
        .assert(401, Some("invalid_refresh_token"));
    for app in [a, c] {
        within(Duration::from_secs(1), || async {
            app.get_auth("/api/v1/auth/verify", &access(&r2.body))
                .await
                .status
                == 401
        })
        .await;
    }

    // Lockout counts across instances: five failures in total, spread over A, B and C.
    for app in [a, b, c, a, b] {
        app.login(&email, "Wrong-pass-123")
            .await
            .assert(401, Some("invalid_credentials"));
    }
    c.login(&email, PASSWORD)
        .await
        .assert(423, Some("account_locked"));

    // A key rotation on A is seen by all.
    let (_, admin) = a.user_with_tier(4).await;
    let kid = a
        .post_auth("/api/v1/admin/signing-keys/rotate", &access(&admin), None)
        .await
        .body["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = a.login(&email.replace("@", "+x@"), PASSWORD).await;
    let _ = fresh;
    let jwks_a = a.get("/.well-known/jwks.json").await.body;
    // Retired, active and new standby EdDSA keys, and the ID tokens' RS256 and ES256 pairs.
    assert_eq!(jwks_a["keys"].as_array().unwrap().len(), 7);
    within(Duration::from_secs(7), || async {
        b.get("/.well-known/jwks.json").await.body == jwks_a
            && c.get("/.well-known/jwks.json").await.body == jwks_a
    })
    .await;
    let new_login = b.user_with_tier(2).await.1;
    let header: serde_json::Value = {
        use base64::Engine;
        let h = access(&new_login).split('.').next().unwrap().to_string();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        header["kid"],
        kid.as_str(),
        "B signs with the key A promoted"
    );
    c.get_auth("/api/v1/auth/me", &access(&new_login))
        .await
        .assert(200, None);
}

#[tokio::test]
async fn rate_limits_are_counted_across_instances() {
    if !services_available("the shared rate-limit test").await {
        return;
    }
    let db = pg_schema_url().await;
    let apps = cluster(3, &db, "redis://127.0.0.1:6379", |s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login", "3/min")
            .set("lockout_threshold", "100")
    })
    .await;
    for app in &apps {
        app.login("shared@example.com", "Wrong-pass-123")
            .await
            .assert(401, None);
    }
    let r = apps[1].login("shared@example.com", "Wrong-pass-123").await;
    r.assert(429, Some("rate_limited"));
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_back() {
    if !services_available("the Redis fault test").await {
        return;
    }
    let db = pg_schema_url().await;
    let mut proxy = Proxy::start(6379).await;
    let redis_url = format!("redis://127.0.0.1:{}", proxy.port);
    let apps = cluster(2, &db, &redis_url, |s| s.set("rate_limit", "on")).await;
    let (a, b) = (&apps[0], &apps[1]);
    let (email, _) = a.new_user().await;

    proxy.cut();
    // Not ready (API.md: 503 naming the store), but still serving: see below.
    within(Duration::from_secs(6), || async {
        let r = a.get("/readyz").await;
        r.status == 503
            && r.body["code"] == "unavailable"
            && r.body["checks"]["redis"] == "down"
            && r.body["checks"]["database"] == "ok"
            && r.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("redis"))
    })
    .await;
    // No revoked token is ever accepted: the revocation travels through PostgreSQL.
    let s = a.login(&email, PASSWORD).await;
    s.assert(200, None);
    let at = access(&s.body);
    b.get_auth("/api/v1/auth/verify", &at)
        .await
        .assert(204, None);
    a.post_auth("/api/v1/auth/logout", &at, None)
        .await
        .assert(204, None);
    within(Duration::from_secs(1), || async {
        b.get_auth("/api/v1/auth/verify", &at).await.status == 401
    })
    .await;

    // Back by itself, no restart.
    proxy.restore().await;
    within(Duration::from_secs(10), || async {
        a.get("/readyz").await.body["status"] == "ready"
    })
    .await;
    within(Duration::from_secs(10), || async {
        b.get("/readyz").await.body["status"] == "ready"
    })
    .await;
    let s = b.login(&email, PASSWORD).await.body;
    let at = access(&s);
    b.post_auth("/api/v1/auth/logout", &at, None)
        .await
        .assert(204, None);
    within(Duration::from_secs(1), || async {
        a.get_auth("/api/v1/auth/verify", &at).await.status == 401
    })
    .await;
}

#[tokio::test]
async fn postgres_lost_then_regained() {
    if !services_available("the PostgreSQL fault test").await {
        return;
    }
    let mut proxy = Proxy::start(5432).await;
    let direct = pg_schema_url().await;
    let db = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let apps = cluster(1, &db, "redis://127.0.0.1:6379", |s| s).await;
    let app = &apps[0];
    let (_, login) = app.new_user().await;
    let at = access(&login);

    proxy.cut();
    // Endpoints that need the database answer 503 with the contract body ...
    let r = app.get_auth("/api/v1/auth/me", &at).await;
    r.assert(503, Some("unavailable"));
    let r = app.get("/readyz").await;
    r.assert(503, Some("unavailable"));
    assert_eq!(r.body["checks"]["database"], "down");
    // ... while token checks keep working, from memory.
    for _ in 0..5 {
        app.get_auth("/api/v1/auth/verify", &at)
            .await
            .assert(204, None);
    }

    proxy.restore().await;
    within(Duration::from_secs(10), || async {
        app.get_auth("/api/v1/auth/me", &at).await.status == 200
    })
    .await;
    app.get("/readyz").await.assert(200, None);
    app.new_user().await;
}

/// Refused, reset and unanswered connections to PostgreSQL: every endpoint that needs the
/// database answers 503 `unavailable` with `Retry-After` (never 500), token checks keep
/// working, and the instance serves again within 5 s of the database coming back.
#[tokio::test]
async fn postgres_refusing_resetting_or_hanging_gives_503_then_recovers() {
    if !services_available("the PostgreSQL fault test").await {
        return;
    }
    let mut proxy = Proxy::start(5432).await;
    let direct = pg_schema_url().await;
    let db = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let apps = cluster(1, &db, "redis://127.0.0.1:6379", |s| s).await;
    let app = &apps[0];
    let (_, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (email, login) = app.new_user().await;
    let at = access(&login);

    for fault in ["refused", "reset", "hang"] {
        match fault {
            "refused" => proxy.cut(),
            "reset" => proxy.fail(Fault::Reset),
            _ => proxy.fail(Fault::Hang),
        }
        let fresh = format!("{fault}-{}@example.com", uuid::Uuid::new_v4().simple());
        let answers = [
            ("login", app.login(&email, PASSWORD).await),
            ("register", app.register(&fresh, PASSWORD).await),
            ("refresh", app.refresh(&refresh_token(&login)).await),
            (
                "admin",
                app.get_auth("/api/v1/admin/users", &admin_at).await,
            ),
            ("readyz", app.get("/readyz").await),
            (
                "rotate",
                app.post_auth("/api/v1/admin/signing-keys/rotate", &admin_at, None)
                    .await,
            ),
            (
                "reset confirm",
                app.post(
                    "/api/v1/auth/password-reset/confirm",
                    json!({"token": "x".repeat(43), "new_password": "Another-pass-123"}),
                )
                .await,
            ),
        ];
        for (what, r) in answers {
            assert_eq!(
                (r.status, r.code()),
                (503, "unavailable"),
                "{fault}: {what}: {}",
                r.text
            );
            assert!(r.header("retry-after").is_some(), "{fault}: {what}");
        }
        // Token checks never need the database.
        app.get_auth("/api/v1/auth/verify", &at)
            .await
            .assert(204, None);

        if fault == "refused" {
            proxy.restore().await;
        } else {
            proxy.heal();
        }
        let took = within(Duration::from_secs(5), || async {
            app.login(&email, PASSWORD).await.status == 200
        })
        .await;
        eprintln!("{fault}: serving again after {took:?}");
        app.get("/readyz").await.assert(200, None);
    }
}

async fn two_on_one_prefix(db: &str, prefix: &str) -> (TestApp, TestApp) {
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (db, prefix) = (db.to_string(), prefix.to_string());
        let dir = Arc::new(tempfile::tempdir().unwrap());
        apps.push(
            spawn_on(dir, db, move |s| {
                s.set("redis_url", "redis://127.0.0.1:6379")
                    .set("redis_prefix", prefix)
            })
            .await,
        );
    }
    let b = apps.pop().unwrap();
    (apps.pop().unwrap(), b)
}

#[tokio::test]
async fn revocations_are_published_on_redis() {
    if !services_available("the Redis publication test").await {
        return;
    }
    let prefix = redis_prefix();
    let (a, _b) = two_on_one_prefix(&pg_schema_url().await, &prefix).await;
    let (_, login) = a.new_user().await;
    // Listen on the channel the instances use.
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe(format!("{prefix}revocations"))
        .await
        .unwrap();
    a.post_auth("/api/v1/auth/logout", &access(&login), None)
        .await
        .assert(204, None);
    let mut seen = Vec::new();
    let mut stream = pubsub.on_message();
    while seen.len() < 2 {
        let msg = tokio::time::timeout(
            Duration::from_secs(2),
            futures::StreamExt::next(&mut stream),
        )
        .await
        .expect("the logout's revocations are published")
        .unwrap();
        let text: String = msg.get_payload().unwrap();
        let (what, _, _) = tradeauth::store::redis::parse_message(&text)
            .expect("a message the instances can read");
        seen.push(what);
    }
    assert!(seen
        .iter()
        .any(|w| matches!(w, tradeauth::store::Revoked::Jti(_))));
    assert!(seen
        .iter()
        .any(|w| matches!(w, tradeauth::store::Revoked::Sid(_))));
}

#[tokio::test]
async fn events_reach_websockets_on_other_instances() {
    use futures::StreamExt;
    if !services_available("the cross-instance event test").await {
        return;
    }
    let (a, b) = two_on_one_prefix(&pg_schema_url().await, &redis_prefix()).await;
    let (email, login) = a.new_user().await;
    let url = format!(
        "{}/api/v1/ws?token={}",
        b.base.replace("http://", "ws://"),
        access(&login)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    // Events of the registration, published just before the socket opened, may still be
    // on their way: let them arrive first.
    while tokio::time::timeout(Duration::from_millis(500), ws.next())
        .await
        .is_ok()
    {}
    // A login on A is pushed to the socket held by B, once.
    a.login(&email, PASSWORD).await.assert(200, None);
    let ev = next_json(&mut ws).await;
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["event"]["type"], "login.succeeded");
    // An event written on B itself is not delivered twice.
    b.login(&email, "Wrong-pass-123").await.assert(401, None);
    assert_eq!(next_json(&mut ws).await["event"]["type"], "login.failed");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), ws.next())
            .await
            .is_err(),
        "no duplicate delivery"
    );
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    use futures::StreamExt;
    match tokio::time::timeout(Duration::from_secs(3), ws.next())
        .await
        .expect("a message within 3 s")
    {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
            serde_json::from_str(&t).unwrap()
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_rotation_on_one_instance_is_published_and_signed_with_everywhere_within_a_second() {
    if !services_available("the key-rotation fan-out test").await {
        return;
    }
    let db = pg_schema_url().await;
    let apps = cluster(3, &db, "redis://127.0.0.1:6379", |s| s).await;
    let (a, b, c) = (&apps[0], &apps[1], &apps[2]);
    let (_, admin) = a.user_with_tier(4).await;
    let (email, _) = a.new_user().await;
    let before = a.get("/.well-known/jwks.json").await.body;

    let r = a
        .post_auth("/api/v1/admin/signing-keys/rotate", &access(&admin), None)
        .await;
    r.assert(200, None);
    let kid = r.body["kid"].as_str().unwrap().to_string();
    let jwks = a.get("/.well-known/jwks.json").await.body;
    assert_ne!(jwks, before, "A publishes the new standby");

    for other in [b, c] {
        within(Duration::from_secs(1), || async {
            other.get("/.well-known/jwks.json").await.body == jwks
        })
        .await;
        let login = other.login(&email, PASSWORD).await;
        login.assert(200, None);
        assert_eq!(kid_of(&access(&login.body)), kid, "signs with the new key");
        // And every instance accepts it.
        a.get_auth("/api/v1/auth/verify", &access(&login.body))
            .await
            .assert(204, None);
    }
}

/// Two admins removing each other at once, through two instances, many rounds: one
/// change wins and the other gets 422 `last_admin`, so an active admin always remains
/// (demotion, disabling and deletion alike).
#[tokio::test]
async fn the_last_admin_guard_holds_under_concurrent_removals_on_two_instances() {
    if !services_available("the last-admin race test").await {
        return;
    }
    let db = pg_schema_url().await;
    let apps = cluster(2, &db, "redis://127.0.0.1:6379", |s| s).await;
    let (a, b) = (&apps[0], &apps[1]);
    let (_, first) = a.user_with_tier(4).await;
    let mut survivor = first;
    for round in 0..24 {
        let (_, newcomer) = b.user_with_tier(4).await;
        let id = |login: &serde_json::Value| login["user"]["id"].as_str().unwrap().to_string();
        let (x, y) = (survivor.clone(), newcomer.clone());
        let remove = |app: &TestApp, actor: &serde_json::Value, target: &serde_json::Value| {
            let path = format!("/api/v1/admin/users/{}", id(target));
            let req = match round % 3 {
                0 => app
                    .client
                    .patch(app.url(&path))
                    .json(&json!({"permission_tier": 1})),
                1 => app
                    .client
                    .patch(app.url(&path))
                    .json(&json!({"is_active": false})),
                _ => app.client.delete(app.url(&path)),
            };
            req.bearer_auth(access(actor)).send()
        };
        let (rx, ry) = tokio::join!(remove(a, &x, &y), remove(b, &y, &x));
        let (sx, sy) = (rx.unwrap().status().as_u16(), ry.unwrap().status().as_u16());
        let ok = |s: u16| s == 200 || s == 204;
        assert!(
            !(ok(sx) && ok(sy)),
            "round {round}: both removals succeeded ({sx}, {sy}): no admin left"
        );
        // The loser was refused as the last admin (or had already lost its own rights).
        let admins = a
            .service
            .admin_list_users(
                tradeauth::service::UserQuery {
                    q: None,
                    tier: Some(tradeauth::domain::Tier::new(4).unwrap()),
                    active: Some(true),
                },
                tradeauth::service::PageRequest {
                    after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(admins.items.len(), 1, "round {round}: ({sx}, {sy})");
        survivor = if admins.items[0].user.id.0.to_string() == id(&x) {
            x
        } else {
            y
        };
    }
}

/// A password reset or verification resend answers before it looks the address up: a
/// known and an unknown address get the same 202 even while the database does not answer
/// (the lookup, the token and the mail happen after the answer).
#[tokio::test]
async fn mail_requests_answer_before_looking_the_address_up() {
    if !services_available("the mail-request timing test").await {
        return;
    }
    let mut proxy = Proxy::start(5432).await;
    let direct = pg_schema_url().await;
    let db = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let apps = cluster(1, &db, "redis://127.0.0.1:6379", |s| s).await;
    let app = &apps[0];
    let (known, _) = app.new_user().await;
    proxy.fail(Fault::Hang);
    for email in [known.as_str(), "nobody-here@example.com"] {
        for path in [
            "/api/v1/auth/password-reset",
            "/api/v1/auth/verify-email/resend",
        ] {
            let r = app.post(path, json!({ "email": email })).await;
            r.assert(202, None);
        }
    }
    // A malformed address is still told at once.
    app.post(
        "/api/v1/auth/password-reset",
        json!({"email": "not-an-address"}),
    )
    .await
    .assert(400, Some("validation_error"));
    proxy.heal();
}
