//! The `redfish` power type over HTTP(S) with basic auth.
//!
//! - The system is `node_id` or, when that is empty, the first member of
//!   `/redfish/v1/Systems` (MAAS's discovery).
//! - Power: `POST …/Actions/ComputerSystem.Reset` with `On`, `ForceOff`,
//!   `GracefulShutdown` (soft off) or `ForceRestart`; MAAS's power-on
//!   restarts a machine that is already on, so it netboots.
//! - State: the system's `PowerState`.
//! - One-time PXE: `PATCH {"Boot": {"BootSourceOverrideEnabled": "Once",
//!   "BootSourceOverrideTarget": "Pxe"}}` with `If-Match: <ETag>` when the
//!   BMC sends an ETag (refetched once on 412 Precondition Failed).
//! - `power_address` without a scheme means `https://`; certificates are
//!   not verified unless `power_verify_ssl` is `y` (an extension: MAAS never
//!   verifies BMC certificates).

use async_trait::async_trait;
use maas_core::PowerState;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::driver::{Capabilities, OffMode, PowerDriver, PowerTarget};
use crate::error::{Error, Result};
use crate::http::{HttpClients, status_error, transport};
use crate::params::{ParamSpec, PowerParams};

const SCHEMA: &[ParamSpec] = &[
    ParamSpec::new("power_address", "Redfish address").required(),
    ParamSpec::new("power_user", "Redfish user").required(),
    ParamSpec::new("power_pass", "Redfish password")
        .required()
        .secret(),
    ParamSpec::new("node_id", "Node ID").node(),
    ParamSpec::new(
        "power_verify_ssl",
        "Verify SSL connections with system CA certificates",
    )
    .choices(&["n", "y"])
    .default("n"),
];

const SYSTEMS: &str = "/redfish/v1/Systems";

/// MAAS's `redfish` driver.
#[derive(Debug, Clone)]
pub struct RedfishDriver {
    http: HttpClients,
}

/// Where a system lives and how to talk to it.
struct Endpoint<'a> {
    base: String,
    client: &'a reqwest::Client,
    params: &'a PowerParams,
}

/// `power_address` → base URL (`https://` unless a scheme is given).
pub fn base_url(address: &str) -> Result<String> {
    let with_scheme = if address.starts_with("http://") || address.starts_with("https://") {
        address.to_owned()
    } else {
        format!("https://{address}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| Error::Settings(format!("power_address: {e}")))?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Maps a Redfish `PowerState` to ours; transitions count as unknown so the
/// policy keeps waiting.
pub fn parse_power_state(system: &Value) -> Result<PowerState> {
    match system.get("PowerState").and_then(Value::as_str) {
        Some("On") => Ok(PowerState::On),
        Some("Off") => Ok(PowerState::Off),
        Some("PoweringOn" | "PoweringOff" | "Paused") => Ok(PowerState::Unknown),
        Some(other) => Err(Error::Bmc(format!("unknown Redfish PowerState {other:?}"))),
        None => Err(Error::Bmc("system has no PowerState".into())),
    }
}

/// The first member's `@odata.id` of a Systems collection.
pub fn first_member(collection: &Value) -> Result<String> {
    collection
        .get("Members")
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .and_then(|m| m.get("@odata.id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Bmc("no systems in /redfish/v1/Systems".into()))
}

impl Endpoint<'_> {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, path);
        let rb = self
            .client
            .request(method, url)
            .header(header::ACCEPT, "application/json");
        match self.params.get("power_user") {
            Some(user) => rb.basic_auth(user, self.params.get("power_pass")),
            None => rb,
        }
    }

    async fn get_json(&self, path: &str) -> Result<(Value, Option<String>)> {
        let resp = self
            .request(Method::GET, path)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), path));
        }
        let etag = resp
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .json()
            .await
            .map_err(|e| Error::Bmc(format!("{path}: not JSON: {e}")))?;
        Ok((body, etag))
    }

    /// The system's path: `node_id` or the first discovered member.
    async fn system_path(&self) -> Result<String> {
        if let Some(id) = self.params.get("node_id") {
            if id.starts_with('/') {
                return Ok(id.to_owned());
            }
            return Ok(format!("{SYSTEMS}/{id}"));
        }
        let (collection, _) = self.get_json(SYSTEMS).await?;
        first_member(&collection)
    }

    async fn send_ok(&self, rb: reqwest::RequestBuilder, what: &str) -> Result<StatusCode> {
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::PRECONDITION_FAILED {
            Ok(status)
        } else {
            Err(status_error(status, what))
        }
    }

    async fn reset(&self, reset_type: &str) -> Result<()> {
        let path = format!("{}/Actions/ComputerSystem.Reset", self.system_path().await?);
        let rb = self
            .request(Method::POST, &path)
            .json(&json!({ "ResetType": reset_type }));
        match self.send_ok(rb, &path).await? {
            StatusCode::PRECONDITION_FAILED => {
                Err(status_error(StatusCode::PRECONDITION_FAILED, &path))
            }
            _ => Ok(()),
        }
    }

    async fn state(&self) -> Result<PowerState> {
        let (system, _) = self.get_json(&self.system_path().await?).await?;
        parse_power_state(&system)
    }

    async fn pxe_once(&self) -> Result<()> {
        let path = self.system_path().await?;
        let body = json!({"Boot": {
            "BootSourceOverrideEnabled": "Once",
            "BootSourceOverrideTarget": "Pxe",
        }});
        // A BMC that uses ETags wants the current one; if someone changed the
        // system in between (412), fetch it again once.
        for _ in 0..2 {
            let (_, etag) = self.get_json(&path).await?;
            let mut rb = self.request(Method::PATCH, &path).json(&body);
            if let Some(tag) = etag {
                rb = rb.header(header::IF_MATCH, tag);
            }
            if self.send_ok(rb, &path).await? != StatusCode::PRECONDITION_FAILED {
                return Ok(());
            }
        }
        Err(status_error(StatusCode::PRECONDITION_FAILED, &path))
    }
}

