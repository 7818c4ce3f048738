//! The ceremonies that succeed: adding, listing, renaming and removing passkeys, and
//! signing in with one, with and without a username, in body and cookie mode.

use super::*;
use std::collections::BTreeSet;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn add_list_rename_and_remove_passkeys() {
    let app = spawn_app().await;
    let (email, login) = app.new_user().await;
    let at = access(&login);
    let mut auth = authenticator();

    // The options are the W3C JSON form: RP ID from the public URL, UV required, no
    // attestation, the account as the user entity, nothing to exclude yet.
    let started = start_registration(&app, &at).await;
    started.assert(200, None);
    assert_eq!(started.header("cache-control").as_deref(), Some("no-store"));
    let pk = &started.body["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["rp"]["name"], "tradeauth");
    assert_eq!(pk["user"]["name"], email.as_str());
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["attestation"], "none");
    assert!(pk["excludeCredentials"]
        .as_array()
        .is_none_or(|a| a.is_empty()));
    let credential = auth.create(&started.body["options"]).unwrap();
    let added = finish_registration(
        &app,
        &at,
        &started.body["challenge_id"],
        "  Laptop  ",
        credential,
    )
    .await;
    added.assert(201, None);
    let first = added.body.clone();
    assert_eq!(
        keys(&first),
        [
            "backed_up",
            "backup_eligible",
            "created_at",
            "id",
            "last_used_at",
            "name"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert_eq!(first["name"], "Laptop");
    assert_eq!(first["last_used_at"], Value::Null);
    assert_eq!(first["backup_eligible"], false);
    assert_eq!(first["backed_up"], false);

    // The next start excludes it, so an authenticator that holds it refuses to make a
    // second one, as a browser does.
    let again = start_registration(&app, &at).await;
    let excluded = again.body["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["id"], B64.encode(&auth.credentials[0].id));
    assert_eq!(
        auth.create(&again.body["options"]),
        Err("InvalidStateError")
    );

    // A synced passkey from another authenticator: its flags are shown.
    let mut phone = authenticator();
    phone.backed_up = true;
    let synced = add_passkey(&app, &at, &mut phone, "Phone").await;
    synced.assert(201, None);
    assert_eq!(synced.body["backup_eligible"], true);
    assert_eq!(synced.body["backed_up"], true);

    let list = app.get_auth("/api/v1/auth/passkeys", &at).await;
    list.assert(200, None);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["name"], "Phone", "newest first");
    assert_eq!(items[1]["id"], first["id"]);
    assert_eq!(list.body["next_cursor"], Value::Null);
    let paged = app.get_auth("/api/v1/auth/passkeys?limit=1", &at).await;
    assert_eq!(paged.body["items"].as_array().unwrap().len(), 1);
    assert!(paged.body["next_cursor"].is_string());

    // Rename: 1–64 characters.
    let path = format!("/api/v1/auth/passkeys/{}", first["id"].as_str().unwrap());
    let renamed = app
        .patch_auth(&path, &at, json!({"name": "Work laptop"}))
        .await;
    renamed.assert(200, None);
    assert_eq!(renamed.body["name"], "Work laptop");
    assert_eq!(renamed.body["id"], first["id"]);
    for bad in [json!({"name": ""}), json!({"name": "   "}), json!({})] {
        let r = app.patch_auth(&path, &at, bad).await;
        r.assert(400, Some("validation_error"));
        assert!(r.body["details"]["name"].is_string(), "{}", r.text);
    }
    app.patch_auth(&path, &at, json!({"name": "x".repeat(65)}))
        .await
        .assert(400, Some("validation_error"));
    app.patch_auth(&path, &at, json!({"name": "é".repeat(64)}))
        .await
        .assert(200, None);

    // Another account sees none of them and can touch none of them.
    let (_, other) = app.new_user().await;
    let other_at = access(&other);
    let theirs = app.get_auth("/api/v1/auth/passkeys", &other_at).await;
    assert_eq!(theirs.body["items"], json!([]));
    app.patch_auth(&path, &other_at, json!({"name": "mine"}))
        .await
        .assert(404, Some("not_found"));
    app.delete_auth(&path, &other_at)
        .await
        .assert(404, Some("not_found"));

    // Remove (the account has a password, so even the last one may go).
    app.delete_auth(&path, &at).await.assert(204, None);
    app.delete_auth(&path, &at)
        .await
        .assert(404, Some("not_found"));
    let synced_path = format!(
        "/api/v1/auth/passkeys/{}",
        synced.body["id"].as_str().unwrap()
    );
    app.delete_auth(&synced_path, &at).await.assert(204, None);
    let list = app.get_auth("/api/v1/auth/passkeys", &at).await;
    assert_eq!(list.body["items"], json!([]));

    assert_eq!(events(&app, &at, "passkey.added").await.len(), 2);
    let renamed = events(&app, &at, "passkey.renamed").await;
    assert_eq!(renamed.len(), 2);
    assert_eq!(renamed[1]["details"]["name"], "Work laptop");
    let removed = events(&app, &at, "passkey.removed").await;
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[1]["details"]["passkey_id"], first["id"]);
}

#[tokio::test]
async fn sign_in_with_and_without_a_username() {
    let app = spawn_app().await;
    let (email, login, mut auth, passkey) = user_with_passkey(&app).await;
    let user_id = login["user"]["id"].clone();
    let username = login["user"]["username"].as_str().unwrap().to_string();
    let credential_id = B64.encode(&auth.credentials[0].id);

    // Username-first (by email, then by username): the account's passkeys are listed.
    for who in [email.as_str(), username.as_str()] {
        let started = start_login(&app, Some(who)).await;
        started.assert(200, None);
        let pk = &started.body["options"]["publicKey"];
        assert_eq!(pk["rpId"], "localhost");
        assert_eq!(pk["userVerification"], "required");
        let allowed: Vec<&Value> = pk["allowCredentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["id"])
            .collect();
        assert_eq!(allowed, vec![&json!(credential_id)]);
        let assertion = auth.get(&started.body["options"]).unwrap();
        let r = finish_login(&app, &started.body["challenge_id"], assertion).await;
        r.assert(200, None);
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        // The login body, as a password login gives it.
        assert_eq!(r.body["token_type"], "bearer");
        assert_eq!(r.body["user"]["id"], user_id);
        assert!(r.body["refresh_token"].is_string());
        assert!(r.body["access_expires_at"].is_i64());
        assert_eq!(r.body["permission_tier"], 2);
        assert_eq!(keys(&r.body), keys(&login));
        let at = access(&r.body);
        assert_eq!(claims(&at)["sub"], user_id);
        app.get_auth("/api/v1/auth/me", &at).await.assert(200, None);
        // Its refresh token works like any other.
        app.refresh(&refresh_token(&r.body)).await.assert(200, None);
    }

    // Without a username: a discoverable request; the user handle names the account.
    let started = start_login(&app, None).await;
    started.assert(200, None);
    assert_eq!(
        started.body["options"]["publicKey"]["allowCredentials"],
        json!([])
    );
    let assertion = auth.get(&started.body["options"]).unwrap();
    let r = finish_login(&app, &started.body["challenge_id"], assertion).await;
    r.assert(200, None);
    assert_eq!(r.body["user"]["id"], user_id);
    let at = access(&r.body);

    // The passkey shows its use; each sign-in is an event with its method.
    let list = app.get_auth("/api/v1/auth/passkeys", &at).await;
    assert_eq!(list.body["items"][0]["id"], passkey["id"]);
    assert!(list.body["items"][0]["last_used_at"].is_string());
    let logins = events(&app, &at, "login.succeeded").await;
    let methods: Vec<&str> = logins
        .iter()
        .map(|e| e["details"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["passkey", "passkey", "passkey", "password"],
        "{logins:?}"
    );
    // Last sign-in time moves with a passkey login too.
    let me = app.get_auth("/api/v1/auth/me", &at).await;
    assert!(me.body["last_login_at"].is_string());
}

#[tokio::test]
async fn a_passkey_is_a_second_factor_no_totp_step_after_it() {
    let app = spawn_app().await;
    let (email, login, mut auth, _) = user_with_passkey(&app).await;
    let at = access(&login);
    let setup = app
        .post_auth("/api/v1/auth/mfa/totp/setup", &at, None)
        .await;
    setup.assert(200, None);
    let totp =
        totp_rs::TOTP::from_url_unchecked(setup.body["otpauth_url"].as_str().unwrap()).unwrap();
    app.post_auth(
        "/api/v1/auth/mfa/totp/enable",
        &at,
        Some(json!({"code": totp.generate_current().unwrap()})),
    )
    .await
    .assert(200, None);
    // A password alone now needs the code; a passkey does not.
    app.login(&email, PASSWORD)
        .await
        .assert(401, Some("mfa_required"));
    let r = sign_in(&app, &mut auth, Some(&email)).await;
    r.assert(200, None);
    assert_eq!(r.body["user"]["mfa_enabled"], true);
}

/// A request as tradeauth's own page sends it.
fn same_origin(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("sec-fetch-site", "same-origin")
}

/// `Set-Cookie` as name → attributes (lower-cased names, `Max-Age` left out: it counts
/// down).
fn cookie_shapes(headers: &reqwest::header::HeaderMap) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let name = parts.next().unwrap().split_once('=').unwrap().0.to_string();
            let mut attrs: Vec<String> = parts
                .filter(|a| !a.to_ascii_lowercase().starts_with("max-age"))
                .map(str::to_ascii_lowercase)
                .collect();
            attrs.sort();
            (name, attrs)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn cookie_mode_gives_what_a_password_login_gives() {
    let app = spawn_app().await;
    let (email, _, mut auth, _) = user_with_passkey(&app).await;

    for remember_me in [false, true] {
        let password = into_resp(
            same_origin(app.client.post(app.url("/api/v1/auth/login")))
                .json(&json!({"username": email, "password": PASSWORD,
                    "token_transport": "cookie", "remember_me": remember_me}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        password.assert(200, None);

        let started = start_login(&app, Some(&email)).await;
        let assertion = auth.get(&started.body["options"]).unwrap();
        let body = json!({"challenge_id": started.body["challenge_id"], "credential": assertion,
            "token_transport": "cookie", "remember_me": remember_me});
        // Like a cookie-mode password login: refused from a foreign origin, before the
        // challenge is spent.
        let foreign = into_resp(
            app.client
                .post(app.url("/api/v1/auth/passkeys/login/finish"))
                .header("sec-fetch-site", "cross-site")
                .header("origin", "https://evil.example")
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        foreign.assert(403, Some("csrf_failed"));
        assert!(foreign.headers.get("set-cookie").is_none());

        let passkey = into_resp(
            same_origin(
                app.client
                    .post(app.url("/api/v1/auth/passkeys/login/finish")),
            )
            .json(&body)
            .send()
            .await
            .unwrap(),
        )
        .await;
        passkey.assert(200, None);
        assert_eq!(keys(&passkey.body), keys(&password.body));
        assert_eq!(passkey.body["token_type"], "cookie");
        assert!(passkey.body.get("access_token").is_none());
        assert!(passkey.body.get("refresh_token").is_none());
        assert!(passkey.body["csrf_token"].is_string());
        assert_eq!(passkey.header("cache-control").as_deref(), Some("no-store"));
        let shapes = cookie_shapes(&passkey.headers);
        assert_eq!(shapes, cookie_shapes(&password.headers));
        let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "__Host-tradeauth_at",
                "__Host-tradeauth_csrf",
                "__Host-tradeauth_rt"
            ]
        );
        // The refresh cookie outlives the browser only with remember_me, as for passwords.
        let rt_max_age = passkey
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("__Host-tradeauth_rt="))
            .unwrap()
            .to_ascii_lowercase()
            .contains("max-age");
        assert_eq!(rt_max_age, remember_me);

        // The access cookie is a credential.
        let at_cookie = passkey
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("__Host-tradeauth_at="))
            .unwrap();
        let pair = at_cookie.split(';').next().unwrap().to_string();
        let me = into_resp(
            app.client
                .get(app.url("/api/v1/auth/me"))
                .header("cookie", pair)
                .send()
                .await
                .unwrap(),
        )
        .await;
        me.assert(200, None);
        assert_eq!(me.body["email"], email.as_str());
    }
}

#[tokio::test]
async fn ceremonies_are_counted_in_metrics_and_documented() {
    let app = spawn_app().await;
    let (_, _, mut auth, _) = user_with_passkey(&app).await;
    sign_in(&app, &mut auth, None).await.assert(200, None);
    let metrics = app.get("/metrics").await.text;
    for line in [
        "tradeauth_passkey_ceremonies_total{ceremony=\"register\",outcome=\"succeeded\"} 1",
        "tradeauth_passkey_ceremonies_total{ceremony=\"login\",outcome=\"succeeded\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    let doc = app.get("/openapi.json").await.body;
    for (path, method) in [
        ("/api/v1/auth/passkeys/register/start", "post"),
        ("/api/v1/auth/passkeys/register/finish", "post"),
        ("/api/v1/auth/passkeys", "get"),
        ("/api/v1/auth/passkeys/{id}", "patch"),
        ("/api/v1/auth/passkeys/{id}", "delete"),
        ("/api/v1/auth/passkeys/login/start", "post"),
        ("/api/v1/auth/passkeys/login/finish", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not in /openapi.json"
        );
    }
}
