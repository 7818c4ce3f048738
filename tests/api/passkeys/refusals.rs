//! Every refusal of the list, each with the contract's code, and what it must
//! leave untouched.

use super::*;
use chrono::Utc;
use tokio::task::JoinSet;
use tradeauth::domain::UserId;

/// Moves the session's last proof of identity `minutes` into the past.
async fn age_session(app: &TestApp, at: &str, minutes: i64) {
    let sid = uuid::Uuid::parse_str(claims(at)["sid"].as_str().unwrap()).unwrap();
    app.service
        .store
        .mark_session_authenticated(sid, Utc::now() - chrono::Duration::minutes(minutes))
        .await
        .unwrap();
}

fn user_id(login: &Value) -> UserId {
    UserId(uuid::Uuid::parse_str(login["user"]["id"].as_str().unwrap()).unwrap())
}

#[tokio::test]
async fn a_registration_without_user_verification_is_refused() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let mut auth = authenticator();
    auth.user_verified = false;
    add_passkey(&app, &at, &mut auth, "No UV")
        .await
        .assert(401, Some("invalid_passkey"));
    // A response from another origin, or for another RP ID, neither.
    let bends: [fn(&mut SoftAuthenticator); 2] = [
        |a| a.origin = "http://evil.localhost:8080".into(),
        |a| a.rp_id_override = Some("evil.example".into()),
    ];
    for bend in bends {
        let mut auth = authenticator();
        bend(&mut auth);
        add_passkey(&app, &at, &mut auth, "Bent")
            .await
            .assert(401, Some("invalid_passkey"));
    }
    let list = app.get_auth("/api/v1/auth/passkeys", &at).await;
    assert_eq!(list.body["items"], json!([]));
    // The request is checked before the challenge is spent.
    let started = start_registration(&app, &at).await;
    let credential = authenticator().create(&started.body["options"]).unwrap();
    for (name, code) in [
        ("", "validation_error"),
        (&"n".repeat(65)[..], "validation_error"),
    ] {
        finish_registration(
            &app,
            &at,
            &started.body["challenge_id"],
            name,
            credential.clone(),
        )
        .await
        .assert(400, Some(code));
    }
    finish_registration(&app, &at, &started.body["challenge_id"], "Fine", credential)
        .await
        .assert(201, None);
}

#[tokio::test]
async fn assertions_failing_a_check_are_invalid_passkey() {
    let app = spawn_app().await;
    let (email, login, mut auth, _) = user_with_passkey(&app).await;
    type Bend = fn(&mut SoftAuthenticator);
    let cases: [(&str, Bend, bool); 5] = [
        ("missing UV", |a| a.user_verified = false, true),
        (
            "wrong origin",
            |a| a.origin = "https://evil.example".into(),
            true,
        ),
        (
            "wrong RP ID hash",
            |a| a.rp_id_override = Some("evil.example".into()),
            true,
        ),
        ("bad signature", |a| a.bad_signature = true, true),
        // Username-less, the user handle is what names the account.
        ("no user handle", |a| a.omit_user_handle = true, false),
    ];
    for (what, bend, username_first) in cases {
        let mut bent = SoftAuthenticator {
            credentials: auth.credentials.clone(),
            ..authenticator()
        };
        bend(&mut bent);
        let who = username_first.then_some(email.as_str());
        let r = sign_in(&app, &mut bent, who).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_eq!(r.code(), "invalid_passkey", "{what}");
        assert!(r.body.get("access_token").is_none());
        // Keep the real authenticator's counter ahead of what the bent copy signed.
        auth.credentials = bent.credentials;
    }
    // A credential the server has never seen.
    let mut stranger = authenticator();
    let started = start_registration(&app, &access(&login)).await;
    stranger.create(&started.body["options"]).unwrap();
    sign_in(&app, &mut stranger, None)
        .await
        .assert(401, Some("invalid_passkey"));

    // The real passkey still works; every refusal was written down.
    let r = sign_in(&app, &mut auth, Some(&email)).await;
    r.assert(200, None);
    let failed = events(&app, &access(&r.body), "login.failed").await;
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.iter().all(
        |e| e["details"]["reason"] == "invalid_passkey" && e["details"]["method"] == "passkey"
    ));
}

