//! The cookies of a browser session (API.md, "Browser sessions (cookie mode)"): their
//! names, reading them from a request and writing them, exactly with the contract's
//! attributes.
//!
//! | cookie | holds | attributes |
//! |---|---|---|
//! | `__Host-tradeauth_at` | access token | `HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=` access lifetime |
//! | `__Host-tradeauth_rt` | refresh token | `HttpOnly; Secure; SameSite=Strict; Path=/`, `Max-Age` only for `remember_me` |
//! | `__Host-tradeauth_csrf` | CSRF token | `Secure; SameSite=Strict; Path=/` (readable by the page) |
//!
//! With `TRADEAUTH_COOKIE_SECURE=false` (plain-HTTP development) the names lose the
//! `__Host-` prefix and the cookies lose `Secure`.

use axum::http::header::{self, HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};

/// The three cookie names of one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieNames {
    pub access: &'static str,
    pub refresh: &'static str,
    pub csrf: &'static str,
    /// Whether the cookies carry `Secure` (and the names the `__Host-` prefix).
    pub secure: bool,
}

impl CookieNames {
    pub const SECURE: CookieNames = CookieNames {
        access: "__Host-tradeauth_at",
        refresh: "__Host-tradeauth_rt",
        csrf: "__Host-tradeauth_csrf",
        secure: true,
    };
    pub const PLAIN: CookieNames = CookieNames {
        access: "tradeauth_at",
        refresh: "tradeauth_rt",
        csrf: "tradeauth_csrf",
        secure: false,
    };

    /// The names for `TRADEAUTH_COOKIE_SECURE`.
    pub const fn new(secure: bool) -> Self {
        if secure {
            Self::SECURE
        } else {
            Self::PLAIN
        }
    }

    /// Whether the request carries any of the three cookies.
    pub fn any_present(&self, headers: &HeaderMap) -> bool {
        [self.access, self.refresh, self.csrf]
            .iter()
            .any(|name| read(headers, name).is_some())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one; an empty
/// value counts as absent). Only a cookie with exactly this name counts: with the
/// `__Host-` prefix on, a `tradeauth_at` set by a sibling subdomain is not ours.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// How long the browser keeps a cookie.
#[derive(Debug, Clone, Copy)]
pub enum Lifetime {
    /// `Max-Age=` this many seconds.
    Seconds(i64),
    /// No `Max-Age`: gone when the browser session ends.
    BrowserSession,
}

fn cookie(
    names: &CookieNames,
    name: &str,
    value: &str,
    http_only: bool,
    same_site: &str,
    lifetime: Lifetime,
) -> HeaderValue {
    let mut s = format!("{name}={value}");
    if http_only {
        s.push_str("; HttpOnly");
    }
    if names.secure {
        s.push_str("; Secure");
    }
    s.push_str("; SameSite=");
    s.push_str(same_site);
    s.push_str("; Path=/");
    if let Lifetime::Seconds(n) = lifetime {
        s.push_str(&format!("; Max-Age={}", n.max(0)));
    }
    HeaderValue::from_str(&s).expect("tokens and names are valid cookie text")
}

/// The token cookies of a session, as a login or refresh sets them.
pub struct SessionCookies<'a> {
    pub access_token: &'a str,
    pub access_expires_in: i64,
    pub refresh_token: &'a str,
    pub refresh_expires_at: DateTime<Utc>,
    /// A `remember_me` session keeps its refresh cookie across browser restarts.
    pub remember_me: bool,
}

impl SessionCookies<'_> {
    /// Appends the access and refresh cookies to `headers`.
    pub fn set_tokens(&self, names: &CookieNames, headers: &mut HeaderMap) {
        let access = cookie(
            names,
            names.access,
            self.access_token,
            true,
            "Lax",
            Lifetime::Seconds(self.access_expires_in),
        );
        let refresh_lifetime = if self.remember_me {
            Lifetime::Seconds((self.refresh_expires_at - Utc::now()).num_seconds())
        } else {
            Lifetime::BrowserSession
        };
        let refresh = cookie(
            names,
            names.refresh,
            self.refresh_token,
            true,
            "Strict",
            refresh_lifetime,
        );
        headers.append(header::SET_COOKIE, access);
        headers.append(header::SET_COOKIE, refresh);
    }
}

