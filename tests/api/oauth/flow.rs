//! The authorization code flow end to end through the pages, and the refusals of the
//! OpenID Foundation's Basic OP test plan (`oidcc-*` module names in the test names'
//! comments): each one is refused the way the standard says, never half-done.

use super::*;

#[tokio::test]
async fn the_code_flow_signs_in_asks_consent_and_issues_verifiable_tokens() {
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);
    let (verifier, challenge) = pkce();
    // Not signed in: to the hosted login page, with the request kept for later.
    let page = agent
        .get(&authorize_url(
            &id,
            "openid profile email trade:write",
            &challenge,
            "&login_hint=someone",
        ))
        .await;
    assert_eq!(page.status, 302);
    let to_login = page.location.clone().unwrap();
    assert!(
        to_login.starts_with("/login?return_to=%2Foauth2%2Fauthorize%2Fcontinue"),
        "{to_login}"
    );
    assert!(to_login.contains("login_hint=someone"));
    let login = agent.follow(page).await;
    assert!(
        login.text.contains("value=\"someone\""),
        "login_hint prefills the identifier"
    );
    // Signed in: the consent page names the client and each scope in words.
    let consent = agent.sign_in(login, &email).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    assert!(
        consent.text.contains("Allow OIDC test app?"),
        "{}",
        consent.text
    );
    assert!(consent.text.contains("Trade on your behalf"));
    assert!(consent.text.contains(">Allow</button>") && consent.text.contains(">Deny</button>"));
    // A forged consent (no CSRF token) is refused, nothing issued.
    let ticket = consent.hidden("ticket");
    let forged = agent
        .post(
            "/oauth2/consent",
            &[("ticket", &ticket), ("decision", "allow")],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.location.is_none());
    let back = agent.consent(&consent, true).await;
    let q = query_of(back.location.as_deref().unwrap());
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], app.base);
    assert!(back.location.unwrap().starts_with(REDIRECT_URI));

    let t = exchange(&app, (&id, &secret), &q["code"], &verifier).await;
    t.assert(200, None);
    assert_eq!(t.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(t.body["token_type"], "Bearer");
    assert_eq!(t.body["scope"], "openid profile email trade:write");
    assert!(t.body.get("refresh_token").is_none(), "no offline_access");
    // The ID token: RS256, verified against the published key.
    let id_token = t.body["id_token"].as_str().unwrap();
    let claims = verify_rs256(&app, id_token).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["sub"], user_id);
    assert_eq!(claims["aud"], id);
    assert_eq!(claims["azp"], id);
    assert_eq!(claims["nonce"], "n");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["email"], email);
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() >= 300);
    // The access token: a native one plus client_id and scope, tier clamped.
    let at = t.body["access_token"].as_str().unwrap();
    let payload = jwt_payload(at);
    assert_eq!(payload["client_id"], id);
    assert_eq!(payload["scope"], "openid profile email trade:write");
    assert_eq!(payload["sid"], claims["sid"]);
    assert_eq!(payload["tier"], 2);
    let v = app.get_auth("/api/v1/auth/verify", at).await;
    assert_eq!(v.status, 204);
    assert_eq!(
        v.header("x-auth-user-id").as_deref(),
        Some(user_id.as_str())
    );
    // Userinfo, GET and POST (form body).
    let info = app.get_auth("/oauth2/userinfo", at).await;
    info.assert(200, None);
    assert_eq!(info.body["sub"], user_id);
    assert_eq!(info.body["email"], email);
    assert_eq!(info.body["email_verified"], true);
    let info = into_resp(
        app.client
            .post(app.url("/oauth2/userinfo"))
            .form(&[("access_token", at)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    info.assert(200, None);
    assert_eq!(
        info.body["preferred_username"],
        email.split('@').next().unwrap()
    );

    // The authorization is a session, listed with the client's name; revoking it ends it.
    let (_, native) = (email.clone(), app.login(&email, PASSWORD).await.body);
    let sessions = app
        .get_auth("/api/v1/auth/sessions", &access(&native))
        .await;
    let listed = sessions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == claims["sid"])
        .expect("the authorization is in the session list")
        .clone();
    assert_eq!(listed["user_agent"], "OIDC test app");
    let sid = claims["sid"].as_str().unwrap();
    assert_eq!(
        app.delete_auth(&format!("/api/v1/auth/sessions/{sid}"), &access(&native))
            .await
            .status,
        204
    );
    let dead = app.get_auth("/oauth2/userinfo", at).await;
    assert_eq!(dead.status, 401);
    assert_eq!(dead.body["error"], "invalid_token");
    assert!(dead
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer realm=\"tradeauth\", error=\"invalid_token\""));
    assert_eq!(app.get_auth("/api/v1/auth/verify", at).await.status, 401);

    // Remembered consent: the next request goes straight back; the user's grant is listed.
    let (code, verifier) = code_for(&mut agent, &id, "openid email", &email).await;
    exchange(&app, (&id, &secret), &code, &verifier)
        .await
        .assert(200, None);
    let grants = app
        .get_auth("/api/v1/auth/oauth-grants", &access(&native))
        .await;
    grants.assert(200, None);
    assert_eq!(grants.body["items"][0]["client_id"], id);
    assert_eq!(grants.body["items"][0]["client_name"], "OIDC test app");
    assert_eq!(
        grants.body["items"][0]["scopes"],
        json!(["openid", "profile", "email", "trade:write"])
    );
    let events = app.get_auth("/api/v1/auth/events", &access(&native)).await;
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"oauth.consent_granted"), "{kinds:?}");
    assert!(kinds.contains(&"oauth.token_issued"), "{kinds:?}");
}

