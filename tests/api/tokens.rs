//! Access-token attacks, each rejected with the right code, and verification of our tokens
//! by an independent JWT library against the published JWKS.

use crate::helpers::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

fn split(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    let dec = |s: &str| serde_json::from_slice(&B64.decode(s).unwrap()).unwrap();
    (dec(parts[0]), dec(parts[1]), parts[2].to_string())
}

fn enc(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

fn hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", enc(header), enc(claims));
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let sig = ring::hmac::sign(&k, input.as_bytes());
    format!("{input}.{}", B64.encode(sig.as_ref()))
}

/// Signs `claims` with the server's own active key (to test claim checks in isolation).
fn server_signed(app: &TestApp, header: &Value, claims: &Value) -> String {
    let keys = app.service.tokens.ring().current();
    let mut h = Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = header["kid"].as_str().map(str::to_string);
    h.typ = header["typ"].as_str().map(str::to_string);
    let input = format!(
        "{}.{}",
        enc(&serde_json::to_value(&h).unwrap()),
        enc(claims)
    );
    let sig = keys.signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", B64.encode(sig))
}

async fn me(app: &TestApp, token: &str) -> Resp {
    app.get_auth("/api/v1/auth/me", token).await
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_invalid() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let token = access(&login);
    let (header, claims, sig) = split(&token);
    me(&app, &token).await.assert(200, None);

    // alg: none, with and without a signature part.
    let none = json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]});
    for t in [
        format!("{}.{}.", enc(&none), enc(&claims)),
        format!("{}.{}", enc(&none), enc(&claims)),
    ] {
        let r = me(&app, &t).await;
        r.assert(401, Some("invalid_token"));
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="tradeauth", error="invalid_token""#.into())
        );
    }

    // HS256 signed with the server's public key (raw bytes, and the JWK's text).
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap()
        .clone();
    let x = jwk["x"].as_str().unwrap();
    let hs = json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]});
    for key in [
        B64.decode(x).unwrap(),
        x.as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ] {
        me(&app, &hs256(&key, &hs, &claims))
            .await
            .assert(401, Some("invalid_token"));
    }

    // A tampered payload: tier raised to admin, signature kept.
    let mut raised = claims.clone();
    raised["tier"] = json!(4);
    raised["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", enc(&header), enc(&raised), sig);
    me(&app, &tampered).await.assert(401, Some("invalid_token"));
    app.get_auth("/api/v1/admin/users", &tampered)
        .await
        .assert(401, Some("invalid_token"));

    // An unknown kid, signed by a key of our own making.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let foreign = EncodingKey::from_ed_der(pkcs8.as_ref());
    for kid in ["unknown-kid", header["kid"].as_str().unwrap()] {
        let mut h = Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some(kid.into());
        h.typ = Some("at+jwt".into());
        let t = jsonwebtoken::encode(&h, &claims, &foreign).unwrap();
        me(&app, &t).await.assert(401, Some("invalid_token"));
    }

    // Garbage and a refresh token used as an access token are invalid; an empty bearer is
    // no credential.
    me(&app, "garbage").await.assert(401, Some("invalid_token"));
    me(&app, &refresh_token(&login))
        .await
        .assert(401, Some("invalid_token"));
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", "Bearer ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(401, Some("missing_token"));
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap(),
    )
    .await;
    // Another scheme is no credential at all.
    r.assert(401, Some("missing_token"));
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="tradeauth""#.into())
    );
    me(&app, &token).await.assert(200, None);
}

