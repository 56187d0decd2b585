//! Powers a BMC from the command line through maas-power's policy (retries,
//! confirmation by query, timeouts).
//!
//! ```text
//! cargo run -p maas-examples --example power -- <power_type> <action> [name=value ...]
//!   action: on | off | soft-off | cycle | query | pxe
//!   e.g.   ipmi query power_address=10.0.0.5 power_user=admin power_pass=secret
//!          redfish on power_address=https://bmc1 power_user=root power_pass=calvin
//!          virsh query power_address=test:///default power_id=test
//!          ipmi cycle --sim        (an in-process simulated BMC, nothing to set up)
//! ```

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use maas_power::ipmi::sim::{SimBmc, SimConfig, serve};
use maas_power::{
    OffMode, PolicyConfig, PowerAction, PowerManager, PowerParams, PowerTarget, Registry,
};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(power_type), Some(action)) = (args.first(), args.get(1)) else {
        bail!(
            "usage: power <power_type> <on|off|soft-off|cycle|query|pxe> [name=value ...] [--sim]"
        );
    };
    let action = match action.as_str() {
        "on" => PowerAction::On,
        "off" => PowerAction::Off(OffMode::Hard),
        "soft-off" => PowerAction::Off(OffMode::Soft),
        "cycle" => PowerAction::Cycle,
        "query" => PowerAction::Query,
        "pxe" => PowerAction::SetBootPxe,
        other => bail!("unknown action {other:?}"),
    };
    let mut params = PowerParams::new();
    let mut sim = false;
    for a in &args[2..] {
        if a == "--sim" {
            sim = true;
            continue;
        }
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("{a:?} is not name=value"))?;
        params.insert(k, v);
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    if sim {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        params.insert("power_address", sock.local_addr()?.to_string());
        params.insert("power_user", "admin");
        params.insert("power_pass", "password");
        tokio::spawn(serve(
            sock,
            Arc::new(SimBmc::new(SimConfig::single_user("admin", "password"))),
            cancel.clone(),
        ));
    }
    let manager = PowerManager::new(Registry::with_builtin()?, PolicyConfig::default());
    manager.registry().validate(power_type, &params)?;
    // Debug of the parameters redacts passwords, tokens and k_g.
    eprintln!("{power_type} {action:?} {params:?}");
    let state = manager
        .perform(power_type, &PowerTarget::new(params), action)
        .await?;
    println!("{state}");
    Ok(())
}
