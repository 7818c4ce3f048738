//! The `tradeauth` profile's checks, in the contract's order, with typed outcomes:
//! components and parameters ([`Rejection::Incomplete`], 400 `signature_incomplete`), the
//! window ([`Rejection::Expired`], 401 `signature_expired`), then — after the caller found
//! the key — `alg` and the signature ([`Rejection::Invalid`], 401 `signature_invalid`).
//!
//! Owns the rules, not the I/O: [`check`] and [`Checked::verify`] take the clock and the
//! key as arguments, and the replay step is left to the caller with what it needs
//! ([`Accepted::replay_key`], [`Accepted::replay_expires_at_ms`]).

use super::base::{self, ComponentError, RequestView};
use super::digest::{ContentDigest, DigestError};
use super::header::{self, HeaderError, SignatureInput};
use super::verify::VerifyingKey;
use ring::digest::{Context, SHA256};

/// Components every signature must cover.
const ALWAYS: [&str; 4] = ["@method", "@authority", "@path", "@query"];
/// Components a request with a body must also cover.
const WITH_BODY: [&str; 2] = ["content-digest", "content-type"];

/// The window, from `TRADEAUTH_SIGNATURE_MAX_AGE` and `TRADEAUTH_SIGNATURE_FUTURE_SKEW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How old `created` may be, in ms (default 30 s).
    pub max_age_ms: i64,
    /// How far ahead of the server's clock `created` may be, in ms (default 5 s).
    pub future_skew_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_age_ms: 30_000,
            future_skew_ms: 5_000,
        }
    }
}

/// Which side of the window a signature fell out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiredReason {
    /// `created` is older than `max_age`.
    TooOld,
    /// `created` is further ahead than `future_skew`.
    FromFuture,
    /// The client's own `expires` has passed.
    PastExpires,
}

/// Why a signature is `signature_invalid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidReason {
    /// `Signature-Input` / `Signature` are not usable (the text says how).
    Malformed(&'static str),
    /// Two `Signature-Input` members carry `tag="tradeauth"`.
    DuplicateTag,
    /// A covered component this profile cannot produce (`@status`, `@query-param`, a
    /// component with parameters, …); holds its name.
    UnsupportedComponent(String),
    /// `Content-Digest` is covered but is not a valid RFC 9530 field.
    MalformedContentDigest,
    /// The `alg` parameter names another algorithm than the key's.
    AlgorithmMismatch,
    /// The signature does not verify with the key.
    BadSignature,
}

/// A refused signed request. [`Rejection::code`] and [`Rejection::status`] give the
/// contract's code and status; the fields are the body's extras.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// `details.missing`: required components or parameters not covered or not sent, in
    /// the profile's order (components first, then `keyid`, `created`).
    Incomplete { missing: Vec<String> },
    /// `server_time` (as Unix ms, for the caller to render) and `skew_ms` (`created` minus
    /// the server's clock, signed).
    Expired {
        server_time_ms: i64,
        skew_ms: i64,
        reason: ExpiredReason,
    },
    /// `details.signature_base`: the base the server built, when it got that far.
    Invalid {
        reason: InvalidReason,
        signature_base: Option<String>,
    },
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => "signature_incomplete",
            Self::Expired { .. } => "signature_expired",
            Self::Invalid { .. } => "signature_invalid",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Incomplete { .. } => 400,
            Self::Expired { .. } | Self::Invalid { .. } => 401,
        }
    }

    fn invalid(reason: InvalidReason) -> Self {
        Self::Invalid {
            reason,
            signature_base: None,
        }
    }
}

/// A signed request that passed the cheap checks; next the caller finds the key by
/// [`Checked::keyid`] and calls [`Checked::verify`].
#[derive(Debug, Clone)]
pub struct Checked<'r> {
    req: RequestView<'r>,
    input: SignatureInput,
    signature: Vec<u8>,
    /// `created` and `expires` (or `None`) in ms.
    created_ms: i64,
    /// When the signature stops being acceptable, Unix ms (exclusive).
    valid_until_ms: i64,
}

