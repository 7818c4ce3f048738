//! Finance-grade OAuth (API.md "Beyond the baseline"): the new client fields through the
//! admin API and discovery, pushed authorization requests (RFC 9126) and their refusals,
//! and DPoP (RFC 9449) across two instances — a nonce one instance gave is good on the
//! other, a proof used on one is refused on the other. The end-to-end run of a FAPI
//! 2.0-style client by openid-client is in `relying_parties`.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use std::sync::Arc;

/// A DPoP key (ES256) that makes proofs.
pub struct DpopKey {
    key: p256::ecdsa::SigningKey,
    pub jwk: Value,
}

impl DpopKey {
    pub fn new() -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        let point = key.verifying_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": B64.encode(point.x().unwrap()),
            "y": B64.encode(point.y().unwrap()),
        });
        Self { key, jwk }
    }

    /// The RFC 7638 thumbprint.
    pub fn jkt(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        use sha2::Digest;
        B64.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// A proof for `htm` `htu`, with the access token's hash and a nonce when given.
    pub fn proof(&self, htm: &str, htu: &str, token: Option<&str>, nonce: Option<&str>) -> String {
        self.proof_at(chrono::Utc::now().timestamp(), htm, htu, token, nonce)
    }

    /// A proof made at `iat`.
    pub fn proof_at(
        &self,
        iat: i64,
        htm: &str,
        htu: &str,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": htm,
            "htu": htu,
            "iat": iat,
        });
        if let Some(t) = token {
            use sha2::Digest;
            claims["ath"] = json!(B64.encode(sha2::Sha256::digest(t.as_bytes())));
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(sig.to_bytes()))
    }
}

