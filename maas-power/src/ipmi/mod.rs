//! The `ipmi` power type: IPMI 2.0 RMCP+ (lanplus) spoken natively.
//!
//! One session per call: open (RAKP with cipher suite 3 or 17, k_g,
//! privilege level; or an IPMI 1.5 MD5 session when `power_driver` = `LAN`),
//! a few chassis commands, close. `workaround_flags` are accepted for API
//! compatibility and ignored. MAAS semantics: power on
//! is FreeIPMI's `--cycle --on-if-off` (a running machine is cycled so it
//! netboots), power off is Chassis Control down (hard) or soft-shutdown,
//! query is Get Chassis Status, and the next boot is set to PXE once with Set
//! System Boot Options (EFI when `power_boot_type` = `efi`).

pub mod client;
pub mod crypto;
pub mod lan15;
pub mod packet;
pub mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use maas_core::PowerState;

use crate::driver::{Capabilities, OffMode, PowerDriver, PowerTarget};
use crate::error::{Error, Result};
use crate::params::{ParamSpec, PowerParams, Secret};
use client::{NETFN_CHASSIS, Privilege, Session, SessionConfig};
use crypto::CipherSuite;

/// IPMI's UDP port.
pub const IPMI_PORT: u16 = 623;

const SCHEMA: &[ParamSpec] = &[
    ParamSpec::new("power_driver", "Power driver")
        .required()
        .choices(&["LAN", "LAN_2_0"])
        .default("LAN_2_0"),
    ParamSpec::new("power_boot_type", "Power boot type")
        .choices(&["auto", "legacy", "efi"])
        .default("auto"),
    ParamSpec::new("power_address", "IP address").required(),
    ParamSpec::new("power_user", "Power user"),
    ParamSpec::new("power_pass", "Power password").secret(),
    ParamSpec::new("k_g", "K_g BMC key").secret(),
    ParamSpec::new("cipher_suite_id", "Cipher Suite ID")
        .choices(&["17", "3", "", "8", "12"])
        .default("3"),
    ParamSpec::new("privilege_level", "Privilege Level")
        .choices(&["USER", "OPERATOR", "ADMIN"])
        .default("OPERATOR"),
    ParamSpec::new("workaround_flags", "Workaround Flags")
        .choices(&[
            "opensesspriv",
            "authcap",
            "idzero",
            "unexpectedauth",
            "forcepermsg",
            "endianseq",
            "intel20",
            "supermicro20",
            "sun20",
            "nochecksumcheck",
            "integritycheckvalue",
            "ipmiping",
            "none",
        ])
        .multiple()
        .default("opensesspriv"),
    ParamSpec::new("mac_address", "Power MAC").node(),
    ParamSpec::new("power_off_mode", "Power off mode")
        .choices(&["soft", "hard"])
        .default("hard"),
];

/// Chassis Control values.
const CHASSIS_DOWN: u8 = 0x00;
const CHASSIS_UP: u8 = 0x01;
const CHASSIS_CYCLE: u8 = 0x02;
const CHASSIS_SOFT: u8 = 0x05;

/// MAAS's `ipmi` driver.
#[derive(Debug, Clone)]
pub struct IpmiDriver {
    timeout: Duration,
    attempts: u32,
}

impl Default for IpmiDriver {
    fn default() -> Self {
        Self::new()
    }
}

/// `power_address` → socket address: `ip`, `ip:port`, `[v6]:port`, `host`
/// or `host:port`; port 623 when absent.
pub async fn resolve(address: &str) -> Result<SocketAddr> {
    if let Ok(sa) = address.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = address.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, IPMI_PORT));
    }
    let with_port = if address.contains(':') {
        address.to_owned()
    } else {
        format!("{address}:{IPMI_PORT}")
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| Error::Connection(format!("power_address {address:?}: {e}")))?
        .next()
        .ok_or_else(|| Error::Settings(format!("power_address {address:?} resolves to nothing")))
}

impl IpmiDriver {
    /// Defaults: 1 s per reply, 3 sends per request.
    pub fn new() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            attempts: 3,
        }
    }

    /// Changes the per-reply timeout and the sends per request.
    pub fn with_timeouts(timeout: Duration, attempts: u32) -> Self {
        Self { timeout, attempts }
    }

    /// The session settings from MAAS parameters.
    pub async fn session_config(&self, p: &PowerParams) -> Result<SessionConfig> {
        let lan15 = match p.get("power_driver") {
            None | Some("LAN_2_0") => false,
            Some("LAN") => true,
            Some(other) => {
                return Err(Error::Settings(format!(
                    "power_driver {other:?} is not LAN or LAN_2_0"
                )));
            }
        };
        Ok(SessionConfig {
            addr: resolve(p.require("power_address")?).await?,
            user: p.get("power_user").unwrap_or_default().to_owned(),
            password: Secret::new(p.get("power_pass").unwrap_or_default()),
            kg: p.get("k_g").map(Secret::new),
            suite: CipherSuite::from_param(p.get("cipher_suite_id"))?,
            privilege: Privilege::from_param(p.get("privilege_level"))?,
            timeout: self.timeout,
            attempts: self.attempts,
            lan15,
        })
    }

    /// Opens a session for `target`: RMCP+ or, for `LAN`, IPMI 1.5.
    async fn open(&self, target: &PowerTarget) -> Result<AnySession> {
        let cfg = self.session_config(&target.params).await?;
        if cfg.lan15 {
            Ok(AnySession::V15(lan15::Session15::open(&cfg).await?))
        } else {
            Ok(AnySession::V2(Session::open(&cfg).await?))
        }
    }
}

