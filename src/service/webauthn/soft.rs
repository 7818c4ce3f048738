//! A software authenticator and client for tests, written from the WebAuthn Level 3 spec
//! (§6.1 authenticator data, §6.5 attestation `none`, §7 client data), independent of
//! `webauthn-rs`: ES256 keys (`p256`), CBOR by `ciborium`. It takes the server's options
//! JSON and returns what `credential.toJSON()` gives in a browser, and every field can be
//! made wrong on purpose (flags, origin, RP ID, counter, signature, user handle).
//!
//! It must not be used outside tests: it keeps private keys in memory and checks nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ciborium::value::Value as Cbor;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One credential the authenticator holds.
#[derive(Clone)]
pub struct SoftCredential {
    pub id: Vec<u8>,
    key: SigningKey,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    pub counter: u32,
}

/// The authenticator plus the browser around it. The public fields shape the next response.
pub struct SoftAuthenticator {
    pub credentials: Vec<SoftCredential>,
    /// The page's origin, written into `clientDataJSON`.
    pub origin: String,
    /// Sets the UV flag (user verification performed).
    pub user_verified: bool,
    /// Sets BE and BS (a synced passkey).
    pub backed_up: bool,
    /// Hash this RP ID into the authenticator data instead of the options' one.
    pub rp_id_override: Option<String>,
    /// Sign with this counter instead of the next one.
    pub counter_override: Option<u32>,
    /// Keep no counter (always 0), like many synced passkeys.
    pub no_counter: bool,
    /// Sign something else than what is sent.
    pub bad_signature: bool,
    /// Leave `userHandle` out of the assertion.
    pub omit_user_handle: bool,
    /// `clientDataJSON.type` override.
    pub ceremony_type_override: Option<String>,
    /// The id of the next credential created (random otherwise).
    pub next_id: Option<Vec<u8>>,
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).expect("CBOR encodes");
    out
}

fn random_key() -> SigningKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SigningKey::from_bytes(&bytes.into()) {
            return k;
        }
    }
}

impl SoftAuthenticator {
    pub fn new(origin: &str) -> Self {
        Self {
            credentials: Vec::new(),
            origin: origin.to_string(),
            user_verified: true,
            backed_up: false,
            rp_id_override: None,
            counter_override: None,
            no_counter: false,
            bad_signature: false,
            omit_user_handle: false,
            ceremony_type_override: None,
            next_id: None,
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        let kind = self.ceremony_type_override.as_deref().unwrap_or(kind);
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    fn flags(&self) -> u8 {
        let mut f = UP;
        if self.user_verified {
            f |= UV;
        }
        if self.backed_up {
            f |= BE | BS;
        }
        f
    }

    /// `navigator.credentials.create(parseCreationOptionsFromJSON(options.publicKey))`.
    /// `Err("InvalidStateError")` when it already holds an excluded credential, as a browser.
    pub fn create(&mut self, options: &Value) -> Result<Value, &'static str> {
        let pk = &options["publicKey"];
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id").to_string();
        let challenge = pk["challenge"].as_str().expect("challenge");
        let user_handle = B64
            .decode(pk["user"]["id"].as_str().expect("user.id"))
            .expect("user.id is base64url");
        assert!(
            pk["pubKeyCredParams"]
                .as_array()
                .expect("pubKeyCredParams")
                .iter()
                .any(|p| p["alg"] == -7 && p["type"] == "public-key"),
            "ES256 offered"
        );
        let excluded: Vec<Vec<u8>> = pk["excludeCredentials"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| B64.decode(c["id"].as_str().expect("id")).expect("b64"))
                    .collect()
            })
            .unwrap_or_default();
        if self.credentials.iter().any(|c| excluded.contains(&c.id)) {
            return Err("InvalidStateError");
        }

        let key = random_key();
        let id = self
            .next_id
            .take()
            .unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
        let point = key.verifying_key().to_encoded_point(false);
        let cose_key = Cbor::Map(vec![
            (Cbor::Integer(1.into()), Cbor::Integer(2.into())), // kty: EC2
            (Cbor::Integer(3.into()), Cbor::Integer((-7).into())), // alg: ES256
            (Cbor::Integer((-1).into()), Cbor::Integer(1.into())), // crv: P-256
            (
                Cbor::Integer((-2).into()),
                Cbor::Bytes(point.x().expect("x").to_vec()),
            ),
            (
                Cbor::Integer((-3).into()),
                Cbor::Bytes(point.y().expect("y").to_vec()),
            ),
        ]);
        let hashed_rp = self.rp_id_override.clone().unwrap_or_else(|| rp_id.clone());
        let mut auth_data = sha256(hashed_rp.as_bytes());
        auth_data.push(self.flags() | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cbor(&cose_key));
        let attestation_object = cbor(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(auth_data.clone()),
            ),
        ]));
        let client_data = self.client_data("webauthn.create", challenge);

        self.credentials.push(SoftCredential {
            id: id.clone(),
            key,
            rp_id,
            user_handle,
            counter: 0,
        });
        Ok(json!({
            "id": B64.encode(&id),
            "rawId": B64.encode(&id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": B64.encode(&client_data),
                "attestationObject": B64.encode(&attestation_object),
                "authenticatorData": B64.encode(&auth_data),
                "publicKeyAlgorithm": -7,
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }))
    }

    /// `navigator.credentials.get(parseRequestOptionsFromJSON(options.publicKey))`: the
    /// first held credential that `allowCredentials` lists, or (empty list) that is bound to
    /// the RP ID. `None` when it holds none, as a browser would time out.
    pub fn get(&mut self, options: &Value) -> Option<Value> {
        let pk = &options["publicKey"];
        let rp_id = pk["rpId"].as_str().expect("rpId").to_string();
        let challenge = pk["challenge"].as_str().expect("challenge").to_string();
        let allowed: Vec<Vec<u8>> = pk["allowCredentials"]
            .as_array()
            .expect("allowCredentials")
            .iter()
            .map(|c| B64.decode(c["id"].as_str().expect("id")).expect("b64"))
            .collect();
        let index = self
            .credentials
            .iter()
            .position(|c| c.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&c.id)))?;
        let client_data = self.client_data("webauthn.get", &challenge);
        let flags = self.flags();
        let hashed_rp = self.rp_id_override.clone().unwrap_or_else(|| rp_id.clone());
        let (no_counter, counter_override, bad_signature) =
            (self.no_counter, self.counter_override, self.bad_signature);
        let omit_user_handle = self.omit_user_handle;

        let cred = &mut self.credentials[index];
        if !no_counter {
            cred.counter += 1;
        }
        let counter = counter_override.unwrap_or(if no_counter { 0 } else { cred.counter });
        let mut auth_data = sha256(hashed_rp.as_bytes());
        auth_data.push(flags);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(&client_data));
        if bad_signature {
            signed[0] ^= 0xff;
        }
        let signature: Signature = cred.key.sign(&signed);
        let mut response = json!({
            "clientDataJSON": B64.encode(&client_data),
            "authenticatorData": B64.encode(&auth_data),
            "signature": B64.encode(signature.to_der().as_bytes()),
        });
        if !omit_user_handle {
            response["userHandle"] = json!(B64.encode(&cred.user_handle));
        }
        Some(json!({
            "id": B64.encode(&cred.id),
            "rawId": B64.encode(&cred.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": response,
            "clientExtensionResults": {},
        }))
    }
}
