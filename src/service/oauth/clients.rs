//! The client registry (tier 4): register, read, change, re-key and delete OAuth clients.
//! A secret is shown once and stored as its SHA-256 (it is 256 random bits, so a slow hash
//! adds nothing); rotating it makes the old one stop working at once.

use super::{hash, random_token};
use crate::domain::fapi::{parse_jwks, parse_jwks_uri, AuthMethod, ClientFapi};
use crate::domain::oauth::{
    parse_redirect_uri, ClientType, GrantType, OAuthClient, Scopes, SCOPES,
};
use crate::domain::{AuditKind, Tier, UserId};
use crate::service::{Audit, Error, Paged, RequestContext, Result, Service};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Utc;
use serde_json::json;
use std::collections::BTreeMap;

/// The creation fields (all optional in a change).
#[derive(Debug, Clone, Default)]
pub struct ClientInput {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `confidential` or `public`.
    pub client_type: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub max_tier: Option<i64>,
    pub first_party: Option<bool>,
    /// `RS256` (default), or the access tokens' algorithm when it is `ES256` or `EdDSA`.
    pub id_token_signed_response_alg: Option<String>,
    /// Back-channel logout: an `https` URI (or `http` on loopback); `Some("")` removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Only `true` is accepted: every logout token carries `sid`.
    pub backchannel_logout_session_required: Option<bool>,
    /// `client_secret_basic` (default for confidential clients), `client_secret_post`,
    /// `private_key_jwt` or `none` (public clients).
    pub token_endpoint_auth_method: Option<String>,
    /// A JWK set object (`private_key_jwt`).
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK set instead (`private_key_jwt`).
    pub jwks_uri: Option<String>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
}

/// The finance-grade fields of a [`ClientInput`].
struct FapiInput {
    method: Option<String>,
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
    require_par: Option<bool>,
    dpop_bound: Option<bool>,
}

/// Applies the authentication method, keys, PAR and DPoP settings, after the client
/// type: a public client authenticates with `none`, a confidential one never does; when
/// the type changes and no method is given, the method follows it.
fn apply_fapi_input(client: &mut OAuthClient, f: &FapiInput, bad: &mut BTreeMap<String, String>) {
    let fapi = &mut client.fapi;
    match f.method.as_deref().map(AuthMethod::parse) {
        Some(Ok(m)) => fapi.auth_method = m,
        Some(Err(e)) => {
            bad.insert(e.field.into(), e.message);
        }
        None => {
            fapi.auth_method = match (client.client_type, fapi.auth_method) {
                (ClientType::Public, _) => AuthMethod::None,
                (ClientType::Confidential, AuthMethod::None) => AuthMethod::ClientSecretBasic,
                (_, m) => m,
            }
        }
    }
    if let Some(j) = &f.jwks {
        match parse_jwks(j) {
            Ok(j) => fapi.jwks = Some(j),
            Err(e) => {
                bad.insert(e.field.into(), e.message);
            }
        }
        fapi.jwks_uri = None;
    }
    if let Some(u) = &f.jwks_uri {
        if f.jwks.is_some() {
            bad.insert("jwks_uri".into(), "send jwks or jwks_uri, not both".into());
        }
        match parse_jwks_uri(u) {
            Ok(u) => fapi.jwks_uri = Some(u),
            Err(e) => {
                bad.insert(e.field.into(), e.message);
            }
        }
        fapi.jwks = None;
    }
    if let Some(v) = f.require_par {
        fapi.require_par = v;
    }
    if let Some(v) = f.dpop_bound {
        fapi.dpop_bound = v;
    }
    let public = client.client_type == ClientType::Public;
    if public != (fapi.auth_method == AuthMethod::None) {
        bad.entry("token_endpoint_auth_method".into())
            .or_insert_with(|| {
                if public {
                    "a public client authenticates with none".into()
                } else {
                    "a confidential client authenticates with client_secret_basic, \
                 client_secret_post or private_key_jwt"
                        .into()
                }
            });
    }
    if fapi.auth_method == AuthMethod::PrivateKeyJwt {
        if fapi.jwks.is_none() && fapi.jwks_uri.is_none() {
            bad.entry("jwks".into())
                .or_insert_with(|| "private_key_jwt needs jwks or jwks_uri".into());
        }
    } else {
        // Keys only serve private_key_jwt: a client that stops using it drops them.
        fapi.jwks = None;
        fapi.jwks_uri = None;
    }
}

/// A client secret, shown once. No `Debug`.
pub struct NewClientSecret(pub String);

