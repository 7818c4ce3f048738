//! DPoP with a user's tokens, driven from Rust: a code exchanged with a proof, the bound
//! token at `/api/v1/auth/me` and on the WebSocket (refused as a bearer token and in the
//! query, accepted with `Authorization: DPoP` and a proof for the handshake). And the
//! finance-grade fields in the admin console's client form.

use super::fapi::DpopKey;
use super::*;
use crate::admin_pages;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A DPoP-bound token for `email` through a confidential client: the code flow, then the
/// exchange with a proof (after the nonce dance).
async fn bound_token(app: &TestApp, email: &str, key: &DpopKey) -> Value {
    let (id, secret) = confidential_client(app).await;
    let mut agent = Agent::new(app);
    let (code, verifier) = code_for(&mut agent, &id, "openid offline_access", email).await;
    let token_url = format!("{}/oauth2/token", app.base);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier.as_str()),
    ];
    let send = |proof: String| {
        let req = app
            .client
            .post(&token_url)
            .basic_auth(&id, Some(&secret))
            .header("dpop", proof)
            .form(&form);
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let r = send(key.proof("POST", &token_url, None, None)).await;
    assert_eq!(r.body["error"], "use_dpop_nonce", "{}", r.text);
    let nonce = r.header("dpop-nonce").unwrap();
    let r = send(key.proof("POST", &token_url, None, Some(&nonce))).await;
    r.assert(200, None);
    assert_eq!(r.body["token_type"], "DPoP");
    r.body
}

