//! The rows of the keys for browser sessions, passkeys, the OpenID Connect provider and
//! signed requests (API.md, "Operations"). Parsed and checked now; the features that
//! read them come later.

use super::{hidden, none, Key, Secrecy};
use crate::config::parse::{self, format_duration as duration};
use chrono::TimeDelta;
use Secrecy::{Hidden, Public};

// --- Browsers, passkeys, OpenID Connect, signed requests -------------------------------

pub(in crate::config) const ALLOWED_ORIGINS: Key<Vec<parse::Origin>> = Key {
    name: "allowed_origins",
    secrecy: Public,
    default: |cx| vec![cx.public_url.origin.clone()],
    parse: parse::origins,
    print: |c| {
        let origins: Vec<&str> = c.allowed_origins.iter().map(|o| o.as_str()).collect();
        origins.join(",")
    },
};
pub(in crate::config) const COOKIE_SECURE: Key<bool> = Key {
    name: "cookie_secure",
    secrecy: Public,
    default: |_| true,
    parse: parse::boolean,
    print: |c| c.cookie_secure.to_string(),
};
pub(in crate::config) const WEBAUTHN_RP_ID: Key<String> = Key {
    name: "webauthn_rp_id",
    secrecy: Public,
    default: |cx| cx.public_url.origin.host().to_string(),
    parse: parse::rp_id,
    print: |c| c.webauthn_rp_id.clone(),
};
pub(in crate::config) const WEBAUTHN_RP_NAME: Key<String> = Key {
    name: "webauthn_rp_name",
    secrecy: Public,
    default: |_| "tradeauth".into(),
    parse: parse::text,
    print: |c| c.webauthn_rp_name.clone(),
};
pub(in crate::config) const OIDC_ISSUER: Key<String> = Key {
    name: "oidc_issuer",
    secrecy: Public,
    default: |cx| cx.public_url.text.clone(),
    parse: parse::issuer_url,
    print: |c| c.oidc_issuer.clone(),
};
pub(in crate::config) const SECRET_KEY: Key<Option<parse::SecretKey>> = Key {
    name: "secret_key",
    secrecy: Hidden,
    default: none,
    parse: parse::secret_key,
    print: |c| hidden(&c.secret_key),
};
pub(in crate::config) const SIGNATURE_MAX_AGE: Key<TimeDelta> = Key {
    name: "signature_max_age",
    secrecy: Public,
    default: |_| TimeDelta::seconds(30),
    parse: parse::duration,
    print: |c| duration(c.signature_max_age),
};
pub(in crate::config) const SIGNATURE_FUTURE_SKEW: Key<TimeDelta> = Key {
    name: "signature_future_skew",
    secrecy: Public,
    default: |_| TimeDelta::seconds(5),
    parse: parse::duration_or_zero,
    print: |c| duration(c.signature_future_skew),
};
