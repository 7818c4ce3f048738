//! The OAuth client form of `/admin/clients`: what its body holds (checkboxes repeat their
//! name, which `Form` cannot read) and how a client, a blank form or a refused form is shown.

use crate::domain::oauth::{ClientType, GrantType, OAuthClient, SCOPES};
use crate::service::oauth::clients::ClientInput;
use crate::service::Error;

const GRANTS: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    crate::domain::oauth::DEVICE_CODE_GRANT,
    crate::domain::oauth::TOKEN_EXCHANGE_GRANT,
];

/// The client form's fields. Checkboxes repeat their name (`grant_types`, `scopes`), which
/// `Form` cannot read, so the body is parsed by [`ClientForm::parse`]; URI lists are one per
/// line.
#[derive(Default)]
pub(super) struct ClientForm {
    pub(super) csrf_token: Option<String>,
    name: Option<String>,
    client_type: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: Vec<String>,
    scopes: Vec<String>,
    max_tier: Option<String>,
    /// A checkbox: present when checked.
    first_party: Option<String>,
    backchannel_logout_uri: String,
    /// Empty: the method follows the client type.
    auth_method: Option<String>,
    /// A JWK set as JSON (private_key_jwt); empty for none.
    jwks: String,
    jwks_uri: String,
    /// Checkboxes.
    require_par: Option<String>,
    dpop_bound: Option<String>,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

impl ClientForm {
    pub(super) fn parse(body: &[u8]) -> Self {
        let mut f = ClientForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = v.into_owned();
            match &*k {
                "csrf_token" => f.csrf_token = Some(v),
                "name" => f.name = Some(v),
                "client_type" => f.client_type = Some(v),
                "redirect_uris" => f.redirect_uris = v,
                "post_logout_redirect_uris" => f.post_logout_redirect_uris = v,
                "grant_types" => f.grant_types.push(v),
                "scopes" => f.scopes.push(v),
                "max_tier" => f.max_tier = Some(v),
                "first_party" => f.first_party = Some(v),
                "backchannel_logout_uri" => f.backchannel_logout_uri = v,
                "token_endpoint_auth_method" => f.auth_method = Some(v),
                "jwks" => f.jwks = v,
                "jwks_uri" => f.jwks_uri = v,
                "require_pushed_authorization_requests" => f.require_par = Some(v),
                "dpop_bound_access_tokens" => f.dpop_bound = Some(v),
                _ => {}
            }
        }
        f
    }

    pub(super) fn input(&self, creating: bool) -> Result<ClientInput, Error> {
        let max_tier = match self.max_tier.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| Error::field("max_tier", "max_tier must be 1, 2, 3 or 4"))?,
            ),
        };
        let jwks = match self.jwks.trim() {
            "" => None,
            text => Some(
                serde_json::from_str(text)
                    .map_err(|_| Error::field("jwks", "jwks must be a JSON JWK set"))?,
            ),
        };
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(ClientInput {
            name: self.name.clone(),
            redirect_uris: Some(lines(&self.redirect_uris)),
            post_logout_redirect_uris: Some(lines(&self.post_logout_redirect_uris)),
            client_type: if creating {
                self.client_type.clone()
            } else {
                None
            },
            grant_types: Some(self.grant_types.clone()),
            scopes: Some(self.scopes.clone()),
            max_tier,
            first_party: Some(self.first_party.is_some()),
            id_token_signed_response_alg: None,
            backchannel_logout_uri: Some(self.backchannel_logout_uri.trim().to_string()),
            backchannel_logout_session_required: None,
            token_endpoint_auth_method: self.auth_method.as_deref().and_then(text),
            jwks,
            jwks_uri: text(&self.jwks_uri),
            require_pushed_authorization_requests: Some(self.require_par.is_some()),
            dpop_bound_access_tokens: Some(self.dpop_bound.is_some()),
        })
    }
}

/// A client as the form shows it (also a refused form, as typed).
pub(super) struct FormView {
    pub(super) name: String,
    pub(super) confidential: bool,
    pub(super) redirect_uris: String,
    pub(super) post_logout_redirect_uris: String,
    pub(super) grants: Vec<(&'static str, bool)>,
    pub(super) scopes: Vec<(&'static str, bool)>,
    pub(super) max_tier: u8,
    pub(super) first_party: bool,
    pub(super) backchannel_logout_uri: String,
    /// The selected method; empty: follow the client type.
    pub(super) auth_method: String,
    pub(super) jwks: String,
    pub(super) jwks_uri: String,
    pub(super) require_par: bool,
    pub(super) dpop_bound: bool,
}

/// The methods the form offers (the empty one follows the client type).
const AUTH_METHOD_CHOICES: [&str; 5] = [
    "",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

impl FormView {
    pub(super) fn auth_methods(&self) -> &'static [&'static str] {
        &AUTH_METHOD_CHOICES
    }

    pub(super) fn blank() -> Self {
        Self {
            name: String::new(),
            confidential: true,
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            grants: GRANTS
                .iter()
                .map(|g| (*g, matches!(*g, "authorization_code" | "refresh_token")))
                .collect(),
            scopes: SCOPES
                .iter()
                .map(|s| (*s, matches!(*s, "openid" | "profile" | "email")))
                .collect(),
            max_tier: 2,
            first_party: false,
            backchannel_logout_uri: String::new(),
            auth_method: String::new(),
            jwks: String::new(),
            jwks_uri: String::new(),
            require_par: false,
            dpop_bound: false,
        }
    }

    pub(super) fn of(c: &OAuthClient) -> Self {
        Self {
            name: c.name.clone(),
            confidential: c.client_type == ClientType::Confidential,
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            grants: GRANTS
                .iter()
                .map(|g| (*g, GrantType::parse(g).is_some_and(|g| c.allows(g))))
                .collect(),
            scopes: SCOPES
                .iter()
                .map(|s| (*s, c.scopes.iter().any(|x| x == *s)))
                .collect(),
            max_tier: c.max_tier.get(),
            first_party: c.first_party,
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            auth_method: c.fapi.auth_method.as_str().to_string(),
            jwks: c
                .fapi
                .jwks
                .as_ref()
                .and_then(|j| serde_json::to_string_pretty(j).ok())
                .unwrap_or_default(),
            jwks_uri: c.fapi.jwks_uri.clone().unwrap_or_default(),
            require_par: c.fapi.require_par,
            dpop_bound: c.fapi.dpop_bound,
        }
    }

    pub(super) fn typed(f: &ClientForm) -> Self {
        Self {
            name: f.name.clone().unwrap_or_default(),
            confidential: f.client_type.as_deref() != Some("public"),
            redirect_uris: f.redirect_uris.clone(),
            post_logout_redirect_uris: f.post_logout_redirect_uris.clone(),
            grants: GRANTS
                .iter()
                .map(|g| (*g, f.grant_types.iter().any(|x| x == g)))
                .collect(),
            scopes: SCOPES
                .iter()
                .map(|s| (*s, f.scopes.iter().any(|x| x == s)))
                .collect(),
            max_tier: f
                .max_tier
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(2),
            first_party: f.first_party.is_some(),
            backchannel_logout_uri: f.backchannel_logout_uri.clone(),
            auth_method: f.auth_method.clone().unwrap_or_default(),
            jwks: f.jwks.clone(),
            jwks_uri: f.jwks_uri.clone(),
            require_par: f.require_par.is_some(),
            dpop_bound: f.dpop_bound.is_some(),
        }
    }
}
