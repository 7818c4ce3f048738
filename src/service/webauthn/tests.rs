//! The ceremonies end to end: the module's options go to a software authenticator (ours in
//! `soft`, written from the spec, and `webauthn-authenticator-rs`'s soft passkey), its
//! responses come back through the module, and every check the contract names is made to
//! fail once.

use super::soft::SoftAuthenticator;
use super::*;
use serde_json::{json, Value};

const ORIGIN: &str = "http://localhost:8080";

fn rp() -> Passkeys {
    Passkeys::new("localhost", "tradeauth", &[ORIGIN]).expect("valid RP")
}

fn user(id: Uuid) -> PasskeyUser<'static> {
    PasskeyUser {
        id,
        name: "alice@example.com",
        display_name: "Alice",
    }
}

/// Registers one passkey with `auth` and returns it as stored.
fn register(rp: &Passkeys, auth: &mut SoftAuthenticator, user_id: Uuid) -> StoredPasskey {
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
fn sign_in(
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

#[test]
fn missing_user_verification_is_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    auth.user_verified = false;
    let (options, state) = rp.start_registration(&user(Uuid::new_v4()), &[]).unwrap();
    let err = rp
        .finish_registration(&state, &auth.create(&options).unwrap())
        .unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::UserNotVerified));
    assert_eq!(err.code(), "invalid_passkey");

    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, Uuid::new_v4());
    auth.user_verified = false;
    let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::UserNotVerified));
    assert_eq!(err.code(), "invalid_passkey");
}

#[test]
fn a_wrong_origin_is_refused() {
    let rp = rp();
    let mut evil = SoftAuthenticator::new("http://localhost:9999");
    let (options, state) = rp.start_registration(&user(Uuid::new_v4()), &[]).unwrap();
    let err = rp
        .finish_registration(&state, &evil.create(&options).unwrap())
        .unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::WrongOrigin));

    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, Uuid::new_v4());
    for origin in [
        "https://localhost:8080",
        "http://evil.localhost:8080",
        "http://localhost",
    ] {
        auth.origin = origin.to_string();
        let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
        assert_eq!(err, PasskeyError::Refused(Refusal::WrongOrigin), "{origin}");
        assert_eq!(err.code(), "invalid_passkey");
    }
}

#[test]
fn a_wrong_rp_id_hash_is_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    auth.rp_id_override = Some("example.com".into());
    let (options, state) = rp.start_registration(&user(Uuid::new_v4()), &[]).unwrap();
    let err = rp
        .finish_registration(&state, &auth.create(&options).unwrap())
        .unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::WrongRpIdHash));

    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, Uuid::new_v4());
    auth.rp_id_override = Some("localhost.example".into());
    let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::WrongRpIdHash));
    assert_eq!(err.code(), "invalid_passkey");
}

#[test]
fn a_bad_signature_is_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, Uuid::new_v4());
    auth.bad_signature = true;
    let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::BadSignature));
    assert_eq!(err.code(), "invalid_passkey");
    assert!(!err.is_clone_suspected());

    // Another credential's key does not sign for this one either.
    let mut other = SoftAuthenticator::new(ORIGIN);
    register(&rp, &mut other, Uuid::new_v4());
    other.credentials[0].id = auth.credentials[0].id.clone();
    other.credentials[0].user_handle = stored.user_id.as_bytes().to_vec();
    let err = sign_in(&rp, &mut other, None, &stored).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::BadSignature));
}

#[test]
fn a_counter_that_does_not_increase_is_a_suspected_clone() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let uid = Uuid::new_v4();
    let mut stored = register(&rp, &mut auth, uid);
    auth.counter_override = Some(5);
    stored.credential = sign_in(&rp, &mut auth, None, &stored).unwrap().credential;
    assert_eq!(stored.credential.counter(), 5);
    for presented in [5, 4, 0] {
        auth.counter_override = Some(presented);
        let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
        assert_eq!(
            err,
            PasskeyError::CounterRegression {
                stored: 5,
                presented: Some(presented)
            }
        );
        assert!(err.is_clone_suspected());
        assert_eq!(err.code(), "invalid_passkey");
    }
    auth.counter_override = Some(6);
    assert_eq!(sign_in(&rp, &mut auth, None, &stored).unwrap().counter, 6);
}

