//! The config text per loader and purpose (maas.md §4.5). Written as plain
//! Rust string building: the templates are short and a template engine would
//! add a dependency without making them clearer.

use std::fmt::Write;
use std::net::IpAddr;

use super::cmdline::{images_url, kernel_command_line, url_host};
use super::{BootParams, HTTP_PORT, Loader, Purpose, RootFs};

/// Renders the per-machine (or arch-default) config for `loader`, for a
/// machine of unknown architecture: pxelinux and GRUB configs are then the
/// amd64 ones (the architecture those loaders boot here). See [`render_for`].
pub fn render(loader: Loader, p: &BootParams, rack: IpAddr) -> String {
    render_for(loader, p, rack, None, None)
}

/// MAAS's template file names for a purpose, most specific first
/// (`gen_template_filenames`, maas.md §4.5):
/// `config.<purpose>.<arch>.<subarch>.template`, `config.<purpose>.<arch>.template`,
/// `config.<purpose>.template`, `config.template`. A missing `arch` also
/// drops `subarch`.
pub fn template_candidates(
    purpose: Purpose,
    arch: Option<&str>,
    subarch: Option<&str>,
) -> Vec<String> {
    let mut elements = vec![purpose.as_str()];
    if let Some(a) = arch {
        elements.push(a);
        elements.extend(subarch);
    }
    let mut out = Vec::with_capacity(elements.len() + 1);
    while !elements.is_empty() {
        out.push(format!("config.{}.template", elements.join(".")));
        elements.pop();
    }
    out.push("config.template".into());
    out
}

/// The arch- or subarch-specific templates this crate has, per loader; every
/// other combination renders from the loader's per-purpose template.
const VARIANTS: &[(Loader, &str)] = &[
    (Loader::Pxelinux, "config.enlist.template"),
    (Loader::Pxelinux, "config.local.amd64.template"),
    (Loader::Pxelinux, "config.local.i386.template"),
    (Loader::Pxelinux, "config.local.template"),
    (Loader::Grub, "config.local.amd64.template"),
    (Loader::Grub, "config.local.arm64.template"),
];

/// The template MAAS's lookup order picks for `loader`: the first of
/// [`template_candidates`] this crate has, else `config.<purpose>.template`.
/// `arch` is MAAS's name (`amd64`, `arm64`, …; `x86_64` and `aarch64`, as
/// GRUB spells them, are mapped); `None` means amd64 for pxelinux and GRUB.
pub fn template_for(
    loader: Loader,
    purpose: Purpose,
    arch: Option<&str>,
    subarch: Option<&str>,
) -> String {
    let arch = match arch {
        Some("x86_64") => Some("amd64"),
        Some("aarch64") => Some("arm64"),
        None if loader != Loader::Ipxe => Some("amd64"),
        other => other,
    };
    template_candidates(purpose, arch, subarch)
        .into_iter()
        .find(|name| VARIANTS.iter().any(|(l, n)| *l == loader && n == name))
        .unwrap_or_else(|| format!("config.{}.template", purpose.as_str()))
}

/// Renders the config `loader` reads for a machine of architecture `arch`
/// (`amd64`, `arm64`, …) and `subarch` (`generic`, `hwe-22.04`, …), through
/// MAAS's template lookup order ([`template_for`]).
pub fn render_for(
    loader: Loader,
    p: &BootParams,
    rack: IpAddr,
    arch: Option<&str>,
    subarch: Option<&str>,
) -> String {
    let template = template_for(loader, p.purpose, arch, subarch);
    match loader {
        Loader::Pxelinux => pxelinux(p, rack, &template),
        Loader::Grub => grub(p, rack, &template),
        Loader::Ipxe => ipxe(p, rack),
    }
}

/// A pxelinux label that boots the ephemeral kernel.
fn pxelinux_label(s: &mut String, label: &str, p: &BootParams, rack: IpAddr) {
    let images = images_url(rack);
    let _ = write!(
        s,
        "LABEL {label}\n  \
         KERNEL {images}{kernel}\n  INITRD {images}{initrd}\n  APPEND {cmdline}\n  \
         IPAPPEND 2\n",
        kernel = p.kernel,
        initrd = p.initrd,
        cmdline = kernel_command_line(p, rack),
    );
}