/// Runs the checks that need neither a key nor I/O, in the contract's order: the
/// tagged signature's components and parameters, then the window against `now_ms` (the
/// server's clock, Unix ms).
pub fn check<'r>(
    req: &RequestView<'r>,
    policy: &Policy,
    now_ms: i64,
) -> Result<Checked<'r>, Rejection> {
    let (input, signature) = header::select(req.headers).map_err(|e| match e {
        HeaderError::Absent(field) => Rejection::Incomplete {
            missing: vec![field.to_owned()],
        },
        HeaderError::NoTaggedSignature => Rejection::Incomplete {
            missing: vec!["tag".to_owned()],
        },
        HeaderError::DuplicateTag => Rejection::invalid(InvalidReason::DuplicateTag),
        HeaderError::Malformed(why) => Rejection::invalid(InvalidReason::Malformed(why)),
        HeaderError::ComponentParameters(name) => {
            Rejection::invalid(InvalidReason::UnsupportedComponent(name))
        }
    })?;

    // Components: the required ones must be covered, and everything covered must exist.
    let mut missing: Vec<String> = Vec::new();
    let required = ALWAYS
        .iter()
        .chain(if req.has_body { &WITH_BODY[..] } else { &[] });
    for name in required {
        if !input.covered.iter().any(|c| c == name) {
            missing.push((*name).to_owned());
        }
    }
    for name in &input.covered {
        match base::component_value(req, name) {
            Ok(_) => {}
            Err(ComponentError::Absent(field)) => missing.push(field),
            Err(ComponentError::Unsupported(c)) => {
                return Err(Rejection::invalid(InvalidReason::UnsupportedComponent(c)))
            }
        }
    }
    if input.covered.iter().any(|c| c == "content-digest") {
        if let Ok(value) = base::field_value(req.headers, "content-digest") {
            match ContentDigest::parse(&value) {
                Ok(_) => {}
                Err(DigestError::NoSupportedAlgorithm) => missing.push("content-digest".into()),
                Err(_) => return Err(Rejection::invalid(InvalidReason::MalformedContentDigest)),
            }
        }
    }
    if input.keyid.is_none() {
        missing.push("keyid".into());
    }
    if input.created.is_none() {
        missing.push("created".into());
    }
    if !missing.is_empty() {
        missing.dedup();
        return Err(Rejection::Incomplete { missing });
    }

    // The window. `created` is whole seconds; the skew is reported in ms.
    let created_ms = input.created.unwrap_or_default().saturating_mul(1000);
    let skew_ms = created_ms.saturating_sub(now_ms);
    let expired = |reason| Rejection::Expired {
        server_time_ms: now_ms,
        skew_ms,
        reason,
    };
    if skew_ms < -policy.max_age_ms {
        return Err(expired(ExpiredReason::TooOld));
    }
    if skew_ms > policy.future_skew_ms {
        return Err(expired(ExpiredReason::FromFuture));
    }
    // `expires` may only narrow the window: the earlier of the two ends counts.
    let mut valid_until_ms = created_ms
        .saturating_add(policy.max_age_ms)
        .saturating_add(1);
    if let Some(expires) = input.expires {
        let expires_ms = expires.saturating_mul(1000);
        if expires_ms <= now_ms {
            return Err(expired(ExpiredReason::PastExpires));
        }
        valid_until_ms = valid_until_ms.min(expires_ms);
    }

    Ok(Checked {
        req: *req,
        input,
        signature,
        created_ms,
        valid_until_ms,
    })
}

impl Checked<'_> {
    /// The `keyid` parameter: the key's `key_id` (`ta_<public id>`) for the caller's lookup.
    pub fn keyid(&self) -> &str {
        self.input.keyid.as_deref().unwrap_or_default()
    }

    /// The `alg` parameter, if the client sent one.
    pub fn alg(&self) -> Option<&str> {
        self.input.alg.as_deref()
    }

    /// The `nonce` parameter, if the client sent one.
    pub fn nonce(&self) -> Option<&str> {
        self.input.nonce.as_deref()
    }

    /// `created`, Unix ms.
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// The parsed `Signature-Input` member.
    pub fn input(&self) -> &SignatureInput {
        &self.input
    }

    /// Builds the signature base (RFC 9421 §2.5) of this request.
    pub fn signature_base(&self) -> String {
        // Every component resolved in `check`, so building cannot fail here.
        base::signature_base(&self.req, &self.input.covered, &self.input.signature_params)
            .unwrap_or_default()
    }

    /// Checks `alg` against the key's algorithm, then the signature over the base.
    pub fn verify(self, key: &VerifyingKey) -> Result<Accepted, Rejection> {
        let signature_base = self.signature_base();
        let reason = if self
            .input
            .alg
            .as_deref()
            .is_some_and(|alg| alg != key.algorithm().as_str())
        {
            Some(InvalidReason::AlgorithmMismatch)
        } else if !key.verify(signature_base.as_bytes(), &self.signature) {
            Some(InvalidReason::BadSignature)
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Rejection::Invalid {
                reason,
                signature_base: Some(signature_base),
            });
        }

        let keyid = self.input.keyid.unwrap_or_default();
        let mut hash = Context::new(&SHA256);
        hash.update(keyid.as_bytes());
        hash.update(&[0]);
        hash.update(&self.signature);
        let mut replay_key = [0u8; 32];
        replay_key.copy_from_slice(hash.finish().as_ref());
        let content_digest = if self.input.covered.iter().any(|c| c == "content-digest") {
            base::field_value(self.req.headers, "content-digest")
                .ok()
                .map(|v| v.into_owned())
        } else {
            None
        };
        Ok(Accepted {
            keyid,
            label: self.input.label,
            created_ms: self.created_ms,
            nonce: self.input.nonce,
            content_digest,
            replay_key,
            replay_expires_at_ms: self.valid_until_ms,
        })
    }
}

/// A signature that verified. What is left for the caller: the replay check, and — when
/// the body is at hand — [`super::digest::check`] of `content_digest` against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The key that signed (`X-Auth-Key-Id`).
    pub keyid: String,
    pub label: String,
    pub created_ms: i64,
    pub nonce: Option<String>,
    /// The covered `Content-Digest` value, verbatim (`X-Auth-Content-Digest`).
    pub content_digest: Option<String>,
    /// SHA-256 of `keyid ‖ 0x00 ‖ signature bytes`: the same signature under the same key
    /// always gives the same value, and any change of the request changes the signature.
    pub replay_key: [u8; 32],
    /// Unix ms after which the signature is refused by the window anyway, so the replay
    /// entry can be dropped then (the earlier of `created + max_age` and `expires`).
    pub replay_expires_at_ms: i64,
}

impl Accepted {
    /// How long the replay entry must live from `now_ms` (at least 1 ms).
    pub fn replay_ttl_ms(&self, now_ms: i64) -> i64 {
        (self.replay_expires_at_ms - now_ms).max(1)
    }
}
