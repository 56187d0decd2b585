//! The `webhook` power type: MAAS POSTs to an "on" and an "off" URI and GETs
//! a "query" URI whose body is matched against two regexes.
//!
//! Headers follow MAAS: `User-Agent: MAAS …`, `Accept: application/json`,
//! `System_Id: <id>` when known, and `Authorization: Bearer <power_token>`
//! or else Basic from `power_user`/`power_pass`. A 404 on a URI without a
//! trailing slash is retried once with one, as MAAS does for picky servers.

use async_trait::async_trait;
use maas_core::PowerState;
use regex::Regex;
use reqwest::Method;

use crate::driver::{Capabilities, OffMode, PowerDriver, PowerTarget};
use crate::error::{Error, Result};
use crate::http::{HttpClients, status_error, transport};
use crate::params::{ParamSpec, PowerParams};

/// MAAS's default regex for "on".
pub const DEFAULT_ON_REGEX: &str = r"status.*\:.*running";
/// MAAS's default regex for "off".
pub const DEFAULT_OFF_REGEX: &str = r"status.*\:.*stopped";

const SCHEMA: &[ParamSpec] = &[
    ParamSpec::new("power_on_uri", "URI to power on the node").required(),
    ParamSpec::new("power_off_uri", "URI to power off the node").required(),
    ParamSpec::new("power_query_uri", "URI to query the nodes power status").required(),
    ParamSpec::new("power_on_regex", "Regex to confirm the node is on")
        .required()
        .default(DEFAULT_ON_REGEX),
    ParamSpec::new("power_off_regex", "Regex to confirm the node is off")
        .required()
        .default(DEFAULT_OFF_REGEX),
    ParamSpec::new("power_user", "Power user"),
    ParamSpec::new("power_pass", "Power password").secret(),
    ParamSpec::new(
        "power_token",
        "Power token, will be used in place of power_user and power_pass",
    )
    .secret(),
    ParamSpec::new(
        "power_verify_ssl",
        "Verify SSL connections with system CA certificates",
    )
    .required()
    .choices(&["n", "y"])
    .default("n"),
];

/// MAAS's `webhook` driver.
#[derive(Debug, Clone)]
pub struct WebhookDriver {
    http: HttpClients,
}

impl WebhookDriver {
    /// A driver with its own HTTP clients.
    pub fn new() -> Result<Self> {
        Ok(Self {
            http: HttpClients::new()?,
        })
    }

    async fn request(
        &self,
        method: Method,
        uri_param: &str,
        target: &PowerTarget,
    ) -> Result<String> {
        let p = &target.params;
        let uri = p.require(uri_param)?;
        let verify = p.get("power_verify_ssl") == Some("y");
        let mut tried_slash = false;
        let mut url = uri.to_owned();
        loop {
            let resp = self
                .authorise(self.http.get(verify).request(method.clone(), &url), target)
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND && !url.ends_with('/') && !tried_slash {
                tried_slash = true;
                url.push('/');
                continue;
            }
            if !status.is_success() && !status.is_redirection() {
                return Err(status_error(status, uri_param));
            }
            return resp.text().await.map_err(transport);
        }
    }

    fn authorise(
        &self,
        rb: reqwest::RequestBuilder,
        target: &PowerTarget,
    ) -> reqwest::RequestBuilder {
        let p = &target.params;
        let mut rb = rb.header(reqwest::header::ACCEPT, "application/json");
        if let Some(id) = &target.system_id {
            rb = rb.header("System_Id", id.to_string());
        }
        if let Some(token) = p.get("power_token") {
            rb.bearer_auth(token)
        } else if let (Some(user), Some(pass)) = (p.get("power_user"), p.get("power_pass")) {
            rb.basic_auth(user, Some(pass))
        } else {
            rb
        }
    }
}

/// Compiles one of the regex parameters (or its default).
fn regex_param(p: &PowerParams, name: &str, default: &str) -> Result<Regex> {
    let src = p.get(name).unwrap_or(default);
    Regex::new(src).map_err(|e| Error::Settings(format!("{name}: bad regex: {e}")))
}

/// MAAS's decision: the "on" regex wins, then "off", else unknown.
pub fn classify(body: &str, on: &Regex, off: &Regex) -> PowerState {
    if on.is_match(body) {
        PowerState::On
    } else if off.is_match(body) {
        PowerState::Off
    } else {
        PowerState::Unknown
    }
}

#[async_trait]
impl PowerDriver for WebhookDriver {
    fn power_type(&self) -> &'static str {
        "webhook"
    }
    fn description(&self) -> &'static str {
        "Webhook"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            queryable: true,
            can_set_boot_order: false,
            soft_off: false,
        }
    }
    fn schema(&self) -> &'static [ParamSpec] {
        SCHEMA
    }
    async fn power_on(&self, target: &PowerTarget) -> Result<()> {
        self.request(Method::POST, "power_on_uri", target)
            .await
            .map(drop)
    }
    async fn power_off(&self, target: &PowerTarget, _mode: OffMode) -> Result<()> {
        self.request(Method::POST, "power_off_uri", target)
            .await
            .map(drop)
    }
    async fn power_query(&self, target: &PowerTarget) -> Result<PowerState> {
        let on = regex_param(&target.params, "power_on_regex", DEFAULT_ON_REGEX)?;
        let off = regex_param(&target.params, "power_off_regex", DEFAULT_OFF_REGEX)?;
        let body = self.request(Method::GET, "power_query_uri", target).await?;
        Ok(classify(&body, &on, &off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_regexes_match_maas_examples() {
        let on = Regex::new(DEFAULT_ON_REGEX).unwrap();
        let off = Regex::new(DEFAULT_OFF_REGEX).unwrap();
        assert_eq!(
            classify(r#"{"status": "running"}"#, &on, &off),
            PowerState::On
        );
        assert_eq!(
            classify(r#"{"status": "stopped"}"#, &on, &off),
            PowerState::Off
        );
        assert_eq!(
            classify(r#"{"status": "paused"}"#, &on, &off),
            PowerState::Unknown
        );
    }

    #[test]
    fn bad_regex_is_a_settings_error() {
        let p = PowerParams::new().with("power_on_regex", "(");
        let e = regex_param(&p, "power_on_regex", DEFAULT_ON_REGEX).unwrap_err();
        assert!(e.is_fatal());
    }
}
