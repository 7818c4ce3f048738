//! The authenticated WebSocket: checked before the upgrade, welcome, ping/pong, reauth,
//! 4001 at expiry, 4003 on revocation, pushed events, the per-user limit, 1001 at shutdown.

use crate::helpers::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(app: &TestApp, token: &str) -> Socket {
    let url = format!(
        "{}/api/v1/ws?token={token}",
        app.base.replace("http://", "ws://")
    );
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    socket
}

/// The next JSON message, or the close code.
async fn next(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005))
            }
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

async fn send(socket: &mut Socket, v: Value) {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .unwrap();
}

/// Reads until a close frame, skipping events; returns the code and when it came.
async fn closed(socket: &mut Socket) -> (u16, Instant) {
    loop {
        if let Err(code) = next(socket).await {
            return (code, Instant::now());
        }
    }
}

#[tokio::test]
async fn the_token_is_checked_before_the_upgrade() {
    let app = spawn_app().await;
    for url in [
        format!("{}/api/v1/ws", app.base),
        format!("{}/api/v1/ws?token=garbage", app.base),
    ] {
        let ws_url = url.replace("http://", "ws://");
        match tokio_tungstenite::connect_async(ws_url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status(), 401);
                let body: Value = serde_json::from_slice(res.body().as_ref().unwrap()).unwrap();
                assert!(
                    body["code"] == "missing_token" || body["code"] == "invalid_token",
                    "{body}"
                );
            }
            other => panic!("expected a 401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn welcome_ping_events_and_logout_closes_with_4003() {
    let app = spawn_app().await;
    let (email, login) = app.new_user().await;
    let mut ws = open(&app, &access(&login)).await;
    let welcome = next(&mut ws).await.unwrap();
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["user_id"], login["user"]["id"]);
    assert_eq!(welcome["permission_tier"], 2);
    assert_eq!(welcome["expires_at"], login["access_expires_at"]);
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "pong"}));
    send(&mut ws, json!({"type": "nonsense"})).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "error");

    // A new login elsewhere is pushed as a security event.
    app.login(&email, PASSWORD).await.assert(200, None);
    let ev = next(&mut ws).await.unwrap();
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["event"]["type"], "login.succeeded");

    let t0 = Instant::now();
    app.post_auth("/api/v1/auth/logout", &access(&login), None)
        .await
        .assert(204, None);
    let (code, at) = closed(&mut ws).await;
    assert_eq!(code, 4003);
    assert!(
        at - t0 < Duration::from_secs(1),
        "closed {:?} after logout",
        at - t0
    );
}

#[tokio::test]
async fn session_deletion_and_disablement_close_with_4003() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let (email, a) = app.new_user().await;
    let b = app.login(&email, PASSWORD).await.body;
    let mut ws = open(&app, &access(&a)).await;
    next(&mut ws).await.unwrap();
    let sessions = app
        .get_auth("/api/v1/auth/sessions", &access(&b))
        .await
        .body;
    let sid_a = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.delete_auth(&format!("/api/v1/auth/sessions/{sid_a}"), &access(&b))
        .await
        .assert(204, None);
    assert_eq!(closed(&mut ws).await.0, 4003);

    let mut ws = open(&app, &access(&b)).await;
    next(&mut ws).await.unwrap();
    let id = a["user"]["id"].as_str().unwrap();
    let t0 = Instant::now();
    app.patch_auth(
        &format!("/api/v1/admin/users/{id}"),
        &access(&admin),
        json!({"is_active": false}),
    )
    .await
    .assert(200, None);
    let (code, at) = closed(&mut ws).await;
    assert_eq!(code, 4003);
    assert!(at - t0 < Duration::from_secs(1));
}

