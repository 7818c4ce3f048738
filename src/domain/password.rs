//! The password policy of API.md: 8–1024 characters, not containing the email's local part
//! or the username, and not easily guessed (zxcvbn score ≥ 2).
//!
//! Only the rule lives here; hashing is the service's job (it needs a thread pool).

use std::collections::BTreeMap;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;
/// zxcvbn's matching is super-linear in the input length; its authors advise scoring a
/// prefix. Beyond 100 characters every realistic password scores 4 anyway.
const SCORED_PREFIX: usize = 100;
/// Identifiers shorter than this are not searched for inside the password: a one-letter
/// local part (`a@example.com`) would otherwise forbid every password containing an `a`.
const MIN_IDENTIFIER_LEN: usize = 3;

/// What the policy knows about the account the password is for.
pub struct PolicyInput<'a> {
    pub email_local_part: Option<&'a str>,
    pub username: Option<&'a str>,
}

/// Why a password was refused; `details` maps the field to the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicyError {
    pub reason: String,
}

impl PasswordPolicyError {
    pub fn details(&self, field: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(field.to_string(), self.reason.clone())])
    }
}

/// Checks `password` against the policy.
pub fn check(password: &str, input: &PolicyInput<'_>) -> Result<(), PasswordPolicyError> {
    let fail = |r: &str| {
        Err(PasswordPolicyError {
            reason: r.to_string(),
        })
    };
    let len = password.chars().count();
    if len < MIN_LEN {
        return fail("password must be at least 8 characters");
    }
    if len > MAX_LEN {
        return fail("password must be at most 1024 characters");
    }
    let lower = password.to_lowercase();
    for (ident, what) in [
        (input.email_local_part, "the email address"),
        (input.username, "the username"),
    ] {
        if let Some(ident) = ident {
            let ident = ident.to_lowercase();
            if ident.chars().count() >= MIN_IDENTIFIER_LEN && lower.contains(&ident) {
                return Err(PasswordPolicyError {
                    reason: format!("password must not contain {what}"),
                });
            }
        }
    }
    let prefix: String = password.chars().take(SCORED_PREFIX).collect();
    let inputs: Vec<&str> = [input.email_local_part, input.username]
        .into_iter()
        .flatten()
        .collect();
    let score = u8::from(zxcvbn::zxcvbn(&prefix, &inputs).score());
    if score < 2 {
        return fail("password is too common or too easy to guess");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: PolicyInput<'static> = PolicyInput {
        email_local_part: None,
        username: None,
    };

    #[test]
    fn length_limits() {
        assert!(check("Xy7#", &NONE).is_err());
        assert!(check(&"Kq9!".repeat(300), &NONE).is_err());
    }

    #[test]
    fn common_passwords_fail() {
        for p in [
            "password",
            "password123",
            "qwertyuiop",
            "12345678",
            "iloveyou1",
        ] {
            assert!(check(p, &NONE).is_err(), "{p} should fail");
        }
    }

    #[test]
    fn random_eight_characters_pass() {
        for p in ["x7Kp2mQa", "tR4v9ZbW", "Gq3nL8ds"] {
            assert!(check(p, &NONE).is_ok(), "{p} should pass");
        }
    }

    #[test]
    fn identifiers_are_refused() {
        let input = PolicyInput {
            email_local_part: Some("jdoe"),
            username: Some("trader_joe"),
        };
        let e = check("Xk3-JDOE-vq9w", &input).unwrap_err();
        assert!(e.reason.contains("email"));
        let e = check("Xk3-trader_joe-9", &input).unwrap_err();
        assert!(e.reason.contains("username"));
        assert!(check("correct horse battery staple", &input).is_ok());
    }
}
