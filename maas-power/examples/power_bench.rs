//! Benchmark: query many BMCs concurrently.
//!
//! Run by `bench/power/run.sh` (release build). Peers side by side in one
//! run:
//! - native IPMI (this crate) vs `ipmitool -I lanplus` processes (what MAAS
//!   and Ironic do), both against the same 1,000 in-process simulated BMCs,
//!   and both against one OpenIPMI `ipmi_sim`;
//! - native Redfish against 1,000 in-process Redfish endpoints.
//!
//! Prints a Markdown table on stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use maas_core::PowerState;
use maas_power::ipmi::IpmiDriver;
use maas_power::ipmi::sim::{SimBmc, SimConfig, serve};
use maas_power::redfish::RedfishDriver;
use maas_power::{PowerDriver, PowerParams, PowerTarget};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

struct Row {
    what: String,
    n: usize,
    concurrency: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
    errors: usize,
}

impl Row {
    fn rate(&self) -> f64 {
        (self.n - self.errors) as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> f64 {
        let mut l = self.lat.clone();
        l.sort();
        if l.is_empty() {
            return f64::NAN;
        }
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1;
        l[i].as_secs_f64() * 1000.0
    }
}

fn ipmi_params(addr: SocketAddr) -> PowerParams {
    PowerParams::new()
        .with("power_address", addr.to_string())
        .with("power_user", "admin")
        .with("power_pass", "password")
        .with("cipher_suite_id", "3")
        .with("privilege_level", "OPERATOR")
}

/// Runs `n` queries with at most `concurrency` in flight.
async fn run<F, Fut>(what: &str, n: usize, concurrency: usize, f: F) -> Row
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<PowerState>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit_sem = sem.clone();
        let fut = f(i);
        tasks.push(tokio::spawn(async move {
            let _p = permit_sem.acquire_owned().await;
            let t = Instant::now();
            let r = fut.await;
            (t.elapsed(), r)
        }));
    }
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((d, Ok(PowerState::On | PowerState::Off))) => lat.push(d),
            Ok((_, r)) => {
                if errors == 0 {
                    eprintln!("{what}: first error: {r:?}");
                }
                errors += 1
            }
            Err(_) => errors += 1,
        }
    }
    Row {
        what: what.to_owned(),
        n,
        concurrency,
        elapsed: start.elapsed(),
        lat,
        errors,
    }
}

async fn ipmitool_query(addr: SocketAddr) -> Result<PowerState> {
    let out = tokio::process::Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-H",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
        ])
        .args([
            "-U", "admin", "-P", "password", "-C", "3", "-L", "OPERATOR", "power", "status",
        ])
        .output()
        .await
        .context("ipmitool (Debian package ipmitool)")?;
    let s = String::from_utf8_lossy(&out.stdout);
    if s.contains("is on") {
        Ok(PowerState::On)
    } else if s.contains("is off") {
        Ok(PowerState::Off)
    } else {
        bail!("ipmitool: {}", String::from_utf8_lossy(&out.stderr))
    }
}

async fn redfish_endpoint(on: bool) -> Result<SocketAddr> {
    use axum::routing::get;
    let state = if on { "On" } else { "Off" };
    let app =
        axum::Router::new()
            .route(
                "/redfish/v1/Systems",
                get(|| async {
                    axum::Json(
                        serde_json::json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]}),
                    )
                }),
            )
            .route(
                "/redfish/v1/Systems/1",
                get(move || async move {
                    axum::Json(serde_json::json!({"Id": "1", "PowerState": state}))
                }),
            );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}

