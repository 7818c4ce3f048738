//! The signature base of RFC 9421 §2.5, built from a [`RequestView`]: our own small code
//! for the derived components a request has (§2.2) and for HTTP fields (§2.1).
//!
//! Owns the byte layout only: which components a profile requires, and whether the
//! signature verifies, are decided in `profile`. Nothing is normalised beyond what the RFC
//! asks: the method, path and query are the bytes received (the query is never re-ordered
//! or re-encoded); only `@authority` and `@scheme` are lower-cased (§2.2.3, §2.2.4).

use axum::http::HeaderMap;
use std::borrow::Cow;

/// What the signature base needs of a request; the caller fills it from what it received
/// (at `/api/v1/auth/verify`, from the trusted proxy's `X-Original-*` / `X-Forwarded-*`).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method as received, e.g. `POST` (case-sensitive, never changed).
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host and optional port the client addressed (the `Host` it sent).
    pub authority: &'a str,
    /// The raw path as received, percent-encoding untouched; empty means `/`.
    pub path: &'a str,
    /// The raw query without its `?`, as received; `None` when the target had no `?`.
    pub query: Option<&'a str>,
    /// The request's header fields (`HeaderMap` keeps names lower-cased and repeated
    /// fields in order).
    pub headers: &'a HeaderMap,
    /// Whether the request has a body (then `content-digest` and `content-type` must be
    /// covered). See [`RequestView::body_indicated`].
    pub has_body: bool,
}

impl RequestView<'_> {
    /// Whether the headers announce a body: a `Transfer-Encoding`, or a `Content-Length`
    /// other than 0. (Behind nginx the body never reaches us, so the headers decide.)
    pub fn body_indicated(headers: &HeaderMap) -> bool {
        if headers.contains_key(axum::http::header::TRANSFER_ENCODING) {
            return true;
        }
        headers
            .get_all(axum::http::header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes().trim_ascii() != b"0")
    }

    /// Splits a raw request target (`/path?query`, as in `X-Original-URI`) into the path
    /// and the query, keeping both byte for byte.
    pub fn split_target(target: &str) -> (&str, Option<&str>) {
        match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        }
    }
}

/// Why a covered component has no value in this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentError {
    /// A derived component this profile does not support for requests (e.g. `@status`,
    /// `@query-param`), or a component parameter (`;sf`, `;req`, …).
    Unsupported(String),
    /// A covered HTTP field the request does not carry.
    Absent(String),
}

/// The value of one covered component (RFC 9421 §2.1, §2.2), borrowed where it can be.
pub fn component_value<'a>(
    req: &RequestView<'a>,
    name: &str,
) -> Result<Cow<'a, str>, ComponentError> {
    if let Some(derived) = name.strip_prefix('@') {
        return Ok(match derived {
            "method" => Cow::Borrowed(req.method),
            "scheme" => lower(req.scheme),
            "authority" => authority(req.scheme, req.authority),
            "path" => Cow::Borrowed(path(req.path)),
            "query" => Cow::Owned(format!("?{}", req.query.unwrap_or(""))),
            "request-target" => Cow::Owned(request_target(req)),
            "target-uri" => Cow::Owned(format!(
                "{}://{}{}",
                lower(req.scheme),
                authority(req.scheme, req.authority),
                request_target(req)
            )),
            _ => return Err(ComponentError::Unsupported(name.to_owned())),
        });
    }
    field_value(req.headers, name)
}

/// An HTTP field's value (§2.1): each field line's value with leading and trailing
/// whitespace removed, repeated lines joined with `, `, in the order received.
pub fn field_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<Cow<'a, str>, ComponentError> {
    let mut values = headers.get_all(name).iter();
    let absent = || ComponentError::Absent(name.to_owned());
    let first = values.next().ok_or_else(absent)?;
    // Field values are visible ASCII or obs-text; a value that is not UTF-8 cannot be put
    // in a signature base we can echo back, so it counts as unusable (absent).
    let text = |v: &'a axum::http::HeaderValue| -> Result<&'a str, ComponentError> {
        std::str::from_utf8(v.as_bytes())
            .map(|s| s.trim_matches([' ', '\t']))
            .map_err(|_| absent())
    };
    let mut out = Cow::Borrowed(text(first)?);
    for more in values {
        let joined = out.to_mut();
        joined.push_str(", ");
        joined.push_str(text(more)?);
    }
    Ok(out)
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// `@authority` (§2.2.3): lower-cased, without the scheme's default port (RFC 9110 §4.2.3).
fn authority<'a>(scheme: &str, authority: &'a str) -> Cow<'a, str> {
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else if scheme.eq_ignore_ascii_case("http") {
        ":80"
    } else {
        ""
    };
    let trimmed = match authority.strip_suffix(default_port) {
        Some(host) if !default_port.is_empty() => host,
        _ => authority,
    };
    lower(trimmed)
}

fn path(p: &str) -> &str {
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// `@request-target` (§2.2.5): the origin-form target, `path` plus `?query` when present.
fn request_target(req: &RequestView<'_>) -> String {
    match req.query {
        Some(q) => format!("{}?{q}", path(req.path)),
        None => path(req.path).to_owned(),
    }
}

/// Writes one line of the base: `"name": value` followed by a newline (§2.5, step 2).
pub fn push_line(base: &mut String, name: &str, value: &str) {
    base.push('"');
    base.push_str(name);
    base.push_str("\": ");
    base.push_str(value);
    base.push('\n');
}

/// Builds the whole signature base: one line per covered component, in the order covered,
/// then the `@signature-params` line (no trailing newline). `signature_params` is the
/// serialised inner list of the `Signature-Input` member (see `header::serialize_params`).
pub fn signature_base(
    req: &RequestView<'_>,
    covered: &[String],
    signature_params: &str,
) -> Result<String, ComponentError> {
    let mut base = String::with_capacity(256);
    for name in covered {
        let value = component_value(req, name)?;
        push_line(&mut base, name, &value);
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(signature_params);
    Ok(base)
}