/// The claims of an RS256 ID token, verified with the JWKS key of its `kid`.
pub async fn verify_rs256(app: &TestApp, token: &str) -> Value {
    use jwt_simple::prelude::*;
    let header: Value = {
        use base64::Engine;
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "RS256");
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the ID token's kid is published");
    use base64::Engine;
    let b = |s: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    let key = RS256PublicKey::from_components(&b(&jwk["n"]), &b(&jwk["e"])).unwrap();
    let claims = key
        .verify_token::<Value>(token, None)
        .expect("the ID token verifies");
    serde_json::to_value(&claims).unwrap()
}

pub fn jwt_payload(token: &str) -> Value {
    use base64::Engine;
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn unknown_clients_and_unregistered_redirect_uris_get_a_page_never_a_redirect() {
    // oidcc-ensure-registered-redirect-uri, oidcc-redirect-uri-*
    let app = spawn_provider(|s| s).await;
    let (id, _) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);
    let (_, challenge) = pkce();
    let base = format!(
        "/oauth2/authorize?response_type=code&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=S256"
    );
    for (case, query) in [
        (
            "unknown client",
            format!(
                "{base}&client_id=nobody&redirect_uri={}",
                urlencoding::encode(REDIRECT_URI)
            ),
        ),
        (
            "no client",
            format!("{base}&redirect_uri={}", urlencoding::encode(REDIRECT_URI)),
        ),
        (
            "unregistered",
            format!(
                "{base}&client_id={id}&redirect_uri={}",
                urlencoding::encode("https://evil.example/cb")
            ),
        ),
        (
            "trailing slash",
            format!(
                "{base}&client_id={id}&redirect_uri={}",
                urlencoding::encode("http://127.0.0.1:9/cb/")
            ),
        ),
        (
            "repeated parameter",
            format!(
                "{base}&client_id={id}&client_id={id}&redirect_uri={}",
                urlencoding::encode(REDIRECT_URI)
            ),
        ),
    ] {
        let page = agent.get(&query).await;
        assert_eq!(page.status, 400, "{case}");
        assert!(page.location.is_none(), "{case}: never a redirect");
        assert!(
            page.text.contains("role=\"alert\""),
            "{case}: {}",
            page.text
        );
    }
    // Loopback redirect URIs match on any port (RFC 8252 §7.3).
    let page = agent
        .get(&format!(
            "{base}&client_id={id}&redirect_uri={}",
            urlencoding::encode("http://127.0.0.1:53124/cb")
        ))
        .await;
    assert_eq!(page.status, 302);
    assert!(page.location.unwrap().starts_with("/login?"));
}

