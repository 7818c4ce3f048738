//! Conformance per dialect, from its seed document: every example request sent as written
//! gets the documented status and exactly the documented fields; every documented error
//! case is reproduced.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn jwt_lifetime(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
}

async fn post_json(app: &TestApp, path: &str, headers: &[(&str, String)], body: Value) -> Resp {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    into_resp(req.body(body.to_string()).send().await.unwrap()).await
}

/// Applies an admin change to the user with this email, through the service.
async fn admin_patch(app: &TestApp, email: &str, patch: tradeauth::service::admin::AdminPatch) {
    let u = app
        .service
        .store
        .user_by_login(email)
        .await
        .unwrap()
        .unwrap();
    app.service
        .admin_patch_user(None, u.id, patch, None)
        .await
        .unwrap();
}

async fn set_tier(app: &TestApp, email: &str, tier: i64) {
    let tier = Some(tradeauth::domain::Tier::new(tier).unwrap());
    admin_patch(
        app,
        email,
        tradeauth::service::admin::AdminPatch {
            permission_tier: tier,
            ..Default::default()
        },
    )
    .await;
}

async fn disable(app: &TestApp, email: &str) {
    admin_patch(
        app,
        email,
        tradeauth::service::admin::AdminPatch {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await;
}

async fn verify_email(app: &TestApp, email: &str) {
    admin_patch(
        app,
        email,
        tradeauth::service::admin::AdminPatch {
            is_verified: Some(true),
            ..Default::default()
        },
    )
    .await;
}

#[tokio::test]
async fn quantum_seed_000() {
    let app = spawn_with(|s| s.set("dialect", "quantum")).await;
    app.register("trader@example.com", PASSWORD)
        .await
        .assert(201, None);

    // POST /api/v1/auth/login {"username": "<email>", "password": ...}
    let r = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"username": "trader@example.com", "password": PASSWORD}),
    )
    .await;
    r.assert(200, None);
    assert_eq!(
        keys(&r.body),
        set(&["access_token", "refresh_token", "token_type"])
    );
    assert_eq!(r.body["token_type"], "bearer");
    assert_eq!(
        jwt_lifetime(r.body["access_token"].as_str().unwrap()),
        30 * 60,
        "access tokens last 30 min"
    );
    let by_name = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"username": "trader", "password": PASSWORD}),
    )
    .await;
    by_name.assert(200, None);

    // GET /api/v1/auth/me
    let me = app.get_auth("/api/v1/auth/me", &access(&r.body)).await;
    me.assert(200, None);
    assert_eq!(
        keys(&me.body),
        set(&[
            "id",
            "email",
            "username",
            "full_name",
            "role",
            "is_active",
            "is_verified",
            "created_at",
            "last_login_at"
        ])
    );
    assert_eq!(me.body["role"], "user");
    set_tier(&app, "trader@example.com", 3).await;
    let premium = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"username": "trader", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        app.get_auth("/api/v1/auth/me", &access(&premium.body))
            .await
            .body["role"],
        "premium"
    );

    // POST /api/v1/auth/refresh rotates and returns the same three fields.
    let rt = refresh_token(&premium.body);
    let fresh = post_json(
        &app,
        "/api/v1/auth/refresh",
        &[],
        json!({"refresh_token": rt}),
    )
    .await;
    fresh.assert(200, None);
    assert_eq!(
        keys(&fresh.body),
        set(&["access_token", "refresh_token", "token_type"])
    );
    assert_ne!(
        refresh_token(&fresh.body),
        rt,
        "the old refresh token is invalidated (rotation)"
    );

    // POST /api/v1/auth/logout with Bearer and {"refresh_token"}
    let out = post_json(
        &app,
        "/api/v1/auth/logout",
        &[("authorization", format!("Bearer {}", access(&fresh.body)))],
        json!({"refresh_token": refresh_token(&fresh.body)}),
    )
    .await;
    assert_eq!(out.status, 204);
    let gone = post_json(
        &app,
        "/api/v1/auth/refresh",
        &[],
        json!({"refresh_token": refresh_token(&fresh.body)}),
    )
    .await;
    assert_eq!(gone.status, 401);
    assert_eq!(keys(&gone.body), set(&["detail"]));

    // Documented errors.
    let bad = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"username": "trader", "password": "nope-nope-1"}),
    )
    .await;
    assert_eq!(
        (bad.status, bad.body.clone()),
        (401, json!({"detail": "Incorrect username or password"}))
    );
    disable(&app, "trader@example.com").await;
    let off = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"username": "trader", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (off.status, off.body.clone()),
        (403, json!({"detail": "User account is disabled"}))
    );
    // Where the seed is silent: validation is FastAPI's 422, everything has a detail.
    let v = post_json(&app, "/api/v1/auth/login", &[], json!({"password": 5})).await;
    assert_eq!(v.status, 422);
    assert!(v.body["detail"].is_string());
    let nf = app.get("/api/v1/strategies").await;
    assert_eq!(nf.status, 404);
    assert_eq!(keys(&nf.body), set(&["detail"]));
}

