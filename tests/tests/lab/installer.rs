//! The lab installer's failure path (tests/lab/ephemeral/curtin.sh, inside
//! the ephemeral environment booted from the lab's kernel, initrd and
//! squashfs): on a disk too small for the image it stops with
//! `INSTALL-FAILED` and says why. No region is involved: `lab.install=<url>`
//! is the environment's self-test entry point, served by a plain static HTTP
//! server. The successful installs (BIOS: GPT + bios_grub + extlinux; UEFI:
//! GPT + ESP + GRUB) and the disk boots into Debian's real cloud-init are
//! proven under maasd by `scenario` (phase 3), which replaced the two
//! stand-alone install-and-boot tests that used to live here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{images, run};

// Inside the test's own namespace; never 192.0.2.0/24, the project
// machines' real network, nor the lab's 198.51.100.0/24.
const RACK: &str = "203.0.113.1";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOmaasrslabkeyforthetestonly0000000000000 lab@example.invalid";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn program(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: install the Debian package {package} (scripts/deps/lab.apt)");
}

/// A namespace with a bridge and a tap, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        let name = format!(
            "mri{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run(Command::new("ip").args(["netns", "add", &name])).expect("ip netns add");
        let ns = Self(name);
        let n = &ns.0;
        run(Command::new("sh").arg("-ec").arg(format!(
            "ip -n {n} link set lo up; ip -n {n} link add br0 type bridge; \
             ip -n {n} addr add {RACK}/24 dev br0; ip -n {n} link set br0 up; \
             ip -n {n} tuntap add dev tap0 mode tap; ip -n {n} link set tap0 master br0; \
             ip -n {n} link set tap0 up"
        )))
        .expect("bridge and tap");
        ns
    }

    fn exec(&self) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The storage part of the curtin config, as maas-core renders the flat
/// layout for a 2 GiB virtio disk of a BIOS machine (GPT + bios_grub).
fn storage() -> String {
    let first = "  - device: vda\n    flag: bios_grub\n    id: vda-part1\n    number: 1\n    offset: \"4194304B\"\n    size: \"1048576B\"\n    type: partition\n    wipe: zero\n";
    format!(
        "storage:\n  config:\n  - grub_device: true\n    id: vda\n    name: vda\n    ptable: gpt\n    serial: lab-disk0\n    type: disk\n    wipe: superblock\n{first}\
         {}  - fstype: ext4\n    id: vda-part2_format\n    label: root\n    type: format\n    volume: vda-part2\n\
         {mount_root}  version: 1\n",
        "  - device: vda\n    id: vda-part2\n    name: vda-part2\n    number: 2\n    size: \"1900000000B\"\n    type: partition\n    wipe: superblock\n",
        mount_root =
            "  - device: vda-part2_format\n    id: vda-part2_mount\n    path: /\n    type: mount\n",
    )
}

/// The whole config: image source, storage, and cloud-init files for the
/// target (a NoCloud seed instead of the MAAS datasource: no region here).
fn curtin_config() -> String {
    let user_data = format!(
        "#cloud-config\n\
         ssh_authorized_keys:\n  - {KEY}\n\
         runcmd:\n\
         \x20 - [sh, -c, 'echo \"LAB-MARKER $(cloud-init --version 2>&1) debian=$(cat /etc/debian_version) keys=$(grep -c lab@example.invalid /home/debian/.ssh/authorized_keys)\" > /dev/ttyS0']\n\
         power_state:\n  mode: poweroff\n  delay: now\n"
    );
    let block = |s: &str| {
        s.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    };
    format!(
        "sources:\n  05_primary:\n    type: tgz\n    uri: http://{RACK}:8000/root-tgz\n\
         cloudconfig:\n\
         \x20 lab-datasource:\n    content: \"datasource_list: [ NoCloud, None ]\"\n    path: /etc/cloud/cloud.cfg.d/90_lab_datasource.cfg\n\
         \x20 lab-meta-data:\n    content: |\n{}    path: /var/lib/cloud/seed/nocloud/meta-data\n\
         \x20 lab-user-data:\n    content: |\n{}    path: /var/lib/cloud/seed/nocloud/user-data\n\
         {}",
        block("instance-id: lab-installer-test\nlocal-hostname: lab-installed"),
        block(&user_data),
        storage()
    )
}