impl RedfishDriver {
    /// A driver with its own HTTP clients.
    pub fn new() -> Result<Self> {
        Ok(Self {
            http: HttpClients::new()?,
        })
    }

    fn endpoint<'a>(&'a self, target: &'a PowerTarget) -> Result<Endpoint<'a>> {
        let p = &target.params;
        Ok(Endpoint {
            base: base_url(p.require("power_address")?)?,
            client: self.http.get(p.get("power_verify_ssl") == Some("y")),
            params: p,
        })
    }
}

#[async_trait]
impl PowerDriver for RedfishDriver {
    fn power_type(&self) -> &'static str {
        "redfish"
    }
    fn description(&self) -> &'static str {
        "Redfish"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            queryable: true,
            can_set_boot_order: true,
            soft_off: true,
        }
    }
    fn schema(&self) -> &'static [ParamSpec] {
        SCHEMA
    }
    async fn power_on(&self, target: &PowerTarget) -> Result<()> {
        let ep = self.endpoint(target)?;
        if ep.state().await? == PowerState::On {
            ep.reset("ForceRestart").await
        } else {
            ep.reset("On").await
        }
    }
    async fn power_off(&self, target: &PowerTarget, mode: OffMode) -> Result<()> {
        let ep = self.endpoint(target)?;
        match mode {
            OffMode::Hard => ep.reset("ForceOff").await,
            OffMode::Soft => ep.reset("GracefulShutdown").await,
        }
    }
    async fn power_cycle(&self, target: &PowerTarget) -> Result<()> {
        self.power_on(target).await
    }
    async fn power_query(&self, target: &PowerTarget) -> Result<PowerState> {
        self.endpoint(target)?.state().await
    }
    async fn set_boot_pxe_once(&self, target: &PowerTarget) -> Result<()> {
        self.endpoint(target)?.pxe_once().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base_url_defaults_to_https() {
        assert_eq!(base_url("10.0.0.5").unwrap(), "https://10.0.0.5");
        assert_eq!(
            base_url("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert!(base_url("http://[::1").unwrap_err().is_fatal());
    }

    #[test]
    fn power_states_and_members() {
        assert_eq!(
            parse_power_state(&json!({"PowerState": "On"})).unwrap(),
            PowerState::On
        );
        assert_eq!(
            parse_power_state(&json!({"PowerState": "Off"})).unwrap(),
            PowerState::Off
        );
        assert_eq!(
            parse_power_state(&json!({"PowerState": "PoweringOn"})).unwrap(),
            PowerState::Unknown
        );
        assert!(parse_power_state(&json!({})).is_err());
        let c = json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]});
        assert_eq!(first_member(&c).unwrap(), "/redfish/v1/Systems/1");
        assert!(first_member(&json!({"Members": []})).is_err());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*", n in any::<i64>()) {
            let _ = parse_power_state(&json!({"PowerState": s.clone()}));
            let _ = parse_power_state(&json!({"PowerState": n}));
            let _ = first_member(&json!({"Members": [{"@odata.id": s.clone()}]}));
            let _ = base_url(&s);
        }
    }
}