#[tokio::test]
async fn a_challenge_is_single_use_and_must_be_ours() {
    let app = spawn_app().await;
    let (email, login, mut auth, _) = user_with_passkey(&app).await;
    let started = start_login(&app, Some(&email)).await;
    let challenge = started.body["challenge_id"].clone();
    let first = auth.get(&started.body["options"]).unwrap();
    finish_login(&app, &challenge, first.clone())
        .await
        .assert(200, None);
    // Replayed, with the same assertion or a fresh one over the same challenge.
    finish_login(&app, &challenge, first)
        .await
        .assert(400, Some("passkey_challenge_expired"));
    let fresh = auth.get(&started.body["options"]).unwrap();
    let r = finish_login(&app, &challenge, fresh.clone()).await;
    r.assert(400, Some("passkey_challenge_expired"));
    assert!(r.body["details"]["challenge_id"].is_string());
    // Unknown, malformed, missing.
    finish_login(
        &app,
        &json!(uuid::Uuid::new_v4().to_string()),
        fresh.clone(),
    )
    .await
    .assert(400, Some("passkey_challenge_expired"));
    finish_login(&app, &json!("not-a-challenge"), fresh.clone())
        .await
        .assert(400, Some("passkey_challenge_expired"));
    app.post(
        "/api/v1/auth/passkeys/login/finish",
        json!({"credential": fresh}),
    )
    .await
    .assert(400, Some("validation_error"));
    // A registration's challenge does not finish a sign-in, nor the reverse.
    let at = access(&login);
    let reg = start_registration(&app, &at).await;
    let assertion = auth.get(&started.body["options"]).unwrap();
    finish_login(&app, &reg.body["challenge_id"], assertion)
        .await
        .assert(400, Some("passkey_challenge_expired"));
    let login_challenge = start_login(&app, None).await;
    let credential = authenticator().create(&reg.body["options"]).unwrap();
    finish_registration(
        &app,
        &at,
        &login_challenge.body["challenge_id"],
        "X",
        credential,
    )
    .await
    .assert(400, Some("passkey_challenge_expired"));
    // Another account's registration challenge is not this account's.
    let (_, other) = app.new_user().await;
    let theirs = start_registration(&app, &access(&other)).await;
    let credential = authenticator().create(&theirs.body["options"]).unwrap();
    finish_registration(&app, &at, &theirs.body["challenge_id"], "X", credential)
        .await
        .assert(400, Some("passkey_challenge_expired"));
}

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let app = spawn_app().await;
    let (email, _, mut auth, _) = user_with_passkey(&app).await;
    // A challenge kept the way start keeps it, but 5 min and a moment ago.
    let started = start_login(&app, Some(&email)).await;
    let assertion = auth.get(&started.body["options"]).unwrap();
    let id = uuid::Uuid::parse_str(started.body["challenge_id"].as_str().unwrap()).unwrap();
    let store = &app.service.store;
    let taken = store
        .take_challenge(id, tradeauth::store::ChallengeKind::Login, Utc::now())
        .await
        .unwrap()
        .unwrap();
    store
        .insert_challenge(
            id,
            tradeauth::store::ChallengeKind::Login,
            None,
            &taken.state,
            Utc::now() - chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    finish_login(&app, &started.body["challenge_id"], assertion)
        .await
        .assert(400, Some("passkey_challenge_expired"));
}

