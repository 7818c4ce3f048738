//! The ceremonies end to end: the module's options go to a software authenticator (ours in
//! `soft`, written from the spec, and `webauthn-authenticator-rs`'s soft passkey), its
//! responses come back through the module, and every check the contract names is made to
//! fail once.

use super::soft::SoftAuthenticator;
use super::*;
use serde_json::json;

pub(super) const ORIGIN: &str = "http://localhost:8080";

pub(super) fn rp() -> Passkeys {
    Passkeys::new("localhost", "tradeauth", &[ORIGIN]).expect("valid RP")
}

pub(super) fn user(id: Uuid) -> PasskeyUser<'static> {
    PasskeyUser {
        id,
        name: "alice@example.com",
        display_name: "Alice",
    }
}

/// Registers one passkey with `auth` and returns it as stored.
pub(super) fn register(
    rp: &Passkeys,
    auth: &mut SoftAuthenticator,
    user_id: Uuid,
) -> StoredPasskey {
    let (options, state) = rp.start_registration(&user(user_id), &[]).unwrap();
    let response = auth.create(&options).expect("authenticator creates");
    let new = rp
        .finish_registration(&state, &response)
        .expect("registered");
    assert_eq!(new.user_id, user_id);
    StoredPasskey {
        user_id,
        credential: new.credential,
    }
}

/// One sign-in: start (username-first with `allowed`, else discoverable), the
/// authenticator answers, finish against `stored`.
pub(super) fn sign_in(
    rp: &Passkeys,
    auth: &mut SoftAuthenticator,
    allowed: Option<&[CredentialId]>,
    stored: &StoredPasskey,
) -> Result<Authenticated, PasskeyError> {
    let (options, state) = rp.start_authentication(allowed).unwrap();
    let response = auth.get(&options).expect("authenticator answers");
    let assertion = Assertion::parse(&response)?;
    rp.finish_authentication(&state, &assertion, Some(stored))
}

fn is_b64url_unpadded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[test]
fn the_rp_id_must_fit_every_origin() {
    assert!(Passkeys::new("localhost", "t", &["http://localhost:8080"]).is_ok());
    assert!(Passkeys::new(
        "example.com",
        "t",
        &["https://auth.example.com", "https://example.com:8443"]
    )
    .is_ok());
    let err = Passkeys::new(
        "example.com",
        "t",
        &["https://auth.example.com", "https://evil.com"],
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::RpIdNotSuffix { origin, .. } if origin == "https://evil.com")
    );
    assert!(
        err.to_string().contains("TRADEAUTH_WEBAUTHN_RP_ID"),
        "{err}"
    );
    // A suffix by characters, not by labels.
    assert!(matches!(
        Passkeys::new("example.com", "t", &["https://myexample.com"]),
        Err(ConfigError::RpIdNotSuffix { .. })
    ));
    // A one-label parent is a public suffix.
    assert!(matches!(
        Passkeys::new("com", "t", &["https://example.com"]),
        Err(ConfigError::RpIdNotSuffix { .. })
    ));
    assert!(matches!(
        Passkeys::new("127.0.0.1", "t", &["http://127.0.0.1:8080"]),
        Err(ConfigError::RpIdIsIpAddress { .. })
    ));
    assert!(matches!(
        Passkeys::new("localhost", "t", &["http://127.0.0.1:8080"]),
        Err(ConfigError::RpIdNotSuffix { .. })
    ));
    for bad in [
        "Example.com",
        "https://example.com",
        "example.com:443",
        ".example.com",
        "",
    ] {
        assert!(
            matches!(
                Passkeys::new(bad, "t", &["https://example.com"]),
                Err(ConfigError::InvalidRpId { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        Passkeys::new("example.com", "t", &["not a url"]),
        Err(ConfigError::InvalidOrigin { .. })
    ));
    assert_eq!(
        Passkeys::new("example.com", "t", &[] as &[&str]).unwrap_err(),
        ConfigError::NoOrigins
    );
}

#[test]
fn creation_options_are_the_w3c_json_form() {
    let rp = rp();
    let uid = Uuid::new_v4();
    let existing = [CredentialId::from_bytes(vec![1, 2, 3, 250, 251])];
    let (options, _) = rp.start_registration(&user(uid), &existing).unwrap();
    let keys: Vec<_> = options.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["publicKey"], "{options}");
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"], json!({"id": "localhost", "name": "tradeauth"}));
    let user_id = pk["user"]["id"].as_str().unwrap();
    assert!(is_b64url_unpadded(user_id));
    assert_eq!(B64.decode(user_id).unwrap(), uid.as_bytes());
    assert_eq!(pk["user"]["name"], "alice@example.com");
    assert_eq!(pk["user"]["displayName"], "Alice");
    let challenge = pk["challenge"].as_str().unwrap();
    assert!(is_b64url_unpadded(challenge), "{challenge}");
    assert!(B64.decode(challenge).unwrap().len() >= 16);
    assert!(pk["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .contains(&json!({"type": "public-key", "alg": -7})));
    assert_eq!(pk["attestation"], "none");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], false);
    assert_eq!(pk["timeout"], 300_000);
    assert_eq!(
        pk["excludeCredentials"],
        json!([{"type": "public-key", "id": existing[0].to_base64url()}])
    );
    // Without passkeys, no excludeCredentials at all.
    let (options, _) = rp.start_registration(&user(uid), &[]).unwrap();
    assert!(options["publicKey"].get("excludeCredentials").is_none());
}

#[test]
fn request_options_are_the_w3c_json_form() {
    let rp = rp();
    let ids = [
        CredentialId::from_bytes(vec![9; 32]),
        CredentialId::from_bytes(vec![0xfb; 16]),
    ];
    let (options, state) = rp.start_authentication(Some(&ids)).unwrap();
    assert!(state.is_username_first());
    let keys: Vec<_> = options.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["publicKey"], "no mediation: {options}");
    let pk = &options["publicKey"];
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "required");
    assert!(is_b64url_unpadded(pk["challenge"].as_str().unwrap()));
    assert_eq!(
        pk["allowCredentials"],
        json!([
            {"type": "public-key", "id": ids[0].to_base64url()},
            {"type": "public-key", "id": ids[1].to_base64url()},
        ])
    );
    let (options, state) = rp.start_authentication(None).unwrap();
    assert!(!state.is_username_first());
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    assert!(options.get("mediation").is_none());
}

