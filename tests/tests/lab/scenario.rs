//! The MAAS scenario under `maasd`, end to end, on the netboot lab: two VMs
//! unknown to `maasd` are powered on through their BMCs (Redfish and IPMI)
//! and enlist; the admin commissions them through python-libmaas; they are
//! deployed (Debian bookworm from the lab's signed mirror) by maasd's rack
//! (DHCP, iPXE over HTTP, kernel/initrd/squashfs from its image store), the
//! installer reading the curtin configuration from the metadata API; the
//! installed systems boot from disk and their real cloud-init reads the
//! owner's SSH key and the user-data from maasd; both are released (one with
//! quick erase); then the failure paths: an installer that fails ends in
//! Failed deployment with its reason in the events, and a VM that never
//! boots ends in Failed commissioning after a shortened node timeout.
//!
//! `maasd` runs in the host's namespace on the lab's veth (`LAB_HOST_IP`): its
//! API and metadata on that address, DHCP/TFTP/HTTP boot on the interface.
//! Every phase's time goes to stderr (and BENCHMARKS.md `## Netboot lab`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maas_e2e::harden::{ApiKey, Client};
use maas_power::{PolicyConfig, PowerAction, PowerManager, PowerTarget, Registry};
use serde_json::Value;

use crate::harness::{Lab, images, repo, run, venv_bin};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOmaasrslabscenariokeyforthetest000000000000 lab-scenario@example.invalid";
const SERIES: &str = "debian/bookworm";

