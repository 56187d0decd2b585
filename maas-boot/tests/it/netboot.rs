//! Real firmware netboots through our DHCP, TFTP and HTTP servers: QEMU (TCG,
//! SeaBIOS + the iPXE NIC ROM, or OVMF's own PXE) in a network namespace this
//! test creates. Our DHCP server ([`maas_boot::dhcp`]) hands out the address
//! and the boot file; dnsmasq runs beside it only to send IPv6 router
//! advertisements (`port=0`, no DHCPv4 range: without an RA iPXE waits ~14 s
//! for IPv6). The machine loads lpxelinux.0, an iPXE script, or (UEFI) shim +
//! Debian's signed GRUB network image as MAAS lays them out; fetches its
//! per-MAC config rendered by [`ConfigTree`], then a Debian kernel and a
//! busybox initramfs built here, which prints a marker with its command line
//! and powers off.
//!
//! The proxyDHCP case puts dnsmasq in a neighbouring namespace as the site's
//! DHCP server (addresses only, no boot file) and our server in proxy mode
//! (ports 67 and 4011) beside the VM: the firmware must boot from what we say.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use maas_boot::bootconfig::{
    BootConfigSource, BootParams, BootRequest, ConfigTree, Loader, Purpose,
};
use maas_boot::dhcp::{
    self, BootAnswer, BootClient, DhcpBackend, DhcpConfig, DhcpEvent, Handler, LeaseState,
    MemoryStore, Mode, NetbootMethod, Reservation, ServeOptions, StaticBackend, Subnet,
};
use maas_boot::tftp::TftpConfig;
use maas_boot::tree::{BootTree, DirTree};
use maas_core::MacAddress;
use tokio_util::sync::CancellationToken;

use crate::common::peer;

