//! The value parsers of the key table, and the types they produce that are the config's
//! own (origins, the secret key; the mailer's are in `mailer.rs`). A parser gets the operator's text (trimmed,
//! except for the secrets that are taken verbatim) and returns the value or an
//! [`Invalid`]; the loader turns that into a message naming the key.

use super::{DatabaseUrl, Dialect, LogFormat};
use crate::domain::lockout::LockoutScope;
use crate::store::ratelimit::Limit;
use chrono::TimeDelta;
use ipnet::IpNet;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::sync::Arc;

/// Why a value was refused.
#[derive(Debug)]
pub(super) enum Invalid {
    /// Printed as "`value` is not allowed; expected `…`" (without the value for secrets).
    Expected(&'static str),
    /// Printed as it is.
    Message(String),
}

use Invalid::{Expected, Message};

pub(super) type Parsed<T> = Result<T, Invalid>;

/// The longest duration accepted: a century (a date that far ahead still fits every
/// timestamp type the stores use).
const MAX_DURATION_DAYS: i64 = 36_500;

/// A duration longer than zero, like `10s`, `15m`, `24h` or `30d` (units may be combined).
pub(super) fn duration(s: &str) -> Parsed<TimeDelta> {
    let d = duration_or_zero(s)?;
    if d.is_zero() {
        return Err(Message("must be longer than zero".into()));
    }
    Ok(d)
}

/// A duration, `0s` allowed.
pub(super) fn duration_or_zero(s: &str) -> Parsed<TimeDelta> {
    let d = humantime::parse_duration(s)
        .map_err(|_| Expected("a duration like 10s, 15m, 24h or 30d"))?;
    TimeDelta::from_std(d)
        .ok()
        .filter(|d| *d <= TimeDelta::days(MAX_DURATION_DAYS))
        .ok_or_else(|| Message(format!("must be at most {MAX_DURATION_DAYS}d")))
}

/// A duration as an operator writes it: the largest unit that divides it (`90d`, `15m`).
pub fn format_duration(d: TimeDelta) -> String {
    let s = d.num_seconds();
    if d.subsec_nanos() != 0 || s <= 0 {
        return humantime::format_duration(d.to_std().unwrap_or_default()).to_string();
    }
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s % secs == 0 {
            return format!("{}{unit}", s / secs);
        }
    }
    format!("{s}s")
}

pub(super) fn boolean(s: &str) -> Parsed<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(Expected("true or false")),
    }
}

/// `rate_limit`: `on` or `off`.
pub(super) fn on_off(s: &str) -> Parsed<bool> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(Expected("on or off")),
    }
}

/// `registration`: `open` or `closed`.
pub(super) fn open_closed(s: &str) -> Parsed<bool> {
    match s {
        "open" => Ok(true),
        "closed" => Ok(false),
        _ => Err(Expected("open or closed")),
    }
}

/// A number from `min` to `max`; `expected` says so in words.
pub(super) fn number<T: std::str::FromStr + PartialOrd>(
    s: &str,
    min: T,
    max: T,
    expected: &'static str,
) -> Parsed<T> {
    s.parse::<T>()
        .ok()
        .filter(|n| *n >= min && *n <= max)
        .ok_or(Expected(expected))
}

pub(super) fn rate(s: &str) -> Parsed<Limit> {
    Limit::parse(s).ok_or(Expected("a rate like 10/min, 5/hour or 2/sec"))
}

/// A built-in rate (the defaults of the table).
pub(super) fn default_rate(s: &str) -> Limit {
    Limit::parse(s).expect("the default rates parse")
}

pub(super) fn dialect(s: &str) -> Parsed<Dialect> {
    match s {
        "native" => Ok(Dialect::Native),
        "quantum" => Ok(Dialect::Quantum),
        "os-engine" => Ok(Dialect::OsEngine),
        "stratify" => Ok(Dialect::Stratify),
        _ => Err(Expected("native, quantum, os-engine or stratify")),
    }
}

