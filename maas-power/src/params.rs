//! Power parameters: the per-driver schema and the parameter bag.
//!
//! The names are MAAS API fields (`power_parameters_<name>`), so they are kept
//! exactly as MAAS spells them. A [`ParamSpec`] says whether a parameter is
//! required, which values it accepts, whether it belongs to the BMC (shared by
//! every machine behind it) or to the node, and whether it is a secret. The API
//! validates input with [`validate`]; drivers read values from [`PowerParams`],
//! whose `Debug` never shows a secret.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who owns a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Shared by every machine behind one BMC (address, credentials).
    Bmc,
    /// Specific to one machine (a domain name, a node id, a MAC).
    Node,
}

/// One parameter of one power driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    /// The API field name, e.g. `power_address`.
    pub name: &'static str,
    /// A human label, as MAAS shows it.
    pub label: &'static str,
    /// Whether a value must be given (an empty string counts as missing).
    pub required: bool,
    /// Who owns the value.
    pub scope: Scope,
    /// Allowed values; empty means free text.
    pub choices: &'static [&'static str],
    /// Whether several comma-separated choices may be given.
    pub multiple: bool,
    /// The value used when none is given.
    pub default: Option<&'static str>,
    /// Passwords, keys and tokens: never logged, never shown in `Debug`.
    pub secret: bool,
}

impl ParamSpec {
    /// A free-text, optional, BMC-scoped parameter; refine with the builders.
    pub const fn new(name: &'static str, label: &'static str) -> Self {
        Self {
            name,
            label,
            required: false,
            scope: Scope::Bmc,
            choices: &[],
            multiple: false,
            default: None,
            secret: false,
        }
    }
    /// Marks the parameter as required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Marks the parameter as belonging to the node.
    pub const fn node(mut self) -> Self {
        self.scope = Scope::Node;
        self
    }
    /// Restricts the values.
    pub const fn choices(mut self, choices: &'static [&'static str]) -> Self {
        self.choices = choices;
        self
    }
    /// Allows several comma-separated choices.
    pub const fn multiple(mut self) -> Self {
        self.multiple = true;
        self
    }
    /// Sets the default value.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    /// Marks the parameter as a secret.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// Parameter names that are secrets whatever the driver: `Debug` of a
/// [`PowerParams`] redacts these without needing the schema.
pub const SECRET_NAMES: &[&str] = &[
    "power_pass",
    "k_g",
    "power_token",
    "power_token_secret",
    "password",
    "key",
];

fn is_secret_name(name: &str) -> bool {
    SECRET_NAMES.contains(&name)
}

/// The power parameters of one machine: name → value, as the API stores them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PowerParams(BTreeMap<String, String>);

impl PowerParams {
    /// An empty bag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a value (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds or replaces a value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or the schema default, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| Error::Settings(format!("missing required parameter {name}")))
    }

    /// Every (name, value) pair, secrets included; for the API, not for logs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Fills in the schema's defaults for parameters that are absent or empty.
    pub fn with_defaults(mut self, schema: &[ParamSpec]) -> Self {
        for spec in schema {
            if let Some(d) = spec.default
                && self.get(spec.name).is_none()
            {
                self.0.insert(spec.name.to_owned(), d.to_owned());
            }
        }
        self
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for PowerParams {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for PowerParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.0 {
            if is_secret_name(k) && !v.is_empty() {
                m.entry(k, &"<redacted>");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

/// A string that never shows itself in `Debug` or `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty (no password set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Checks `params` against `schema`: every required parameter present,
/// every value among its choices, no unknown names. Error messages name the
/// parameter and, for secrets, never echo the value.
pub fn validate(schema: &[ParamSpec], params: &PowerParams) -> Result<()> {
    for (name, value) in params.iter() {
        let Some(spec) = schema.iter().find(|s| s.name == name) else {
            return Err(Error::Settings(format!("unknown parameter {name}")));
        };
        if value.is_empty() || spec.choices.is_empty() {
            continue;
        }
        let values: Vec<&str> = if spec.multiple {
            value.split(',').map(str::trim).collect()
        } else {
            vec![value]
        };
        for v in values {
            if !spec.choices.contains(&v) {
                let shown = if spec.secret { "<redacted>" } else { v };
                return Err(Error::Settings(format!(
                    "{name}: {shown:?} is not one of {:?}",
                    spec.choices
                )));
            }
        }
    }
    for spec in schema {
        if spec.required && spec.default.is_none() && params.get(spec.name).is_none() {
            return Err(Error::Settings(format!(
                "missing required parameter {}",
                spec.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &[ParamSpec] = &[
        ParamSpec::new("power_address", "Address").required(),
        ParamSpec::new("power_pass", "Password").secret(),
        ParamSpec::new("power_off_mode", "Off mode")
            .choices(&["soft", "hard"])
            .default("hard"),
        ParamSpec::new("flags", "Flags")
            .choices(&["a", "b"])
            .multiple(),
        ParamSpec::new("power_id", "Id").node().required(),
    ];

    #[test]
    fn debug_redacts_secrets() {
        let p = PowerParams::new()
            .with("power_address", "10.0.0.1")
            .with("power_pass", "hunter2")
            .with("k_g", "kgsecret");
        let s = format!("{p:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("kgsecret"), "{s}");
        assert!(s.contains("10.0.0.1"), "{s}");
        assert_eq!(format!("{:?}", Secret::new("x1y2")), "<redacted>");
    }

    #[test]
    fn validate_accepts_and_rejects() {
        let ok = PowerParams::new()
            .with("power_address", "a")
            .with("power_id", "vm1")
            .with("flags", "a,b");
        validate(SCHEMA, &ok).unwrap();
        let missing = PowerParams::new().with("power_address", "a");
        let e = validate(SCHEMA, &missing).unwrap_err();
        assert!(e.to_string().contains("power_id"), "{e}");
        assert!(e.is_fatal());
        let bad = ok.clone().with("power_off_mode", "gentle");
        assert!(
            validate(SCHEMA, &bad)
                .unwrap_err()
                .to_string()
                .contains("gentle")
        );
        let unknown = ok.clone().with("nope", "1");
        assert!(validate(SCHEMA, &unknown).is_err());
        let bad_multi = ok.with("flags", "a,c");
        assert!(validate(SCHEMA, &bad_multi).is_err());
    }

    #[test]
    fn defaults_fill_empty_values() {
        let p = PowerParams::new()
            .with("power_off_mode", "")
            .with_defaults(SCHEMA);
        assert_eq!(p.get("power_off_mode"), Some("hard"));
        assert_eq!(p.get("power_pass"), None);
    }
}