/// Appends the CSRF cookie: readable by the page (no `HttpOnly`), so it survives a reload.
/// It lives as long as the refresh cookie does.
pub fn set_csrf(names: &CookieNames, token: &str, lifetime: Lifetime, headers: &mut HeaderMap) {
    headers.append(
        header::SET_COOKIE,
        cookie(names, names.csrf, token, false, "Strict", lifetime),
    );
}

/// Appends the three cookies expired (same names and attributes, `Max-Age=0`) and
/// `Clear-Site-Data: "cookies"`.
pub fn clear(names: &CookieNames, headers: &mut HeaderMap) {
    let gone = Lifetime::Seconds(0);
    headers.append(
        header::SET_COOKIE,
        cookie(names, names.access, "", true, "Lax", gone),
    );
    headers.append(
        header::SET_COOKIE,
        cookie(names, names.refresh, "", true, "Strict", gone),
    );
    headers.append(
        header::SET_COOKIE,
        cookie(names, names.csrf, "", false, "Strict", gone),
    );
    headers.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_cookies(h: &HeaderMap) -> Vec<String> {
        h.get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn cookies_carry_exactly_the_contracts_attributes() {
        let mut h = HeaderMap::new();
        SessionCookies {
            access_token: "AT",
            access_expires_in: 900,
            refresh_token: "RT",
            refresh_expires_at: Utc::now() + chrono::TimeDelta::days(30),
            remember_me: false,
        }
        .set_tokens(&CookieNames::SECURE, &mut h);
        set_csrf(&CookieNames::SECURE, "C", Lifetime::BrowserSession, &mut h);
        assert_eq!(
            set_cookies(&h),
            [
                "__Host-tradeauth_at=AT; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=900",
                "__Host-tradeauth_rt=RT; HttpOnly; Secure; SameSite=Strict; Path=/",
                "__Host-tradeauth_csrf=C; Secure; SameSite=Strict; Path=/",
            ]
        );
    }

    #[test]
    fn remember_me_keeps_the_refresh_cookie_and_plain_mode_drops_secure() {
        let mut h = HeaderMap::new();
        SessionCookies {
            access_token: "AT",
            access_expires_in: 60,
            refresh_token: "RT",
            refresh_expires_at: Utc::now() + chrono::TimeDelta::seconds(1000),
            remember_me: true,
        }
        .set_tokens(&CookieNames::PLAIN, &mut h);
        let got = set_cookies(&h);
        assert_eq!(
            got[0],
            "tradeauth_at=AT; HttpOnly; SameSite=Lax; Path=/; Max-Age=60"
        );
        let rt = &got[1];
        assert!(rt.starts_with("tradeauth_rt=RT; HttpOnly; SameSite=Strict; Path=/; Max-Age="));
        let age: i64 = rt.rsplit('=').next().unwrap().parse().unwrap();
        assert!((998..=1000).contains(&age), "{rt}");
    }

    #[test]
    fn clearing_expires_all_three_and_asks_the_browser_to_drop_cookies() {
        let mut h = HeaderMap::new();
        clear(&CookieNames::SECURE, &mut h);
        assert_eq!(
            set_cookies(&h),
            [
                "__Host-tradeauth_at=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0",
                "__Host-tradeauth_rt=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0",
                "__Host-tradeauth_csrf=; Secure; SameSite=Strict; Path=/; Max-Age=0",
            ]
        );
        assert_eq!(h["clear-site-data"], "\"cookies\"");
    }

    #[test]
    fn only_the_exact_name_is_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "tradeauth_at=evil; other=1; __Host-tradeauth_at=good"
                .parse()
                .unwrap(),
        );
        assert_eq!(read(&h, "__Host-tradeauth_at"), Some("good"));
        assert_eq!(read(&h, "tradeauth_at"), Some("evil"));
        assert_eq!(read(&h, "__Host-tradeauth_rt"), None);
        h.insert(header::COOKIE, "__Host-tradeauth_at=".parse().unwrap());
        assert_eq!(read(&h, "__Host-tradeauth_at"), None, "empty is absent");
    }
}