const RACK: &str = "192.0.2.1";

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(cmd)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The kernel, initramfs and loaders, built once per machine and cached
/// (the kernel package is 70 MB; the cache key is its name).
fn assets() -> PathBuf {
    peer("apt-get", "apt");
    peer("dpkg-deb", "dpkg");
    peer("cpio", "cpio");
    assert!(
        Path::new("/bin/busybox").is_file(),
        "/bin/busybox missing: install `busybox-static`"
    );
    for f in [
        "/usr/lib/PXELINUX/lpxelinux.0",
        "/usr/lib/syslinux/modules/bios/ldlinux.c32",
    ] {
        assert!(
            Path::new(f).is_file(),
            "{f} missing: install `pxelinux` and `syslinux-common`"
        );
    }
    let deps = sh("apt-cache depends linux-image-amd64");
    let pkg = deps
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
        .map(|v| format!("linux-image-{v}"))
        .expect("no linux-image-<version> behind linux-image-amd64 (apt-get update?)");
    let dir = std::env::temp_dir().join(format!("maas-rs-netboot-{pkg}"));
    if dir.join("ready").is_file() {
        return dir;
    }
    let work = tempfile::tempdir_in(std::env::temp_dir()).expect("tempdir");
    let w = work.path().display();
    sh(&format!(
        "cd {w} && apt-get download -q {pkg} >/dev/null && \
         dpkg-deb --fsys-tarfile {pkg}_*.deb | tar -x --wildcards './boot/vmlinuz-*' && \
         mkdir out && mv boot/vmlinuz-* out/vmlinuz && \
         mkdir -p initrd/bin initrd/proc initrd/dev && cp /bin/busybox initrd/bin/busybox"
    ));
    std::fs::write(
        work.path().join("initrd/init"),
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t proc proc /proc\n\
         echo \"MAASRS-BOOTED cmdline=[$(/bin/busybox cat /proc/cmdline)]\"\n\
         /bin/busybox poweroff -f\n",
    )
    .expect("write init");
    sh(&format!(
        "cd {w}/initrd && chmod +x init && find . | cpio -o -H newc 2>/dev/null | gzip -1 > ../out/initrd.gz"
    ));
    std::fs::write(work.path().join("out/ready"), b"").expect("marker");
    // Another test may have won the race; either copy is complete.
    let _ = std::fs::rename(work.path().join("out"), &dir);
    dir
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a bridge (`br0`, 192.0.2.1/24) and a tap for QEMU;
/// optionally a neighbour namespace on the same bridge (192.0.2.2/24, through
/// a veth pair) for a site DHCP server that is not ours.
struct Netns {
    name: String,
    neighbour: Option<String>,
}

impl Netns {
    fn new(with_neighbour: bool) -> Self {
        peer("ip", "iproute2");
        let id = format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let name = format!("mrs-boot-{id}");
        sh(&format!("ip netns add {name}"));
        let mut ns = Self {
            name,
            neighbour: None,
        };
        let n = &ns.name;
        sh(&format!(
            "ip -n {n} link set lo up && ip -n {n} link add br0 type bridge && \
             ip -n {n} addr add {RACK}/24 dev br0 && ip -n {n} addr add 2001:db8:1::1/64 dev br0 nodad && \
             ip -n {n} link set br0 up && ip -n {n} tuntap add dev tap0 mode tap && \
             ip -n {n} link set tap0 master br0 && ip -n {n} link set tap0 up"
        ));
        if with_neighbour {
            let b = format!("mrs-site-{id}");
            sh(&format!("ip netns add {b}"));
            ns.neighbour = Some(b.clone());
            let n = &ns.name;
            sh(&format!(
                "ip -n {n} link add veth0 type veth peer name veth1 netns {b} && \
                 ip -n {n} link set veth0 master br0 && ip -n {n} link set veth0 up && \
                 ip -n {b} link set lo up && ip -n {b} addr add {SITE}/24 dev veth1 && \
                 ip -n {b} addr add 2001:db8:1::2/64 dev veth1 nodad && ip -n {b} link set veth1 up"
            ));
        }
        ns
    }

    /// Runs `f` on a thread moved into the namespace; sockets it creates stay there.
    fn spawn(&self, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("open netns");
            rustix::thread::move_into_link_name_space(
                fd.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in std::iter::once(&self.name).chain(self.neighbour.as_ref()) {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// The site's address: the neighbour namespace, where the other DHCP server runs.
const SITE: &str = "192.0.2.2";

/// dnsmasq with IPv6 router advertisements on `dev` in namespace `ns` and, when
/// `range` is given, a DHCPv4 range with no boot options at all (the site
/// server of the proxyDHCP case). `port=0`: no DNS, and no TFTP.
struct Dnsmasq {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn start(ns: &str, dev: &str, range: Option<(&str, &str)>) -> Self {
        let dnsmasq = peer("dnsmasq", "dnsmasq-base");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let mut conf = format!(
            "port=0\ninterface={dev}\nbind-interfaces\nexcept-interface=lo\n\
             enable-ra\ndhcp-range=::,constructor:{dev},ra-only\n"
        );
        if let Some((lo, hi)) = range {
            conf.push_str(&format!(
                "dhcp-range={lo},{hi},255.255.255.0,10m\ndhcp-leasefile={d}/leases\n\
                 dhcp-authoritative\nlog-dhcp\n"
            ));
        }
        std::fs::write(dir.path().join("dnsmasq.conf"), conf).expect("conf");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(dnsmasq)
            .arg(format!("--conf-file={d}/dnsmasq.conf"))
            .arg("--keep-in-foreground")
            .arg("--user=root")
            .arg(format!("--pid-file={d}/dnsmasq.pid"))
            .arg(format!("--log-facility={d}/dnsmasq.log"))
            .spawn()
            .expect("start dnsmasq");
        Self { child, dir }
    }

    /// dnsmasq's lease file (`<expiry> <mac> <ip> …` per line).
    fn leases(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("leases")).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who hands out addresses and boot files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DhcpSetup {
    /// Our server, authoritative. `Some(method)` makes the region stand-in
    /// force a boot method (the iPXE ROM announces itself as iPXE, which MAAS
    /// answers with `ipxe.cfg`; a region may pin lpxelinux instead), `None`
    /// leaves MAAS's choice from option 93 and the user class.
    Ours(Option<NetbootMethod>),
    /// The site's dnsmasq gives the address, our server in proxy mode the
    /// boot file (MAAS's choice).
    Proxy,
}

/// The DHCP side of the region stand-in: no reservations, events recorded,
/// optionally one boot method for everybody.
struct LabDhcp {
    force: Option<NetbootMethod>,
    events: StaticBackend,
}

impl DhcpBackend for LabDhcp {
    fn reservation(&self, _mac: MacAddress) -> Option<Reservation> {
        None
    }
    fn reserved_for_other(&self, _addr: Ipv4Addr, _mac: MacAddress) -> bool {
        false
    }
    fn boot(&self, client: &BootClient, config: &DhcpConfig) -> Option<BootAnswer> {
        let method = self
            .force
            .unwrap_or_else(|| NetbootMethod::for_client(client));
        Some(method.answer(config.boot_server, config.http_port))
    }
    fn event(&self, event: DhcpEvent) {
        self.events.event(event);
    }
}

/// The region stand-in: every MAC boots `purpose`; requests are recorded.
struct Region {
    purpose: Purpose,
    seen: Mutex<Vec<BootRequest>>,
}

#[async_trait]
impl BootConfigSource for Region {
    async fn boot_params(&self, req: &BootRequest) -> maas_boot::Result<BootParams> {
        self.seen.lock().expect("lock").push(req.clone());
        Ok(BootParams {
            purpose: self.purpose,
            hostname: "vm-under-test".into(),
            kernel: "vmlinuz".into(),
            initrd: "initrd.gz".into(),
            rootfs: None,
            preseed_url: format!(
                "http://{RACK}:5248/MAAS/metadata/latest/by-id/abc123/?op=get_preseed"
            ),
            apparmor_off: false,
            arch_opts: vec!["console=ttyS0".into()],
            ephemeral_opts: vec![],
            extra_opts: vec![],
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Firmware {
    /// SeaBIOS with the iPXE option ROM.
    Bios,
    /// OVMF with its own PXE stack (no iPXE ROM), as a UEFI machine in MAAS.
    Uefi,
}

/// The served tree: cached kernel and initramfs plus the loaders, copied (the
/// tree refuses symlinks that leave it).
fn tftp_root(dir: &Path) {
    let cache = assets();
    for f in ["vmlinuz", "initrd.gz"] {
        std::fs::copy(cache.join(f), dir.join(f)).expect("copy asset");
    }
    for (src, dst, pkg) in [
        ("/usr/lib/PXELINUX/lpxelinux.0", "lpxelinux.0", "pxelinux"),
        (
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "ldlinux.c32",
            "syslinux-common",
        ),
        // The enlist config's CPU switch and the libraries it loads.
        (
            "/usr/lib/syslinux/modules/bios/ifcpu64.c32",
            "ifcpu64.c32",
            "syslinux-common",
        ),
        (
            "/usr/lib/syslinux/modules/bios/libcom32.c32",
            "libcom32.c32",
            "syslinux-common",
        ),
        (
            "/usr/lib/syslinux/modules/bios/libutil.c32",
            "libutil.c32",
            "syslinux-common",
        ),
        (
            "/usr/lib/shim/shimx64.efi.signed",
            "bootx64.efi",
            "shim-signed",
        ),
        (
            "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
            "grubx64.efi",
            "grub-efi-amd64-signed",
        ),
    ] {
        std::fs::copy(src, dir.join(dst)).unwrap_or_else(|e| panic!("{src}: {e}; install `{pkg}`"));
    }
    // Debian's signed grubnetx64 has no built-in http module; GRUB loads it from
    // its prefix (/grub) when Secure Boot is off.
    let mods = Path::new("/usr/lib/grub/x86_64-efi");
    assert!(
        mods.join("http.mod").is_file(),
        "GRUB modules missing: install `grub-efi-amd64-bin`"
    );
    let dst = dir.join("grub/x86_64-efi");
    std::fs::create_dir_all(&dst).expect("mkdir");
    // http.mod and what it needs, by GRUB's moddep.lst, plus the .lst indexes.
    let deps = std::fs::read_to_string(mods.join("moddep.lst")).expect("moddep.lst");
    let mut want = vec!["http".to_string()];
    let mut i = 0;
    while i < want.len() {
        let prefix = format!("{}:", want[i]);
        if let Some(line) = deps.lines().find(|l| l.starts_with(&prefix)) {
            for d in line[prefix.len()..].split_whitespace() {
                if !want.iter().any(|w| w == d) {
                    want.push(d.to_string());
                }
            }
        }
        i += 1;
    }
    let mut files: Vec<String> = want.iter().map(|m| format!("{m}.mod")).collect();
    files.extend(
        [
            "moddep.lst",
            "command.lst",
            "fs.lst",
            "crypto.lst",
            "terminal.lst",
        ]
        .map(String::from),
    );
    for f in files {
        let _ = std::fs::copy(mods.join(&f), dst.join(&f));
    }
}

/// What a boot left behind: the serial log, the config requests the region
/// saw, the DHCP events our server reported, our lease for the VM (if any)
/// and the site server's lease file (proxy case).
struct Booted {
    log: String,
    seen: Vec<BootRequest>,
    events: Vec<DhcpEvent>,
    lease: Option<dhcp::Lease>,
    site_leases: String,
}

/// Boots a VM with `mac` through the given DHCP setup and our TFTP + HTTP.
async fn boot(firmware: Firmware, mac: &str, setup: DhcpSetup, purpose: Purpose) -> Booted {
    let qemu = peer("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)");
    let root_dir = tempfile::tempdir().expect("tempdir");
    tftp_root(root_dir.path());
    let assets = root_dir.path().to_owned();
    let mac: MacAddress = mac.parse().expect("mac");
    let ns = Netns::new(setup == DhcpSetup::Proxy);
    let region = Arc::new(Region {
        purpose,
        seen: Mutex::new(Vec::new()),
    });
    let rack: Ipv4Addr = RACK.parse().expect("rack");
    let (force, mode) = match setup {
        DhcpSetup::Ours(force) => (force, Mode::Authoritative),
        DhcpSetup::Proxy => (None, Mode::Proxy),
    };
    let backend = Arc::new(LabDhcp {
        force,
        events: StaticBackend::new(vec![]),
    });
    let mut config = DhcpConfig::new(rack, vec![]);
    config.mode = mode;
    if mode == Mode::Authoritative {
        let mut subnet = Subnet::new("192.0.2.0/24".parse().expect("net"));
        subnet
            .add_range(Ipv4Addr::new(192, 0, 2, 100), Ipv4Addr::new(192, 0, 2, 150))
            .expect("range");
        subnet.routers = vec![rack];
        config.subnets = vec![subnet];
    }
    let handler = Arc::new(
        Handler::new(config, Arc::new(MemoryStore::default()), backend.clone())
            .expect("dhcp handler"),
    );
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    // The servers run on a thread inside the namespace: TFTP binds a socket per
    // transfer, and sockets belong to the namespace of the thread creating them.
    let server = {
        let (region, cancel, assets, handler) = (
            region.clone(),
            cancel.clone(),
            assets.clone(),
            handler.clone(),
        );
        ns.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                // DHCP on br0: port 67, and in proxy mode also the PXE port
                // 4011, where PXE clients send their REQUEST for the boot file.
                let ports: &[u16] = if mode == Mode::Proxy {
                    &[67, 4011]
                } else {
                    &[67]
                };
                for &port in ports {
                    let sock = dhcp::bind_socket(
                        Some("br0"),
                        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
                    )
                    .expect("bind dhcp");
                    tokio::spawn(dhcp::serve(
                        sock,
                        handler.clone(),
                        cancel.clone(),
                        ServeOptions::default(),
                    ));
                }
                let udp = tokio::net::UdpSocket::bind((RACK, 69))
                    .await
                    .expect("bind tftp");
                let tcp = tokio::net::TcpListener::bind((RACK, 5248))
                    .await
                    .expect("bind http");
                let files: Arc<dyn BootTree> = Arc::new(DirTree::new(&assets).expect("tree"));
                let boot_tree: Arc<dyn BootTree> = Arc::new(ConfigTree::new(region, files.clone()));
                tokio::spawn(maas_boot::tftp::serve(
                    udp,
                    boot_tree.clone(),
                    TftpConfig::default(),
                    cancel.clone(),
                ));
                let local: SocketAddr = format!("{RACK}:5248").parse().expect("addr");
                let app = maas_boot::http::BootHttp::new(files, boot_tree, local);
                let _ = maas_boot::http::serve(tcp, app, cancel).await;
            })
        })
    };
    // Router advertisements beside our server; in the proxy case the site's
    // DHCP server (addresses only) in the neighbour namespace does them.
    let dnsmasq = match &ns.neighbour {
        Some(site) => Dnsmasq::start(site, "veth1", Some(("192.0.2.200", "192.0.2.250"))),
        None => Dnsmasq::start(&ns.name, "br0", None),
    };

    let log_dir = tempfile::tempdir().expect("tempdir");
    let serial = log_dir.path().join("serial.log");
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args(["netns", "exec", &ns.name]).arg(qemu).args([
        "-accel",
        "tcg",
        "-machine",
        "q35",
        "-m",
        "512",
        "-nographic",
        "-nodefaults",
        "-no-reboot",
    ]);
    let mut nic = format!("virtio-net-pci,netdev=n0,mac={mac},bootindex=1");
    if firmware == Firmware::Uefi {
        let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
        assert!(code.is_file(), "{} missing: install `ovmf`", code.display());
        let vars = log_dir.path().join("vars.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).expect("copy OVMF vars");
        cmd.args([
            "-drive",
            &format!("if=pflash,format=raw,readonly=on,file={}", code.display()),
        ])
        .args([
            "-drive",
            &format!("if=pflash,format=raw,file={}", vars.display()),
        ]);
        // OVMF's own PXE client, not iPXE: the path a UEFI machine takes in MAAS.
        nic.push_str(",romfile=");
    }
    let vm = cmd
        .args(["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no"])
        .args(["-device", &nic])
        .args(["-serial", &format!("file:{}", serial.display())])
        .args(["-monitor", "none", "-display", "none"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), vm).await;
    // Firmware menus draw with non-UTF-8 box characters.
    let log = without_escapes(&String::from_utf8_lossy(
        &std::fs::read(&serial).unwrap_or_default(),
    ));
    let out = out.unwrap_or_else(|_| panic!("VM did not power off within 240 s; serial:\n{log}"));
    let out = out.expect("run qemu");
    assert!(
        out.status.success(),
        "qemu failed: {}\nserial:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    cancel.cancel();
    let _ = server.join();
    let seen = region.seen.lock().expect("lock").clone();
    Booted {
        log,
        seen,
        events: backend.events.take_events(),
        lease: handler.lease_for(mac),
        site_leases: dnsmasq.leases(),
    }
}

fn assert_booted(log: &str, mac: &str) {
    let line = log
        .lines()
        .find(|l| l.contains("MAASRS-BOOTED"))
        .unwrap_or_else(|| panic!("no boot marker on the serial console:\n{log}"));
    // The command line is the one rendered for this MAC, with the loader's BOOTIF.
    for want in [
        "nomodeset ip=::::vm-under-test:BOOTIF:dhcp ip6=off",
        "cloud-config-url=http://192.0.2.1:5248/MAAS/metadata/latest/by-id/abc123/?op=get_preseed",
        "log_host=192.0.2.1 log_port=5247",
    ] {
        assert!(line.contains(want), "{want:?} missing from {line}");
    }
    // GRUB renders the datasource without quotes (it would pass them escaped).
    assert!(
        line.contains("cc:{'datasource_list': ['MAAS']}end_cc")
            || line.contains("cc:{datasource_list: [MAAS]}end_cc"),
        "no cloud-init datasource in {line}"
    );
    // pxelinux and iPXE write BOOTIF with dashes, GRUB's ${net_default_mac} with colons.
    let dashed = format!("BOOTIF=01-{}", mac.replace(':', "-"));
    let colon = format!("BOOTIF=01-{mac}");
    assert!(
        line.contains(&dashed) || line.contains(&colon),
        "no BOOTIF for {mac} in {line}"
    );
}

/// Our server leased the VM an address from its range and reported the lease
/// with the boot method it answered.
fn assert_leased_by_us(b: &Booted, mac: &str, method: NetbootMethod) {
    let mac: MacAddress = mac.parse().expect("mac");
    let lease = b
        .lease
        .as_ref()
        .expect("our server holds a lease for the VM");
    assert_eq!(lease.state, LeaseState::Bound, "{lease:?}");
    assert!(
        (100..=150).contains(&lease.addr.octets()[3]),
        "address from our range: {lease:?}"
    );
    assert!(
        b.events.iter().any(|e| matches!(e,
            DhcpEvent::Leased { mac: m, addr, boot: Some(bm), .. }
                if *m == mac && *addr == lease.addr && *bm == method)),
        "lease reported with boot method {method:?}: {:?}",
        b.events
    );
}

#[tokio::test]
async fn bios_pxelinux_boots_the_kernel() {
    let mac = "52:54:00:00:05:01";
    // lpxelinux.0 over TFTP, then (option 210 = http://rack:5248/) ldlinux.c32
    // and pxelinux.cfg/01-<mac> over HTTP, as MAAS serves BIOS PXE.
    // Enlistment: pxelinux runs ifcpu64.c32, which picks the amd64 label.
    let b = boot(
        Firmware::Bios,
        mac,
        DhcpSetup::Ours(Some(NetbootMethod::Pxe)),
        Purpose::Enlist,
    )
    .await;
    assert_booted(&b.log, mac);
    assert_leased_by_us(&b, mac, NetbootMethod::Pxe);
    assert!(
        b.log.contains("Booting under MAAS direction (enlist)"),
        "the enlist config ran:\n{}",
        b.log
    );
    assert!(
        b.seen
            .iter()
            .any(|r| r.loader == Loader::Pxelinux && r.mac == mac.parse().ok()),
        "{:?}",
        b.seen
    );
}

#[tokio::test]
async fn bios_ipxe_script_boots_the_kernel() {
    let mac = "52:54:00:00:05:02";
    // MAAS's own choice for an iPXE ROM: http://rack:5248/ipxe.cfg.
    let b = boot(
        Firmware::Bios,
        mac,
        DhcpSetup::Ours(None),
        Purpose::Commissioning,
    )
    .await;
    assert_booted(&b.log, mac);
    assert_leased_by_us(&b, mac, NetbootMethod::Ipxe);
    assert!(
        b.seen
            .iter()
            .any(|r| r.loader == Loader::Ipxe && r.mac == mac.parse().ok()),
        "{:?}",
        b.seen
    );
}

#[tokio::test]
async fn uefi_shim_grub_boots_the_kernel() {
    let mac = "52:54:00:00:05:03";
    // OVMF's PXE sends option 93 = 7: bootx64.efi (shim) over TFTP.
    let b = boot(
        Firmware::Uefi,
        mac,
        DhcpSetup::Ours(None),
        Purpose::Commissioning,
    )
    .await;
    assert_booted(&b.log, mac);
    assert_leased_by_us(&b, mac, NetbootMethod::UefiAmd64Tftp);
    assert!(
        b.seen
            .iter()
            .any(|r| r.loader == Loader::Grub && r.mac == mac.parse().ok()),
        "{:?}",
        b.seen
    );
}

/// proxyDHCP: the site's dnsmasq leases the address and says nothing about
/// booting; our server in proxy mode answers the iPXE ROM's DISCOVER and its
/// REQUEST on port 4011 with the boot file, and the VM boots from it.
#[tokio::test]
async fn proxy_dhcp_beside_a_site_server_boots_the_kernel() {
    let mac = "52:54:00:00:05:04";
    let b = boot(
        Firmware::Bios,
        mac,
        DhcpSetup::Proxy,
        Purpose::Commissioning,
    )
    .await;
    assert_booted(&b.log, mac);
    assert!(b.lease.is_none(), "proxy mode never leases: {:?}", b.lease);
    // dnsmasq's lease file: `<expiry> <mac> <ip> <hostname> <client-id>`.
    let site_addr = b
        .site_leases
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&mac))
        .and_then(|f| f.get(2)?.parse::<Ipv4Addr>().ok());
    assert!(
        site_addr.is_some_and(|a| (200..=250).contains(&a.octets()[3])),
        "the site server leased the VM its address: {:?}",
        b.site_leases
    );
    assert!(
        b.seen
            .iter()
            .any(|r| r.loader == Loader::Ipxe && r.mac == mac.parse().ok()),
        "the VM fetched the iPXE config we pointed it to: {:?}",
        b.seen
    );
}

/// The serial console without terminal control sequences (ESC `[` … final
/// byte, and lone ESC pairs): firmware and loaders emit them between the
/// words the tests look for, and the test output shown for a failure has
/// them stripped, so a match must ignore them too.
fn without_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in @..~.
            for n in chars.by_ref() {
                if ('@'..='~').contains(&n) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

#[test]
fn escapes_are_stripped_from_the_console() {
    assert_eq!(
        without_escapes("Booting \u{1b}[0;37;40munder\u{1b}[2J MAAS\u{1b}c direction"),
        "Booting under MAAS direction"
    );
}
