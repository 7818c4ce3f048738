//! Token exchange (RFC 8693), down-scoping only: an access token or an API key becomes a
//! narrower, shorter-lived access token with `act` naming the client, through panva's
//! `openid-client` (`genericGrantRequest`) and plain requests; every widening is refused.

use super::flow::jwt_payload;
use super::relying_parties::{oidc_dir, require_node};
use super::*;

pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const API_KEY: &str = "urn:tradeauth:params:token-type:api-key";
const RESOURCE: &str = "https://orders.example/api";

/// A confidential client allowed to exchange tokens, up to `max_tier`.
async fn exchanger(app: &TestApp, max_tier: i64) -> (String, String) {
    let c = register_client(
        app,
        json!({"name": "Risk gateway", "client_type": "confidential", "grant_types": [EXCHANGE], "max_tier": max_tier}),
    )
    .await;
    (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

/// openid-client's `genericGrantRequest`: the token response, or `{"error"}`.
async fn node_exchange(
    app: &TestApp,
    client: &(String, String),
    subject: &str,
    subject_type: &str,
    extra: &[(&str, &str)],
) -> Value {
    let mut env: Vec<(String, String)> = vec![
        ("TRADEAUTH_URL".into(), app.base.clone()),
        ("CLIENT_ID".into(), client.0.clone()),
        ("CLIENT_SECRET".into(), client.1.clone()),
        ("SUBJECT_TOKEN".into(), subject.to_string()),
        ("SUBJECT_TOKEN_TYPE".into(), subject_type.to_string()),
    ];
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new("node");
        cmd.arg("token_exchange.mjs").current_dir(oidc_dir());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// A token exchange by plain form post.
async fn exchange_form(app: &TestApp, client: &(String, String), form: &[(&str, &str)]) -> Resp {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    token_request(app, (&client.0, &client.1), &all).await
}

async fn introspect(app: &TestApp, client: &(String, String), token: &str) -> Value {
    let r = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    into_resp(r).await.body
}

/// Waits up to 2 s for `token` to stop working at `/api/v1/auth/me`.
async fn dies(app: &TestApp, token: &str) {
    for _ in 0..20 {
        if app.get_auth("/api/v1/auth/me", token).await.status == 401 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the exchanged token still works");
}

#[tokio::test]
async fn openid_client_exchanges_an_access_token_for_a_narrower_one() {
    if !require_node() {
        return;
    }
    let app = spawn_provider(|s| s).await;
    let (_, login) = app.user_with_tier(2).await;
    let subject = access(&login);
    let subject_claims = jwt_payload(&subject);
    let client = exchanger(&app, 3).await;

    let t = node_exchange(
        &app,
        &client,
        &subject,
        AT,
        &[("SCOPE", "trade:read"), ("RESOURCE", RESOURCE)],
    )
    .await;
    assert_eq!(t["issued_token_type"], AT, "{t}");
    assert_eq!(t["token_type"].as_str().unwrap().to_lowercase(), "bearer");
    assert_eq!(t["scope"], "trade:read");
    assert!(t.get("refresh_token").is_none(), "{t}");
    let token = t["access_token"].as_str().unwrap().to_string();
    let c = jwt_payload(&token);
    assert_eq!(c["aud"], RESOURCE);
    assert_eq!(c["act"], json!({"sub": client.0}));
    assert_eq!(c["sub"], subject_claims["sub"]);
    assert_eq!(c["sid"], subject_claims["sid"]);
    assert_eq!(c["client_id"], client.0);
    assert_eq!(c["tier"], 1, "trade:read is tier 1");
    assert!(c["exp"].as_i64().unwrap() <= subject_claims["exp"].as_i64().unwrap());
    assert!(t["expires_in"].as_i64().unwrap() <= 900);

    // Made for another audience: tradeauth's own endpoints refuse it; introspection
    // describes it to the resource server.
    app.get_auth("/api/v1/auth/me", &token)
        .await
        .assert(401, None);
    let i = introspect(&app, &client, &token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["aud"], RESOURCE);
    assert_eq!(i["act"]["sub"], client.0);
    assert_eq!(i["scope"], "trade:read");

    // Without a resource it is for tradeauth's own audience, and works there.
    let own = exchange_form(
        &app,
        &client,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("scope", "trade:read"),
        ],
    )
    .await;
    own.assert(200, None);
    assert_eq!(own.header("cache-control").as_deref(), Some("no-store"));
    let own_token = access(&own.body);
    let me = app.get_auth("/api/v1/auth/me", &own_token).await;
    me.assert(200, None);
    assert_eq!(me.body["id"], subject_claims["sub"]);

    // The exchanged token of a token exchanges again, only narrower, and nests `act`.
    let again = exchange_form(
        &app,
        &client,
        &[("subject_token", &own_token), ("subject_token_type", AT)],
    )
    .await;
    again.assert(200, None);
    assert_eq!(again.body["scope"], "trade:read");
    let nested = jwt_payload(&access(&again.body));
    assert_eq!(
        nested["act"],
        json!({"sub": client.0, "act": {"sub": client.0}})
    );
    let wider = exchange_form(
        &app,
        &client,
        &[
            ("subject_token", &own_token),
            ("subject_token_type", AT),
            ("scope", "trade:write"),
        ],
    )
    .await;
    wider.assert(400, None);
    assert_eq!(wider.body["error"], "invalid_scope", "{}", wider.text);

    // Signing the subject out ends what was exchanged from it.
    app.post_auth("/api/v1/auth/logout", &subject, None).await;
    dies(&app, &own_token).await;
    assert_eq!(introspect(&app, &client, &token).await["active"], false);
    let late = exchange_form(
        &app,
        &client,
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    late.assert(400, None);
    assert_eq!(late.body["error"], "invalid_request");
    assert!(late.body["error_description"]
        .as_str()
        .unwrap()
        .contains("revoked"));

    let events = app
        .get_auth(
            "/api/v1/admin/audit?type=oauth.token_exchanged",
            &admin_token(&app).await,
        )
        .await;
    assert_eq!(
        events.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        events.text
    );
}

#[tokio::test]
async fn an_api_key_exchanges_for_a_token_that_dies_with_the_key() {
    if !require_node() {
        return;
    }
    let app = spawn_provider(|s| s).await;
    let (_, login) = app.user_with_tier(2).await;
    let at = access(&login);
    let key = app
        .post_auth(
            "/api/v1/auth/api-keys",
            &at,
            Some(json!({"name": "bot", "permission_tier": 2})),
        )
        .await;
    key.assert(201, None);
    let secret = key.body["key"].as_str().unwrap().to_string();
    let key_id = key.body["id"].as_str().unwrap().to_string();
    let client = exchanger(&app, 3).await;

    let t = node_exchange(&app, &client, &secret, API_KEY, &[("SCOPE", "trade:write")]).await;
    assert_eq!(t["issued_token_type"], AT, "{t}");
    assert_eq!(t["scope"], "trade:write");
    let token = t["access_token"].as_str().unwrap().to_string();
    let c = jwt_payload(&token);
    assert_eq!(c["sid"], key_id, "the key's id is the token's sid");
    assert_eq!(c["tier"], 2);
    assert_eq!(c["sub"], login["user"]["id"]);
    assert_eq!(c["act"]["sub"], client.0);
    app.get_auth("/api/v1/auth/me", &token)
        .await
        .assert(200, None);

    // Wider than the key: refused, through the library too.
    let wide = node_exchange(&app, &client, &secret, API_KEY, &[("SCOPE", "trade:power")]).await;
    assert_eq!(wide["error"], "invalid_scope", "{wide}");

    app.delete_auth(&format!("/api/v1/auth/api-keys/{key_id}"), &at)
        .await
        .assert(204, None);
    dies(&app, &token).await;
    let after = exchange_form(
        &app,
        &client,
        &[("subject_token", &secret), ("subject_token_type", API_KEY)],
    )
    .await;
    assert_eq!(after.body["error"], "invalid_request", "{}", after.text);

    // Disabling the owner ends what was exchanged from their keys, as their sessions.
    let key = app
        .post_auth("/api/v1/auth/api-keys", &at, Some(json!({"name": "bot 2"})))
        .await;
    let secret = key.body["key"].as_str().unwrap().to_string();
    let r = exchange_form(
        &app,
        &client,
        &[("subject_token", &secret), ("subject_token_type", API_KEY)],
    )
    .await;
    r.assert(200, None);
    let token = access(&r.body);
    app.get_auth("/api/v1/auth/me", &token)
        .await
        .assert(200, None);
    let user_id = login["user"]["id"].as_str().unwrap();
    app.patch_auth(
        &format!("/api/v1/admin/users/{user_id}"),
        &admin_token(&app).await,
        json!({"is_active": false}),
    )
    .await
    .assert(200, None);
    dies(&app, &token).await;
}

#[tokio::test]
async fn every_widening_is_refused() {
    let app = spawn_provider(|s| s).await;
    let (_, login) = app.user_with_tier(2).await;
    let subject = access(&login);
    let client = exchanger(&app, 3).await;
    let with = |extra: Vec<(&'static str, &'static str)>| {
        let mut f: Vec<(&str, String)> = vec![
            ("subject_token", subject.clone()),
            ("subject_token_type", AT.to_string()),
        ];
        for (k, v) in extra {
            f.retain(|(x, _)| *x != k);
            f.push((k, v.to_string()));
        }
        f
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("scope", "trade:power")], "invalid_scope"),
        (vec![("scope", "admin")], "invalid_scope"),
        (vec![("scope", "trade:read bogus")], "invalid_scope"),
        (vec![("scope", "offline_access")], "invalid_scope"),
        (
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
            "invalid_request",
        ),
        (
            vec![(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )],
            "invalid_request",
        ),
        (vec![("subject_token", "not-a-token")], "invalid_request"),
        (vec![("actor_token", "x")], "invalid_request"),
        (
            vec![("resource", "http://orders.example/api")],
            "invalid_target",
        ),
        (vec![("resource", "orders")], "invalid_target"),
        (
            vec![("resource", "https://orders.example/#x")],
            "invalid_target",
        ),
        (vec![("audience", "some-other-service")], "invalid_target"),
    ];
    for (extra, error) in cases {
        let form = with(extra.clone());
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = exchange_form(&app, &client, &form).await;
        assert_eq!(r.status, 400, "{extra:?}: {}", r.text);
        assert_eq!(r.body["error"], error, "{extra:?}: {}", r.text);
        assert!(
            !r.body["error_description"].as_str().unwrap().is_empty(),
            "{extra:?}"
        );
    }

    // A client's max_tier caps the tier whatever the subject holds.
    let low = exchanger(&app, 1).await;
    let r = exchange_form(
        &app,
        &low,
        &[
            ("subject_token", &subject),
            ("subject_token_type", AT),
            ("scope", "trade:write"),
        ],
    )
    .await;
    r.assert(200, None);
    assert_eq!(jwt_payload(&access(&r.body))["tier"], 1);

    // Only clients registered for it, and only confidential ones.
    let (id, secret) = confidential_client(&app).await;
    let r = exchange_form(
        &app,
        &(id, secret),
        &[("subject_token", &subject), ("subject_token_type", AT)],
    )
    .await;
    assert_eq!(r.body["error"], "unauthorized_client", "{}", r.text);
    let admin = admin_token(&app).await;
    let public = app
        .post_auth(
            "/api/v1/admin/oauth-clients",
            &admin,
            Some(json!({"name": "CLI", "client_type": "public", "grant_types": [EXCHANGE]})),
        )
        .await;
    public.assert(400, Some("validation_error"));
    assert!(public.text.contains("confidential"), "{}", public.text);

    let doc = app.get("/.well-known/openid-configuration").await.body;
    assert!(doc["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(EXCHANGE)));
}
