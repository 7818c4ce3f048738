//! `tradeauth config check`: the effective configuration, one `key = "value"` line per
//! key of the table, secrets masked.

use super::keys::{Secrecy, KEYS};
use super::{Config, Sources};

impl Sources {
    /// The effective configuration as `key = value` lines, secrets masked: a value that
    /// was set is shown as written (masked), an unset one as its default worked out.
    pub fn describe(&self, cfg: &Config) -> String {
        let mut out = String::new();
        for key in KEYS {
            let value = match self.get(key.name()) {
                Some(raw) => mask(key.secrecy(), &raw.value),
                None => key.print(cfg),
            };
            out.push_str(&format!("{} = {value:?}\n", key.name()));
        }
        out
    }
}

/// Masks a secret. In URLs only what may be a credential is hidden: the password of the
/// user info and the values of the query (SMTP and PostgreSQL take passwords there);
/// scheme, user, host, port and path (a SQLite file, a database name) stay readable.
/// Other secrets vanish entirely.
pub(super) fn mask(secrecy: Secrecy, value: &str) -> String {
    match secrecy {
        Secrecy::Public => return value.to_string(),
        Secrecy::Hidden => return "********".to_string(),
        Secrecy::Url => {}
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_string(); // `log`, `file:DIR`
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let query = query.map(|q| {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if matches!(k, "tls" | "sslmode") => format!("{k}={v}"),
                Some((k, _)) => format!("{k}=****"),
                None => pair.to_string(),
            })
            .collect();
        format!("?{}", pairs.join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
}
