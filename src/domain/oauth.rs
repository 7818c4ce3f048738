//! OAuth 2.1 / OpenID Connect rules that need no I/O: clients and their settings, scopes
//! and the tier each one carries, exact redirect-URI matching (any port on loopback,
//! RFC 8252 §7.3) and the PKCE `S256` check (RFC 7636).

use super::{FieldError, Tier};
use chrono::{DateTime, Utc};

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    /// A server-side application: authenticates with its secret.
    Confidential,
    /// A browser or native app: no secret (`token_endpoint_auth_method: none`).
    Public,
}

impl ClientType {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        match s {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            _ => Err(FieldError::new(
                "client_type",
                "client_type must be \"confidential\" or \"public\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

/// The grants a client may use at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
    /// RFC 8628: a device without a browser polls while its user approves elsewhere.
    DeviceCode,
    /// RFC 8693, down-scoping only: a subject token becomes a narrower access token.
    TokenExchange,
}

/// `grant_type` of the device authorization grant (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// `grant_type` of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl GrantType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "client_credentials" => Some(Self::ClientCredentials),
            DEVICE_CODE_GRANT => Some(Self::DeviceCode),
            TOKEN_EXCHANGE_GRANT => Some(Self::TokenExchange),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => DEVICE_CODE_GRANT,
            Self::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }
}

/// Every scope tradeauth knows, in the order discovery lists them.
pub const SCOPES: [&str; 8] = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "trade:read",
    "trade:write",
    "trade:power",
    "admin",
];

/// The tier a tier scope grants (`trade:read` 1 … `admin` 4); `None` for the others.
pub fn scope_tier(scope: &str) -> Option<Tier> {
    match scope {
        "trade:read" => Some(Tier::MONITOR),
        "trade:write" => Some(Tier::TRADER),
        "trade:power" => Some(Tier::POWER),
        "admin" => Some(Tier::ADMIN),
        _ => None,
    }
}

/// What a user reads on the consent page for each scope.
pub fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are (your account id)",
        "profile" => "See your name and username",
        "email" => "See your email address and whether it is verified",
        "offline_access" => "Stay signed in when you are not using it",
        "trade:read" => "Read your trading data (tier 1)",
        "trade:write" => "Trade on your behalf (tier 2)",
        "trade:power" => "Use power-trading features on your behalf (tier 3)",
        "admin" => "Administer tradeauth as you (tier 4)",
        _ => "Unknown permission",
    }
}

/// A set of scopes, as the space-separated `scope` parameter spells it (RFC 6749 §3.3):
/// deduplicated, in [`SCOPES`] order, unknown scopes dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// The known scopes of `s` (unknown ones are dropped, as RFC 6749 §3.3 allows).
    pub fn parse(s: &str) -> Self {
        Self::from_iter(s.split(' ').filter(|x| !x.is_empty()))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes of `self` that `other` holds too.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        Scopes::from_iter(self.iter().filter(|s| other.contains(s)))
    }

    /// The scopes of `self` missing from `other`.
    pub fn missing_from(&self, other: &Scopes) -> Scopes {
        Scopes::from_iter(self.iter().filter(|s| !other.contains(s)))
    }

    /// Both sets together.
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes::from_iter(self.iter().chain(other.iter()))
    }

    /// Without the tier scopes above `max`.
    pub fn within_tier(&self, max: Tier) -> Scopes {
        Scopes::from_iter(
            self.iter()
                .filter(|s| scope_tier(s).is_none_or(|t| t <= max)),
        )
    }

    /// The highest tier a tier scope of the set grants.
    pub fn highest_tier(&self) -> Option<Tier> {
        self.iter().filter_map(scope_tier).max()
    }

    /// The space-separated form.
    pub fn to_param(&self) -> String {
        self.0.join(" ")
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

impl<'a> FromIterator<&'a str> for Scopes {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let wanted: Vec<&str> = iter.into_iter().collect();
        Scopes(
            SCOPES
                .iter()
                .filter(|s| wanted.contains(s))
                .map(|s| s.to_string())
                .collect(),
        )
    }
}