#[tokio::test]
async fn expiry_closes_with_4001_and_reauth_extends_the_connection() {
    // 4 s: long enough that a loaded machine still reauths in time, short enough to wait.
    let app = spawn_with(|s| s.set("access_ttl", "4s")).await;
    let (_, login) = app.new_user().await;
    // Another user, made before any socket opens (a login may be slow on a busy machine).
    let (_, stranger) = app.new_user().await;

    // Without reauth: 4001 at the token's expiry.
    let mut ws = open(&app, &access(&login)).await;
    let t0 = Instant::now();
    next(&mut ws).await.unwrap();
    let (code, at) = closed(&mut ws).await;
    assert_eq!(code, 4001);
    assert!(
        at - t0 <= Duration::from_millis(5100),
        "closed after {:?}",
        at - t0
    );

    // With reauth: the connection outlives the first token.
    let fresh = app.refresh(&refresh_token(&login)).await.body;
    let mut ws = open(&app, &access(&fresh)).await;
    let first_exp = next(&mut ws).await.unwrap()["expires_at"].as_i64().unwrap();
    // Another user's token, alive (a refresh is quick): refused as not this connection's.
    let stranger = app.refresh(&refresh_token(&stranger)).await.body;
    send(
        &mut ws,
        json!({"type": "reauth", "token": access(&stranger)}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"type": "error", "code": "invalid_token"})
    );
    // Two seconds later: the new token expires two seconds after the first.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let newer = app.refresh(&refresh_token(&fresh)).await.body;
    send(&mut ws, json!({"type": "reauth", "token": access(&newer)})).await;
    let r = next(&mut ws).await.unwrap();
    assert_eq!(r["type"], "reauthed");
    assert!(r["expires_at"].as_i64().unwrap() > first_exp);
    // Past the first token's expiry the socket still answers.
    while chrono::Utc::now().timestamp() <= first_exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await.unwrap(), json!({"type": "pong"}));
    assert_eq!(closed(&mut ws).await.0, 4001);
}

#[tokio::test]
async fn connections_per_user_are_limited() {
    // The cap is a rate limit: on here (the test servers run with limits off).
    let app = spawn_with(|s| s.set("ws_max_per_user", "2").set("rate_limit", "on")).await;
    let (_, login) = app.new_user().await;
    let _a = open(&app, &access(&login)).await;
    let mut b = open(&app, &access(&login)).await;
    let url = format!(
        "{}/api/v1/ws?token={}",
        app.base.replace("http://", "ws://"),
        access(&login)
    );
    match tokio_tungstenite::connect_async(url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("expected 429, got {other:?}"),
    }
    // Closing one frees its slot.
    b.close(None).await.unwrap();
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio_tungstenite::connect_async(url)
        .await
        .expect("a slot is free again");
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let mut ws = open(&app, &access(&login)).await;
    next(&mut ws).await.unwrap();
    let stopping = tokio::spawn(app.stop());
    assert_eq!(closed(&mut ws).await.0, 1001);
    drop(ws);
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the server stops")
        .unwrap();
}

#[tokio::test]
async fn the_socket_closes_at_exp_and_reauth_refuses_a_token_in_its_exp_second() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let sleep_until = |second: i64, ms: i64| {
        let left = second * 1000 + ms - chrono::Utc::now().timestamp_millis();
        tokio::time::sleep(Duration::from_millis(left.max(0) as u64))
    };
    // Reauth with a token whose `exp` is the current second: expired.
    let mut ws = open(&app, &access(&login)).await;
    next(&mut ws).await.unwrap();
    let t = chrono::Utc::now().timestamp() + 1;
    sleep_until(t, 20).await;
    let token = crate::tokens::token_until(&app, &login, t);
    send(&mut ws, json!({"type": "reauth", "token": token})).await;
    assert_eq!(
        next(&mut ws).await.unwrap(),
        json!({"type": "error", "code": "token_expired"})
    );

    // A socket opened half-way through a second closes at its token's `exp`, not when
    // the next whole second has elapsed after it.
    let t = chrono::Utc::now().timestamp() + 1;
    sleep_until(t, 500).await;
    let mut ws = open(&app, &crate::tokens::token_until(&app, &login, t + 2)).await;
    assert_eq!(next(&mut ws).await.unwrap()["expires_at"], t + 2);
    let (code, _) = closed(&mut ws).await;
    let at = chrono::Utc::now().timestamp_millis();
    assert_eq!(code, 4001);
    assert!(
        at >= (t + 2) * 1000,
        "closed {} ms early",
        (t + 2) * 1000 - at
    );
    assert!(
        at < (t + 2) * 1000 + 400,
        "closed {} ms late",
        at - (t + 2) * 1000
    );
}