#[tokio::test]
async fn concurrent_finishes_of_one_challenge_give_one_success() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (email, _, mut auth, _) = user_with_passkey(&app).await;
    let started = start_login(&app, Some(&email)).await;
    let assertion = auth.get(&started.body["options"]).unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let (app, challenge, assertion) = (
            app.clone(),
            started.body["challenge_id"].clone(),
            assertion.clone(),
        );
        tasks.spawn(async move { finish_login(&app, &challenge, assertion).await });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        match r.status {
            200 => ok += 1,
            _ => {
                r.assert(400, Some("passkey_challenge_expired"));
            }
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a_counter_that_does_not_increase_is_refused_as_a_clone() {
    let app = spawn_app().await;
    let (email, _, mut auth, passkey) = user_with_passkey(&app).await;
    let r = sign_in(&app, &mut auth, Some(&email)).await;
    r.assert(200, None);
    let at = access(&r.body);
    assert_eq!(auth.credentials[0].counter, 1);
    // The same counter again, then a lower one: a copy of the key somewhere else.
    for presented in [1, 0] {
        auth.counter_override = Some(presented);
        sign_in(&app, &mut auth, Some(&email))
            .await
            .assert(401, Some("invalid_passkey"));
    }
    let clones = events(&app, &at, "passkey.clone_suspected").await;
    assert_eq!(clones.len(), 2, "{clones:?}");
    assert_eq!(clones[0]["details"]["passkey_id"], passkey["id"]);
    assert_eq!(clones[0]["details"]["stored_counter"], 1);
    assert_eq!(clones[0]["details"]["presented_counter"], 0);
    // The genuine authenticator, ahead again, still signs in.
    auth.counter_override = None;
    sign_in(&app, &mut auth, Some(&email))
        .await
        .assert(200, None);

    // An authenticator without a counter (0 every time) is not a clone.
    let (email, _, mut synced, _) = {
        let (email, login) = app.new_user().await;
        let mut a = authenticator();
        a.no_counter = true;
        add_passkey(&app, &access(&login), &mut a, "Synced")
            .await
            .assert(201, None);
        (email, login, a, ())
    };
    for _ in 0..2 {
        sign_in(&app, &mut synced, Some(&email))
            .await
            .assert(200, None);
    }
}

#[tokio::test]
async fn one_credential_belongs_to_one_account() {
    let app = spawn_app().await;
    let id = rand::random::<[u8; 32]>().to_vec();
    let (_, a) = app.new_user().await;
    let mut first = authenticator();
    first.next_id = Some(id.clone());
    add_passkey(&app, &access(&a), &mut first, "Mine")
        .await
        .assert(201, None);
    // The same credential id offered to another account, and again to the same one (by
    // an authenticator that ignores excludeCredentials).
    let (_, b) = app.new_user().await;
    for at in [access(&b), access(&a)] {
        let mut copy = authenticator();
        copy.next_id = Some(id.clone());
        add_passkey(&app, &at, &mut copy, "Copy")
            .await
            .assert(409, Some("passkey_exists"));
    }
    let list = app.get_auth("/api/v1/auth/passkeys", &access(&b)).await;
    assert_eq!(list.body["items"], json!([]));
}

#[tokio::test]
async fn the_eleventh_passkey_is_refused() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    for i in 0..9 {
        add_passkey(&app, &at, &mut authenticator(), &format!("Key {i}"))
            .await
            .assert(201, None);
    }
    // Two ceremonies started at nine: the first to finish is the tenth, the other one
    // would be the eleventh.
    let (s1, s2) = (
        start_registration(&app, &at).await,
        start_registration(&app, &at).await,
    );
    let c1 = authenticator().create(&s1.body["options"]).unwrap();
    let c2 = authenticator().create(&s2.body["options"]).unwrap();
    finish_registration(&app, &at, &s1.body["challenge_id"], "Tenth", c1)
        .await
        .assert(201, None);
    finish_registration(&app, &at, &s2.body["challenge_id"], "Eleventh", c2)
        .await
        .assert(422, Some("passkey_limit"));
    let r = start_registration(&app, &at).await;
    r.assert(422, Some("passkey_limit"));
    assert!(r.body["details"]["credential"].is_string(), "{}", r.text);
    let list = app.get_auth("/api/v1/auth/passkeys", &at).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn disabled_and_unverified_accounts_are_refused_after_a_valid_assertion() {
    let app = spawn_with(|s| s.set("require_email_verification", "true")).await;
    let (_, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (email, login) = app.user_with_tier(2).await;
    let mut auth = authenticator();
    add_passkey(&app, &access(&login), &mut auth, "Key")
        .await
        .assert(201, None);
    let user = format!(
        "/api/v1/admin/users/{}",
        login["user"]["id"].as_str().unwrap()
    );

    for (patch, code) in [
        (json!({"is_active": false}), "account_disabled"),
        (
            json!({"is_active": true, "is_verified": false}),
            "email_not_verified",
        ),
    ] {
        app.patch_auth(&user, &admin_at, patch)
            .await
            .assert(200, None);
        // A wrong assertion learns nothing about the account.
        let mut bent = SoftAuthenticator {
            credentials: auth.credentials.clone(),
            bad_signature: true,
            ..authenticator()
        };
        sign_in(&app, &mut bent, Some(&email))
            .await
            .assert(401, Some("invalid_passkey"));
        auth.credentials = bent.credentials;
        // A valid one gets the same 403 as a password login.
        sign_in(&app, &mut auth, Some(&email))
            .await
            .assert(403, Some(code));
        app.login(&email, PASSWORD).await.assert(403, Some(code));
    }
}

#[tokio::test]
async fn wrong_assertions_do_not_count_toward_the_password_lockout() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let (email, login, auth, _) = user_with_passkey(&app).await;
    let mut bent = SoftAuthenticator {
        credentials: auth.credentials.clone(),
        bad_signature: true,
        ..authenticator()
    };
    for _ in 0..7 {
        sign_in(&app, &mut bent, Some(&email))
            .await
            .assert(401, Some("invalid_passkey"));
    }
    let state = app
        .get_auth(
            &format!(
                "/api/v1/admin/users/{}",
                login["user"]["id"].as_str().unwrap()
            ),
            &access(&admin),
        )
        .await;
    state.assert(200, None);
    assert_eq!(state.body["failed_login_count"], 0, "{}", state.text);
    assert!(state.body["locked_until"].is_null());
    app.login(&email, PASSWORD).await.assert(200, None);
}

#[tokio::test]
async fn adding_a_passkey_needs_a_recent_sign_in() {
    let app = spawn_app().await;
    let (email, login) = app.new_user().await;
    let at = access(&login);
    // Ten minutes is still recent (a little slack for the test's own time).
    age_session(&app, &at, 9).await;
    let started = start_registration(&app, &at).await;
    started.assert(200, None);
    let credential = authenticator().create(&started.body["options"]).unwrap();
    age_session(&app, &at, 11).await;
    start_registration(&app, &at)
        .await
        .assert(403, Some("reauthentication_required"));
    // A ceremony started in time cannot be finished once the session is stale.
    finish_registration(&app, &at, &started.body["challenge_id"], "Late", credential)
        .await
        .assert(403, Some("reauthentication_required"));
    // Proving the password again (a new sign-in) is what it takes.
    let again = app.login(&email, PASSWORD).await;
    add_passkey(&app, &access(&again.body), &mut authenticator(), "Now")
        .await
        .assert(201, None);
    // A sign-in by passkey counts as a proof too.
    let (email2, _, mut auth2, _) = user_with_passkey(&app).await;
    let r = sign_in(&app, &mut auth2, Some(&email2)).await;
    add_passkey(&app, &access(&r.body), &mut authenticator(), "Second")
        .await
        .assert(201, None);
    // The service's rule, for the other callers that need it.
    let caller = app.service.check_access_token(&access(&r.body)).unwrap();
    assert!(app
        .service
        .require_recent_auth(&caller, chrono::Duration::minutes(10))
        .await
        .is_ok());
    // An API key never proved anything interactively.
    let key = app
        .post_auth("/api/v1/auth/api-keys", &at, Some(json!({"name": "bot"})))
        .await;
    key.assert(201, None);
    let r = into_resp(
        app.client
            .post(app.url("/api/v1/auth/passkeys/register/start"))
            .header("x-api-key", key.body["key"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(403, Some("api_key_not_allowed"));
}

#[tokio::test]
async fn the_last_passkey_of_an_account_without_a_password_stays() {
    let app = spawn_app().await;
    let (_, login, _, first) = user_with_passkey(&app).await;
    let at = access(&login);
    // An account whose password cannot sign in (no PHC string), as a passkey-only one.
    app.service
        .store
        .set_password_hash(user_id(&login), "!", None)
        .await
        .unwrap();
    let first_path = format!("/api/v1/auth/passkeys/{}", first["id"].as_str().unwrap());
    let r = app.delete_auth(&first_path, &at).await;
    r.assert(422, Some("last_credential"));
    assert!(r.body["details"]["id"].is_string(), "{}", r.text);
    let second = add_passkey(&app, &at, &mut authenticator(), "Spare").await;
    second.assert(201, None);
    app.delete_auth(&first_path, &at).await.assert(204, None);
    let second_path = format!(
        "/api/v1/auth/passkeys/{}",
        second.body["id"].as_str().unwrap()
    );
    app.delete_auth(&second_path, &at)
        .await
        .assert(422, Some("last_credential"));
    let list = app.get_auth("/api/v1/auth/passkeys", &at).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_username_first_start_does_not_tell_which_accounts_exist() {
    let app = spawn_app().await;
    let (with_passkey, _, _, _) = user_with_passkey(&app).await;
    let (without, _) = app.new_user().await;
    let shape = |v: &Value| {
        let pk = &v["options"]["publicKey"];
        let mut keys: Vec<String> = pk.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, pk["allowCredentials"].as_array().unwrap().is_empty())
    };
    let known = start_login(&app, Some(&with_passkey)).await;
    known.assert(200, None);
    for who in ["nobody@example.com", without.as_str()] {
        let a = start_login(&app, Some(who)).await;
        a.assert(200, None);
        assert_eq!(shape(&a.body), shape(&known.body), "{who}");
        // The same stand-ins every time, as a real account's list would be.
        let b = start_login(&app, Some(who)).await;
        assert_eq!(
            a.body["options"]["publicKey"]["allowCredentials"],
            b.body["options"]["publicKey"]["allowCredentials"]
        );
        assert_ne!(a.body["challenge_id"], b.body["challenge_id"]);
    }
    // Never an empty list for a name (a real account's never is): the stand-ins' count
    // follows a distribution that includes none, which must not show through.
    for i in 0..40 {
        let r = start_login(&app, Some(&format!("ghost{i}@example.com"))).await;
        assert_eq!(shape(&r.body), shape(&known.body), "ghost{i}");
    }
}

#[tokio::test]
async fn passkey_sign_in_is_rate_limited_as_login() {
    let app = spawn_with(|s| {
        s.set("rate_limit", "on")
            .set("rate_limit_login", "3/min")
            .set("rate_limit_login_ip", "100/min")
    })
    .await;
    // Start, per identifier (as a password login's bucket).
    for _ in 0..3 {
        start_login(&app, Some("who@example.com"))
            .await
            .assert(200, None);
    }
    let r = start_login(&app, Some("who@example.com")).await;
    r.assert(429, Some("rate_limited"));
    assert!(r.header("retry-after").is_some());
    assert!(r.body["retry_after"].as_u64().is_some_and(|s| s >= 1));
    // Finish: every request counts, refused or not.
    let assertion = json!({"id": "AA", "rawId": "AA", "type": "public-key", "response": {}});
    for _ in 0..3 {
        let r = finish_login(
            &app,
            &json!(uuid::Uuid::new_v4().to_string()),
            assertion.clone(),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.header("ratelimit-limit").is_some());
    }
    finish_login(&app, &json!(uuid::Uuid::new_v4().to_string()), assertion)
        .await
        .assert(429, Some("rate_limited"));
}