#[tokio::test]
async fn claims_are_checked_even_under_a_valid_signature() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    let (header, claims, _) = split(&access(&login));
    // The control: re-signing the genuine claims is accepted.
    me(&app, &server_signed(&app, &header, &claims))
        .await
        .assert(200, None);
    type Change = Box<dyn Fn(&mut Value, &mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "wrong iss",
            Box::new(|_, c| c["iss"] = json!("someone-else")),
        ),
        (
            "wrong aud",
            Box::new(|_, c| c["aud"] = json!("another-api")),
        ),
        (
            "missing exp",
            Box::new(|_, c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        ("wrong typ", Box::new(|h, _| h["typ"] = json!("JWT"))),
        (
            "no kid",
            Box::new(|h, _| {
                h.as_object_mut().unwrap().remove("kid");
            }),
        ),
    ];
    for (name, change) in cases {
        let (mut h, mut c) = (header.clone(), claims.clone());
        change(&mut h, &mut c);
        let r = me(&app, &server_signed(&app, &h, &c)).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "invalid_token"),
            "{name}: {}",
            r.text
        );
    }
    let mut expired = claims.clone();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 5);
    me(&app, &server_signed(&app, &header, &expired))
        .await
        .assert(401, Some("token_expired"));
}

#[tokio::test]
async fn an_access_token_expires() {
    let app = spawn_with(|s| s.set("access_ttl", "1s")).await;
    let (_, login) = app.new_user().await;
    assert_eq!(login["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = me(&app, &access(&login)).await;
    r.assert(401, Some("token_expired"));
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="tradeauth", error="invalid_token""#.into())
    );
    // The refresh token still gets a fresh access token.
    let fresh = app.refresh(&refresh_token(&login)).await;
    fresh.assert(200, None);
    me(&app, &access(&fresh.body)).await.assert(200, None);
}

fn jwk_for<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid published")
}

fn verify_with_jwt_simple(jwks: &Value, token: &str) -> Value {
    use jwt_simple::prelude::*;
    let (header, _, _) = split(token);
    let jwk = jwk_for(jwks, header["kid"].as_str().unwrap());
    let d = |k: &str| B64.decode(jwk[k].as_str().unwrap()).unwrap();
    let opts = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&["tradeauth"])),
        allowed_audiences: Some(HashSet::from_strings(&["tradeauth-api"])),
        ..Default::default()
    };
    let claims: JWTClaims<serde_json::Map<String, Value>> = match jwk["kty"].as_str().unwrap() {
        "OKP" => Ed25519PublicKey::from_bytes(&d("x"))
            .unwrap()
            .verify_token(token, Some(opts)),
        "EC" => {
            let mut point = vec![4u8];
            point.extend(d("x"));
            point.extend(d("y"));
            ES256PublicKey::from_bytes(&point)
                .unwrap()
                .verify_token(token, Some(opts))
        }
        "RSA" => RS256PublicKey::from_components(&d("n"), &d("e"))
            .unwrap()
            .verify_token(token, Some(opts)),
        other => panic!("unexpected kty {other}"),
    }
    .expect("an independent library verifies the token against the JWKS");
    Value::Object(claims.custom)
}

#[tokio::test]
async fn tokens_verify_with_an_independent_library_for_every_algorithm() {
    for alg in ["EdDSA", "ES256", "RS256"] {
        let app = spawn_with(|s| s.set("jwt_alg", alg)).await;
        let (_, login) = app.new_user().await;
        let token = access(&login);
        let (header, _, _) = split(&token);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["typ"], "at+jwt");
        let jwks = app.get("/.well-known/jwks.json").await.body;
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(
            keys.iter().filter(|k| k["alg"] == alg).count(),
            2,
            "active + standby published"
        );
        // Beside them, the ID tokens' pairs of the other algorithms (RS256, ES256, EdDSA:
        // the access tokens' pair serves ID tokens too).
        assert_eq!(keys.len(), 6, "{jwks}");
        let custom = verify_with_jwt_simple(&jwks, &token);
        assert_eq!(custom["tier"], 2);
        assert_eq!(custom["role"], "trader");
        assert!(custom["sid"].is_string());
        me(&app, &token).await.assert(200, None);
    }
}