/// The same boot for another architecture: `/amd64/` in the image paths
/// becomes `/<arch>/` (MAAS's `kernel_params(arch=…)`).
fn for_arch(p: &BootParams, arch: &str) -> BootParams {
    let swap = |path: &str| path.replacen("/amd64/", &format!("/{arch}/"), 1);
    BootParams {
        kernel: swap(&p.kernel),
        initrd: swap(&p.initrd),
        rootfs: p.rootfs.as_ref().map(|r| match r {
            RootFs::Squashfs(x) => RootFs::Squashfs(swap(x)),
            RootFs::Tarball(x) => RootFs::Tarball(swap(x)),
        }),
        ..p.clone()
    }
}

fn pxelinux(p: &BootParams, rack: IpAddr, template: &str) -> String {
    let mut s = String::new();
    match (p.purpose, template) {
        (Purpose::Local, "config.local.template") => {
            s.push_str("DEFAULT local\n\nLABEL local\n  LOCALBOOT 0\n");
        }
        (Purpose::Local, _) => {
            // chain.c32 hands over to the first disk's boot sector, as MAAS does on x86.
            s.push_str("DEFAULT local\n\nLABEL local\n  KERNEL chain.c32\n  APPEND hd0\n");
        }
        (Purpose::Poweroff, _) => {
            s.push_str("DEFAULT poweroff\n\nLABEL poweroff\n  COM32 poweroff.c32\n");
        }
        (Purpose::Enlist, "config.enlist.template") => {
            // An unknown machine's CPU is unknown too: ifcpu64.c32 picks the
            // amd64 label on a 64-bit CPU, the i386 one otherwise.
            s.push_str(
                "DEFAULT execute\nPROMPT 0\nTIMEOUT 0\n\n\
                 SAY Booting under MAAS direction (enlist)...\n\n\
                 LABEL execute\n  KERNEL ifcpu64.c32\n  APPEND amd64 -- i386\n\n",
            );
            pxelinux_label(&mut s, "amd64", p, rack);
            s.push('\n');
            pxelinux_label(&mut s, "i386", &for_arch(p, "i386"), rack);
        }
        _ => {
            let images = images_url(rack);
            let _ = write!(
                s,
                "DEFAULT execute\nPROMPT 0\nTIMEOUT 0\n\nLABEL execute\n  \
                 SAY Booting under MAAS direction ({purpose})...\n  \
                 KERNEL {images}{kernel}\n  INITRD {images}{initrd}\n  APPEND {cmdline}\n  \
                 IPAPPEND 2\n",
                purpose = p.purpose.as_str(),
                kernel = p.kernel,
                initrd = p.initrd,
                cmdline = kernel_command_line(p, rack),
            );
        }
    }
    s
}

