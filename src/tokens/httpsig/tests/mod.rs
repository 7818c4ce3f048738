//! Tests of the signed-request module: RFC 9421 Appendix B vectors, every outcome of the
//! profile, key material, `Content-Digest`, and the worked examples of docs/SIGNING.md.

mod doc;
mod keys;
mod profile;
mod rfc;
mod tampering;

use super::base::{self, RequestView};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// A `HeaderMap` from `(name, value)` pairs, repeated names kept in order.
pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// An owned request for tests; [`TestRequest::view`] borrows it as the module sees it.
#[derive(Clone)]
pub(super) struct TestRequest {
    pub method: String,
    pub scheme: String,
    pub authority: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

impl TestRequest {
    pub fn new(method: &str, target: &str, headers: HeaderMap) -> Self {
        let (path, query) = RequestView::split_target(target);
        Self {
            method: method.into(),
            scheme: "https".into(),
            authority: "api.example.com".into(),
            path: path.into(),
            query: query.map(Into::into),
            headers,
        }
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.authority,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            has_body: RequestView::body_indicated(&self.headers),
        }
    }

    /// Signs the request as a client would: `components` and `params` (already
    /// serialised, e.g. `;created=…;keyid="…"`) under `label`; adds both fields.
    /// Returns the signature base that was signed.
    pub fn sign(
        &mut self,
        label: &str,
        components: &[&str],
        params: &str,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> String {
        let list: Vec<String> = components.iter().map(|c| format!("\"{c}\"")).collect();
        let signature_params = format!("({}){params}", list.join(" "));
        let covered: Vec<String> = components.iter().map(|c| c.to_string()).collect();
        let base = base::signature_base(&self.view(), &covered, &signature_params).unwrap();
        let sig = sign(base.as_bytes());
        self.headers.append(
            "signature-input",
            HeaderValue::from_str(&format!("{label}={signature_params}")).unwrap(),
        );
        self.headers.append(
            "signature",
            HeaderValue::from_str(&format!("{label}=:{}:", STANDARD.encode(sig))).unwrap(),
        );
        base
    }
}
