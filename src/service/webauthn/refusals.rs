//! Every refusal the contract names, made to happen once: missing user verification, a
//! wrong origin or RP ID hash, a bad signature, a counter that does not increase, unknown
//! credentials and user handles, a response to another ceremony, an excluded credential,
//! malformed JSON; and the independent `webauthn-authenticator-rs` soft passkey.

use super::soft::SoftAuthenticator;
use super::tests::{register, rp, sign_in, user, ORIGIN};
use super::*;
use serde_json::{json, Value};

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
