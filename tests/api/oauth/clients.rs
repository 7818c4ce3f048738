//! The client registry (admin API and CLI), discovery and the published keys.

use super::*;

#[tokio::test]
async fn admins_register_read_change_rekey_and_delete_clients() {
    let app = spawn_provider(|s| s).await;
    let admin = admin_token(&app).await;
    let r = app
        .post_auth(
            "/api/v1/admin/oauth-clients",
            &admin,
            Some(json!({"name": "Partner app", "client_type": "confidential", "redirect_uris": [REDIRECT_URI]})),
        )
        .await;
    r.assert(201, None);
    let id = r.body["client_id"].as_str().unwrap().to_string();
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43, "256 bits: {secret}");
    assert_eq!(r.body["max_tier"], 2, "default max_tier");
    assert_eq!(r.body["first_party"], false);
    assert_eq!(
        r.body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(r.body["id_token_signed_response_alg"], "RS256");

    // Read back: never the secret.
    let got = app
        .get_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
        .await;
    got.assert(200, None);
    assert!(got.body.get("client_secret").is_none(), "{}", got.text);
    let list = app.get_auth("/api/v1/admin/oauth-clients", &admin).await;
    list.assert(200, None);
    assert_eq!(list.body["items"][0]["client_id"], id.as_str());
    assert!(list.body["next_cursor"].is_null());

    // Change.
    let r = app
        .patch_auth(
            &format!("/api/v1/admin/oauth-clients/{id}"),
            &admin,
            json!({"name": "Partner app 2", "first_party": true, "max_tier": 3, "scopes": ["openid", "trade:read"]}),
        )
        .await;
    r.assert(200, None);
    assert_eq!(r.body["name"], "Partner app 2");
    assert_eq!(r.body["scopes"], json!(["openid", "trade:read"]));

    // The secret authenticates; after rotation the old one no longer does.
    let probe = |secret: String| {
        let (app, id) = (&app, id.clone());
        async move {
            token_request(
                app,
                (&id, &secret),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "nope"),
                    ("code_verifier", "x"),
                ],
            )
            .await
        }
    };
    assert_eq!(probe(secret.clone()).await.body["error"], "invalid_grant");
    let r = app
        .post_auth(
            &format!("/api/v1/admin/oauth-clients/{id}/secret"),
            &admin,
            None,
        )
        .await;
    r.assert(200, None);
    let fresh = r.body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, secret);
    let old = probe(secret).await;
    assert_eq!(old.status, 401);
    assert_eq!(old.body["error"], "invalid_client");
    assert!(old.body["error_description"]
        .as_str()
        .unwrap()
        .contains("secret"));
    assert_eq!(
        old.header("www-authenticate").as_deref(),
        Some("Basic realm=\"tradeauth\"")
    );
    assert_eq!(probe(fresh).await.body["error"], "invalid_grant");

    // Delete.
    let r = app
        .delete_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
        .await;
    assert_eq!(r.status, 204);
    app.get_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
        .await
        .assert(404, Some("not_found"));
    let events = app
        .get_auth("/api/v1/admin/audit?type=oauth_client.deleted", &admin)
        .await;
    assert_eq!(events.body["items"][0]["details"]["client_id"], id.as_str());
}

#[tokio::test]
async fn client_registrations_are_checked() {
    let app = spawn_provider(|s| s).await;
    let admin = admin_token(&app).await;
    let post = |body: Value| app.post_auth("/api/v1/admin/oauth-clients", &admin, Some(body));
    let r = post(json!({"redirect_uris": [REDIRECT_URI]})).await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["name"].is_string());
    assert!(r.body["details"]["client_type"].is_string());
    let r = post(json!({"name": "x", "client_type": "public", "redirect_uris": [REDIRECT_URI], "grant_types": ["client_credentials"]})).await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["grant_types"]
        .as_str()
        .unwrap()
        .contains("confidential"));
    let r = post(json!({"name": "x", "client_type": "confidential", "redirect_uris": ["https://app.example/cb#frag"]})).await;
    r.assert(400, Some("validation_error"));
    let r = post(json!({"name": "x", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "scopes": ["openid", "root"]})).await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["scopes"]
        .as_str()
        .unwrap()
        .contains("root"));
    let r = post(json!({"name": "x", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "id_token_signed_response_alg": "HS256"})).await;
    r.assert(400, Some("validation_error"));
    // A public client has no secret.
    let r = post(json!({"name": "SPA", "client_type": "public", "redirect_uris": [REDIRECT_URI]}))
        .await;
    r.assert(201, None);
    assert!(r.body.get("client_secret").is_none());
    assert_eq!(r.body["token_endpoint_auth_method"], "none");
    // Only admins.
    let (_, trader) = app.user_with_tier(3).await;
    app.post_auth(
        "/api/v1/admin/oauth-clients",
        &access(&trader),
        Some(json!({"name": "x", "client_type": "public", "redirect_uris": [REDIRECT_URI]})),
    )
    .await
    .assert(403, Some("insufficient_tier"));
}