#[test]
fn register_then_sign_in_with_and_without_a_username() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let uid = Uuid::new_v4();
    let (options, state) = rp.start_registration(&user(uid), &[]).unwrap();
    assert_eq!(state.user_id(), uid);
    let response = auth.create(&options).unwrap();
    let new = rp.finish_registration(&state, &response).unwrap();
    assert_eq!(new.credential_id.as_bytes(), auth.credentials[0].id);
    assert_eq!(new.credential_id, new.credential.id());
    assert_eq!(
        (new.counter, new.backup_eligible, new.backed_up),
        (0, false, false)
    );
    let stored = StoredPasskey {
        user_id: uid,
        credential: new.credential.clone(),
    };

    // Username-first: the account's credentials are listed.
    let first = sign_in(
        &rp,
        &mut auth,
        Some(std::slice::from_ref(&new.credential_id)),
        &stored,
    )
    .unwrap();
    assert_eq!(first.user_id, uid);
    assert_eq!(first.credential_id, new.credential_id);
    assert_eq!(first.counter, 1);
    assert!(first.changed);
    assert_eq!(first.credential.counter(), 1);

    // Discoverable: nothing listed, the user handle names the account.
    let stored = StoredPasskey {
        user_id: uid,
        credential: first.credential,
    };
    let second = sign_in(&rp, &mut auth, None, &stored).unwrap();
    assert_eq!((second.user_id, second.counter), (uid, 2));
    assert_eq!(second.credential.counter(), 2);
}

#[test]
fn a_synced_passkey_reports_its_backup_flags_and_may_keep_no_counter() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    auth.backed_up = true;
    auth.no_counter = true;
    let uid = Uuid::new_v4();
    let stored = register(&rp, &mut auth, uid);
    assert!(stored.credential.backup_eligible() && stored.credential.backed_up());
    for _ in 0..2 {
        let ok = sign_in(&rp, &mut auth, None, &stored).unwrap();
        assert_eq!(ok.counter, 0);
        assert!(ok.backup_eligible && ok.backed_up);
        assert!(!ok.changed);
    }
}

#[test]
fn state_survives_json_between_instances() {
    let (a, b) = (rp(), rp());
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let uid = Uuid::new_v4();

    let (options, state) = a.start_registration(&user(uid), &[]).unwrap();
    let json = state.to_json();
    let state = RegistrationState::from_json(&json).unwrap();
    let new = b
        .finish_registration(&state, &auth.create(&options).unwrap())
        .unwrap();
    let stored = StoredPasskey {
        user_id: uid,
        credential: PasskeyCredential::from_json(&new.credential.to_json()).unwrap(),
    };

    for allowed in [Some(vec![new.credential_id.clone()]), None] {
        let (options, state) = a.start_authentication(allowed.as_deref()).unwrap();
        let state = AuthenticationState::from_json(&state.to_json()).unwrap();
        assert_eq!(state.is_username_first(), allowed.is_some());
        let assertion = Assertion::parse(&auth.get(&options).unwrap()).unwrap();
        let ok = b
            .finish_authentication(&state, &assertion, Some(&stored))
            .unwrap();
        assert_eq!(ok.user_id, uid);
    }
    assert!(matches!(
        RegistrationState::from_json("{\"nope\":1}"),
        Err(PasskeyError::Internal(_))
    ));
}