pub(super) fn lockout_scope(s: &str) -> Parsed<LockoutScope> {
    match s {
        "account" => Ok(LockoutScope::Account),
        "account_ip" => Ok(LockoutScope::AccountIp),
        _ => Err(Expected("account or account_ip")),
    }
}

pub(super) fn log_format(s: &str) -> Parsed<LogFormat> {
    match s {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        _ => Err(Expected("pretty or json")),
    }
}

/// A value kept as written.
pub(super) fn text(s: &str) -> Parsed<String> {
    Ok(s.to_string())
}

/// A secret kept as written.
pub(super) fn secret(s: &str) -> Parsed<Option<SecretString>> {
    Ok(Some(SecretString::from(s)))
}

/// `host:port`, the host an address or a name (`[v6]` in brackets), the port a number;
/// whether it can be bound is for the start to find out.
pub(super) fn listen(s: &str) -> Parsed<String> {
    let ok = s.rsplit_once(':').is_some_and(|(host, port)| {
        let bracketed = host.starts_with('[') && host.ends_with(']');
        !host.is_empty() && (bracketed || !host.contains(':')) && port.parse::<u16>().is_ok()
    });
    if !ok {
        return Err(Message(format!(
            "expected host:port (e.g. 127.0.0.1:8080), got {s:?}"
        )));
    }
    Ok(s.to_string())
}

pub(super) fn database_url(raw: &str) -> Parsed<DatabaseUrl> {
    if let Some(path) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default().to_string();
        if path.is_empty() {
            return Err(Message("sqlite:// needs a file path".into()));
        }
        if path.contains(":memory:") || path.starts_with("file::memory") {
            return Err(Message(
                "an in-memory SQLite database is not supported; give a file path".into(),
            ));
        }
        Ok(DatabaseUrl::Sqlite { path })
    } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        Ok(DatabaseUrl::Postgres(SecretString::from(raw)))
    } else {
        Err(Message(
            "unknown scheme; expected sqlite://PATH or postgres://...".into(),
        ))
    }
}

pub(super) fn redis_url(s: &str) -> Parsed<Option<SecretString>> {
    if !s.starts_with("redis://") && !s.starts_with("rediss://") {
        return Err(Message(
            "expected redis://host:port or rediss://host:port (TLS)".into(),
        ));
    }
    if s.starts_with("rediss://") && s.contains('#') {
        return Err(Message(
            "rediss:// always verifies the certificate; remove the #fragment (#insecure is not supported)".into(),
        ));
    }
    Ok(Some(SecretString::from(s)))
}

/// Comma-separated addresses and CIDRs (`10.0.0.0/8, 192.168.1.5`).
pub(super) fn trusted_proxies(s: &str) -> Parsed<Vec<IpNet>> {
    let mut nets = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = part
            .parse::<IpNet>()
            .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                Message(format!(
                    "{part:?} is not an address or CIDR (e.g. 10.0.0.0/8)"
                ))
            })?;
        nets.push(net);
    }
    Ok(nets)
}

/// `TRADEAUTH_PUBLIC_URL`, with what other defaults derive from it.
#[derive(Debug, Clone)]
pub(super) struct PublicUrl {
    /// As written, without a trailing slash.
    pub text: String,
    /// Its origin: the default of `allowed_origins`.
    pub origin: Origin,
}

pub(super) fn public_url(s: &str) -> Parsed<PublicUrl> {
    let refused = || Message("expected an http:// or https:// URL".into());
    if !(s.starts_with("http://") || s.starts_with("https://")) {
        return Err(refused());
    }
    let text = s.trim_end_matches('/').to_string();
    let url = url::Url::parse(&text).map_err(|_| refused())?;
    let origin = Origin::of(&url).ok_or_else(refused)?;
    Ok(PublicUrl { text, origin })
}

/// A web origin, `scheme://host[:port]` with scheme `http` or `https`, as a browser sends
/// it in `Origin`: lower case, ASCII (IDNA), without the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `scheme://host[:port]`, what an `Origin` header carries.
    serialized: String,
    /// The host alone, for the WebAuthn RP ID rule.
    host: String,
}