/// `maasd serve` on the lab's host-side address, killed on drop.
struct Region {
    child: Option<Child>,
    addr: String,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl Region {
    fn start(host_ip: &str, config: &str) -> Region {
        let dir = tempfile::Builder::new()
            .prefix("maas-rs-scenario-")
            .tempdir()
            .expect("tempdir");
        // A port free on the lab address (bound and released).
        let port = std::net::TcpListener::bind((host_ip, 0))
            .expect("the lab's host address")
            .local_addr()
            .expect("addr")
            .port();
        let cfg = dir.path().join("maasd.toml");
        let mut r = Region {
            child: None,
            addr: format!("{host_ip}:{port}"),
            log: dir.path().join("maasd.log"),
            dir,
            config: cfg,
        };
        r.restart(config);
        r
    }

    /// (Re)starts maasd with `config` (`{region_url}` replaced), on the same
    /// database and address.
    fn restart(&mut self, config: &str) {
        self.stop();
        std::fs::write(
            &self.config,
            config.replace("{region_url}", &format!("http://{}/MAAS/", self.addr)),
        )
        .expect("config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(maas_e2e::maasd_binary().expect("maasd"))
            .args(["serve", "--listen", &self.addr, "--data-dir"])
            .arg(self.dir.path())
            .arg("--config")
            .arg(&self.config)
            // No automatic import and no default source (images.maas.io).
            .envs(maas_e2e::OFFLINE_IMAGES_ENV)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start maasd");
        self.child = Some(child);
        wait("maasd to listen", 30, || {
            TcpStream::connect(&self.addr).ok()
        });
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn manage(&self, args: &[&str]) -> String {
        run(Command::new(maas_e2e::maasd_binary().expect("maasd"))
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path()))
        .expect("maasd management command")
    }

    fn url(&self) -> String {
        format!("http://{}/MAAS/", self.addr)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies both consoles and maasd's log to `/tmp/maas-rs-scenario-failed/`
/// when the test fails (the lab's and maasd's directories are temporary).
struct KeepLogs(Vec<(PathBuf, &'static str)>);

impl KeepLogs {
    fn new(lab: &Lab, region: &Region) -> KeepLogs {
        KeepLogs(vec![
            (lab.var("LAB_VM1_SERIAL").into(), "vm1-serial.log"),
            (lab.var("LAB_VM2_SERIAL").into(), "vm2-serial.log"),
            (region.log.clone(), "maasd.log"),
        ])
    }
}

impl Drop for KeepLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let dir = Path::new("/tmp/maas-rs-scenario-failed");
        let _ = std::fs::create_dir_all(dir);
        for (from, name) in &self.0 {
            let _ = std::fs::copy(from, dir.join(name));
        }
        eprintln!(
            "scenario: consoles and maasd's log kept in {}",
            dir.display()
        );
    }
}

/// Polls `f` every second until it answers, for at most `secs`.
fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn ok_json(c: &Client, method: &str, target: &str, form: &[(&str, &str)]) -> Value {
    let r = match method {
        "GET" => c.get(target),
        "PUT" => c.put(target, form),
        _ => c.post(target, form),
    }
    .unwrap_or_else(|e| panic!("{method} {target}: {e:#}"));
    assert_eq!(r.status, 200, "{method} {target}: {}", r.text());
    r.json().expect("json")
}

fn machines(c: &Client) -> Vec<Value> {
    ok_json(c, "GET", "/MAAS/api/2.0/machines/", &[])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn machine(c: &Client, sid: &str) -> Value {
    ok_json(c, "GET", &format!("/MAAS/api/2.0/machines/{sid}/"), &[])
}

fn status(c: &Client, sid: &str) -> String {
    machine(c, sid)["status_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn events(c: &Client, sid: &str) -> Vec<String> {
    let v = ok_json(
        c,
        "GET",
        &format!("/MAAS/api/2.0/events/?op=query&id={sid}&level=DEBUG&limit=200"),
        &[],
    );
    v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e["type"].as_str().unwrap_or_default(),
                        e["description"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every machine in `sids` has status `want`; fails early when
/// one reaches a failed status instead.
fn wait_status(c: &Client, lab: &Lab, sids: &[&str], want: &str, secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let now: Vec<String> = sids.iter().map(|s| status(c, s)).collect();
        if now.iter().all(|s| s == want) {
            return;
        }
        for (sid, st) in sids.iter().zip(&now) {
            if st.starts_with("Failed") && !want.starts_with("Failed") {
                panic!(
                    "{sid} is {st} waiting for {want}; events:\n{}\n{}",
                    events(c, sid).join("\n"),
                    consoles(lab)
                );
            }
        }
        assert!(
            Instant::now() < end,
            "timed out after {secs} s waiting for {want}: {now:?}\n{}",
            consoles(lab)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn serial(lab: &Lab, n: u32) -> String {
    String::from_utf8_lossy(
        &std::fs::read(lab.var(&format!("LAB_VM{n}_SERIAL"))).unwrap_or_default(),
    )
    .into_owned()
}

/// The `LAB:` lines of both consoles (the ephemeral environment's own log).
fn consoles(lab: &Lab) -> String {
    let mut out = String::new();
    for n in [1, 2] {
        let s = serial(lab, n);
        let lines: Vec<&str> = s.lines().filter(|l| l.contains("LAB")).collect();
        out.push_str(&format!(
            "--- vm{n} console (last LAB lines):\n{}\n",
            lines[lines.len().saturating_sub(30)..].join("\n")
        ));
    }
    out
}

/// The `LAB: … at <uptime> s` stamps the ephemeral environment printed
/// after byte `from` of VM `n`'s console: initrd, network, root mounted.
fn stamps(lab: &Lab, n: u32, from: usize) -> String {
    let s = serial(lab, n);
    s.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("LAB: ") && l.contains(" at "))
        .map(|l| format!("    vm{n} {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn libmaas(region: &Region, key: &str, args: &[&str]) -> String {
    let script = repo().join("tests/python/lab_scenario.py");
    let out = run(Command::new(venv_bin().join("python"))
        .arg(script)
        .args(args)
        .env("MAAS_URL", region.url())
        .env("MAAS_KEY", key))
    .unwrap_or_else(|e| panic!("libmaas {args:?}: {e:#}\n{}", region.log_tail()));
    assert!(out.trim_end().ends_with("DONE"), "{out}");
    out
}

/// The loaders MAAS serves, from Debian's packages (BIOS lpxelinux, UEFI
/// shim + signed GRUB); the lab's iPXE ROMs chain `ipxe.cfg` over HTTP and
/// need none of them, but a machine without iPXE would.
fn loaders(dir: &Path) {
    std::fs::create_dir_all(dir).expect("loaders dir");
    for (src, dst) in [
        ("/usr/lib/PXELINUX/lpxelinux.0", "lpxelinux.0"),
        ("/usr/lib/syslinux/modules/bios/ldlinux.c32", "ldlinux.c32"),
        ("/usr/lib/shim/shimx64.efi.signed", "bootx64.efi"),
        (
            "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
            "grubx64.efi",
        ),
    ] {
        let _ = std::fs::copy(src, dir.join(dst));
    }
}

fn power_manager() -> PowerManager {
    PowerManager::new(
        Registry::with_builtin().expect("registry"),
        PolicyConfig {
            retry_waits: vec![Duration::from_millis(500); 10],
            call_timeout: Duration::from_secs(20),
            ..PolicyConfig::default()
        },
    )
}

struct Phases(Vec<(String, f64)>, Instant);

impl Phases {
    fn done(&mut self, name: &str) {
        let s = self.1.elapsed().as_secs_f64();
        eprintln!("scenario: {name}: {s:.0} s");
        self.0.push((name.to_owned(), s));
        self.1 = Instant::now();
    }
}

#[test]
fn maas_scenario_enlist_commission_deploy_release_and_fail() {
    let t_all = Instant::now();
    let out = images();
    let mut phases = Phases(Vec::new(), Instant::now());
    // 4 GiB disks: MAAS's flat layout wants a root of at least 3 GiB.
    let lab = Lab::up_with_disks(2, "4G").expect("lab up");
    let host_if = lab.var("LAB_HOST_IF").to_owned();
    let host_ip = lab.var("LAB_HOST_IP").to_owned();
    let net = lab.var("LAB_NET").to_owned();
    phases.done("lab up");

    let work = tempfile::tempdir().expect("tempdir");
    let loaders_dir = work.path().join("loaders");
    loaders(&loaders_dir);
    let config = |timeout: &str| {
        format!(
            "[workflow]\ntick_ms = 500\npower_poll_secs = 0\n{timeout}\n\
             [rack]\naddress = \"{host_ip}\"\ninterface = \"{host_if}\"\n\
             loaders_dir = \"{}\"\nregion_url = \"{{region_url}}\"\nrefresh_ms = 500\n",
            loaders_dir.display()
        )
    };
    let mut region = Region::start(&host_ip, &config(""));
    // On failure, the consoles and maasd's log outlive the temporary dirs.
    let _keep = KeepLogs::new(&lab, &region);
    region.manage(&[
        "createadmin",
        "--username",
        "admin",
        "--password",
        "lab-admin",
        "--email",
        "admin@example.invalid",
    ]);
    let key = region
        .manage(&["apikey", "--username", "admin"])
        .trim()
        .to_owned();
    let api = Client::new(&region.addr, Some(ApiKey::parse(&key).expect("key")));

    // The commissioning release is what the lab's mirror carries; the boot
    // network is managed (DHCP on the untagged VLAN of fabric-0).
    for (name, value) in [
        ("commissioning_osystem", "debian"),
        ("commissioning_distro_series", "bookworm"),
    ] {
        ok_json(
            &api,
            "POST",
            "/MAAS/api/2.0/maas/?op=set_config",
            &[("name", name), ("value", value)],
        );
    }
    ok_json(
        &api,
        "POST",
        "/MAAS/api/2.0/subnets/",
        &[("cidr", &format!("{net}.0/24"))],
    );
    ok_json(
        &api,
        "POST",
        "/MAAS/api/2.0/ipranges/",
        &[
            ("type", "dynamic"),
            ("start_ip", &format!("{net}.100")),
            ("end_ip", &format!("{net}.150")),
        ],
    );
    let fabrics = ok_json(&api, "GET", "/MAAS/api/2.0/fabrics/", &[]);
    let fid = fabrics[0]["id"].as_i64().expect("fabric id");
    let vlan = ok_json(
        &api,
        "PUT",
        &format!("/MAAS/api/2.0/fabrics/{fid}/vlans/0/"),
        &[("dhcp_on", "true")],
    );
    assert_eq!(vlan["dhcp_on"], Value::Bool(true), "{vlan}");
    libmaas(&region, &key, &["sshkey", KEY]);
    // The images come in as MAAS's do: a boot source with its keyring and a
    // selection (python-libmaas), then `boot-resources/?op=import`; maasd's
    // rack serves them from the store the import filled.
    let mirror = url::Url::from_directory_path(out.join("mirror")).expect("file url");
    let keyring = out.join("keyring.gpg");
    libmaas(
        &region,
        &key,
        &[
            "import",
            mirror.as_str(),
            keyring.to_str().expect("path"),
            "debian",
            "bookworm",
        ],
    );
    phases.done("maasd up, images imported through the API, DHCP on");

    // 1. Enlistment: both VMs, unknown to maasd, powered on through their
    // BMCs (as an operator would); they netboot, enlist and power off.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let pm = power_manager();
    let offsets: Vec<usize> = [1, 2].iter().map(|&n| serial(&lab, n).len()).collect();
    for n in [1, 2] {
        let (ptype, params) = lab.power(n, lab.bmc_pass());
        let t = PowerTarget::new(params);
        rt.block_on(pm.perform(ptype, &t, PowerAction::SetBootPxe))
            .unwrap_or_else(|e| panic!("{ptype} boot pxe: {e}"));
        rt.block_on(pm.perform(ptype, &t, PowerAction::On))
            .unwrap_or_else(|e| panic!("{ptype} power on: {e}"));
    }
    let macs = [lab.vm(1).mac, lab.vm(2).mac];
    let sids: Vec<String> = wait("both VMs to enlist", 420, || {
        let ms = machines(&api);
        let found: Vec<String> = macs
            .iter()
            .filter_map(|mac| {
                ms.iter().find(|m| {
                    m["boot_interface"]["mac_address"].as_str() == Some(mac.as_str())
                        || m["interface_set"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|i| i["mac_address"] == mac.as_str()))
                })
            })
            .filter_map(|m| m["system_id"].as_str().map(str::to_owned))
            .collect();
        (found.len() == 2).then_some(found)
    });
    wait("both enlisted VMs to power off", 300, || {
        ([1, 2].iter().all(|&n| lab.domstate(n) == "shut off")).then_some(())
    });
    for (i, sid) in sids.iter().enumerate() {
        let n = i as u32 + 1;
        let m = machine(&api, sid);
        assert_eq!(m["status_name"], "New", "{m}");
        assert_eq!(m["architecture"], "amd64/generic", "{m}");
        let (ptype, _) = lab.power(n, lab.bmc_pass());
        assert_eq!(m["power_type"], ptype, "{m}");
        let p = ok_json(
            &api,
            "GET",
            &format!("/MAAS/api/2.0/machines/{sid}/?op=power_parameters"),
            &[],
        );
        let want_addr = if ptype == "redfish" {
            lab.var("LAB_REDFISH_URL").to_owned()
        } else {
            format!("127.0.0.1:{}", lab.var(&format!("LAB_VM{n}_IPMI_PORT")))
        };
        assert_eq!(p["power_address"], want_addr.as_str(), "{p}");
        assert_eq!(p["power_user"], lab.var("LAB_BMC_USER"), "{p}");
        eprintln!("enlist vm{n}:\n{}", stamps(&lab, n, offsets[i]));
    }
    let (s1, s2) = (sids[0].as_str(), sids[1].as_str());
    phases.done("1. enlist both (power on via BMC -> New)");

    // 2. Commissioning, asked through python-libmaas; maasd powers the VMs
    // on through the BMC details they reported.
    let offsets: Vec<usize> = [1, 2].iter().map(|&n| serial(&lab, n).len()).collect();
    libmaas(&region, &key, &["commission", s1, s2]);
    wait_status(&api, &lab, &[s1, s2], "Ready", 420);
    for (i, sid) in [s1, s2].iter().enumerate() {
        let n = i as u32 + 1;
        let m = machine(&api, sid);
        assert_eq!(m["cpu_count"], 1, "{m}");
        // 512 MiB of guest RAM; the kernel keeps some for itself.
        let mem = m["memory"].as_i64().unwrap_or_default();
        assert!((448..=512).contains(&mem), "memory {mem} MiB: {m}");
        let disks = m["physicalblockdevice_set"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(disks.len(), 1, "{m}");
        assert_eq!(disks[0]["size"], 4u64 << 30, "{m}");
        assert_eq!(
            disks[0]["serial"],
            format!("lab-vm{n}-disk0").as_str(),
            "{m}"
        );
        let nics = m["interface_set"].as_array().cloned().unwrap_or_default();
        assert!(
            nics.iter()
                .any(|i| i["mac_address"] == macs[i_of(n)].as_str()),
            "{m}"
        );
        eprintln!("commission vm{n}:\n{}", stamps(&lab, n, offsets[i]));
    }
    wait("commissioned VMs to power off", 120, || {
        ([1, 2].iter().all(|&n| lab.domstate(n) == "shut off")).then_some(())
    });
    phases.done("2. commission both (libmaas -> Ready)");

    // 3. Deployment of both (BIOS and UEFI), user-data writing a marker
    // with what cloud-init installed.
    let offsets: Vec<usize> = [1, 2].iter().map(|&n| serial(&lab, n).len()).collect();
    let ud = work.path().join("user-data");
    std::fs::write(
        &ud,
        "#cloud-config\nruncmd:\n  - [sh, -c, 'echo \"LAB-DEPLOYED-MARKER host=$(hostname) keys=$(grep -c lab-scenario@example.invalid /home/debian/.ssh/authorized_keys) root=$(findmnt -n -o SOURCE /)\" > /dev/ttyS0']\n",
    )
    .expect("user-data");
    libmaas(
        &region,
        &key,
        &["deploy", SERIES, ud.to_str().expect("path"), s1, s2],
    );
    wait_status(&api, &lab, &[s1, s2], "Deployed", 900);
    for (i, sid) in [s1, s2].iter().enumerate() {
        let n = i as u32 + 1;
        let marker = wait("the user-data marker on the console", 180, || {
            serial(&lab, n)
                .get(offsets[i]..)
                .unwrap_or_default()
                .lines()
                .find(|l| l.contains("LAB-DEPLOYED-MARKER") && !l.contains("echo"))
                .map(str::to_owned)
        });
        assert!(marker.contains("keys=1"), "vm{n}: {marker}");
        assert!(
            marker.contains("root=/dev/vda"),
            "vm{n} not from disk: {marker}"
        );
        let m = machine(&api, sid);
        assert_eq!(m["osystem"], "debian", "{m}");
        assert_eq!(m["distro_series"], "bookworm", "{m}");
        eprintln!("deploy vm{n}: {marker}\n{}", stamps(&lab, n, offsets[i]));
    }
    phases.done("3. deploy both (install, disk boot, cloud-init -> Deployed)");

    // 4. Release: quick erase on vm1, plain on vm2; both end off and Ready.
    libmaas(&region, &key, &["release", "--quick-erase", s1]);
    libmaas(&region, &key, &["release", s2]);
    wait_status(&api, &lab, &[s1, s2], "Ready", 420);
    wait("released VMs to power off", 120, || {
        ([1, 2].iter().all(|&n| lab.domstate(n) == "shut off")).then_some(())
    });
    let disk = std::fs::read(lab.var("LAB_VM1_DISK"))
        .map(|d| d[..2 << 20].to_vec())
        .expect("vm1 disk");
    assert!(
        disk.iter().all(|&b| b == 0),
        "vm1's disk start was not erased"
    );
    phases.done("4. release both (quick erase on vm1 -> Ready, off)");

    // 5a. An installer that fails: vm2 with an LVM layout the lab's
    // installer refuses, deployed through the API.
    ok_json(
        &api,
        "POST",
        &format!("/MAAS/api/2.0/machines/{s2}/?op=set_storage_layout"),
        &[("storage_layout", "lvm")],
    );
    ok_json(
        &api,
        "POST",
        "/MAAS/api/2.0/machines/?op=allocate",
        &[("system_id", s2)],
    );
    ok_json(
        &api,
        "POST",
        &format!("/MAAS/api/2.0/machines/{s2}/?op=deploy"),
        &[("distro_series", SERIES)],
    );
    wait_status(&api, &lab, &[s2], "Failed deployment", 420);
    let ev = events(&api, s2);
    assert!(
        ev.iter()
            .any(|e| e.contains("not supported by the lab installer")),
        "the reason is not in the events:\n{}",
        ev.join("\n")
    );
    let _ = run(Command::new("virsh")
        .args(["-c", lab.var("LAB_LIBVIRT_URI"), "destroy"])
        .arg(lab.vm(2).name));
    phases.done("5a. failing installer -> Failed deployment");

    // 5b. A VM that never boots (its link is down) after a shortened node
    // timeout: maasd restarted with `[workflow] node_timeout_secs`.
    region.restart(&config("node_timeout_secs = 60\n"));
    run(Command::new("virsh")
        .args(["-c", lab.var("LAB_LIBVIRT_URI"), "domif-setlink"])
        .arg(lab.vm(1).name)
        .arg(lab.vm(1).mac)
        .args(["down", "--config"]))
    .expect("link down");
    ok_json(
        &api,
        "POST",
        &format!("/MAAS/api/2.0/machines/{s1}/?op=commission"),
        &[],
    );
    wait_status(&api, &lab, &[s1], "Failed commissioning", 240);
    let ev = events(&api, s1);
    assert!(
        ev.iter().any(|e| e.to_lowercase().contains("timed out")
            || e.to_lowercase().contains("timeout")),
        "no timeout event:\n{}",
        ev.join("\n")
    );
    phases.done("5b. never boots -> Failed commissioning after 60 s timeout");

    eprintln!("scenario total {:.0} s", t_all.elapsed().as_secs_f64());
    for (p, s) in &phases.0 {
        eprintln!("| {p} | {s:.0} s |");
    }
    drop(region);
    drop(lab);
}

fn i_of(n: u32) -> usize {
    n as usize - 1
}