#[tokio::test]
async fn os_engine_seed_002() {
    let app = spawn_with(|s| {
        s.set("dialect", "os-engine")
            .set("admin_email", "admin@example.com")
            .set("admin_password", "SecurePassword123!")
    })
    .await;
    // The seed's curl: POST /api/v1/auth/login {"email", "password", "rememberMe": false}
    let r = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"email": "admin@example.com", "password": "SecurePassword123!", "rememberMe": false}),
    )
    .await;
    r.assert(200, None);
    assert_eq!(keys(&r.body), set(&["accessToken", "refreshToken", "user"]));
    assert_eq!(keys(&r.body["user"]), set(&["id", "email", "createdAt"]));
    let created = r.body["user"]["createdAt"].as_str().unwrap();
    assert!(
        regex_like_millis(created),
        "createdAt with milliseconds: {created}"
    );
    let at = r.body["accessToken"].as_str().unwrap().to_string();
    assert_eq!(jwt_lifetime(&at), 15 * 60);

    // GET /api/v1/auth/me
    let me = app.get_auth("/api/v1/auth/me", &at).await;
    me.assert(200, None);
    assert_eq!(keys(&me.body), set(&["id", "email", "createdAt"]));
    let none = app.get("/api/v1/auth/me").await;
    assert_eq!(
        (none.status, none.body.clone()),
        (401, json!({"error": "Authorization header required"}))
    );
    let bad = app
        .get_auth("/api/v1/auth/me", "eyJhbGciOiJIUzI1NiIs...")
        .await;
    assert_eq!(
        (bad.status, bad.body.clone()),
        (401, json!({"error": "Invalid token"}))
    );

    // Refresh lifetimes: 24 h, or 30 days with rememberMe.
    let sessions = app.get_auth("/api/v1/auth/sessions", &at).await.body;
    let exp =
        chrono::DateTime::parse_from_rfc3339(sessions["items"][0]["expires_at"].as_str().unwrap())
            .unwrap();
    let left = exp.timestamp() - chrono::Utc::now().timestamp();
    assert!(
        (86400 - 60..=86400).contains(&left),
        "24 h refresh, got {left}s"
    );
    let long = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"email": "admin@example.com", "password": "SecurePassword123!", "rememberMe": true}),
    )
    .await;
    let sessions = app
        .get_auth(
            "/api/v1/auth/sessions",
            long.body["accessToken"].as_str().unwrap(),
        )
        .await
        .body;
    let current = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    let left = chrono::DateTime::parse_from_rfc3339(current["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp()
        - chrono::Utc::now().timestamp();
    assert!(
        left > 29 * 86400,
        "30-day refresh with rememberMe, got {left}s"
    );

    // POST /api/v1/auth/refresh {"refreshToken"}
    let fresh = post_json(
        &app,
        "/api/v1/auth/refresh",
        &[],
        json!({"refreshToken": r.body["refreshToken"]}),
    )
    .await;
    fresh.assert(200, None);
    assert_eq!(keys(&fresh.body), set(&["accessToken", "refreshToken"]));

    // POST /api/v1/auth/logout with {"refreshToken"}
    let at2 = fresh.body["accessToken"].as_str().unwrap().to_string();
    let out = post_json(
        &app,
        "/api/v1/auth/logout",
        &[("authorization", format!("Bearer {at2}"))],
        json!({"refreshToken": fresh.body["refreshToken"]}),
    )
    .await;
    assert_eq!(
        (out.status, out.body.clone()),
        (
            200,
            json!({"success": true, "message": "Logged out successfully"})
        )
    );
    let after = app.get_auth("/api/v1/auth/me", &at2).await;
    assert_eq!(
        (after.status, after.body.clone()),
        (401, json!({"error": "Invalid token"}))
    );
    let rt = post_json(
        &app,
        "/api/v1/auth/refresh",
        &[],
        json!({"refreshToken": fresh.body["refreshToken"]}),
    )
    .await;
    assert_eq!(rt.status, 401);
    assert_eq!(keys(&rt.body), set(&["error"]));

    // Documented errors: 400, 401, and 423 with lockedUntil after 5 failures.
    let missing = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"email": "admin@example.com"}),
    )
    .await;
    assert_eq!(
        (missing.status, missing.body.clone()),
        (400, json!({"error": "Email and password are required"}))
    );
    for _ in 0..5 {
        let w = post_json(
            &app,
            "/api/v1/auth/login",
            &[],
            json!({"email": "admin@example.com", "password": "wrong-Password-1"}),
        )
        .await;
        assert_eq!(
            (w.status, w.body.clone()),
            (401, json!({"error": "Invalid email or password"}))
        );
    }
    let locked = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"email": "admin@example.com", "password": "SecurePassword123!"}),
    )
    .await;
    assert_eq!(locked.status, 423);
    assert_eq!(keys(&locked.body), set(&["error", "lockedUntil"]));
    assert_eq!(
        locked.body["error"],
        "Account is temporarily locked due to too many failed login attempts"
    );
    assert!(regex_like_millis(
        locked.body["lockedUntil"].as_str().unwrap()
    ));
}

