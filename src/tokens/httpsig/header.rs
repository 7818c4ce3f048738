//! The `Signature-Input` and `Signature` fields (RFC 9421 §4), parsed with the `sfv` crate,
//! and the choice of the one signature this profile checks: the member whose `tag` is
//! `"tradeauth"` (members with another tag, or none, are ignored; two are refused).
//!
//! Owns parsing and the re-serialisation of the chosen member's inner list, which is the
//! `@signature-params` value (§2.3). Required components and parameters are `profile`'s.

use axum::http::HeaderMap;
use sfv::{BareItem, Dictionary, ListEntry, ListSerializer, Parser};

/// The `tag` parameter value that selects a signature for this profile.
pub const TAG: &str = "tradeauth";

/// The chosen signature's `Signature-Input` member, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureInput {
    /// The dictionary key the client chose (any name).
    pub label: String,
    /// The covered component names, in the order signed (`"@method"`, `"content-type"`, …).
    pub covered: Vec<String>,
    /// `created`, Unix seconds.
    pub created: Option<i64>,
    /// `expires`, Unix seconds.
    pub expires: Option<i64>,
    pub keyid: Option<String>,
    pub nonce: Option<String>,
    pub alg: Option<String>,
    /// The member's inner list with its parameters, serialised: the `@signature-params`
    /// value of the signature base.
    pub signature_params: String,
}

/// Why the signature fields cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The request has no `Signature-Input` (or no `Signature`) field; holds its name.
    Absent(&'static str),
    /// No `Signature-Input` member carries `tag="tradeauth"`.
    NoTaggedSignature,
    /// Two or more members carry `tag="tradeauth"`.
    DuplicateTag,
    /// Not a valid structured field, or a member of the wrong shape; says what is wrong.
    Malformed(&'static str),
    /// A covered component with parameters (`;sf`, `;req`, …), which this profile does
    /// not accept.
    ComponentParameters(String),
}

/// All lines of a field joined as RFC 9651 §4.2 asks (`, `), borrowed when there is one.
fn joined(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, HeaderError> {
    let mut out: Option<String> = None;
    for value in headers.get_all(name) {
        let text = value
            .to_str()
            .map_err(|_| HeaderError::Malformed("a signature field is not ASCII"))?;
        match &mut out {
            None => out = Some(text.to_owned()),
            Some(s) => {
                s.push_str(", ");
                s.push_str(text);
            }
        }
    }
    Ok(out)
}

fn parse_dictionary(text: &str, what: &'static str) -> Result<Dictionary, HeaderError> {
    Parser::new(text)
        .parse::<Dictionary>()
        .map_err(|_| HeaderError::Malformed(what))
}

fn is_tagged(params: &sfv::Parameters) -> bool {
    matches!(params.get("tag"), Some(BareItem::String(s)) if s.as_str() == TAG)
}

/// Finds the `tradeauth` signature: its parsed `Signature-Input` member and the signature
/// bytes from the `Signature` member of the same label.
pub fn select(headers: &HeaderMap) -> Result<(SignatureInput, Vec<u8>), HeaderError> {
    let inputs = inputs(headers)?;
    let mut chosen = None;
    for (label, entry) in &inputs {
        let tagged = match entry {
            ListEntry::InnerList(list) => is_tagged(&list.params),
            ListEntry::Item(item) => is_tagged(&item.params),
        };
        if !tagged {
            continue;
        }
        if chosen.is_some() {
            return Err(HeaderError::DuplicateTag);
        }
        chosen = Some((label, entry));
    }
    let (label, entry) = chosen.ok_or(HeaderError::NoTaggedSignature)?;
    let input = parse_member(label.as_str(), entry)?;
    let signature = signature_bytes(headers, label.as_str())?;
    Ok((input, signature))
}

/// The signature labelled `label`, whatever its tag (for RFC 9421's own examples, which
/// carry no tag).
pub fn by_label(
    headers: &HeaderMap,
    label: &str,
) -> Result<(SignatureInput, Vec<u8>), HeaderError> {
    let inputs = inputs(headers)?;
    let entry = inputs.get(label).ok_or(HeaderError::Malformed(
        "no Signature-Input member with that label",
    ))?;
    let input = parse_member(label, entry)?;
    let signature = signature_bytes(headers, label)?;
    Ok((input, signature))
}

fn inputs(headers: &HeaderMap) -> Result<Dictionary, HeaderError> {
    let text = joined(headers, "signature-input")?.ok_or(HeaderError::Absent("signature-input"))?;
    parse_dictionary(&text, "Signature-Input is not a structured dictionary")
}

fn parse_member(label: &str, entry: &ListEntry) -> Result<SignatureInput, HeaderError> {
    let ListEntry::InnerList(list) = entry else {
        return Err(HeaderError::Malformed(
            "the Signature-Input member is not an inner list",
        ));
    };

    let mut covered: Vec<String> = Vec::with_capacity(list.items.len());
    for item in &list.items {
        let BareItem::String(name) = &item.bare_item else {
            return Err(HeaderError::Malformed(
                "a covered component is not a quoted string",
            ));
        };
        let name = name.as_str();
        if !item.params.is_empty() {
            return Err(HeaderError::ComponentParameters(name.to_owned()));
        }
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(HeaderError::Malformed(
                "a covered component name is empty or not lower-case",
            ));
        }
        if covered.iter().any(|c| c == name) {
            return Err(HeaderError::Malformed("a component is covered twice"));
        }
        covered.push(name.to_owned());
    }

    let mut input = SignatureInput {
        label: label.to_owned(),
        covered,
        created: None,
        expires: None,
        keyid: None,
        nonce: None,
        alg: None,
        signature_params: String::new(),
    };
    for (name, value) in &list.params {
        let wrong = || HeaderError::Malformed("a signature parameter has the wrong type");
        match name.as_str() {
            "created" => input.created = Some(value.as_integer().ok_or_else(wrong)?.into()),
            "expires" => input.expires = Some(value.as_integer().ok_or_else(wrong)?.into()),
            "keyid" => input.keyid = Some(string(value).ok_or_else(wrong)?),
            "nonce" => input.nonce = Some(string(value).ok_or_else(wrong)?),
            "alg" => input.alg = Some(string(value).ok_or_else(wrong)?),
            _ => {} // `tag` and unknown parameters are signed as they are (§2.3).
        }
    }
    // The `@signature-params` value: the inner list and its parameters re-serialised,
    // as §2.3 asks (a single-member List serialises to exactly that).
    let mut ser = ListSerializer::new();
    {
        let mut inner = ser.inner_list();
        inner.items(&list.items);
        let _ = inner.finish().parameters(&list.params);
    }
    input.signature_params = ser.finish().unwrap_or_default();
    Ok(input)
}

fn signature_bytes(headers: &HeaderMap, label: &str) -> Result<Vec<u8>, HeaderError> {
    let text = joined(headers, "signature")?.ok_or(HeaderError::Absent("signature"))?;
    let signatures = parse_dictionary(&text, "Signature is not a structured dictionary")?;
    match signatures.get(label) {
        Some(ListEntry::Item(item)) => match &item.bare_item {
            BareItem::ByteSequence(bytes) => Ok(bytes.clone()),
            _ => Err(HeaderError::Malformed(
                "the Signature member is not a byte sequence",
            )),
        },
        _ => Err(HeaderError::Malformed(
            "Signature has no member with the Signature-Input's label",
        )),
    }
}

fn string(value: &BareItem) -> Option<String> {
    value.as_string().map(|s| s.as_str().to_owned())
}