impl Service {
    /// Applies `input` to `client` (a new one, or a stored one being changed), checking
    /// every field; every problem is reported at once.
    fn apply_client_input(&self, client: &mut OAuthClient, input: ClientInput) -> Result<()> {
        let mut bad = BTreeMap::new();
        let input_fapi = FapiInput {
            method: input.token_endpoint_auth_method.clone(),
            jwks: input.jwks.clone(),
            jwks_uri: input.jwks_uri.clone(),
            require_par: input.require_pushed_authorization_requests,
            dpop_bound: input.dpop_bound_access_tokens,
        };
        if let Some(name) = input.name {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().count() > 100 {
                bad.insert("name".into(), "name must be 1 to 100 characters".into());
            }
            client.name = name;
        }
        if let Some(t) = input.client_type {
            match ClientType::parse(&t) {
                Ok(t) => client.client_type = t,
                Err(e) => {
                    bad.insert(e.field.into(), e.message);
                }
            }
        }
        let mut uris = |field: &'static str, list: Vec<String>| -> Vec<String> {
            list.iter()
                .filter_map(|u| match parse_redirect_uri(field, u) {
                    Ok(u) => Some(u),
                    Err(e) => {
                        bad.insert(field.into(), e.message);
                        None
                    }
                })
                .collect()
        };
        if let Some(list) = input.redirect_uris {
            client.redirect_uris = uris("redirect_uris", list);
        }
        if let Some(list) = input.post_logout_redirect_uris {
            client.post_logout_redirect_uris = uris("post_logout_redirect_uris", list);
        }
        if let Some(list) = input.grant_types {
            let mut grants = Vec::new();
            for g in &list {
                match GrantType::parse(g) {
                    Some(g) if !grants.contains(&g) => grants.push(g),
                    Some(_) => {}
                    None => {
                        bad.insert(
                            "grant_types".into(),
                            format!("unknown grant type {g:?}; use authorization_code, refresh_token, client_credentials, {} or {}", crate::domain::oauth::DEVICE_CODE_GRANT, crate::domain::oauth::TOKEN_EXCHANGE_GRANT),
                        );
                    }
                }
            }
            grants.sort();
            client.grant_types = grants;
        }
        if let Some(list) = input.scopes {
            if let Some(unknown) = list.iter().find(|s| !SCOPES.contains(&s.as_str())) {
                bad.insert(
                    "scopes".into(),
                    format!("unknown scope {unknown:?}; known: {}", SCOPES.join(" ")),
                );
            }
            client.scopes = Scopes::from_iter(list.iter().map(String::as_str));
        }
        if let Some(t) = input.max_tier {
            match Tier::new(t) {
                Ok(t) => client.max_tier = t,
                Err(_) => {
                    bad.insert("max_tier".into(), "max_tier must be 1, 2, 3 or 4".into());
                }
            }
        }
        if let Some(f) = input.first_party {
            client.first_party = f;
        }
        if let Some(alg) = input.id_token_signed_response_alg {
            if self.id_token_algs().contains(&alg.as_str()) {
                client.id_token_alg = alg;
            } else {
                bad.insert(
                    "id_token_signed_response_alg".into(),
                    format!(
                        "ID tokens are signed with {}, never {alg:?}",
                        self.id_token_algs().join(", ")
                    ),
                );
            }
        }
        if let Some(uri) = input.backchannel_logout_uri {
            let uri = uri.trim().to_string();
            if uri.is_empty() {
                client.backchannel_logout_uri = None;
            } else {
                match super::backchannel::parse_logout_uri(&uri) {
                    Ok(()) => client.backchannel_logout_uri = Some(uri),
                    Err(m) => {
                        bad.insert("backchannel_logout_uri".into(), m);
                    }
                }
            }
        }
        if input.backchannel_logout_session_required == Some(false) {
            bad.insert(
                "backchannel_logout_session_required".into(),
                "logout tokens always carry sid: this can only be true".into(),
            );
        }
        apply_fapi_input(client, &input_fapi, &mut bad);
        // Rules across fields.
        if client.allows(GrantType::AuthorizationCode) && client.redirect_uris.is_empty() {
            bad.entry("redirect_uris".into()).or_insert_with(|| {
                "at least one redirect URI is required for the authorization_code grant".into()
            });
        }
        if client.client_type == ClientType::Public && client.allows(GrantType::ClientCredentials) {
            bad.insert(
                "grant_types".into(),
                "client_credentials is for confidential clients only".into(),
            );
        }
        if client.client_type == ClientType::Public && client.allows(GrantType::TokenExchange) {
            bad.insert(
                "grant_types".into(),
                "token exchange is for confidential clients only".into(),
            );
        }
        if client.grant_types.is_empty() {
            bad.entry("grant_types".into())
                .or_insert_with(|| "at least one grant type is required".into());
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::fields(bad))
        }
    }

    /// Registers a client; the secret (confidential clients) is returned this once.
    #[tracing::instrument(skip_all)]
    pub async fn create_client(
        &self,
        actor: Option<UserId>,
        input: ClientInput,
        ctx: Option<&RequestContext>,
    ) -> Result<(OAuthClient, Option<NewClientSecret>)> {
        let mut missing = BTreeMap::new();
        if input.name.is_none() {
            missing.insert("name".to_string(), "name is required".to_string());
        }
        if input.client_type.is_none() {
            missing.insert(
                "client_type".to_string(),
                "client_type is required (\"confidential\" or \"public\")".to_string(),
            );
        }
        if !missing.is_empty() {
            return Err(Error::fields(missing));
        }
        let now = Utc::now();
        let mut client = OAuthClient {
            client_id: super::new_client_id(),
            name: String::new(),
            secret_hash: None,
            client_type: ClientType::Confidential,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: Scopes::from_iter(SCOPES),
            max_tier: Tier::TRADER,
            first_party: false,
            id_token_alg: "RS256".into(),
            backchannel_logout_uri: None,
            fapi: ClientFapi::default(),
            created_at: now,
            updated_at: now,
        };
        self.apply_client_input(&mut client, input)?;
        let secret = (client.client_type == ClientType::Confidential
            && client.fapi.auth_method.uses_secret())
        .then(|| random_token(32));
        client.secret_hash = secret.as_deref().map(hash);
        self.store.insert_client(&client).await?;
        self.audit(
            Audit::new(AuditKind::OAuthClientCreated)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"client_id": client.client_id, "name": client.name})),
        )
        .await;
        Ok((client, secret.map(NewClientSecret)))
    }

    pub async fn get_client(&self, client_id: &str) -> Result<OAuthClient> {
        self.store
            .client(client_id)
            .await?
            .ok_or(Error::NotFound("client"))
    }

    /// Clients in id order; the cursor is the last id of the page before.
    pub async fn list_clients(
        &self,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Paged<OAuthClient>> {
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                B64.decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| Error::field("cursor", "cursor is not valid"))?,
            ),
        };
        let limit = match limit {
            None => 50,
            Some(n) if n < 1 => return Err(Error::field("limit", "limit must be at least 1")),
            Some(n) => n.min(200),
        };
        let mut rows = self.store.list_clients(after.as_deref(), limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|c| B64.encode(&c.client_id)))
            .flatten();
        Ok(Paged {
            items: rows,
            next_cursor,
        })
    }

    /// Changes a client's settings. Turning a client public drops its secret; turning it
    /// confidential needs a new secret (`rotate_client_secret`) before it can sign in.
    #[tracing::instrument(skip_all)]
    pub async fn update_client(
        &self,
        actor: Option<UserId>,
        client_id: &str,
        input: ClientInput,
        ctx: Option<&RequestContext>,
    ) -> Result<OAuthClient> {
        let mut client = self.get_client(client_id).await?;
        self.apply_client_input(&mut client, input)?;
        if !client.fapi.auth_method.uses_secret() {
            client.secret_hash = None;
        }
        client.updated_at = Utc::now();
        if !self.store.update_client(&client).await? {
            return Err(Error::NotFound("client"));
        }
        self.audit(
            Audit::new(AuditKind::OAuthClientUpdated)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"client_id": client.client_id})),
        )
        .await;
        Ok(client)
    }

    /// A new secret for a confidential client; the old one stops working at once.
    #[tracing::instrument(skip_all)]
    pub async fn rotate_client_secret(
        &self,
        actor: Option<UserId>,
        client_id: &str,
        ctx: Option<&RequestContext>,
    ) -> Result<NewClientSecret> {
        let mut client = self.get_client(client_id).await?;
        if client.client_type == ClientType::Public {
            return Err(Error::field(
                "client_type",
                "a public client has no secret; make it confidential first",
            ));
        }
        if !client.fapi.auth_method.uses_secret() {
            return Err(Error::field(
                "token_endpoint_auth_method",
                "this client authenticates with private_key_jwt and has no secret",
            ));
        }
        let secret = random_token(32);
        client.secret_hash = Some(hash(&secret));
        client.updated_at = Utc::now();
        if !self.store.update_client(&client).await? {
            return Err(Error::NotFound("client"));
        }
        self.audit(
            Audit::new(AuditKind::OAuthClientSecretRotated)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"client_id": client.client_id})),
        )
        .await;
        Ok(NewClientSecret(secret))
    }

    /// Deletes a client and revokes every session (so every token) it holds.
    #[tracing::instrument(skip_all)]
    pub async fn delete_client(
        &self,
        actor: Option<UserId>,
        client_id: &str,
        ctx: Option<&RequestContext>,
    ) -> Result<()> {
        let now = Utc::now();
        let until = self.sid_revocation_until(now);
        let revoked = self
            .store
            .delete_client(client_id, super::token::client_sid(client_id), now, until)
            .await?
            .ok_or(Error::NotFound("client"))?;
        self.announce_revoked(&revoked, until).await;
        self.audit(
            Audit::new(AuditKind::OAuthClientDeleted)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"client_id": client_id, "sessions": revoked})),
        )
        .await;
        Ok(())
    }

    /// Sessions the store revoked: on this instance's list at once, and to the others.
    pub(super) async fn announce_revoked(&self, ids: &[uuid::Uuid], until: chrono::DateTime<Utc>) {
        for id in ids {
            self.revocations
                .insert(crate::store::Revoked::Sid(*id), until);
            let _ = self.revoked_sessions.send(*id);
            self.publish(crate::store::Revoked::Sid(*id), until).await;
        }
    }
}