#[tokio::test]
async fn a_bound_user_token_needs_its_proof_on_the_api_and_the_websocket() {
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let key = DpopKey::new();
    let tokens = bound_token(&app, &email, &key).await;
    let at = tokens["access_token"].as_str().unwrap();

    let me_url = format!("{}/api/v1/auth/me", app.base);
    let r = app.get_auth("/api/v1/auth/me", at).await;
    r.assert(401, Some("invalid_dpop_proof"));
    let with_proof = |proof: String| {
        let req = app
            .client
            .get(&me_url)
            .header("authorization", format!("DPoP {at}"))
            .header("dpop", proof);
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let r = with_proof(key.proof("GET", &me_url, Some(at), None)).await;
    r.assert(200, None);
    assert_eq!(r.body["id"], user_id.as_str());
    // A proof for another URL, or made before the last minute, is refused.
    let elsewhere = format!("{}/api/v1/auth/sessions", app.base);
    with_proof(key.proof("GET", &elsewhere, Some(at), None))
        .await
        .assert(401, Some("invalid_dpop_proof"));
    let stale = chrono::Utc::now().timestamp() - 120;
    let r = with_proof(key.proof_at(stale, "GET", &me_url, Some(at), None)).await;
    r.assert(401, Some("invalid_dpop_proof"));
    assert!(
        r.body["error"].as_str().unwrap().contains("iat"),
        "{}",
        r.text
    );

    // The WebSocket: not as a query token, nor as a bearer header...
    let ws = format!("{}/api/v1/ws", app.base.replace("http://", "ws://"));
    for req in [format!("{ws}?token={at}").into_client_request().unwrap(), {
        let mut r = ws.clone().into_client_request().unwrap();
        r.headers_mut()
            .insert("authorization", format!("Bearer {at}").parse().unwrap());
        r
    }] {
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status(), 401);
                let body: Value = serde_json::from_slice(res.body().as_ref().unwrap()).unwrap();
                assert_eq!(body["code"], "invalid_dpop_proof");
            }
            other => panic!("expected a 401, got {other:?}"),
        }
    }
    // ... but with its proof for GET of the socket's URL.
    let mut req = ws.clone().into_client_request().unwrap();
    let htu = format!("{}/api/v1/ws", app.base);
    req.headers_mut()
        .insert("authorization", format!("DPoP {at}").parse().unwrap());
    req.headers_mut().insert(
        "dpop",
        key.proof("GET", &htu, Some(at), None).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let msg: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(msg["type"], "welcome", "{msg}");

    // Every proof was counted: the nonce asked for, the exchange, /me and the socket
    // accepted, the proofs for another URL and from two minutes ago refused.
    let metrics = app.get("/metrics").await.text;
    for (outcome, n) in [("use_nonce", 1), ("accepted", 3), ("invalid", 2)] {
        let line = format!("oauth_proofs_total{{kind=\"dpop\",outcome=\"{outcome}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains("oauth_proofs_total{kind=\"client_assertion\",outcome=\"accepted\"} 0")
    );
}

#[tokio::test]
async fn the_console_form_sets_the_finance_grade_fields() {
    let app = spawn_app().await;
    let (email, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (jar, csrf) = admin_pages::sign_in(&app, &email).await;
    let page = admin_pages::get(&app, &jar, "/admin/clients").await;
    assert!(page.html.contains("name=\"token_endpoint_auth_method\""));
    assert!(page.html.contains("name=\"dpop_bound_access_tokens\""));
    let jwks = json!({"keys": [DpopKey::new().jwk]}).to_string();
    let made = admin_pages::post(
        &app,
        &jar,
        "/admin/clients",
        &[
            ("csrf_token", &csrf),
            ("name", "Console FAPI app"),
            ("client_type", "confidential"),
            ("redirect_uris", "https://fapi.example/cb"),
            ("grant_types", "authorization_code"),
            ("scopes", "openid"),
            ("max_tier", "2"),
            ("token_endpoint_auth_method", "private_key_jwt"),
            ("jwks", &jwks),
            ("jwks_uri", ""),
            ("require_pushed_authorization_requests", "on"),
            ("dpop_bound_access_tokens", "on"),
        ],
    )
    .await;
    // No secret to show this once: straight to the client's page.
    assert_eq!(made.status, 303, "{}", made.html);
    assert!(made.location.as_deref().unwrap().ends_with("?done=created"));
    let list = app.get_auth("/api/v1/admin/oauth-clients", &admin_at).await;
    let c = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Console FAPI app")
        .unwrap()
        .clone();
    assert_eq!(c["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(c["require_pushed_authorization_requests"], true);
    assert_eq!(c["dpop_bound_access_tokens"], true);
    assert_eq!(c["jwks"]["keys"][0]["kty"], "EC");
    // The edit page shows them as saved.
    let id = c["client_id"].as_str().unwrap();
    let edit = admin_pages::get(&app, &jar, &format!("/admin/clients/{id}")).await;
    assert!(
        edit.html
            .contains("<option value=\"private_key_jwt\" selected>"),
        "{}",
        edit.html
    );
    assert!(edit
        .html
        .contains("id=\"dpop_bound\" name=\"dpop_bound_access_tokens\" type=\"checkbox\" checked"));
    // A JWK set that is not JSON is refused with the form kept.
    let bad = admin_pages::post(
        &app,
        &jar,
        "/admin/clients",
        &[
            ("csrf_token", &csrf),
            ("name", "Broken keys"),
            ("client_type", "confidential"),
            ("redirect_uris", "https://fapi.example/cb"),
            ("grant_types", "authorization_code"),
            ("scopes", "openid"),
            ("max_tier", "2"),
            ("token_endpoint_auth_method", "private_key_jwt"),
            ("jwks", "{not json"),
        ],
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.html);
    assert!(
        bad.html.contains("jwks must be a JSON JWK set"),
        "{}",
        bad.html
    );
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_needs_a_proof_by_that_key() {
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let (bound, other) = (DpopKey::new(), DpopKey::new());
    let token_url = format!("{}/oauth2/token", app.base);
    let mut agent = Agent::new(&app);
    let mut exchange_with = async |key: &DpopKey| {
        let (verifier, challenge) = pkce();
        let extra = format!("&dpop_jkt={}", bound.jkt());
        let mut page = agent
            .open(&authorize_url(&id, "openid", &challenge, &extra))
            .await;
        if page.location.is_none() && page.text.contains("id=\"login-form\"") {
            page = agent.sign_in(page, &email).await;
        }
        if page.location.is_none() && page.text.contains("/oauth2/consent") {
            page = agent.consent(&page, true).await;
        }
        let code = query_of(&page.location.expect("a code"))["code"].clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let mut nonce = None;
        loop {
            let proof = key.proof("POST", &token_url, None, nonce.as_deref());
            let r = app
                .client
                .post(&token_url)
                .basic_auth(&id, Some(&secret))
                .header("dpop", proof)
                .form(&form)
                .send()
                .await
                .unwrap();
            let r = into_resp(r).await;
            if r.body["error"] == "use_dpop_nonce" && nonce.is_none() {
                nonce = r.header("dpop-nonce");
                continue;
            }
            return r;
        }
    };
    let r = exchange_with(&other).await;
    r.assert(400, None);
    assert_eq!(r.body["error"], "invalid_dpop_proof");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("dpop_jkt"));
    let r = exchange_with(&bound).await;
    r.assert(200, None);
    assert_eq!(r.body["token_type"], "DPoP");
    // The audit trail says which key the tokens went to.
    let audit = app
        .get_auth("/api/v1/admin/audit", &admin_token(&app).await)
        .await;
    let issued: Vec<&Value> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "oauth.token_issued")
        .collect();
    assert_eq!(issued.len(), 1, "{}", audit.text);
    assert_eq!(issued[0]["details"]["dpop_jkt"], bound.jkt());
    // A malformed dpop_jkt is refused at the authorization request.
    let (_, challenge) = pkce();
    let page = agent
        .open(&authorize_url(&id, "openid", &challenge, "&dpop_jkt=short"))
        .await;
    assert_eq!(
        query_of(&page.location.unwrap())["error"],
        "invalid_request"
    );
}