impl Origin {
    /// Parses one origin: no path (not even a trailing slash), query, fragment or user.
    pub fn parse(s: &str) -> Result<Self, String> {
        let shape = "expected scheme://host[:port] with scheme http or https, and no path";
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(shape.into());
        };
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(shape.into());
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', '\\']) {
            return Err(shape.into());
        }
        let url = url::Url::parse(s).map_err(|e| format!("{shape} ({e})"))?;
        Self::of(&url).ok_or_else(|| shape.into())
    }

    /// The origin of an `http`/`https` URL.
    fn of(url: &url::Url) -> Option<Self> {
        let host = url.host_str().filter(|h| !h.is_empty())?.to_string();
        Some(Self {
            serialized: url.origin().ascii_serialization(),
            host,
        })
    }

    /// The origin as a browser serialises it (`https://app.example.com`).
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// The host: a name, an IPv4 address or a bracketed IPv6 address.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.serialized)
    }
}

/// Comma-separated origins; duplicates are dropped, the order is kept.
pub(super) fn origins(s: &str) -> Parsed<Vec<Origin>> {
    let mut list: Vec<Origin> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let origin = Origin::parse(part)
            .map_err(|why| Message(format!("{part:?} is not an origin: {why}")))?;
        if !list.contains(&origin) {
            list.push(origin);
        }
    }
    if list.is_empty() {
        return Err(Message("needs at least one origin".into()));
    }
    Ok(list)
}

/// A WebAuthn relying-party ID: a host name (or IPv4 address), lower case, no scheme,
/// port or path.
pub(super) fn rp_id(s: &str) -> Parsed<String> {
    let refused = || {
        Message(format!(
            "{s:?} is not a host name; expected one like example.com (no scheme, port or path)"
        ))
    };
    match url::Host::parse(s).map_err(|_| refused())? {
        url::Host::Domain(d) if !d.ends_with('.') => Ok(d),
        url::Host::Ipv4(a) => Ok(a.to_string()),
        _ => Err(refused()),
    }
}

/// Whether a page of an origin whose host is `host` may use the relying-party ID `rp_id`
/// (WebAuthn, "RP ID": the host itself or a registrable suffix of it). An IP address
/// has no suffixes. Whether a suffix is a public one (`com`, `co.uk`) needs the public
/// suffix list, which this build does not carry; browsers refuse those themselves.
pub fn rp_id_covers(rp_id: &str, host: &str) -> bool {
    if rp_id == host {
        return true;
    }
    let is_ip = host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok();
    !is_ip
        && host
            .strip_suffix(rp_id)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// `TRADEAUTH_OIDC_ISSUER`: an `http`/`https` URL with a host, no query or fragment,
/// no trailing slash (OpenID Connect Discovery compares it character for character).
pub(super) fn issuer_url(s: &str) -> Parsed<String> {
    let ok = (s.starts_with("https://") || s.starts_with("http://"))
        && !s.ends_with('/')
        && url::Url::parse(s).is_ok_and(|u| {
            u.host_str().is_some_and(|h| !h.is_empty())
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty()
        });
    if !ok {
        return Err(Message(
            "expected an http:// or https:// URL without query, fragment or trailing slash".into(),
        ));
    }
    Ok(s.to_string())
}

/// `TRADEAUTH_SECRET_KEY`: 32 random bytes. `Debug` shows nothing of it, and it has no
/// `Display`.
#[derive(Clone)]
pub struct SecretKey(Arc<SecretBox<[u8; 32]>>);

impl SecretKey {
    /// Decodes base64, standard or url-safe alphabet, with or without padding.
    pub fn parse(s: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine;
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(s.trim()).ok().map(Zeroizing::new))
            .ok_or("expected 32 bytes in base64 (e.g. from `openssl rand -base64 32`)")?;
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
            format!(
                "expected 32 bytes in base64; this decodes to {} bytes",
                decoded.len()
            )
        })?;
        Ok(Self(Arc::new(SecretBox::new(Box::new(bytes)))))
    }

    /// The key's bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

pub(super) fn secret_key(s: &str) -> Parsed<Option<SecretKey>> {
    SecretKey::parse(s).map(Some).map_err(Message)
}