#[test]
fn unknown_or_unlisted_credentials_are_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, Uuid::new_v4());

    // Nothing stored under that id.
    let (options, state) = rp.start_authentication(None).unwrap();
    let assertion = Assertion::parse(&auth.get(&options).unwrap()).unwrap();
    assert_eq!(assertion.credential_id(), stored.credential.id());
    let err = rp
        .finish_authentication(&state, &assertion, None)
        .unwrap_err();
    assert_eq!(err, PasskeyError::UnknownCredential);
    assert_eq!(err.code(), "invalid_passkey");

    // The caller handed over another credential than the one presented.
    let mut other = SoftAuthenticator::new(ORIGIN);
    let other_stored = register(&rp, &mut other, stored.user_id);
    let err = rp
        .finish_authentication(&state, &assertion, Some(&other_stored))
        .unwrap_err();
    assert_eq!(err, PasskeyError::UnknownCredential);

    // Username-first: a credential of the account that was not listed.
    let (mut options, state) = rp
        .start_authentication(Some(&[other_stored.credential.id()]))
        .unwrap();
    options["publicKey"]["allowCredentials"] = json!([]);
    let assertion = Assertion::parse(&auth.get(&options).unwrap()).unwrap();
    let err = rp
        .finish_authentication(&state, &assertion, Some(&stored))
        .unwrap_err();
    assert_eq!(err, PasskeyError::UnknownCredential);
}

#[test]
fn the_user_handle_must_name_the_owner() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, Uuid::new_v4());
    let mut elsewhere = stored.clone();
    elsewhere.user_id = Uuid::new_v4();
    let err = sign_in(&rp, &mut auth, None, &elsewhere).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::UserHandleMismatch));

    // Username-less needs the handle; username-first does without.
    auth.omit_user_handle = true;
    let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::UserHandleMismatch));
    let id = stored.credential.id();
    assert!(sign_in(&rp, &mut auth, Some(&[id]), &stored).is_ok());
}

#[test]
fn a_response_to_another_ceremony_is_refused() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let mut stored = register(&rp, &mut auth, Uuid::new_v4());

    // A registration response is not an assertion, and the reverse.
    auth.ceremony_type_override = Some("webauthn.create".into());
    let err = sign_in(&rp, &mut auth, None, &stored).unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::WrongCeremony));
    auth.ceremony_type_override = None;

    // A replay: the assertion of a finished ceremony, against a new challenge...
    let (options, state) = rp.start_authentication(None).unwrap();
    let assertion = Assertion::parse(&auth.get(&options).unwrap()).unwrap();
    stored.credential = rp
        .finish_authentication(&state, &assertion, Some(&stored))
        .unwrap()
        .credential;
    let (_, fresh) = rp.start_authentication(None).unwrap();
    let err = rp
        .finish_authentication(&fresh, &assertion, Some(&stored))
        .unwrap_err();
    assert_eq!(err, PasskeyError::Refused(Refusal::WrongChallenge));
    // ...and against its own, used state: the stored counter has moved past it. (A state
    // must still be single-use: the caller deletes it before finishing, because an
    // authenticator without a counter would pass this check.)
    let err = rp
        .finish_authentication(&state, &assertion, Some(&stored))
        .unwrap_err();
    assert!(err.is_clone_suspected(), "{err:?}");
}

#[test]
fn a_credential_the_account_already_has_is_refused() {
    let rp = rp();
    let uid = Uuid::new_v4();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let stored = register(&rp, &mut auth, uid);
    let id = stored.credential.id();
    let (options, state) = rp
        .start_registration(&user(uid), std::slice::from_ref(&id))
        .unwrap();
    // A browser's authenticator that holds it refuses to make another...
    assert_eq!(auth.create(&options).unwrap_err(), "InvalidStateError");
    // ...and a client that ignores excludeCredentials is refused here.
    let mut rogue = SoftAuthenticator::new(ORIGIN);
    rogue.next_id = Some(id.as_bytes().to_vec());
    let err = rp
        .finish_registration(&state, &rogue.create(&options).unwrap())
        .unwrap_err();
    assert_eq!(err, PasskeyError::AlreadyRegistered);
    assert_eq!(err.code(), "passkey_exists");
}