/// `2024-01-15T10:30:00.000Z`
fn regex_like_millis(s: &str) -> bool {
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[tokio::test]
async fn stratify_seed_003() {
    let app = spawn_with(|s| s.set("dialect", "stratify")).await;
    // POST /api/v1/auth/register {"email", "password", "full_name"}
    let r = post_json(
        &app,
        "/api/v1/auth/register",
        &[],
        json!({"email": "user@example.com", "password": "SecurePass123!", "full_name": "John Doe"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(keys(&r.body), set(&["success", "data", "message"]));
    assert_eq!(r.body["success"], true);
    assert_eq!(
        keys(&r.body["data"]),
        set(&["user_id", "email", "verification_required"])
    );
    assert_eq!(r.body["data"]["email"], "user@example.com");
    assert_eq!(r.body["data"]["verification_required"], true);
    assert_eq!(
        r.body["message"],
        "Registration successful. Check email for verification."
    );
    let dup = post_json(
        &app,
        "/api/v1/auth/register",
        &[],
        json!({"email": "user@example.com", "password": "SecurePass123!", "full_name": "John Doe"}),
    )
    .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["success"], false);
    assert_eq!(dup.body["error"]["code"], "EMAIL_EXISTS");
    assert!(dup.body["error"]["message"].is_string());

    // Verification is required by default.
    let login = json!({"email": "user@example.com", "password": "SecurePass123!"});
    let nv = post_json(&app, "/api/v1/auth/login", &[], login.clone()).await;
    assert_eq!(
        (nv.status, nv.body["error"]["code"].clone()),
        (403, json!("EMAIL_NOT_VERIFIED"))
    );
    verify_email(&app, "user@example.com").await;

    // POST /api/v1/auth/login
    let ok = post_json(&app, "/api/v1/auth/login", &[], login.clone()).await;
    ok.assert(200, None);
    assert_eq!(keys(&ok.body), set(&["success", "data"]));
    assert_eq!(
        keys(&ok.body["data"]),
        set(&["access_token", "refresh_token", "token_type", "expires_in"])
    );
    assert_eq!(ok.body["data"]["token_type"], "bearer");
    assert_eq!(ok.body["data"]["expires_in"], 900);
    let rt = ok.body["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    // POST /api/v1/auth/refresh — no rotation: the same token keeps working.
    for _ in 0..2 {
        let f = post_json(
            &app,
            "/api/v1/auth/refresh",
            &[],
            json!({"refresh_token": rt}),
        )
        .await;
        f.assert(200, None);
        assert_eq!(keys(&f.body["data"]), set(&["access_token", "expires_in"]));
        assert_eq!(f.body["data"]["expires_in"], 900);
    }

    // Documented error codes.
    let bad = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"email": "user@example.com", "password": "wrong-Pass-1"}),
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["error"]["code"], "INVALID_CREDENTIALS");
    let nf = app
        .get_auth(
            "/api/v1/watchlists",
            ok.body["data"]["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        (
            nf.status,
            nf.body["success"].clone(),
            nf.body["error"]["code"].clone()
        ),
        (404, json!(false), json!("NOT_FOUND"))
    );
    let v = post_json(&app, "/api/v1/auth/login", &[], json!({"email": 5})).await;
    assert_eq!(
        (v.status, v.body["error"]["code"].clone()),
        (400, json!("VALIDATION_ERROR"))
    );
    disable(&app, "user@example.com").await;
    let off = post_json(&app, "/api/v1/auth/login", &[], login).await;
    assert_eq!(
        (off.status, off.body["error"]["code"].clone()),
        (403, json!("ACCOUNT_DISABLED"))
    );

    // TOKEN_EXPIRED
    let short = spawn_with(|s| {
        s.set("dialect", "stratify")
            .set("access_ttl", "1s")
            .set("require_email_verification", "false")
    })
    .await;
    short.register("t@example.com", PASSWORD).await;
    let l = post_json(
        &short,
        "/api/v1/auth/login",
        &[],
        json!({"email": "t@example.com", "password": PASSWORD}),
    )
    .await;
    l.assert(200, None);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let e = short
        .get_auth(
            "/api/v1/auth/me",
            l.body["data"]["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        (e.status, e.body["error"]["code"].clone()),
        (401, json!("TOKEN_EXPIRED"))
    );
}

#[tokio::test]
async fn rate_limits_take_the_dialect_shape() {
    let app = spawn_with(|s| {
        s.set("dialect", "stratify")
            .set("rate_limit", "on")
            .set("rate_limit_register", "1/hour")
    })
    .await;
    app.register("a@example.com", PASSWORD).await;
    let r = app.register("b@example.com", PASSWORD).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (429, json!("RATE_LIMITED"))
    );
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn native_seed_001_without_rotation() {
    let app = spawn_with(|s| s.set("refresh_rotation", "false")).await;
    app.post(
        "/api/v1/auth/register",
        json!({"email": "t1@example.com", "username": "trader1", "password": PASSWORD}),
    )
    .await
    .assert(201, None);
    // POST /auth/login {"username": "trader1", "password": ...}
    let r = post_json(
        &app,
        "/api/v1/auth/login",
        &[],
        json!({"username": "trader1", "password": PASSWORD}),
    )
    .await;
    r.assert(200, None);
    for f in [
        "access_token",
        "refresh_token",
        "access_expires_at",
        "permission_tier",
    ] {
        assert!(r.body.get(f).is_some(), "login lacks {f}");
    }
    assert!(r.body["access_expires_at"].is_i64());
    assert_eq!(r.body["permission_tier"], 2);
    // POST /auth/refresh → {access_token, access_expires_at}; the client keeps its token.
    let rt = refresh_token(&r.body);
    for _ in 0..2 {
        let f = post_json(
            &app,
            "/api/v1/auth/refresh",
            &[],
            json!({"refresh_token": rt}),
        )
        .await;
        f.assert(200, None);
        assert!(f.body["access_token"].is_string() && f.body["access_expires_at"].is_i64());
    }
    // POST /auth/logout → 204; the access token is blocklisted and the refresh token revoked.
    let at = access(&r.body);
    app.post_auth("/api/v1/auth/logout", &at, None)
        .await
        .assert(204, None);
    app.get_auth("/api/v1/auth/me", &at)
        .await
        .assert(401, Some("invalid_token"));
    app.refresh(&rt)
        .await
        .assert(401, Some("invalid_refresh_token"));
    // The WebSocket takes the same access token as ?token= (see websocket.rs).
}

/// Asserts that `text` (a raw JSON body) names these keys in this order.
#[track_caller]
fn assert_order(text: &str, keys: &[&str]) {
    let mut from = 0;
    for key in keys {
        let needle = format!("\"{key}\":");
        match text[from..].find(&needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{key:?} missing or out of the order {keys:?} in {text}"),
        }
    }
}

#[tokio::test]
async fn bodies_keep_the_seeds_field_order() {
    // os-engine (seed 002): login, me, logout.
    let app = spawn_with(|s| {
        s.set("dialect", "os-engine")
            .set("admin_email", "admin@example.com")
            .set("admin_password", "SecurePassword123!")
    })
    .await;
    let login = json!({"email": "admin@example.com", "password": "SecurePassword123!"});
    let r = post_json(&app, "/api/v1/auth/login", &[], login).await;
    r.assert(200, None);
    let order = [
        "accessToken",
        "refreshToken",
        "user",
        "id",
        "email",
        "createdAt",
    ];
    assert_order(&r.text, &order);
    let at = r.body["accessToken"].as_str().unwrap().to_string();
    let me = app.get_auth("/api/v1/auth/me", &at).await;
    assert_order(&me.text, &["id", "email", "createdAt"]);
    let rt = r.body["refreshToken"].as_str().unwrap().to_string();
    let refreshed = post_json(
        &app,
        "/api/v1/auth/refresh",
        &[],
        json!({ "refreshToken": rt }),
    )
    .await;
    assert_order(&refreshed.text, &["accessToken", "refreshToken"]);
    let out = post_json(
        &app,
        "/api/v1/auth/logout",
        &[("authorization", format!("Bearer {at}"))],
        json!({}),
    )
    .await;
    out.assert(200, None);
    assert_eq!(
        out.text,
        r#"{"success":true,"message":"Logged out successfully"}"#
    );
    app.stop().await;

    // stratify (seed 003): register, login, refresh.
    let app = spawn_with(|s| s.set("dialect", "stratify")).await;
    let user = json!({"email": "user@example.com", "password": "SecurePass123!"});
    let r = post_json(&app, "/api/v1/auth/register", &[], user.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let order = [
        "success",
        "data",
        "user_id",
        "email",
        "verification_required",
        "message",
    ];
    assert_order(&r.text, &order);
    verify_email(&app, "user@example.com").await;
    let r = post_json(&app, "/api/v1/auth/login", &[], user).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let order = [
        "success",
        "data",
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
    ];
    assert_order(&r.text, &order);
    let rt = r.body["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refreshed = post_json(
        &app,
        "/api/v1/auth/refresh",
        &[],
        json!({ "refresh_token": rt }),
    )
    .await;
    assert_order(
        &refreshed.text,
        &["success", "data", "access_token", "expires_in"],
    );
    app.stop().await;

    // quantum (seed 000): login, me.
    let app = spawn_with(|s| s.set("dialect", "quantum")).await;
    app.register("trader@example.com", PASSWORD)
        .await
        .assert(201, None);
    let login = json!({"username": "trader@example.com", "password": PASSWORD});
    let r = post_json(&app, "/api/v1/auth/login", &[], login).await;
    r.assert(200, None);
    assert_order(&r.text, &["access_token", "refresh_token", "token_type"]);
    let me = app.get_auth("/api/v1/auth/me", &access(&r.body)).await;
    let order = [
        "id",
        "email",
        "username",
        "full_name",
        "role",
        "is_active",
        "is_verified",
        "created_at",
        "last_login_at",
    ];
    assert_order(&me.text, &order);
    app.stop().await;

    // native (seed 001): errors are {error, code}.
    let app = spawn_app().await;
    let r = app.get("/api/v1/auth/me").await;
    r.assert(401, Some("missing_token"));
    assert_order(&r.text, &["error", "code"]);
}
