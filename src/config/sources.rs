//! Where raw values come from: the TOML file, then the environment (env wins), or
//! [`Sources::set`] in tests and the CLI. A value stays text until the key table parses it.

use super::keys::{Key, Secrecy, KEYS};
use super::parse::Invalid;
use super::ConfigError;
use std::collections::BTreeMap;
use std::path::Path;

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    match key {
        "admin_email" | "admin_password" => key.to_uppercase(),
        _ => format!("TRADEAUTH_{}", key.to_uppercase()),
    }
}

/// A raw value and where it came from, so errors can name it the way the operator wrote
/// it. No `Debug`: the value may be a secret.
#[derive(Clone)]
pub(super) struct Raw {
    /// As written.
    pub value: String,
    /// The variable, or `key (in FILE)`.
    pub origin: String,
}

/// The raw key → value map, before parsing.
/// No `Debug`: values may be secrets.
#[derive(Default, Clone)]
pub struct Sources {
    /// By key name (`access_ttl`); the environment overwrote the file.
    values: BTreeMap<String, Raw>,
}

impl Sources {
    /// Reads a TOML file.
    pub fn with_file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            key: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        })?;
        let table: toml::Table = text.parse().map_err(|e| ConfigError {
            key: path.display().to_string(),
            message: format!("not valid TOML: {e}"),
        })?;
        for (k, v) in table {
            if !KEYS.iter().any(|key| key.name() == k) {
                return Err(ConfigError {
                    key: format!("{k} (in {})", path.display()),
                    message: "unknown key".into(),
                });
            }
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let origin = format!("{k} (in {})", path.display());
            self.values.insert(k, Raw { value, origin });
        }
        Ok(self)
    }

    /// Overlays environment variables (`TRADEAUTH_*`, `ADMIN_EMAIL`, `ADMIN_PASSWORD`).
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        for key in KEYS.iter().map(|k| k.name()) {
            let name = env_name(key);
            let found = vars.get(&name).map(|v| (name.clone(), v)).or_else(|| {
                let alt = format!("TRADEAUTH_{}", key.to_uppercase());
                vars.get(&alt).map(|v| (alt.clone(), v))
            });
            // An empty variable is "not set": it must not wipe a value from the file.
            if let Some((origin, v)) = found.filter(|(_, v)| !v.trim().is_empty()) {
                self.values.insert(
                    key.to_string(),
                    Raw {
                        value: v.clone(),
                        origin,
                    },
                );
            }
        }
        self
    }

    /// Sets one key (tests and the CLI use this).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values.insert(
            key.to_string(),
            Raw {
                value: value.into(),
                origin: env_name(key),
            },
        );
        self
    }

    /// The value set for `key`; an empty one counts as unset.
    pub(super) fn get(&self, key: &str) -> Option<&Raw> {
        self.values.get(key).filter(|r| !r.value.trim().is_empty())
    }

    /// An error about `key`, named where its value came from (its variable if unset).
    pub(super) fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let origin = self
            .values
            .get(key)
            .map(|r| r.origin.clone())
            .unwrap_or_else(|| env_name(key));
        ConfigError {
            key: origin,
            message: message.into(),
        }
    }

    /// The value of one key: parsed if set, else its default worked out in `cx`.
    pub(super) fn read<T, C>(&self, key: &Key<T, C>, cx: &C) -> Result<T, ConfigError> {
        let Some(raw) = self.get(key.name) else {
            return Ok((key.default)(cx));
        };
        // Secrets that are hidden whole are taken byte for byte; the rest is trimmed.
        let text = match key.secrecy {
            Secrecy::Hidden => raw.value.as_str(),
            Secrecy::Public | Secrecy::Url => raw.value.trim(),
        };
        (key.parse)(text).map_err(|why| {
            let message = match why {
                Invalid::Message(m) => m,
                Invalid::Expected(e) if key.secrecy == Secrecy::Hidden => {
                    format!("is not allowed; expected {e}")
                }
                Invalid::Expected(e) => format!("{:?} is not allowed; expected {e}", raw.value),
            };
            self.err(key.name, message)
        })
    }
}
