//! Users and their identifiers: email, username, full name, permission tier and role.
//!
//! Owns the rules of API.md's "Users, roles and tiers"; knows nothing of storage.

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A user's id (UUID v7, so ids sort by creation time and make stable cursors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An email address, trimmed and lower-cased (uniqueness is case-insensitive).
///
/// Only plain ASCII addresses are accepted, so that two accounts can never look the same
/// and every address can be mailed: invisible (Unicode format, e.g. zero-width space),
/// control and space characters are refused with their own message; any other non-ASCII
/// character (a Cyrillic `а`, a fullwidth `ａ`) is refused too, in the local part and in
/// the domain. An internationalised domain is accepted in its ASCII (IDNA, `xn--`) form
/// when that form is valid IDNA; it is never converted from Unicode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Characters RFC 5322 allows in an unquoted local part besides letters and digits.
const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = |m: &str| Err(FieldError::new("email", m));
        let s = raw.trim();
        if s.chars().any(invisible_or_control) {
            return err("email must not contain spaces, invisible or control characters");
        }
        if !s.is_ascii() {
            return err("email must use only ASCII letters, digits and punctuation; give an internationalised domain in its xn-- form");
        }
        let s = s.to_ascii_lowercase();
        if s.is_empty() {
            return err("email is required");
        }
        if s.len() > 254 {
            return err("email must be at most 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return err("email must look like name@example.com");
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c));
        if !local_ok || !valid_domain(domain) {
            return err("email must look like name@example.com");
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`, used to derive a username and by the password policy.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A character a reader cannot see or that changes how text around it is shown: controls,
/// Unicode format characters (zero-width space and joiners, bidi overrides, soft hyphen,
/// byte-order mark) and every kind of space.
fn invisible_or_control(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.is_control() || c.is_whitespace() || c.general_category() == GeneralCategory::Format
}

/// An ASCII domain of at least two labels, each 1–63 letters, digits or inner hyphens; an
/// `xn--` label must be valid IDNA (it round-trips through UTS #46 unchanged).
fn valid_domain(domain: &str) -> bool {
    let labels_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !labels_ok {
        return false;
    }
    if !domain.split('.').any(|l| l.starts_with("xn--")) {
        return true;
    }
    matches!(url::Host::parse(domain), Ok(url::Host::Domain(d)) if d == domain)
}

/// A username: 3–32 of `[A-Za-z0-9_.-]`, stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let len = s.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(FieldError::new(
                "username",
                "username must be 3 to 32 characters",
            ));
        }
        if !s.chars().all(Self::allowed) {
            return Err(FieldError::new(
                "username",
                "username may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(s.to_lowercase()))
    }

    fn allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    }

    /// The base username derived from an email's local part: lower-cased, other characters
    /// replaced by `_`, cut to 32, padded to 3. The caller appends a number until unique
    /// (see [`Username::with_suffix`]).
    pub fn derive_from(email: &Email) -> Self {
        let mut s: String = email
            .local_part()
            .chars()
            .map(|c| {
                if Self::allowed(c) {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(Self::MAX)
            .collect();
        while s.len() < Self::MIN {
            s.push('_');
        }
        Self(s)
    }

    /// This username with `n` appended, cutting the base so the result stays ≤ 32.
    pub fn with_suffix(&self, n: u32) -> Self {
        let suffix = n.to_string();
        let keep = Self::MAX - suffix.len();
        let base: String = self.0.chars().take(keep).collect();
        Self(format!("{base}{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a username read back from storage (already validated when written).
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An optional display name, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FullName(String);

impl FullName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.chars().count() > 100 {
            return Err(FieldError::new(
                "full_name",
                "full_name must be at most 100 characters",
            ));
        }
        // Zero-width joiners stay allowed: some scripts need them inside names.
        if s.chars()
            .any(|c| !matches!(c, '\u{200c}' | '\u{200d}' | ' ') && invisible_or_control(c))
        {
            return Err(FieldError::new(
                "full_name",
                "full_name must not contain control, invisible or text-direction characters",
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A permission tier, 1 (monitor) to 4 (admin). One scale with the role names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u8")]
pub struct Tier(u8);

impl Tier {
    pub const MONITOR: Tier = Tier(1);
    pub const TRADER: Tier = Tier(2);
    pub const POWER: Tier = Tier(3);
    pub const ADMIN: Tier = Tier(4);

    pub fn new(n: i64) -> Result<Self, FieldError> {
        if (1..=4).contains(&n) {
            Ok(Tier(n as u8))
        } else {
            Err(FieldError::new(
                "permission_tier",
                "permission_tier must be 1, 2, 3 or 4",
            ))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub fn role(self) -> Role {
        match self.0 {
            1 => Role::Monitor,
            2 => Role::Trader,
            3 => Role::Power,
            _ => Role::Admin,
        }
    }
}

impl From<Tier> for u8 {
    fn from(t: Tier) -> u8 {
        t.0
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The native role names of the tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Monitor,
    Trader,
    Power,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Trader => "trader",
            Role::Power => "power",
            Role::Admin => "admin",
        }
    }

    /// The role name seeds 000 and 003 use (`user`, `premium`, `admin`).
    pub fn seed_name(self) -> &'static str {
        match self {
            Role::Monitor | Role::Trader => "user",
            Role::Power => "premium",
            Role::Admin => "admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Bob@Example.COM ").unwrap().as_str(),
            "bob@example.com"
        );
        assert!(Email::parse("bob").is_err());
        assert!(Email::parse("bob@localhost").is_err());
        assert!(Email::parse("a b@example.com").is_err());
        assert_eq!(
            Email::parse("o'neil+tag@sub.example-mail.co")
                .unwrap()
                .as_str(),
            "o'neil+tag@sub.example-mail.co"
        );
    }

    #[test]
    fn email_refuses_invisible_and_look_alike_characters() {
        for (raw, why) in [
            ("admin\u{200b}@example.com", "invisible"),
            ("ad\u{feff}min@example.com", "invisible"),
            ("admin\u{202e}@example.com", "invisible"),
            ("ad\u{00ad}min@example.com", "invisible"),
            ("ad\u{7}min@example.com", "control"),
            ("ad\u{a0}min@example.com", "spaces"),
            ("\u{430}dmin@example.com", "ASCII"),
            ("\u{ff41}dmin@example.com", "ASCII"),
            ("admin@ex\u{430}mple.com", "ASCII"),
            ("admin@b\u{fc}cher.de", "ASCII"),
        ] {
            let e = Email::parse(raw).expect_err(raw);
            assert_eq!(e.field, "email");
            assert!(e.message.contains(why), "{raw:?}: {}", e.message);
        }
        for bad in [
            ".admin@example.com",
            "ad..min@example.com",
            "admin.@example.com",
            "ad\"min@example.com",
            "admin@-example.com",
            "admin@example_.com",
            "admin@xn--zz-.com",
            "admin@xn--a.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        // The ASCII form of an internationalised domain is an ordinary address.
        assert_eq!(
            Email::parse("Hans@XN--BCHER-KVA.de").unwrap().as_str(),
            "hans@xn--bcher-kva.de"
        );
    }

    #[test]
    fn full_name_refuses_invisible_characters_but_keeps_names() {
        for bad in ["Eve\u{202e}gnp.exe", "A\u{200b}B", "A\u{2066}B", "A\u{1}B"] {
            assert_eq!(
                FullName::parse(bad).unwrap_err().field,
                "full_name",
                "{bad:?}"
            );
        }
        for good in [
            "José Ñúñez",
            "Анна Петрова",
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}",
            "李 小龍",
        ] {
            assert_eq!(FullName::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn username_rules() {
        assert_eq!(Username::parse("Trader_1").unwrap().as_str(), "trader_1");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn username_derivation() {
        let e = Email::parse("J+Doe@example.com").unwrap();
        assert_eq!(Username::derive_from(&e).as_str(), "j_doe");
        let e = Email::parse("a@example.com").unwrap();
        assert_eq!(Username::derive_from(&e).as_str(), "a__");
        let long = Email::parse(&format!("{}@example.com", "x".repeat(40))).unwrap();
        let u = Username::derive_from(&long);
        assert_eq!(u.as_str().len(), 32);
        assert_eq!(u.with_suffix(12).as_str().len(), 32);
        assert!(u.with_suffix(12).as_str().ends_with("12"));
    }

    #[test]
    fn tiers_map_to_roles() {
        assert_eq!(Tier::new(1).unwrap().role(), Role::Monitor);
        assert_eq!(Tier::new(4).unwrap().role().seed_name(), "admin");
        assert_eq!(Tier::new(3).unwrap().role().seed_name(), "premium");
        assert!(Tier::new(0).is_err());
        assert!(Tier::new(5).is_err());
    }
}

/// A user as the service sees it. Built only from parsed values.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub full_name: Option<FullName>,
    pub tier: Tier,
    pub is_active: bool,
    pub is_verified: bool,
    pub mfa_enabled: bool,
    /// Created from `ADMIN_EMAIL`/`ADMIN_PASSWORD`; later starts keep it in step.
    pub is_bootstrap: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Email {
    /// Rebuilds an email read back from storage (already validated when written).
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl FullName {
    /// Rebuilds a name read back from storage.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}