/// Escapes a command line for GRUB's script lexer word by word: `{`, `}`,
/// `$` and the like get a backslash (unescaped, `cc:{...}` is a syntax error
/// inside a menuentry). Single quotes are dropped: GRUB passes them to the
/// kernel as `\'`, which would break the YAML of `cc:{'datasource_list': …}`,
/// while `cc:{datasource_list: [MAAS]}end_cc` is the same YAML mapping.
fn grub_escape(cmdline: &str) -> String {
    let mut out = String::with_capacity(cmdline.len() + 16);
    for (i, word) in cmdline.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in word.chars().filter(|&c| c != '\'') {
            if "{}\"\\$;|&<>()#`".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

fn grub(p: &BootParams, rack: IpAddr, template: &str) -> String {
    let mut s = String::from("set default=\"0\"\nset timeout=0\n\n");
    match p.purpose {
        Purpose::Local => {
            s.push_str("menuentry 'Local' {\n    echo 'Booting local disk...'\n");
            // Try the removable-media path first, then the loaders distributions
            // install; chainload whichever is found, else give the firmware back.
            let loaders: &[&str] = if template == "config.local.arm64.template" {
                &["/efi/ubuntu/grubaa64.efi", "/efi/boot/bootaa64.efi"]
            } else {
                &[
                    "/efi/boot/bootx64.efi",
                    "/efi/ubuntu/shimx64.efi",
                    "/efi/ubuntu/grubx64.efi",
                    "/efi/Microsoft/Boot/bootmgfw.efi",
                ]
            };
            for loader in loaders {
                let _ = write!(
                    s,
                    "    search --set=root --file {loader}\n    if [ $? -eq 0 ]; then\n        \
                     chainloader {loader}\n        boot\n    fi\n"
                );
            }
            s.push_str("    exit 1\n}\n");
        }
        Purpose::Poweroff => s.push_str("menuentry 'Poweroff' {\n    halt\n}\n"),
        _ => {
            let host = format!("(http,{}:{HTTP_PORT})/images/", url_host(rack));
            let _ = write!(
                s,
                "menuentry 'Ephemeral' {{\n    echo 'Booting under MAAS direction ({purpose})...'\n    \
                 insmod http\n    \
                 linux {host}{kernel} {cmdline} BOOTIF=01-${{net_default_mac}}\n    \
                 initrd {host}{initrd}\n}}\n",
                purpose = p.purpose.as_str(),
                kernel = p.kernel,
                initrd = p.initrd,
                cmdline = grub_escape(&kernel_command_line(p, rack)),
            );
        }
    }
    s
}

/// iPXE on UEFI starts the kernel through its EFI stub, which finds the
/// initrd only by the `initrd=<name>` argument (iPXE before 2021 does not
/// pass it implicitly); BIOS kernels ignore the argument.
fn ipxe(p: &BootParams, rack: IpAddr) -> String {
    let mut s = String::from("#!ipxe\n");
    match p.purpose {
        Purpose::Local => {
            s.push_str("echo Booting local disk...\n");
            let drives: Vec<String> = (0x80..=0x83)
                .map(|d| format!("sanboot --no-describe --drive {d:#x}"))
                .collect();
            s.push_str(&drives.join(" || "));
            // No BIOS drive to boot (UEFI firmware): end successfully, so
            // `ipxe.cfg` does not fall through to the enlistment default
            // and the firmware boots its next device, the disk.
            s.push_str(" || exit 0\n");
        }
        Purpose::Poweroff => s.push_str("poweroff\n"),
        _ => {
            let images = images_url(rack);
            let name = p.kernel.rsplit('/').next().unwrap_or(&p.kernel);
            let _ = write!(
                s,
                "echo Booting under MAAS direction ({purpose})...\n\
                 kernel {images}{kernel}\n\
                 initrd --name initrd {images}{initrd}\n\
                 imgargs {name} initrd=initrd {cmdline} BOOTIF=01-${{mac:hexhyp}}\n\
                 boot\n",
                purpose = p.purpose.as_str(),
                kernel = p.kernel,
                initrd = p.initrd,
                cmdline = kernel_command_line(p, rack),
            );
        }
    }
    s
}

/// `grub/grub.cfg`: the pre-loader config that picks the per-MAC config, then
/// the architecture default (MAC with colons first, then dashes).
pub fn grub_bootstrap() -> String {
    "set default=\"0\"\nset timeout=0\n\n\
     configfile /grub/grub.cfg-${net_default_mac}\n\
     regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 \
     '^([0-9a-f]{1,2})\\:([0-9a-f]{1,2})\\:([0-9a-f]{1,2})\\:([0-9a-f]{1,2})\\:([0-9a-f]{1,2})\\:([0-9a-f]{1,2})$' \
     \"${net_default_mac}\"\n\
     configfile /grub/grub.cfg-${m1}-${m2}-${m3}-${m4}-${m5}-${m6}\n\
     configfile /grub/grub.cfg-default-${grub_cpu}\n"
        .to_string()
}

/// `ipxe.cfg`: chains the per-MAC script, then the amd64 default, over HTTP
/// from the server that handed out the address (`${next-server}`, as MAAS).
/// [`ConfigTree`](super::ConfigTree) serves [`ipxe_bootstrap_for`] instead.
pub fn ipxe_bootstrap() -> String {
    ipxe_bootstrap_with("${next-server}")
}

/// `ipxe.cfg` naming the rack at `rack` rather than `${next-server}`: with
/// proxyDHCP the next-server iPXE knows is the site DHCP server's, not ours.
pub fn ipxe_bootstrap_for(rack: IpAddr) -> String {
    ipxe_bootstrap_with(&url_host(rack))
}

fn ipxe_bootstrap_with(host: &str) -> String {
    format!(
        "#!ipxe\n\
         chain http://{host}:{HTTP_PORT}/ipxe.cfg-${{mac}} || \
         chain http://{host}:{HTTP_PORT}/ipxe.cfg-default-amd64\n"
    )
}

#[cfg(test)]
mod tests {
    use super::super::RootFs;
    use super::*;

    fn params(purpose: Purpose) -> BootParams {
        BootParams {
            purpose,
            hostname: if purpose == Purpose::Enlist {
                "maas-enlist".into()
            } else {
                "node-1".into()
            },
            kernel: "ubuntu/amd64/ga-24.04/noble/stable/boot-kernel".into(),
            initrd: "ubuntu/amd64/ga-24.04/noble/stable/boot-initrd".into(),
            rootfs: Some(RootFs::Squashfs(
                "ubuntu/amd64/ga-24.04/noble/stable/squashfs".into(),
            )),
            preseed_url: "http://192.0.2.1:5248/MAAS/metadata/latest/by-id/abc123/?op=get_preseed"
                .into(),
            apparmor_off: false,
            arch_opts: vec!["console=ttyS0".into()],
            ephemeral_opts: vec![],
            extra_opts: if purpose == Purpose::Xinstall {
                vec!["quiet".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn snapshots_every_loader_and_purpose() {
        let rack: IpAddr = "192.0.2.1".parse().unwrap();
        for loader in [Loader::Pxelinux, Loader::Grub, Loader::Ipxe] {
            for purpose in Purpose::ALL {
                let text = render(loader, &params(purpose), rack);
                insta::assert_snapshot!(format!("{loader:?}-{}", purpose.as_str()), text);
            }
        }
        insta::assert_snapshot!("grub-bootstrap", grub_bootstrap());
        insta::assert_snapshot!("ipxe-bootstrap", ipxe_bootstrap());
    }

    #[test]
    fn ipxe_bootstrap_names_the_rack() {
        let v4 = ipxe_bootstrap_for("192.0.2.1".parse().unwrap());
        assert!(
            v4.contains("chain http://192.0.2.1:5248/ipxe.cfg-${mac} ||"),
            "{v4}"
        );
        let v6 = ipxe_bootstrap_for("2001:db8::1".parse().unwrap());
        assert!(
            v6.contains("http://[2001:db8::1]:5248/ipxe.cfg-default-amd64"),
            "{v6}"
        );
        assert!(ipxe_bootstrap().contains("http://${next-server}:5248/"));
    }

    #[test]
    fn template_lookup_order_is_maas() {
        assert_eq!(
            template_candidates(Purpose::Xinstall, Some("arm64"), Some("hwe-22.04")),
            [
                "config.xinstall.arm64.hwe-22.04.template",
                "config.xinstall.arm64.template",
                "config.xinstall.template",
                "config.template"
            ]
        );
        assert_eq!(
            template_candidates(Purpose::Local, None, Some("generic")),
            ["config.local.template", "config.template"]
        );
        let t = |l, p, a, s| template_for(l, p, a, s);
        // The most specific variant wins, the generic per-purpose one otherwise.
        assert_eq!(
            t(
                Loader::Pxelinux,
                Purpose::Local,
                Some("amd64"),
                Some("generic")
            ),
            "config.local.amd64.template"
        );
        assert_eq!(
            t(Loader::Pxelinux, Purpose::Local, Some("armhf"), None),
            "config.local.template"
        );
        assert_eq!(
            t(Loader::Grub, Purpose::Local, Some("aarch64"), None),
            "config.local.arm64.template"
        );
        assert_eq!(
            t(Loader::Grub, Purpose::Local, None, None),
            "config.local.amd64.template"
        );
        assert_eq!(
            t(
                Loader::Pxelinux,
                Purpose::Enlist,
                Some("amd64"),
                Some("generic")
            ),
            "config.enlist.template"
        );
        assert_eq!(
            t(Loader::Ipxe, Purpose::Commissioning, Some("amd64"), None),
            "config.commissioning.template"
        );
    }

    #[test]
    fn arch_variants_render_differently() {
        let rack: IpAddr = "192.0.2.1".parse().unwrap();
        let local = params(Purpose::Local);
        let generic = render_for(Loader::Pxelinux, &local, rack, Some("armhf"), None);
        assert!(
            generic.contains("LOCALBOOT 0") && !generic.contains("chain.c32"),
            "{generic}"
        );
        let x86 = render_for(Loader::Pxelinux, &local, rack, Some("i386"), None);
        assert!(x86.contains("KERNEL chain.c32"), "{x86}");
        let arm = render_for(Loader::Grub, &local, rack, Some("arm64"), None);
        assert!(
            arm.contains("/efi/boot/bootaa64.efi") && !arm.contains("bootx64"),
            "{arm}"
        );
        assert_eq!(
            render(Loader::Grub, &local, rack),
            render_for(Loader::Grub, &local, rack, Some("amd64"), None)
        );
        // Enlist: ifcpu64.c32 chooses between an amd64 and an i386 label.
        let enlist = render(Loader::Pxelinux, &params(Purpose::Enlist), rack);
        assert!(
            enlist.contains("KERNEL ifcpu64.c32\n  APPEND amd64 -- i386"),
            "{enlist}"
        );
        assert!(
            enlist.contains("LABEL amd64\n  KERNEL http://192.0.2.1:5248/images/ubuntu/amd64/"),
            "{enlist}"
        );
        assert!(
            enlist.contains("LABEL i386\n  KERNEL http://192.0.2.1:5248/images/ubuntu/i386/"),
            "{enlist}"
        );
        assert!(
            enlist.contains("root=squash:http://192.0.2.1:5248/images/ubuntu/i386/"),
            "{enlist}"
        );
    }

    #[test]
    fn ipv6_rack_uses_brackets_and_ip6_dhcp() {
        let rack: IpAddr = "2001:db8::1".parse().unwrap();
        let cmd = kernel_command_line(&params(Purpose::Commissioning), rack);
        assert!(
            cmd.contains("root=squash:http://[2001:db8::1]:5248/images/"),
            "{cmd}"
        );
        assert!(cmd.contains(" ip=off ip6=dhcp "), "{cmd}");
        assert!(cmd.contains("log_host=[2001:db8::1]"), "{cmd}");
    }

    #[test]
    fn command_line_order() {
        let rack: IpAddr = "192.0.2.1".parse().unwrap();
        let mut p = params(Purpose::Xinstall);
        p.apparmor_off = true;
        p.ephemeral_opts = vec!["tag_opt=1".into()];
        p.rootfs = Some(RootFs::Tarball("centos/root-tgz".into()));
        assert_eq!(
            kernel_command_line(&p, rack),
            "nomodeset root=tar:http://192.0.2.1:5248/images/centos/root-tgz \
             ip=::::node-1:BOOTIF:dhcp ip6=off cc:{'datasource_list': ['MAAS']}end_cc \
             cloud-config-url=http://192.0.2.1:5248/MAAS/metadata/latest/by-id/abc123/?op=get_preseed \
             apparmor=0 log_host=192.0.2.1 log_port=5247 console=ttyS0 tag_opt=1 --- quiet"
        );
    }
}