#[tokio::test]
async fn malformed_requests_go_back_to_the_client_with_the_error() {
    // oidcc-response-type-missing, PKCE: plain or none refused, request objects refused.
    let app = spawn_provider(|s| s).await;
    let (id, _) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);
    let (_, challenge) = pkce();
    let uri = urlencoding::encode(REDIRECT_URI);
    let cases = [
        ("missing response_type", format!("client_id={id}&redirect_uri={uri}&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=S256"), "invalid_request", "response_type"),
        ("token response_type", format!("response_type=token&client_id={id}&redirect_uri={uri}&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=S256"), "unsupported_response_type", "token"),
        ("no PKCE", format!("response_type=code&client_id={id}&redirect_uri={uri}&scope=openid&state=st"), "invalid_request", "code_challenge"),
        ("plain PKCE", format!("response_type=code&client_id={id}&redirect_uri={uri}&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=plain"), "invalid_request", "S256"),
        ("request object", format!("response_type=code&client_id={id}&redirect_uri={uri}&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=S256&request=eyJ"), "request_not_supported", "request"),
        ("request_uri", format!("response_type=code&client_id={id}&redirect_uri={uri}&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=S256&request_uri=https%3A%2F%2Fx"), "request_uri_not_supported", "request_uri"),
        ("prompt=none without a session", format!("response_type=code&client_id={id}&redirect_uri={uri}&scope=openid&state=st&code_challenge={challenge}&code_challenge_method=S256&prompt=none"), "login_required", "not signed in"),
    ];
    for (case, query, error, says) in cases {
        for post in [false, true] {
            let page = if post {
                agent
                    .post(
                        "/oauth2/authorize",
                        &url::form_urlencoded::parse(query.as_bytes())
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect::<Vec<_>>()
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect::<Vec<_>>(),
                    )
                    .await
            } else {
                agent.get(&format!("/oauth2/authorize?{query}")).await
            };
            assert_eq!(page.status, 302, "{case}: {}", page.text);
            let to = page.location.unwrap();
            assert!(to.starts_with(REDIRECT_URI), "{case}: {to}");
            let q = query_of(&to);
            assert_eq!(q["error"], error, "{case}");
            assert!(
                q["error_description"].contains(says),
                "{case}: {}",
                q["error_description"]
            );
            assert_eq!(q["state"], "st", "{case}");
            assert_eq!(q["iss"], app.base, "{case}");
        }
    }
}

