//! The kernel command line MAAS composes (`compose_kernel_command_line`, maas.md §4.6).

use std::net::IpAddr;

use super::{BootParams, HTTP_PORT, RootFs, SYSLOG_PORT};

/// `host` for URLs: IPv6 in brackets.
pub fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `http://<rack>:5248/images/`, the prefix of every image URL.
pub fn images_url(rack: IpAddr) -> String {
    format!("http://{}:{HTTP_PORT}/images/", url_host(rack))
}

/// The command line, without `BOOTIF` (each loader appends it its own way).
///
/// Order as MAAS: `nomodeset`; root, ip, cloud-init datasource and preseed;
/// overlayroot for squashfs; `apparmor=0` for old releases; the syslog host;
/// arch options; ephemeral options; then `---` and the user's options.
pub fn kernel_command_line(p: &BootParams, rack: IpAddr) -> String {
    let mut opts: Vec<String> = vec!["nomodeset".into()];
    let images = images_url(rack);
    match &p.rootfs {
        Some(RootFs::Squashfs(path)) => opts.push(format!("root=squash:{images}{path}")),
        Some(RootFs::Tarball(path)) => opts.push(format!("root=tar:{images}{path}")),
        None => {}
    }
    match rack {
        IpAddr::V4(_) => {
            opts.push(format!("ip=::::{}:BOOTIF:dhcp", p.hostname));
            opts.push("ip6=off".into());
        }
        IpAddr::V6(_) => {
            opts.push("ip=off".into());
            opts.push("ip6=dhcp".into());
        }
    }
    opts.push("cc:{'datasource_list': ['MAAS']}end_cc".into());
    opts.push(format!("cloud-config-url={}", p.preseed_url));
    if matches!(p.rootfs, Some(RootFs::Squashfs(_))) {
        opts.extend(["ro", "overlayroot=tmpfs", "overlayroot_cfgdisk=disabled"].map(String::from));
    }
    if p.apparmor_off {
        opts.push("apparmor=0".into());
    }
    opts.push(format!("log_host={}", url_host(rack)));
    opts.push(format!("log_port={SYSLOG_PORT}"));
    opts.extend(p.arch_opts.iter().cloned());
    opts.extend(p.ephemeral_opts.iter().cloned());
    if !p.extra_opts.is_empty() {
        // curtin copies what follows the separator into the installed system's grub.
        opts.push("---".into());
        opts.extend(p.extra_opts.iter().cloned());
    }
    opts.join(" ")
}