/// Runs QEMU (TCG, 1 vCPU, 512 MiB) until the guest powers off; returns the
/// serial log.
fn qemu(ns: &Netns, dir: &Path, extra: &[String], log: &str) -> String {
    let qemu = program("qemu-system-x86_64", "qemu-system-x86 (bookworm-backports)");
    let serial = dir.join(log);
    let mut cmd = ns.exec();
    cmd.arg(&qemu);
    cmd.args(["-accel", "tcg", "-machine", "q35", "-m", "512", "-smp", "1"])
        .args(["-nographic", "-nodefaults", "-no-reboot"])
        .args(["-monitor", "none", "-display", "none"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-drive")
        .arg(format!(
            "file={},if=none,id=d0,format=raw",
            dir.join("disk.img").display()
        ))
        .args(["-device", "virtio-blk-pci,drive=d0,serial=lab-disk0"]);
    let err_path = dir.join(format!("{log}.stderr"));
    let err = std::fs::File::create(&err_path).expect("stderr file");
    cmd.args(extra).stdout(Stdio::null()).stderr(err);
    let mut child = Guard(cmd.spawn().expect("start qemu"));
    let deadline = Instant::now() + Duration::from_secs(240);
    let read = || String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
    loop {
        if let Some(st) = child.0.try_wait().expect("wait qemu") {
            assert!(
                st.success(),
                "qemu failed ({st}): {}\nserial:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default(),
                read()
            );
            return read();
        }
        assert!(
            Instant::now() < deadline,
            "the VM did not power off within 240 s; serial:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Boots the ephemeral environment in installer mode on a fresh disk of
/// `disk_size`; returns the VM's directory, the serial log and the seconds.
fn install(disk_size: &str) -> (tempfile::TempDir, String, f64) {
    let out = images();
    let find = |name: &str| -> PathBuf {
        let found = run(Command::new("find")
            .arg(out.join("mirror"))
            .args(["-name", name, "-type", "f"]))
        .expect("find");
        PathBuf::from(
            found
                .lines()
                .next()
                .unwrap_or_else(|| panic!("{name} not in the mirror")),
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("www");
    for item in ["squashfs", "root-tgz"] {
        std::fs::hard_link(find(item), www.join(item)).expect("link");
    }
    std::fs::write(www.join("curtin.yaml"), curtin_config()).expect("config");
    run(Command::new("truncate")
        .args(["-s", disk_size])
        .arg(dir.path().join("disk.img")))
    .expect("disk");

    let ns = Netns::new();
    let dnsmasq = program("dnsmasq", "dnsmasq-base");
    let mac = "52:54:00:1a:b1:01";
    std::fs::write(
        dir.path().join("dnsmasq.conf"),
        format!(
            "port=0\ninterface=br0\nbind-interfaces\nexcept-interface=lo\n\
             dhcp-range=203.0.113.100,203.0.113.150,255.255.255.0,10m\n\
             dhcp-leasefile={d}/leases\ndhcp-authoritative\n",
            d = dir.path().display()
        ),
    )
    .expect("dnsmasq.conf");
    let _dhcp = Guard(
        ns.exec()
            .arg(dnsmasq)
            .arg(format!("--conf-file={}/dnsmasq.conf", dir.path().display()))
            .args(["--keep-in-foreground", "--user=root"])
            .arg(format!("--pid-file={}/dnsmasq.pid", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq"),
    );
    let _http = Guard(
        ns.exec()
            .args([
                "python3",
                "-m",
                "http.server",
                "--bind",
                RACK,
                "8000",
                "--directory",
            ])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("http.server"),
    );

    let t0 = Instant::now();
    let append = format!(
        "console=ttyS0 root=squash:http://{RACK}:8000/squashfs lab.install=http://{RACK}:8000/curtin.yaml BOOTIF=01-{}",
        mac.replace(':', "-")
    );
    let log = qemu(
        &ns,
        dir.path(),
        &[
            "-kernel".into(),
            find("boot-kernel").display().to_string(),
            "-initrd".into(),
            find("boot-initrd").display().to_string(),
            "-append".into(),
            append,
            "-netdev".into(),
            "tap,id=n0,ifname=tap0,script=no,downscript=no".into(),
            "-device".into(),
            format!("virtio-net-pci,netdev=n0,mac={mac}"),
        ],
        "install.log",
    );
    (dir, log, t0.elapsed().as_secs_f64())
}

#[test]
fn install_on_a_too_small_disk_fails_with_the_reason() {
    // 64 MiB: the partitions are shrunk to fit, the 96 MB image is not.
    let (_dir, log, _) = install("64M");
    assert!(log.contains("LAB: INSTALL-FAILED"), "{log}");
    assert!(
        log.contains("extracting the image failed"),
        "the reason is missing:\n{log}"
    );
    assert!(!log.contains("LAB: INSTALL-OK"), "{log}");
}