#[tokio::test]
async fn hs256_uses_the_shared_secret_and_publishes_nothing() {
    let secret = "an-hs256-secret-of-at-least-32-characters!";
    let app = spawn_with(|s| s.set("jwt_alg", "HS256").set("jwt_secret", secret)).await;
    let (_, login) = app.new_user().await;
    let token = access(&login);
    let (header, claims, _) = split(&token);
    assert_eq!(header["alg"], "HS256");
    me(&app, &token).await.assert(200, None);
    // No symmetric key is ever published: only the pairs that sign ID tokens (RS256,
    // which OpenID Connect Discovery requires, ES256 and EdDSA; HS256 never signs one).
    let jwks = app.get("/.well-known/jwks.json").await.body;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 6, "{jwks}");
    assert!(
        keys.iter()
            .all(|k| k["alg"] != "HS256" && k["kty"] != "oct" && k.get("k").is_none()),
        "{jwks}"
    );
    // The same claims signed with another secret are refused.
    me(
        &app,
        &hs256(b"another-secret-another-secret-xx", &header, &claims),
    )
    .await
    .assert(401, Some("invalid_token"));
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_and_publishes_the_next_key() {
    let app = spawn_app().await;
    let (_, admin) = app.user_with_tier(4).await;
    let old = access(&admin);
    let before = app.get("/.well-known/jwks.json").await.body;
    let (h0, _, _) = split(&old);
    let r = app
        .post_auth("/api/v1/admin/signing-keys/rotate", &old, None)
        .await;
    r.assert(200, None);
    let kid = r.body["kid"].as_str().unwrap().to_string();
    // The new active key is the former standby, which verifiers already knew.
    let standby = before["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] != h0["kid"] && k["alg"] == h0["alg"])
        .unwrap();
    assert_eq!(standby["kid"], kid.as_str());
    let after = app.get("/.well-known/jwks.json").await.body;
    assert_eq!(
        after["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["alg"] == h0["alg"])
            .count(),
        3,
        "retired + active + new standby (beside the ID tokens' RS256 pair)"
    );
    me(&app, &old).await.assert(200, None);
    let fresh = app.refresh(&refresh_token(&admin)).await;
    let (h1, _, _) = split(&access(&fresh.body));
    assert_eq!(h1["kid"], kid.as_str());
    me(&app, &access(&fresh.body)).await.assert(200, None);
}

/// Sleeps until `ms` milliseconds into the whole second `second`.
async fn until_second(second: i64, ms: i64) {
    let left = second * 1000 + ms - chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(std::time::Duration::from_millis(left.max(0) as u64)).await;
}

/// An access token of `login`'s user, signed by the server, expiring at `exp`.
pub fn token_until(app: &TestApp, login: &Value, exp: i64) -> String {
    let user = login["user"]["id"].as_str().unwrap().parse().unwrap();
    let tier = tradeauth::domain::Tier::new(1).unwrap();
    let exp = chrono::DateTime::from_timestamp(exp, 0).unwrap();
    let now = chrono::Utc::now().min(exp);
    let (token, _) = app
        .service
        .tokens
        .sign(user, uuid::Uuid::now_v7(), tier, now, exp)
        .unwrap();
    token
}

#[tokio::test]
async fn a_token_is_dead_from_the_start_of_its_exp_second() {
    let app = spawn_app().await;
    let (_, login) = app.new_user().await;
    // The checks must land inside `exp`'s second to tell `exp <= now` from `exp < now`;
    // a loaded machine may miss it once, so up to three tries.
    let mut inside = false;
    for _ in 0..3 {
        let t = chrono::Utc::now().timestamp() + 1;
        until_second(t, 20).await;
        // A second left: accepted, and kept as verified.
        let cached = token_until(&app, &login, t + 1);
        me(&app, &cached).await.assert(200, None);
        until_second(t + 1, 20).await;
        let fresh = token_until(&app, &login, t + 1);
        for token in [&cached, &fresh] {
            me(&app, token).await.assert(401, Some("token_expired"));
            app.get_auth("/api/v1/auth/verify", token)
                .await
                .assert(401, Some("token_expired"));
        }
        if chrono::Utc::now().timestamp() == t + 1 {
            inside = true;
            break;
        }
    }
    assert!(inside, "no try ran its checks within the second of exp");
}
