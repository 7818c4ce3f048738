//! `/metrics` is scraped and its series move when the events happen.

use crate::helpers::*;

/// The value of the series `name` whose labels contain every `label="value"` given.
async fn value(app: &TestApp, name: &str, labels: &[&str]) -> f64 {
    let text = app.get("/metrics").await.text;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("tradeauth_{name}")))
        .filter(|l| {
            let series = l.split_whitespace().next().unwrap_or_default();
            series == format!("tradeauth_{name}")
                || series.starts_with(&format!("tradeauth_{name}{{"))
        })
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_move_with_events() {
    let app = spawn_with(|s| {
        s.set("lockout_threshold", "2")
            .set("refresh_reuse_grace", "0s")
    })
    .await;
    let r = app.get("/metrics").await;
    r.assert(200, None);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    // A fresh instance already shows the login series, at 0.
    for outcome in ["succeeded", "invalid_credentials", "account_locked"] {
        assert!(
            r.text.contains(&format!(
                "tradeauth_logins_total{{outcome=\"{outcome}\"}} 0"
            )),
            "no {outcome} series on a fresh scrape:\n{}",
            r.text
        );
    }
    let before_ok = value(&app, "logins_total", &[r#"outcome="succeeded""#]).await;
    assert_eq!(before_ok, 0.0);
    let (email, login) = app.new_user().await;
    assert_eq!(
        value(&app, "logins_total", &[r#"outcome="succeeded""#]).await,
        before_ok + 1.0
    );
    assert_eq!(value(&app, "active_sessions", &[]).await, 1.0);
    let text = app.get("/metrics").await.text;
    for series in [
        "http_requests_total",
        "http_request_duration_seconds",
        "active_sessions",
        "password_hash_queue_depth",
        "revocation_propagation_lag_seconds",
        "lockouts_total",
        "refresh_reuse_detected_total",
    ] {
        assert!(
            text.contains(&format!("tradeauth_{series}")),
            "missing {series}:\n{}",
            text
        );
    }

    let route = r#"route="/api/v1/auth/login""#;
    let logins_200 = value(&app, "http_requests_total", &[route, r#"status="200""#]).await;
    assert!(logins_200 >= 1.0);
    assert!(
        value(
            &app,
            "http_request_duration_seconds_count",
            &[route, r#"status="200""#]
        )
        .await
            >= 1.0,
        "latency by route and status"
    );

    app.login(&email, "Wrong-pass-123").await.assert(401, None);
    assert_eq!(
        value(&app, "logins_total", &[r#"outcome="invalid_credentials""#]).await,
        1.0
    );
    app.login(&email, "Wrong-pass-123").await.assert(401, None);
    assert_eq!(value(&app, "lockouts_total", &[]).await, 1.0);
    app.login(&email, PASSWORD).await.assert(423, None);
    assert_eq!(
        value(&app, "logins_total", &[r#"outcome="account_locked""#]).await,
        1.0
    );

    let t0 = refresh_token(&login);
    app.refresh(&t0).await.assert(200, None);
    app.refresh(&t0)
        .await
        .assert(401, Some("refresh_token_reused"));
    assert_eq!(value(&app, "refresh_reuse_detected_total", &[]).await, 1.0);
    assert_eq!(value(&app, "active_sessions", &[]).await, 0.0);

    // A revocation written by another writer is applied here, and its lag measured.
    let other = tradeauth::app::build_service(
        tradeauth::config::Sources::default()
            .set("database_url", app.db_url.clone())
            .build(false)
            .unwrap(),
        false,
    )
    .await
    .unwrap();
    let (email2, _) = app.new_user().await;
    let id = other
        .store
        .user_by_login(&email2)
        .await
        .unwrap()
        .unwrap()
        .id;
    let patch = tradeauth::service::admin::AdminPatch {
        is_active: Some(false),
        ..Default::default()
    };
    other.admin_patch_user(None, id, patch, None).await.unwrap();
    let start = std::time::Instant::now();
    while value(&app, "revocation_propagation_lag_seconds_count", &[]).await < 1.0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "the revocation was not applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Unknown routes share one label instead of one series per path.
    app.get("/no/such/path/123").await;
    assert!(
        value(
            &app,
            "http_requests_total",
            &[r#"route="unmatched""#, r#"status="404""#]
        )
        .await
            >= 1.0
    );
}
