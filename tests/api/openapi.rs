//! `/openapi.json` describes every native endpoint with its error responses, and `/docs`
//! renders it without anything from outside.

use crate::helpers::*;

#[tokio::test]
async fn the_document_covers_the_native_api() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await;
    doc.assert(200, None);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    let expected = [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/logout-all"),
        ("get", "/api/v1/auth/me"),
        ("patch", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/password"),
        ("post", "/api/v1/auth/password-reset"),
        ("post", "/api/v1/auth/password-reset/confirm"),
        ("post", "/api/v1/auth/verify-email"),
        ("post", "/api/v1/auth/verify-email/resend"),
        ("get", "/api/v1/auth/sessions"),
        ("delete", "/api/v1/auth/sessions/{id}"),
        ("get", "/api/v1/auth/events"),
        ("post", "/api/v1/auth/mfa/totp/setup"),
        ("post", "/api/v1/auth/mfa/totp/enable"),
        ("post", "/api/v1/auth/mfa/totp/disable"),
        ("post", "/api/v1/auth/api-keys"),
        ("get", "/api/v1/auth/api-keys"),
        ("delete", "/api/v1/auth/api-keys/{id}"),
        ("get", "/api/v1/auth/verify"),
        ("get", "/api/v1/ws"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/api/v1/admin/users"),
        ("post", "/api/v1/admin/users"),
        ("get", "/api/v1/admin/users/{id}"),
        ("patch", "/api/v1/admin/users/{id}"),
        ("delete", "/api/v1/admin/users/{id}"),
        ("post", "/api/v1/admin/users/{id}/unlock"),
        ("delete", "/api/v1/admin/users/{id}/sessions"),
        ("get", "/api/v1/admin/audit"),
        ("post", "/api/v1/admin/signing-keys/rotate"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/api/v1/time"),
    ];
    for (method, path) in expected {
        let op = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not described"))[method];
        assert!(op.is_object(), "{method} {path} is not described");
        let errors: Vec<&String> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|s| s.starts_with('4') || s.starts_with('5'))
            .collect();
        assert!(
            !errors.is_empty(),
            "{method} {path} lists no error responses"
        );
        for status in errors {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
    }
    let err = &doc.body["components"]["schemas"]["ErrorBody"];
    assert_eq!(err["required"], serde_json::json!(["error", "code"]));
    // The documented shapes match what the server answers.
    let token = &doc.body["components"]["schemas"]["TokenBody"]["required"];
    let (_, login) = app.new_user().await;
    for field in token.as_array().unwrap() {
        assert!(
            login.get(field.as_str().unwrap()).is_some(),
            "login lacks documented {field}"
        );
    }

    let page = into_resp(app.client.get(app.url("/docs")).send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/openapi.json"));
    for external in ["src=\"http", "href=\"http", "cdn", "@import"] {
        assert!(
            !page.text.contains(external),
            "the API page loads {external}"
        );
    }
}