/// The claims of a JWT, unverified.
fn claims_of(jwt: &str) -> Value {
    serde_json::from_slice(&B64.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

async fn post_form(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    dpop: Option<&str>,
    form: &[(&str, &str)],
) -> Resp {
    let mut req = app.client.post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    into_resp(req.send().await.unwrap()).await
}

#[tokio::test]
async fn fapi_client_fields_are_checked_stored_and_advertised() {
    let app = spawn_provider(|s| s).await;
    let admin = admin_token(&app).await;
    let jwks = json!({"keys": [DpopKey::new().jwk]});
    // Refusals, each naming its field.
    for (body, field) in [
        (
            json!({"name": "x", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt"}),
            "jwks",
        ),
        (
            json!({"name": "x", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://keys.example/jwks"}),
            "jwks_uri",
        ),
        (
            json!({"name": "x", "client_type": "public", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}),
            "token_endpoint_auth_method",
        ),
        (
            json!({"name": "x", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "client_secret_jwt"}),
            "token_endpoint_auth_method",
        ),
        (
            json!({"name": "x", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}}),
            "jwks",
        ),
    ] {
        let r = app
            .post_auth("/api/v1/admin/oauth-clients", &admin, Some(body))
            .await;
        r.assert(400, Some("validation_error"));
        assert!(r.body["details"][field].is_string(), "{field}: {}", r.text);
    }
    // A private_key_jwt client has no secret; the flags read back.
    let c = register_client(
        &app,
        json!({"name": "FAPI app", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks, "require_pushed_authorization_requests": true, "dpop_bound_access_tokens": true}),
    )
    .await;
    assert!(c.get("client_secret").is_none(), "{c}");
    assert_eq!(c["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(c["jwks"], jwks);
    assert_eq!(c["require_pushed_authorization_requests"], true);
    assert_eq!(c["dpop_bound_access_tokens"], true);
    let id = c["client_id"].as_str().unwrap();
    let r = app
        .post_auth(
            &format!("/api/v1/admin/oauth-clients/{id}/secret"),
            &admin,
            None,
        )
        .await;
    r.assert(400, Some("validation_error"));
    // PATCH to a secret method drops the keys; the flags can be turned off.
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/admin/oauth-clients/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"token_endpoint_auth_method": "client_secret_post", "dpop_bound_access_tokens": false}))
        .send()
        .await
        .unwrap();
    let r = into_resp(r).await;
    r.assert(200, None);
    assert_eq!(r.body["token_endpoint_auth_method"], "client_secret_post");
    assert!(r.body.get("jwks").is_none(), "{}", r.text);
    assert_eq!(r.body["dpop_bound_access_tokens"], false);
    assert_eq!(r.body["require_pushed_authorization_requests"], true);
    // Existing clients read as before.
    let (plain, _) = confidential_client(&app).await;
    let r = app
        .get_auth(&format!("/api/v1/admin/oauth-clients/{plain}"), &admin)
        .await;
    assert_eq!(r.body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(r.body["require_pushed_authorization_requests"], false);

    // Discovery says exactly what is supported.
    let d = app.get("/.well-known/openid-configuration").await.body;
    assert_eq!(
        d["pushed_authorization_request_endpoint"],
        format!("{}/oauth2/par", app.base)
    );
    assert_eq!(d["require_pushed_authorization_requests"], false);
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        d["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA", "Ed25519"])
    );
    assert_eq!(
        d["dpop_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA", "Ed25519"])
    );
    // And the OpenAPI document describes the endpoint and the fields.
    let doc = app.get("/openapi.json").await.body;
    assert!(doc["paths"]["/oauth2/par"]["post"].is_object());
    let props = &doc["components"]["schemas"]["ClientRequest"]["properties"];
    for f in [
        "token_endpoint_auth_method",
        "jwks",
        "jwks_uri",
        "require_pushed_authorization_requests",
        "dpop_bound_access_tokens",
    ] {
        assert!(props.get(f).is_some(), "ClientRequest lacks {f}");
    }
}

#[tokio::test]
async fn pushed_requests_are_single_use_and_a_par_only_client_cannot_skip_them() {
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let c = register_client(
        &app,
        json!({"name": "PAR app", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "require_pushed_authorization_requests": true, "first_party": true}),
    )
    .await;
    let id = c["client_id"].as_str().unwrap().to_string();
    let secret = c["client_secret"].as_str().unwrap().to_string();
    let (verifier, challenge) = pkce();

    // A plain authorization request goes back with invalid_request (RFC 9126 §6).
    let mut agent = Agent::new(&app);
    let page = agent
        .open(&authorize_url(&id, "openid", &challenge, ""))
        .await;
    let back = query_of(page.location.as_deref().expect("redirected to the client"));
    assert_eq!(back["error"], "invalid_request");
    assert!(
        back["error_description"].contains("/oauth2/par"),
        "{back:?}"
    );
    assert_eq!(back["state"], "st");

    // Pushing: authenticated, checked like /oauth2/authorize, answered as JSON.
    let form = |challenge: &str| {
        vec![
            ("response_type".to_string(), "code".to_string()),
            ("client_id".into(), id.clone()),
            ("redirect_uri".into(), REDIRECT_URI.into()),
            ("scope".into(), "openid".into()),
            ("state".into(), "st".into()),
            ("code_challenge".into(), challenge.to_string()),
            ("code_challenge_method".into(), "S256".into()),
        ]
    };
    let pairs = |v: &[(String, String)]| -> Vec<(String, String)> { v.to_vec() };
    let push = |f: Vec<(String, String)>, who: (&str, &str)| {
        let req = app
            .client
            .post(app.url("/oauth2/par"))
            .basic_auth(who.0, Some(who.1))
            .form(&f);
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let r = push(pairs(&form(&challenge)), (&id, "wrong")).await;
    r.assert(401, None);
    assert_eq!(r.body["error"], "invalid_client");
    let mut plain = form(&challenge);
    plain.retain(|(k, _)| k != "code_challenge");
    let r = push(plain, (&id, &secret)).await;
    r.assert(400, None);
    assert_eq!(r.body["error"], "invalid_request");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("PKCE"));
    let mut with_uri = form(&challenge);
    with_uri.push(("request_uri".into(), "urn:x".into()));
    push(with_uri, (&id, &secret)).await.assert(400, None);

    let r = push(pairs(&form(&challenge)), (&id, &secret)).await;
    r.assert(201, None);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(r.body["expires_in"], 60);
    let request_uri = r.body["request_uri"].as_str().unwrap().to_string();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    // Only client_id and request_uri travel; another client's id is refused.
    let url = |client: &str| {
        format!(
            "/oauth2/authorize?client_id={client}&request_uri={}",
            urlencoding::encode(&request_uri)
        )
    };
    let (other, _) = confidential_client(&app).await;
    let page = agent.open(&url(&other)).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    // ... which used it up: request_uris are single-use.
    let r = push(pairs(&form(&challenge)), (&id, &secret)).await;
    let request_uri = r.body["request_uri"].as_str().unwrap().to_string();
    let page = agent
        .open(&format!(
            "/oauth2/authorize?client_id={id}&request_uri={}",
            urlencoding::encode(&request_uri)
        ))
        .await;
    let page = agent.sign_in(page, &email).await;
    let to = page.location.expect("back to the client with a code");
    let q = query_of(&to);
    assert!(q.contains_key("code"), "{to}");
    assert_eq!(q.get("state").map(String::as_str), Some("st"), "{to}");
    let t = exchange(&app, (&id, &secret), &q["code"], &verifier).await;
    t.assert(200, None);
    let again = agent
        .open(&format!(
            "/oauth2/authorize?client_id={id}&request_uri={}",
            urlencoding::encode(&request_uri)
        ))
        .await;
    assert_eq!(again.status, 400, "a request_uri is used once");
    assert!(again.text.contains("already used"), "{}", again.text);
}

/// Two instances on one database and one replay cache (Redis), behind a trusted proxy.
async fn two_instances() -> (TestApp, TestApp) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let db = database_url(&dir).await;
    let prefix = format!("ta_test:{}:", uuid::Uuid::new_v4().simple());
    let mut apps = Vec::new();
    for _ in 0..2 {
        let prefix = prefix.clone();
        apps.push(
            spawn_on(dir.clone(), db.clone(), move |s| {
                s.set("redis_url", "redis://127.0.0.1:6379")
                    .set("redis_prefix", prefix)
                    .set("public_url", "http://auth.example")
                    .set("trusted_proxies", "127.0.0.1/32")
            })
            .await,
        );
    }
    let b = apps.pop().unwrap();
    (apps.pop().unwrap(), b)
}

#[tokio::test]
async fn dpop_nonces_and_replays_hold_across_instances() {
    let (a, b) = two_instances().await;
    let admin = access(&a.user_with_tier(4).await.1);
    let r = a
        .post_auth(
            "/api/v1/admin/oauth-clients",
            &admin,
            Some(json!({"name": "Bot", "client_type": "confidential", "grant_types": ["client_credentials"], "max_tier": 2, "dpop_bound_access_tokens": true})),
        )
        .await;
    r.assert(201, None);
    let (id, secret) = (
        r.body["client_id"].as_str().unwrap().to_string(),
        r.body["client_secret"].as_str().unwrap().to_string(),
    );
    let token_url = "http://auth.example/oauth2/token";
    let key = DpopKey::new();
    let grant = [
        ("grant_type", "client_credentials"),
        ("scope", "trade:read"),
    ];

    // A DPoP client's request without a proof is refused.
    let r = post_form(&a, "/oauth2/token", Some((&id, &secret)), None, &grant).await;
    r.assert(400, None);
    assert_eq!(r.body["error"], "invalid_dpop_proof");
    // The nonce dance: A asks for a nonce, B accepts the one A gave.
    let first = key.proof("POST", token_url, None, None);
    let r = post_form(
        &a,
        "/oauth2/token",
        Some((&id, &secret)),
        Some(&first),
        &grant,
    )
    .await;
    r.assert(400, None);
    assert_eq!(r.body["error"], "use_dpop_nonce");
    let nonce = r.header("dpop-nonce").expect("a DPoP-Nonce");
    let proof = key.proof("POST", token_url, None, Some(&nonce));
    let r = post_form(
        &b,
        "/oauth2/token",
        Some((&id, &secret)),
        Some(&proof),
        &grant,
    )
    .await;
    r.assert(200, None);
    assert_eq!(r.body["token_type"], "DPoP");
    let token = r.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims_of(&token)["cnf"]["jkt"], key.jkt());
    // The same proof again, on A: used up.
    let r = post_form(
        &a,
        "/oauth2/token",
        Some((&id, &secret)),
        Some(&proof),
        &grant,
    )
    .await;
    assert_eq!(r.body["error"], "invalid_dpop_proof", "{}", r.text);
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));

    // Forward-auth for https://api.example/orders (the proxy's headers name the request).
    let verify = |app: &TestApp, auth: String, proof: Option<String>| {
        let mut req = app
            .client
            .get(app.url("/api/v1/auth/verify"))
            .header("authorization", auth)
            .header("x-original-method", "POST")
            .header("x-original-uri", "/orders?limit=5")
            .header("x-original-host", "api.example")
            .header("x-forwarded-proto", "https");
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let htu = "https://api.example/orders";
    // As a bearer token, or without a proof: refused, with a DPoP challenge.
    for (auth, proof) in [
        (format!("Bearer {token}"), None),
        (format!("DPoP {token}"), None),
        (
            format!("DPoP {token}"),
            Some(key.proof("GET", htu, Some(&token), None)),
        ),
        (
            format!("DPoP {token}"),
            Some(key.proof("POST", htu, None, None)),
        ),
        (
            format!("DPoP {token}"),
            Some(DpopKey::new().proof("POST", htu, Some(&token), None)),
        ),
    ] {
        let r = verify(&a, auth, proof).await;
        r.assert(401, Some("invalid_dpop_proof"));
        let challenge = r.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(
            challenge.contains("error=\"invalid_dpop_proof\""),
            "{challenge}"
        );
        assert_eq!(
            r.header("x-auth-error").as_deref(),
            Some("invalid_dpop_proof")
        );
    }
    let proof = key.proof("POST", htu, Some(&token), None);
    let r = verify(&a, format!("DPoP {token}"), Some(proof.clone())).await;
    r.assert(204, None);
    assert_eq!(r.header("x-auth-client-id").as_deref(), Some(id.as_str()));
    // The same proof on the other instance: a replay.
    let r = verify(&b, format!("DPoP {token}"), Some(proof)).await;
    r.assert(401, Some("invalid_dpop_proof"));
    assert!(
        r.body["error"].as_str().unwrap().contains("already used"),
        "{}",
        r.text
    );
    // A fresh proof on B is fine.
    let r = verify(
        &b,
        format!("DPoP {token}"),
        Some(key.proof("POST", htu, Some(&token), None)),
    )
    .await;
    r.assert(204, None);

    // Introspection refuses the bound token without its proof (API.md: every check), and
    // with the proof the resource server received (passed along in `DPoP`) answers the
    // binding; the server compares htm and htu with its own request.
    async fn introspect(
        app: &TestApp,
        client: (&str, &str),
        token: &str,
        proof: Option<String>,
    ) -> Resp {
        post_form(
            app,
            "/oauth2/introspect",
            Some(client),
            proof.as_deref(),
            &[("token", token)],
        )
        .await
    }
    let client = (id.as_str(), secret.as_str());
    let r = introspect(&b, client, &token, None).await;
    r.assert(200, None);
    assert_eq!(r.body["active"], false, "{}", r.text);
    let received = key.proof("GET", htu, Some(&token), None);
    let r = introspect(&b, client, &token, Some(received.clone())).await;
    r.assert(200, None);
    assert_eq!(r.body["active"], true, "{}", r.text);
    assert_eq!(r.body["token_type"], "DPoP");
    assert_eq!(r.body["cnf"]["jkt"], key.jkt());
    // The same proof again, on the other instance: a replay.
    let r = introspect(&a, client, &token, Some(received)).await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    // Another key's proof, or one without the token's hash: refused.
    let r = introspect(
        &a,
        client,
        &token,
        Some(DpopKey::new().proof("GET", htu, Some(&token), None)),
    )
    .await;
    assert_eq!(r.body["active"], false, "{}", r.text);
    let r = introspect(&a, client, &token, Some(key.proof("GET", htu, None, None))).await;
    assert_eq!(r.body["active"], false, "{}", r.text);
}
