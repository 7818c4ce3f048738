//! Emails and names that could pass for someone else's: invisible, control and look-alike
//! characters are refused where an account is created or renamed (README, "Accounts").

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn registration_refuses_invisible_and_look_alike_emails() {
    let app = spawn_app().await;
    for email in [
        "admin\u{200b}@example.com", // zero-width space
        "admin\u{202e}@example.com", // right-to-left override
        "ad\u{00ad}min@example.com", // soft hyphen
        "ad\u{7}min@example.com",    // control
        "ad\u{a0}min@example.com",   // no-break space
        "\u{430}dmin@example.com",   // Cyrillic a
        "\u{ff41}dmin@example.com",  // fullwidth a
        "admin@ex\u{430}mple.com",   // Cyrillic a in the domain
        "admin@b\u{fc}cher.de",      // an IDN domain not in its xn-- form
        "admin@xn--a.com",           // not valid IDNA
    ] {
        let r = app.register(email, PASSWORD).await;
        r.assert(400, Some("validation_error"));
        assert!(
            r.body["details"]["email"].is_string(),
            "{email:?}: {}",
            r.text
        );
    }
    // The plain address is still free, and an IDN domain's xn-- form is accepted.
    app.register("admin@example.com", PASSWORD)
        .await
        .assert(201, None);
    let r = app.register("Hans@XN--BCHER-KVA.de", PASSWORD).await;
    r.assert(201, None);
    assert_eq!(
        r.body["user"]["email"], "hans@xn--bcher-kva.de",
        "{}",
        r.text
    );
}

#[tokio::test]
async fn full_names_refuse_text_direction_and_invisible_characters() {
    let app = spawn_app().await;
    let r = app
        .post(
            "/api/v1/auth/register",
            json!({"email": "eve@example.com", "password": PASSWORD, "full_name": "Eve\u{202e}gnp.exe"}),
        )
        .await;
    r.assert(400, Some("validation_error"));
    assert!(r.body["details"]["full_name"].is_string(), "{}", r.text);
    let (_, login) = app.new_user().await;
    let at = access(&login);
    for name in ["A\u{200b}B", "A\u{2066}B", "A\u{feff}"] {
        let r = app
            .patch_auth("/api/v1/auth/me", &at, json!({"full_name": name}))
            .await;
        r.assert(400, Some("validation_error"));
        assert!(r.body["details"]["full_name"].is_string(), "{}", r.text);
    }
    // Names in any script, with the joiners some scripts need, still work.
    for name in [
        "Анна Петрова",
        "José Ñúñez",
        "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}",
    ] {
        let r = app
            .patch_auth("/api/v1/auth/me", &at, json!({"full_name": name}))
            .await;
        r.assert(200, None);
        assert_eq!(r.body["full_name"], name);
    }
}