#[test]
fn malformed_responses_are_validation_errors() {
    let rp = rp();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let (options, state) = rp.start_registration(&user(Uuid::new_v4()), &[]).unwrap();
    let good = auth.create(&options).unwrap();
    let mut cases: Vec<Value> = vec![json!(null), json!("x"), json!({}), json!([])];
    let mut c = good.clone();
    c["response"]
        .as_object_mut()
        .unwrap()
        .remove("attestationObject");
    cases.push(c);
    let mut c = good.clone();
    c["rawId"] = json!("not base64url!");
    cases.push(c);
    let mut c = good.clone();
    c["type"] = json!("password");
    cases.push(c);
    let mut c = good.clone();
    c["id"] = json!("AAAA");
    cases.push(c);
    for case in &cases {
        let err = rp.finish_registration(&state, case).unwrap_err();
        assert!(matches!(err, PasskeyError::Malformed(_)), "{case}: {err:?}");
        assert_eq!(err.code(), "validation_error");
    }
    // Well-formed JSON whose bytes are not an attestation object.
    let mut c = good.clone();
    c["response"]["attestationObject"] = json!("AAAA");
    let err = rp.finish_registration(&state, &c).unwrap_err();
    assert_eq!(err.code(), "invalid_passkey", "{err:?}");
    // The good one still registers: nothing above consumed anything.
    assert!(rp.finish_registration(&state, &good).is_ok());

    let stored = register(&rp, &mut auth, Uuid::new_v4());
    let (options, _) = rp.start_authentication(None).unwrap();
    auth.credentials.swap(0, 1);
    let good = auth.get(&options).unwrap();
    assert_eq!(
        Assertion::parse(&good).unwrap().credential_id(),
        stored.credential.id()
    );
    for field in ["signature", "authenticatorData", "clientDataJSON"] {
        let mut c = good.clone();
        c["response"].as_object_mut().unwrap().remove(field);
        let err = Assertion::parse(&c).unwrap_err();
        assert_eq!(err.code(), "validation_error", "{field}");
    }
}

#[test]
fn webauthn_authenticator_rs_soft_passkey_registers_and_signs_in() {
    use webauthn_authenticator_rs::prelude::{Url, WebauthnAuthenticator};
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    let rp = rp();
    let uid = Uuid::new_v4();
    let origin = Url::parse(ORIGIN).unwrap();
    // `true`: it claims user verification (it has no way to perform one).
    let mut token = SoftPasskey::new(true);

    let (options, state) = rp.start_registration(&user(uid), &[]).unwrap();
    let response = token
        .do_registration(origin.clone(), serde_json::from_value(options).unwrap())
        .expect("soft passkey registers");
    let new = rp
        .finish_registration(&state, &serde_json::to_value(&response).unwrap())
        .unwrap();
    let stored = StoredPasskey {
        user_id: uid,
        credential: new.credential,
    };

    let (options, state) = rp.start_authentication(Some(&[new.credential_id])).unwrap();
    let response = token
        .do_authentication(origin, serde_json::from_value(options).unwrap())
        .expect("soft passkey signs");
    let assertion = Assertion::parse(&serde_json::to_value(&response).unwrap()).unwrap();
    let ok = rp
        .finish_authentication(&state, &assertion, Some(&stored))
        .unwrap();
    assert_eq!(ok.user_id, uid);
    assert!(ok.counter >= 1);
}

#[test]
fn fake_credential_ids_are_stable_per_username() {
    let key = [7u8; 32];
    let a = Passkeys::fake_credential_ids(&key, "Alice@Example.com").unwrap();
    assert!(!a.is_empty());
    assert_eq!(
        a,
        Passkeys::fake_credential_ids(&key, "alice@example.com").unwrap()
    );
    assert_ne!(
        a,
        Passkeys::fake_credential_ids(&key, "bob@example.com").unwrap()
    );
    assert_ne!(
        a,
        Passkeys::fake_credential_ids(&[8u8; 32], "alice@example.com").unwrap()
    );
}
