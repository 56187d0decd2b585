//! Real firmware netboots through our TFTP and HTTP servers: QEMU (TCG,
//! SeaBIOS + the iPXE NIC ROM) in a network namespace this test creates, DHCP
//! from dnsmasq in DHCP-only mode (`port=0`, no TFTP) until the project's own
//! DHCP server lands — [`Dhcp`] is the one place to swap it in. The machine
//! loads lpxelinux.0, an iPXE script, or (UEFI, OVMF's own PXE) shim + Debian's
//! signed GRUB network image as MAAS lays them out; fetches its per-MAC config rendered
//! by [`ConfigTree`], then a Debian kernel and a busybox initramfs built here,
//! which prints a marker with its command line and powers off.

use std::net::SocketAddr;
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

/// A network namespace with a bridge (`br0`, 192.0.2.1/24) and a tap for QEMU.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        peer("ip", "iproute2");
        let name = format!(
            "mrs-tftp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        sh(&format!("ip netns add {name}"));
        let ns = Self { name };
        let n = &ns.name;
        sh(&format!(
            "ip -n {n} link set lo up && ip -n {n} link add br0 type bridge && \
             ip -n {n} addr add {RACK}/24 dev br0 && ip -n {n} addr add 2001:db8:1::1/64 dev br0 nodad && \
             ip -n {n} link set br0 up && ip -n {n} tuntap add dev tap0 mode tap && \
             ip -n {n} link set tap0 master br0 && ip -n {n} link set tap0 up"
        ));
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
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The DHCP server of the lab network. dnsmasq for now (DHCP only: `port=0`,
/// no `enable-tftp`), handing out `filename` with next-server = the rack.
struct Dhcp {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Dhcp {
    fn start(ns: &Netns, mac: MacAddress, filename: &str) -> Self {
        let dnsmasq = peer("dnsmasq", "dnsmasq-base");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let conf = format!(
            "port=0\ninterface=br0\nbind-interfaces\nexcept-interface=lo\n\
             dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,10m\n\
             dhcp-leasefile={d}/leases\ndhcp-authoritative\nlog-dhcp\n\
             dhcp-host={mac},set:vm\ndhcp-boot=tag:vm,{filename},rack,{RACK}\n\
             enable-ra\ndhcp-range=::,constructor:br0,ra-only\n"
        );
        std::fs::write(dir.path().join("dnsmasq.conf"), conf).expect("conf");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(dnsmasq)
            .arg(format!("--conf-file={d}/dnsmasq.conf"))
            .arg("--keep-in-foreground")
            .arg("--user=root")
            .arg(format!("--pid-file={d}/dnsmasq.pid"))
            .arg(format!("--log-facility={d}/dnsmasq.log"))
            .spawn()
            .expect("start dnsmasq");
        Self { child, _dir: dir }
    }
}

impl Drop for Dhcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The region stand-in: every MAC commissions; requests are recorded.
#[derive(Default)]
struct Region {
    seen: Mutex<Vec<BootRequest>>,
}

#[async_trait]
impl BootConfigSource for Region {
    async fn boot_params(&self, req: &BootRequest) -> maas_boot::Result<BootParams> {
        self.seen.lock().expect("lock").push(req.clone());
        Ok(BootParams {
            purpose: Purpose::Commissioning,
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

/// Boots a VM with `mac` whose DHCP filename is `filename`; returns the serial
/// log and the requests the region saw.
async fn boot(firmware: Firmware, mac: &str, filename: &str) -> (String, Vec<BootRequest>) {
    let qemu = peer("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)");
    let root_dir = tempfile::tempdir().expect("tempdir");
    tftp_root(root_dir.path());
    let assets = root_dir.path().to_owned();
    let mac: MacAddress = mac.parse().expect("mac");
    let ns = Netns::new();
    let region = Arc::new(Region::default());
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    // The servers run on a thread inside the namespace: TFTP binds a socket per
    // transfer, and sockets belong to the namespace of the thread creating them.
    let server = {
        let (region, cancel, assets) = (region.clone(), cancel.clone(), assets.clone());
        ns.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
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
                let app = maas_boot::http::router(files, boot_tree, local);
                let _ = maas_boot::http::serve(tcp, app, cancel).await;
            })
        })
    };
    let _dhcp = Dhcp::start(&ns, mac, filename);

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
    let log = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
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
    (log, seen)
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

#[tokio::test]
async fn bios_pxelinux_boots_the_kernel() {
    let mac = "52:54:00:00:05:01";
    let (log, seen) = boot(Firmware::Bios, mac, "lpxelinux.0").await;
    assert_booted(&log, mac);
    assert!(
        seen.iter()
            .any(|r| r.loader == Loader::Pxelinux && r.mac == mac.parse().ok()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn bios_ipxe_script_boots_the_kernel() {
    let mac = "52:54:00:00:05:02";
    let (log, seen) = boot(Firmware::Bios, mac, "ipxe.cfg").await;
    assert_booted(&log, mac);
    assert!(
        seen.iter()
            .any(|r| r.loader == Loader::Ipxe && r.mac == mac.parse().ok()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn uefi_shim_grub_boots_the_kernel() {
    let mac = "52:54:00:00:05:03";
    let (log, seen) = boot(Firmware::Uefi, mac, "bootx64.efi").await;
    assert_booted(&log, mac);
    assert!(
        seen.iter()
            .any(|r| r.loader == Loader::Grub && r.mac == mac.parse().ok()),
        "{seen:?}"
    );
}