fn start_ipmi_sim(dir: &std::path::Path, port: u16) -> Result<std::process::Child> {
    let lan = format!(
        "name \"bench\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 {port}\n    priv_limit admin\n\
         allowed_auths_callback none md2 md5 straight\n    allowed_auths_user none md2 md5 straight\n\
         allowed_auths_operator none md2 md5 straight\n    allowed_auths_admin none md2 md5 straight\n\
         guid a123456789abcdefa123456789abcdef\n  endlan\n\
         user 2 true  \"admin\" \"password\" admin 10 none md2 md5 straight\n"
    );
    std::fs::write(dir.join("lan.conf"), lan)?;
    std::fs::write(
        dir.join("sim.emu"),
        "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
    )?;
    std::fs::create_dir_all(dir.join("state"))?;
    std::process::Command::new("ipmi_sim")
        .current_dir(dir)
        .args(["-c", "lan.conf", "-f", "sim.emu", "-s", "state", "-n"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("ipmi_sim (Debian package openipmi)")
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("BMCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let tool_conc: usize = std::env::var("IPMITOOL_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();

    // n simulated BMCs, each on its own UDP port, half of them on.
    let mut addrs = Vec::with_capacity(n);
    for i in 0..n {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        addrs.push(sock.local_addr()?);
        let bmc = Arc::new(SimBmc::new(SimConfig::single_user("admin", "password")));
        bmc.set_on(i % 2 == 0);
        tokio::spawn(serve(sock, bmc, cancel.clone()));
    }
    // Generous per-reply timeout: 1,000 sessions at once on 2 cores.
    let ipmi = Arc::new(IpmiDriver::with_timeouts(Duration::from_secs(5), 3));
    let mut rows = Vec::new();

    let a = addrs.clone();
    let d = ipmi.clone();
    rows.push(
        run(
            &format!("native IPMI (maas-power), {n} sim BMCs"),
            n,
            n,
            move |i| {
                let d = d.clone();
                let t = PowerTarget::new(ipmi_params(a[i]));
                async move { Ok(d.power_query(&t).await?) }
            },
        )
        .await,
    );
    let a = addrs.clone();
    rows.push(
        run(
            &format!("ipmitool processes, {n} sim BMCs"),
            n,
            tool_conc,
            move |i| ipmitool_query(a[i]),
        )
        .await,
    );

    // Redfish: n in-process endpoints.
    let mut raddrs = Vec::with_capacity(n);
    for i in 0..n {
        raddrs.push(redfish_endpoint(i % 2 == 0).await?);
    }
    let rf = Arc::new(RedfishDriver::new()?);
    rows.push(
        run(
            &format!("native Redfish (maas-power), {n} endpoints"),
            n,
            n,
            move |i| {
                let d = rf.clone();
                let t = PowerTarget::new(
                    PowerParams::new()
                        .with("power_address", format!("http://{}", raddrs[i]))
                        .with("power_user", "admin")
                        .with("power_pass", "password"),
                );
                async move { Ok(d.power_query(&t).await?) }
            },
        )
        .await,
    );

    // One real ipmi_sim: same queries, same concurrency, both clients.
    let dir = tempfile::tempdir()?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = start_ipmi_sim(dir.path(), port)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sim_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let m = 200;
    let c = 4;
    let d = ipmi.clone();
    rows.push(
        run("native IPMI (maas-power), one ipmi_sim", m, c, move |_| {
            let d = d.clone();
            let t = PowerTarget::new(ipmi_params(sim_addr));
            async move { Ok(d.power_query(&t).await?) }
        })
        .await,
    );
    rows.push(
        run("ipmitool processes, one ipmi_sim", m, c, move |_| {
            ipmitool_query(sim_addr)
        })
        .await,
    );
    let _ = child.kill();
    let _ = child.wait();

    println!("| run | queries | in flight | ok/s | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {} |",
            r.what,
            r.n,
            r.concurrency,
            r.rate(),
            r.pct(0.50),
            r.pct(0.99),
            r.errors
        );
    }
    let ratio = rows[0].rate() / rows[1].rate();
    let ratio_sim = rows[3].rate() / rows[4].rate();
    println!();
    println!(
        "native IPMI / ipmitool throughput: {ratio:.1}x on {n} sim BMCs, {ratio_sim:.1}x on ipmi_sim"
    );
    Ok(())
}