#[tokio::test]
async fn discovery_names_one_exact_issuer_and_the_jwks_always_has_an_rs256_pair() {
    let app = spawn_provider(|s| s).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let d = app.get(path).await;
        d.assert(200, None);
        assert_eq!(d.body["issuer"], app.base.as_str(), "{path}");
        assert_eq!(
            d.body["authorization_endpoint"],
            format!("{}/oauth2/authorize", app.base)
        );
        assert_eq!(
            d.body["token_endpoint"],
            format!("{}/oauth2/token", app.base)
        );
        assert_eq!(
            d.body["jwks_uri"],
            format!("{}/.well-known/jwks.json", app.base)
        );
        assert_eq!(d.body["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d.body["response_types_supported"], json!(["code"]));
        assert_eq!(
            d.body["authorization_response_iss_parameter_supported"],
            true
        );
        assert_eq!(d.body["request_parameter_supported"], false);
        assert_eq!(
            d.body["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256", "EdDSA"])
        );
    }
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(
        algs.iter().filter(|a| **a == "RS256").count(),
        2,
        "an active and a standby RS256 key: {jwks}"
    );
    assert_eq!(algs.iter().filter(|a| **a == "EdDSA").count(), 2);
    assert_eq!(algs.iter().filter(|a| **a == "ES256").count(), 2);

    // A configured issuer is used exactly; with RS256 access tokens, one pair serves both.
    let app = spawn_with(|s| {
        s.set("oidc_issuer", "https://id.example.com/tenant")
            .set("jwt_alg", "RS256")
    })
    .await;
    let d = app.get("/.well-known/openid-configuration").await;
    assert_eq!(d.body["issuer"], "https://id.example.com/tenant");
    assert_eq!(
        d.body["userinfo_endpoint"],
        "https://id.example.com/tenant/oauth2/userinfo"
    );
    assert_eq!(
        d.body["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    let jwks = app.get("/.well-known/jwks.json").await.body;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        6,
        "one pair per algorithm: {jwks}"
    );
}

#[tokio::test]
async fn the_cli_creates_lists_and_deletes_clients() {
    use std::process::Command;
    let app = spawn_provider(|s| s).await;
    let bin = env!("CARGO_BIN_EXE_tradeauth");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("TRADEAUTH_DATABASE_URL", &app.db_url)
            .env("TRADEAUTH_LOG_FORMAT", "json")
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created: Value = serde_json::from_str(&run(&[
        "client",
        "create",
        "--name",
        "Grafana",
        "--redirect-uri",
        "https://grafana.example/login/generic_oauth",
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "email",
        "--max-tier",
        "1",
    ]))
    .unwrap();
    let id = created["client_id"].as_str().unwrap();
    assert!(created["client_secret"].as_str().unwrap().len() >= 43);
    assert_eq!(created["first_party"], true);
    assert_eq!(created["scopes"], json!(["openid", "email"]));
    let listed = run(&["client", "list"]);
    assert!(listed.contains(id), "{listed}");
    assert!(!listed.contains("\"client_secret\""), "{listed}");
    // The server sees it at once (same database).
    let admin = admin_token(&app).await;
    app.get_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
        .await
        .assert(200, None);
    run(&["client", "delete", id]);
    app.get_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
        .await
        .assert(404, Some("not_found"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_client_and_grant_endpoints() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json").await.body;
    for (method, path) in [
        ("post", "/api/v1/admin/oauth-clients"),
        ("get", "/api/v1/admin/oauth-clients"),
        ("get", "/api/v1/admin/oauth-clients/{client_id}"),
        ("patch", "/api/v1/admin/oauth-clients/{client_id}"),
        ("delete", "/api/v1/admin/oauth-clients/{client_id}"),
        ("post", "/api/v1/admin/oauth-clients/{client_id}/secret"),
        ("get", "/api/v1/auth/oauth-grants"),
        ("delete", "/api/v1/auth/oauth-grants/{client_id}"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not described");
        assert!(op["responses"]["401"].is_object(), "{method} {path}: 401");
    }
    let schema = &doc["components"]["schemas"]["ClientRequest"]["properties"];
    for field in [
        "name",
        "redirect_uris",
        "client_type",
        "max_tier",
        "first_party",
    ] {
        assert!(schema[field].is_object(), "ClientRequest.{field}");
    }
}