#[tokio::test]
async fn codes_are_single_use_bound_to_their_client_and_verifier() {
    // oidcc-codereuse, oidcc-codereuse-30seconds, PKCE verifier mismatch.
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let (other_id, other_secret) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);

    // Wrong verifier: invalid_grant, and the code is spent.
    let (code, verifier) = code_for(&mut agent, &id, "openid", &email).await;
    let (wrong, _) = pkce();
    let r = exchange(&app, (&id, &secret), &code, &wrong).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("code_verifier"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        exchange(&app, (&id, &secret), &code, &verifier).await.body["error"],
        "invalid_grant"
    );

    // Another client cannot use it.
    let (code, verifier) = code_for(&mut agent, &id, "openid", &email).await;
    let r = exchange(&app, (&other_id, &other_secret), &code, &verifier).await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("another client"));

    // Reuse: refused, and the tokens of the first use die at once.
    let (code, verifier) = code_for(&mut agent, &id, "openid offline_access", &email).await;
    let first = exchange(&app, (&id, &secret), &code, &verifier).await;
    first.assert(200, None);
    let at = first.body["access_token"].as_str().unwrap();
    assert_eq!(app.get_auth("/oauth2/userinfo", at).await.status, 200);
    let again = exchange(&app, (&id, &secret), &code, &verifier).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.body["error"], "invalid_grant");
    assert!(again.body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(app.get_auth("/oauth2/userinfo", at).await.status, 401);
    let rt = first.body["refresh_token"].as_str().unwrap();
    let r = token_request(
        &app,
        (&id, &secret),
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");

    // A missing redirect_uri or verifier, an unknown grant: RFC 6749 errors.
    let (code, _) = code_for(&mut agent, &id, "openid", &email).await;
    let r = token_request(
        &app,
        (&id, &secret),
        &[("grant_type", "authorization_code"), ("code", &code)],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_request");
    let r = token_request(&app, (&id, &secret), &[("grant_type", "password")]).await;
    assert_eq!(r.body["error"], "unsupported_grant_type");
    let r = token_request(&app, (&id, &secret), &[]).await;
    assert_eq!(r.body["error"], "invalid_request");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("grant_type"));
    // Not a form: still the RFC shape.
    let r = into_resp(
        app.client
            .post(app.url("/oauth2/token"))
            .json(&json!({"grant_type": "authorization_code"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_request");
    assert!(
        r.body.get("code").is_none(),
        "not the native error shape: {}",
        r.text
    );
    // Wrong method.
    let r = app.get("/oauth2/token").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["error"], "invalid_request");
}

#[tokio::test]
async fn refresh_tokens_rotate_are_bound_to_their_client_and_need_offline_access() {
    let app = spawn_provider(|s| s.set("refresh_reuse_grace", "2s")).await;
    let (email, _) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let (other_id, other_secret) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);
    let (code, verifier) = code_for(&mut agent, &id, "openid offline_access", &email).await;
    let t = exchange(&app, (&id, &secret), &code, &verifier).await;
    t.assert(200, None);
    let rt = t.body["refresh_token"].as_str().unwrap().to_string();
    // Not the native endpoint's, not another client's.
    app.refresh(&rt)
        .await
        .assert(401, Some("invalid_refresh_token"));
    let r = token_request(
        &app,
        (&other_id, &other_secret),
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert!(r.body["error_description"]
        .as_str()
        .unwrap()
        .contains("another client"));
    // Rotation; the grace window hands out the current token; later, reuse ends it all.
    let refresh = |token: String| {
        let (app, id, secret) = (&app, id.clone(), secret.clone());
        async move {
            token_request(
                app,
                (&id, &secret),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let r1 = refresh(rt.clone()).await;
    r1.assert(200, None);
    let rt1 = r1.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt);
    assert_eq!(
        jwt_payload(r1.body["access_token"].as_str().unwrap())["client_id"],
        id
    );
    let r1b = refresh(rt.clone()).await;
    r1b.assert(200, None);
    assert_eq!(r1b.body["refresh_token"], rt1.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let reused = refresh(rt).await;
    assert_eq!(reused.body["error"], "invalid_grant");
    assert!(reused.body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(refresh(rt1).await.body["error"], "invalid_grant");
    let at = r1.body["access_token"].as_str().unwrap();
    assert_eq!(app.get_auth("/oauth2/userinfo", at).await.status, 401);
}

#[tokio::test]
async fn first_party_clients_skip_consent_and_prompt_and_max_age_force_a_fresh_sign_in() {
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let c = register_client(
        &app,
        json!({"name": "Dashboard", "client_type": "public", "redirect_uris": [REDIRECT_URI], "first_party": true}),
    )
    .await;
    let id = c["client_id"].as_str().unwrap().to_string();
    let mut agent = Agent::new(&app);
    let (verifier, challenge) = pkce();
    let page = agent
        .open(&authorize_url(&id, "openid", &challenge, ""))
        .await;
    let back = agent.sign_in(page, &email).await;
    let to = back
        .location
        .expect("no consent page for a first-party client");
    let code = query_of(&to)["code"].clone();
    // A public client: client_id, no secret.
    let t = into_resp(
        app.client
            .post(app.url("/oauth2/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
                ("client_id", &id),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    t.assert(200, None);
    let auth_time = jwt_payload(t.body["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    // A live session: straight back. prompt=login and max_age=0: the login form again.
    let (_, challenge) = pkce();
    let quick = agent
        .get(&authorize_url(&id, "openid", &challenge, ""))
        .await;
    assert!(quick.location.unwrap().starts_with(REDIRECT_URI));
    for extra in ["&prompt=login", "&max_age=0"] {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (verifier, challenge) = pkce();
        let page = agent
            .open(&authorize_url(&id, "openid", &challenge, extra))
            .await;
        assert!(
            page.text.contains("id=\"login-form\""),
            "{extra}: {}",
            page.text
        );
        let back = agent.sign_in(page, &email).await;
        let code = query_of(&back.location.expect("back to the client"))["code"].clone();
        let t = into_resp(
            app.client
                .post(app.url("/oauth2/token"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", &verifier),
                    ("client_id", &id),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        t.assert(200, None);
        let fresh = jwt_payload(t.body["id_token"].as_str().unwrap())["auth_time"]
            .as_i64()
            .unwrap();
        assert!(fresh > auth_time, "{extra}: a new sign-in");
    }
}

#[tokio::test]
async fn deleting_a_client_or_withdrawing_a_grant_revokes_its_tokens() {
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let native = access(&app.login(&email, PASSWORD).await.body);
    let (id, secret) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);
    let (code, verifier) = code_for(&mut agent, &id, "openid", &email).await;
    let at = exchange(&app, (&id, &secret), &code, &verifier).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get_auth("/oauth2/userinfo", &at).await.status, 200);
    // The user withdraws the grant.
    assert_eq!(
        app.delete_auth(&format!("/api/v1/auth/oauth-grants/{id}"), &native)
            .await
            .status,
        204
    );
    assert_eq!(app.get_auth("/oauth2/userinfo", &at).await.status, 401);
    assert_eq!(app.get_auth("/api/v1/auth/verify", &at).await.status, 401);
    app.delete_auth(&format!("/api/v1/auth/oauth-grants/{id}"), &native)
        .await
        .assert(404, Some("not_found"));
    // Consent is asked again; then an admin deletes the client.
    let (code, verifier) = code_for(&mut agent, &id, "openid", &email).await;
    let at = exchange(&app, (&id, &secret), &code, &verifier).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get_auth("/oauth2/userinfo", &at).await.status, 200);
    let admin = admin_token(&app).await;
    assert_eq!(
        app.delete_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
            .await
            .status,
        204
    );
    let r = app.get_auth("/oauth2/userinfo", &at).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_token");
    // Its secret no longer authenticates anything.
    let r = token_request(
        &app,
        (&id, &secret),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(r.body["error"], "invalid_client");
}

#[tokio::test]
async fn userinfo_wants_an_oauth_token_with_openid() {
    let app = spawn_provider(|s| s).await;
    let (_, body) = app.new_user().await;
    let r = app.get_auth("/oauth2/userinfo", &access(&body)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "insufficient_scope");
    let r = app.get("/oauth2/userinfo").await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = app.get_auth("/oauth2/userinfo", "garbage").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_token");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn connected_apps_in_the_console_list_the_grant_and_revoke_access() {
    let app = spawn_provider(|s| s).await;
    let (email, _) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let mut agent = Agent::new(&app);
    let (code, verifier) = code_for(&mut agent, &id, "openid email", &email).await;
    let at = exchange(&app, (&id, &secret), &code, &verifier).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let console = agent.get("/account").await;
    assert_eq!(console.status, 200);
    assert!(console.text.contains("Connected apps"));
    assert!(
        console.text.contains("<strong>OIDC test app</strong>"),
        "{}",
        console.text
    );
    assert!(console.text.contains(">Revoke access</button>"));
    let csrf = console.hidden("csrf_token");
    let done = agent
        .post(
            "/account/apps/revoke",
            &[("csrf_token", &csrf), ("client_id", &id)],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location.as_deref(), Some("/account?done=app_revoked"));
    let console = agent.get("/account?done=app_revoked").await;
    assert!(console.text.contains("No app has access to your account."));
    assert!(console.text.contains("The app no longer has access"));
    assert_eq!(app.get_auth("/oauth2/userinfo", &at).await.status, 401);
}

#[tokio::test]
async fn client_credentials_tokens_name_the_client_and_no_user() {
    let app = spawn_provider(|s| s).await;
    let bot = register_client(
        &app,
        json!({"name": "Trading bot", "client_type": "confidential", "grant_types": ["client_credentials"], "max_tier": 3, "scopes": ["trade:read", "trade:power", "admin"]}),
    )
    .await;
    let (id, secret) = (
        bot["client_id"].as_str().unwrap().to_string(),
        bot["client_secret"].as_str().unwrap().to_string(),
    );
    let t = token_request(
        &app,
        (&id, &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    t.assert(200, None);
    assert_eq!(t.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        t.body["scope"], "trade:read trade:power",
        "admin is above max_tier 3"
    );
    assert!(t.body.get("refresh_token").is_none() && t.body.get("id_token").is_none());
    let at = t.body["access_token"].as_str().unwrap().to_string();
    let claims = flow_payload(&at);
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["tier"], 3);
    // Forward-auth knows the client; endpoints where a user acts refuse it.
    let v = app.get_auth("/api/v1/auth/verify", &at).await;
    assert_eq!(v.status, 204);
    assert_eq!(v.header("x-auth-client-id").as_deref(), Some(id.as_str()));
    assert!(v.header("x-auth-user-id").is_none());
    assert_eq!(v.header("x-auth-tier").as_deref(), Some("3"));
    let v = app.get_auth("/api/v1/auth/verify?min_tier=4", &at).await;
    v.assert(403, Some("insufficient_tier"));
    app.get_auth("/api/v1/auth/me", &at)
        .await
        .assert(403, Some("client_not_allowed"));
    app.get_auth("/api/v1/auth/sessions", &at)
        .await
        .assert(403, Some("client_not_allowed"));
    let r = app.get_auth("/oauth2/userinfo", &at).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "insufficient_scope");
    // Introspection sees it (the bot introspects its own token here).
    let r = into_resp(
        app.client
            .post(app.url("/oauth2/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["active"], true, "{}", r.text);
    assert_eq!(r.body["sub"], id);
    // A client without the grant, or a public one, cannot.
    let (other, other_secret) = confidential_client(&app).await;
    let r = token_request(
        &app,
        (&other, &other_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(r.body["error"], "unauthorized_client");
    // Deleting the client kills its tokens.
    let admin = admin_token(&app).await;
    assert_eq!(
        app.delete_auth(&format!("/api/v1/admin/oauth-clients/{id}"), &admin)
            .await
            .status,
        204
    );
    app.get_auth("/api/v1/auth/verify", &at)
        .await
        .assert(401, Some("invalid_token"));
}

fn flow_payload(token: &str) -> Value {
    jwt_payload(token)
}

#[tokio::test]
async fn a_client_may_ask_for_es256_or_eddsa_id_tokens() {
    use base64::Engine;
    use jwt_simple::prelude::*;
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let b = |s: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    for alg in ["ES256", "EdDSA"] {
        let c = register_client(
            &app,
            json!({"name": "Alg app", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "id_token_signed_response_alg": alg}),
        )
        .await;
        let (id, secret) = (
            c["client_id"].as_str().unwrap().to_string(),
            c["client_secret"].as_str().unwrap().to_string(),
        );
        let mut agent = Agent::new(&app);
        let (code, verifier) = code_for(&mut agent, &id, "openid", &email).await;
        let t = exchange(&app, (&id, &secret), &code, &verifier).await;
        t.assert(200, None);
        let token = t.body["id_token"].as_str().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        let jwks = app.get("/.well-known/jwks.json").await.body;
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .expect("the ID token's kid is published")
            .clone();
        assert_eq!(jwk["alg"], alg);
        let claims: JWTClaims<Value> = if alg == "ES256" {
            let mut point = vec![4u8];
            point.extend(b(&jwk["x"]));
            point.extend(b(&jwk["y"]));
            ES256PublicKey::from_bytes(&point)
                .unwrap()
                .verify_token::<Value>(token, None)
                .expect("ES256 verifies")
        } else {
            Ed25519PublicKey::from_bytes(&b(&jwk["x"]))
                .unwrap()
                .verify_token::<Value>(token, None)
                .expect("EdDSA verifies")
        };
        assert_eq!(claims.subject.as_deref(), Some(user_id.as_str()));
    }
}

/// The ID token's `amr` says how the browser session signed in (RFC 8176): a passkey is
/// `hwk` and `user`, not the password the account also has.
#[tokio::test]
async fn a_passkey_sign_in_gives_the_id_token_amr_hwk_and_user() {
    // The default public URL (http://localhost:8080): its host is a valid WebAuthn RP ID.
    let app = spawn_app().await;
    let (email, login, mut auth, _) = crate::passkeys::user_with_passkey(&app).await;
    let user_id = login["user"]["id"].as_str().unwrap().to_string();
    let client = register_client(
        &app,
        json!({"name": "Desk", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "first_party": true}),
    )
    .await;
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    // The browser signs in with its passkey (cookie mode), as the login page's script does.
    let mut agent = Agent::new(&app);
    let started = crate::passkeys::start_login(&app, Some(&email)).await;
    let assertion = auth.get(&started.body["options"]).unwrap();
    let signed_in = agent
        .post_json(
            "/api/v1/auth/passkeys/login/finish",
            &json!({"challenge_id": started.body["challenge_id"], "credential": assertion, "token_transport": "cookie"}),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let (code, verifier) = code_for(&mut agent, id, "openid", &email).await;
    let t = exchange(&app, (id, secret), &code, &verifier).await;
    t.assert(200, None);
    let payload = t.body["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], user_id);
    assert_eq!(claims["amr"], json!(["hwk", "user"]));
}
