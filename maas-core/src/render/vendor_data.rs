//! Vendor-data for the deployed (or memory-deployed) OS — a YAML mapping
//! whose `cloud-init` key holds a `#cloud-config` document: default user,
//! NTP, snap proxy and, for ephemeral Ubuntu deployments, the netplan file
//! — and the user-data pass-through (stored base64, served decoded).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::{RenderContext, cloud_config, is_ubuntu, to_yaml};
use crate::error::{Error, Result};
use crate::machine::Machine;

/// The `#cloud-config` inside the vendor-data.
pub fn vendor_cloud_config(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    let mut c = Map::new();
    if let Some(user) = &ctx.default_user {
        let mut du = Map::new();
        du.insert("name".into(), json!(user));
        if let Some(g) = &ctx.owner_name {
            du.insert("gecos".into(), json!(g));
        }
        c.insert("system_info".into(), json!({ "default_user": du }));
    }
    let (servers, pools): (Vec<&String>, Vec<&String>) = ctx
        .ntp_servers
        .iter()
        .partition(|s| s.parse::<std::net::IpAddr>().is_ok());
    if servers.is_empty() && pools.is_empty() {
        c.insert(
            "ntp".into(),
            json!({ "servers": [], "pools": ["ntp.ubuntu.com"] }),
        );
    } else {
        c.insert("ntp".into(), json!({ "servers": servers, "pools": pools }));
    }
    if let Some(p) = &ctx.apt.proxy {
        c.insert(
            "snap".into(),
            json!({ "commands": [format!("snap set system proxy.http={p} proxy.https={p}")] }),
        );
    }
    // Memory deployments run no curtin: networking comes from here, and only
    // Ubuntu images know what to do with it.
    if machine.ephemeral_deploy && is_ubuntu(machine) {
        c.insert(
            "write_files".into(),
            json!([{
                "path": "/etc/netplan/50-maas.yaml",
                "content": super::netplan::netplan_yaml(machine, ctx)?,
                "permissions": "0600",
            }]),
        );
        c.insert(
            "runcmd".into(),
            json!(["rm -rf /run/netplan", "netplan apply --debug"]),
        );
    }
    cloud_config(&Value::Object(c))
}

/// The vendor-data document (`meta-data/vendor-data`).
pub fn vendor_data(machine: &Machine, ctx: &RenderContext) -> Result<String> {
    to_yaml(&json!({ "cloud-init": vendor_cloud_config(machine, ctx)? }))
}

/// Decodes user-data as stored from the API (base64, line breaks allowed).
pub fn decode_user_data(stored: &str) -> Result<Vec<u8>> {
    let compact: String = stored
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| Error::Render(format!("user_data is not valid base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_wrapped_base64() {
        assert_eq!(
            decode_user_data("I2Nsb3VkLWNv\nbmZpZwo=").unwrap(),
            b"#cloud-config\n"
        );
        assert!(decode_user_data("not base64!").is_err());
    }

    proptest! {
        #[test]
        fn user_data_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let enc = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(decode_user_data(&enc).unwrap(), bytes);
        }

        #[test]
        fn user_data_never_panics(s in "\\PC{0,64}") {
            let _ = decode_user_data(&s);
        }
    }
}