/// A session of either IPMI version.
#[derive(Debug)]
enum AnySession {
    V2(Session),
    V15(lan15::Session15),
}

impl AnySession {
    async fn command(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            AnySession::V2(s) => s.command(netfn, cmd, data).await,
            AnySession::V15(s) => s.command(netfn, cmd, data).await,
        }
    }

    async fn close(self) {
        match self {
            AnySession::V2(s) => s.close().await,
            AnySession::V15(s) => s.close().await,
        }
    }
}

async fn chassis_status(s: &mut AnySession) -> Result<PowerState> {
    let data = s.command(NETFN_CHASSIS, 0x01, &[]).await?;
    let first = data
        .first()
        .ok_or_else(|| Error::Bmc("empty Get Chassis Status reply".into()))?;
    Ok(if first & 0x01 != 0 {
        PowerState::On
    } else {
        PowerState::Off
    })
}

async fn chassis_control(s: &mut AnySession, op: u8) -> Result<()> {
    s.command(NETFN_CHASSIS, 0x02, &[op]).await.map(drop)
}

/// Boot flags (parameter 5) for a one-time PXE boot.
pub fn pxe_once_flags(boot_type: Option<&str>) -> Result<[u8; 6]> {
    let efi = match boot_type.unwrap_or("auto") {
        "efi" => 0x20,
        "auto" | "legacy" => 0x00,
        other => {
            return Err(Error::Settings(format!(
                "power_boot_type {other:?} is not auto, legacy or efi"
            )));
        }
    };
    // valid, next boot only, [EFI]; device selector 0001b = force PXE.
    Ok([0x05, 0x80 | efi, 0x04, 0x00, 0x00, 0x00])
}

#[async_trait]
impl PowerDriver for IpmiDriver {
    fn power_type(&self) -> &'static str {
        "ipmi"
    }
    fn description(&self) -> &'static str {
        "IPMI"
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
        let mut s = self.open(target).await?;
        let r = match chassis_status(&mut s).await {
            Ok(PowerState::On) => match chassis_control(&mut s, CHASSIS_CYCLE).await {
                // Some BMCs refuse Power Cycle (pyghmi's answers 0xcc, others
                // 0xc1 or "not in present state"); off then on has the same
                // effect, and is what an operator would do by hand.
                Err(Error::Bmc(_) | Error::Unsupported(_)) => {
                    match chassis_control(&mut s, CHASSIS_DOWN).await {
                        Ok(()) => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            chassis_control(&mut s, CHASSIS_UP).await
                        }
                        Err(e) => Err(e),
                    }
                }
                r => r,
            },
            Ok(_) => chassis_control(&mut s, CHASSIS_UP).await,
            Err(e) => Err(e),
        };
        s.close().await;
        r
    }
    async fn power_off(&self, target: &PowerTarget, mode: OffMode) -> Result<()> {
        let op = match mode {
            OffMode::Hard => CHASSIS_DOWN,
            OffMode::Soft => CHASSIS_SOFT,
        };
        let mut s = self.open(target).await?;
        let r = chassis_control(&mut s, op).await;
        s.close().await;
        r
    }
    async fn power_cycle(&self, target: &PowerTarget) -> Result<()> {
        self.power_on(target).await
    }
    async fn power_query(&self, target: &PowerTarget) -> Result<PowerState> {
        let mut s = self.open(target).await?;
        let r = chassis_status(&mut s).await;
        s.close().await;
        r
    }
    async fn set_boot_pxe_once(&self, target: &PowerTarget) -> Result<()> {
        let flags = pxe_once_flags(target.params.get("power_boot_type"))?;
        let mut s = self.open(target).await?;
        let r = s.command(NETFN_CHASSIS, 0x08, &flags).await.map(drop);
        s.close().await;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_resolve_with_default_port() {
        assert_eq!(resolve("127.0.0.1").await.unwrap().port(), 623);
        assert_eq!(resolve("127.0.0.1:9001").await.unwrap().port(), 9001);
        assert_eq!(resolve("::1").await.unwrap().port(), 623);
        assert_eq!(resolve("[::1]:7").await.unwrap().port(), 7);
        assert_eq!(resolve("localhost").await.unwrap().port(), 623);
    }

    #[test]
    fn boot_flags() {
        assert_eq!(pxe_once_flags(None).unwrap()[1], 0x80);
        assert_eq!(pxe_once_flags(Some("efi")).unwrap()[1], 0xA0);
        assert_eq!(pxe_once_flags(Some("legacy")).unwrap()[2], 0x04);
        assert!(pxe_once_flags(Some("uefi")).unwrap_err().is_fatal());
    }

    #[tokio::test]
    async fn bad_drivers_and_unknown_suites_are_fatal_settings() {
        let d = IpmiDriver::new();
        let p = PowerParams::new()
            .with("power_address", "127.0.0.1")
            .with("power_driver", "LAN");
        assert!(d.session_config(&p).await.unwrap().lan15);
        let p = PowerParams::new()
            .with("power_address", "127.0.0.1")
            .with("power_driver", "USB");
        assert!(d.session_config(&p).await.unwrap_err().is_fatal());
        let p = PowerParams::new()
            .with("power_address", "127.0.0.1")
            .with("cipher_suite_id", "8");
        assert!(d.session_config(&p).await.unwrap_err().is_fatal());
    }
}
