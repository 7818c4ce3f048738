//! The contract's error body on everything the framework raises.

use crate::helpers::*;

#[tokio::test]
async fn framework_errors_have_the_contract_body() {
    let app = spawn_app().await;
    let c = &app.client;
    let r = into_resp(c.get(app.url("/api/v1/nothing-here")).send().await.unwrap()).await;
    r.assert(404, Some("not_found"));
    let r = into_resp(c.get(app.url("/api/v1/auth/login")).send().await.unwrap()).await;
    r.assert(405, Some("method_not_allowed"));
    let r = into_resp(
        c.post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"].is_object());
    let r = into_resp(
        c.post(app.url("/api/v1/auth/login"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(400, Some("validation_error"));
    let r = into_resp(
        c.post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(r#"{"username": 5, "password": "x"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(400, Some("validation_error"));
    // A field of the wrong type is named, in the client's terms.
    assert_eq!(
        r.body["details"]["username"],
        "invalid type: integer `5`, expected a string"
    );
    let r = into_resp(
        c.post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(400, Some("validation_error"));
    let said = r.body["details"]["body"].as_str().unwrap();
    assert!(said.ends_with("expected a JSON object"), "{said}");
    assert!(!r.body.to_string().contains("LoginRequest"), "{}", r.body);
    let big = format!(
        r#"{{"email": "a@example.com", "password": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let r = into_resp(
        c.post(app.url("/api/v1/auth/register"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(413, Some("payload_too_large"));
    let r = into_resp(c.post(app.url("/api/v1/auth/logout")).send().await.unwrap()).await;
    r.assert(401, Some("missing_token"));
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="tradeauth""#.into())
    );
    assert!(r.header("x-request-id").is_some());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn bad_pagination_input_is_a_validation_error() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    app.get_auth("/api/v1/auth/sessions?cursor=%%%", &at)
        .await
        .assert(400, Some("validation_error"));
    app.get_auth("/api/v1/auth/sessions?limit=0", &at)
        .await
        .assert(400, Some("validation_error"));
    let r = app.get_auth("/api/v1/auth/sessions?limit=abc", &at).await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["limit"].is_string(), "{}", r.body);
    app.get_auth("/api/v1/auth/sessions?limit=100000", &at)
        .await
        .assert(200, None);
}