/// The tier of an OAuth access token: the lowest of the user's tier, the client's
/// `max_tier` and the highest tier scope granted (tier 1, read-only, when none was).
pub fn token_tier(user: Tier, max_tier: Tier, granted: &Scopes) -> Tier {
    let scope = granted.highest_tier().unwrap_or(Tier::MONITOR);
    user.min(max_tier).min(scope)
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the secret (confidential clients); the secret itself is never stored.
    pub secret_hash: Option<Vec<u8>>,
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// The scopes this client may be granted.
    pub scopes: Scopes,
    pub max_tier: Tier,
    /// A client of the platform itself: no consent page.
    pub first_party: bool,
    /// `RS256` (default), `ES256` or `EdDSA`.
    pub id_token_alg: String,
    /// OpenID Connect Back-Channel Logout 1.0: where logout tokens are POSTed when one of
    /// this client's sessions ends (`backchannel_logout_session_required` is always true).
    pub backchannel_logout_uri: Option<String>,
    /// Client authentication, PAR and DPoP settings ([`super::fapi`]).
    pub fapi: super::fapi::ClientFapi,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OAuthClient {
    /// The registered redirect URI `presented` matches, if any ([`redirect_uri_matches`]).
    pub fn redirect_uri(&self, presented: &str) -> Option<&str> {
        self.redirect_uris
            .iter()
            .find(|r| redirect_uri_matches(r, presented))
            .map(String::as_str)
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// Checks a redirect URI for registration: absolute, no fragment (RFC 6749 §3.1.2).
pub fn parse_redirect_uri(field: &'static str, uri: &str) -> Result<String, FieldError> {
    let parsed = url::Url::parse(uri)
        .map_err(|_| FieldError::new(field, format!("{uri:?} is not an absolute URL")))?;
    if parsed.fragment().is_some() {
        return Err(FieldError::new(
            field,
            format!("{uri:?} has a fragment, which a redirect URI must not have"),
        ));
    }
    if parsed.cannot_be_a_base() && parsed.scheme() != "urn" {
        return Err(FieldError::new(
            field,
            format!("{uri:?} is not a usable redirect URI"),
        ));
    }
    Ok(uri.to_string())
}

/// Whether `presented` is the registered URI: the same string, or — for a loopback
/// redirect (`http://127.0.0.1`, `http://[::1]`) — the same URI on any port (RFC 8252
/// §7.3). No other normalisation: a trailing slash or a changed case is another URI.
pub fn redirect_uri_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (url::Url::parse(registered), url::Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
            && u.username().is_empty()
            && u.password().is_none()
    };
    if !loopback(&r) || !loopback(&p) || r.host_str() != p.host_str() {
        return false;
    }
    // Compare everything after the authority, exactly as written.
    let tail = |s: &str| {
        let rest = &s["http://".len()..];
        rest.find(['/', '?'])
            .map(|i| rest[i..].to_string())
            .unwrap_or_default()
    };
    tail(registered) == tail(presented)
}

/// Whether `verifier` is a well-formed PKCE verifier (RFC 7636 §4.1: 43–128 characters of
/// `[A-Za-z0-9-._~]`).
pub fn valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` looks like an `S256` challenge (43 base64url characters).
pub fn valid_code_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_exactly_except_the_loopback_port() {
        let m = redirect_uri_matches;
        assert!(m("https://app.example/cb", "https://app.example/cb"));
        assert!(!m("https://app.example/cb", "https://app.example/cb/"));
        assert!(!m("https://app.example/cb", "https://APP.example/cb"));
        assert!(!m("https://app.example/cb", "https://app.example/cb?x=1"));
        assert!(!m(
            "https://app.example:8443/cb",
            "https://app.example:9443/cb"
        ));
        assert!(m("http://127.0.0.1/cb", "http://127.0.0.1:53123/cb"));
        assert!(m("http://127.0.0.1:9/cb", "http://127.0.0.1:53123/cb"));
        assert!(m("http://[::1]:80/cb", "http://[::1]:1234/cb"));
        assert!(!m("http://127.0.0.1:9/cb", "http://127.0.0.1:9/cb/"));
        assert!(!m("http://127.0.0.1:9/cb", "http://[::1]:9/cb"));
        assert!(!m("http://localhost:9/cb", "http://localhost:10/cb"));
        assert!(!m("http://127.0.0.1:9/cb", "http://evil@127.0.0.1:9/cb"));
    }

    #[test]
    fn scopes_are_known_ordered_and_clamped() {
        let s = Scopes::parse("email openid openid bogus trade:power");
        assert_eq!(s.to_param(), "openid email trade:power");
        assert_eq!(s.within_tier(Tier::TRADER).to_param(), "openid email");
        assert_eq!(token_tier(Tier::ADMIN, Tier::TRADER, &s), Tier::TRADER);
        assert_eq!(
            token_tier(Tier::ADMIN, Tier::ADMIN, &Scopes::parse("openid")),
            Tier::MONITOR
        );
    }

    #[test]
    fn pkce_shapes() {
        assert!(valid_code_verifier(&"a".repeat(43)));
        assert!(!valid_code_verifier(&"a".repeat(42)));
        assert!(!valid_code_verifier(&format!("{}+", "a".repeat(43))));
        assert!(valid_code_challenge(&"A".repeat(43)));
        assert!(!valid_code_challenge(&"A".repeat(44)));
    }
}
