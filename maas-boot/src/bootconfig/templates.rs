//! The config text per loader and purpose (maas.md §4.5). Written as plain
//! Rust string building: the templates are short and a template engine would
//! add a dependency without making them clearer.

use std::fmt::Write;
use std::net::IpAddr;

use super::cmdline::{images_url, kernel_command_line, url_host};
use super::{BootParams, HTTP_PORT, Loader, Purpose};

/// Renders the per-machine (or arch-default) config for `loader`.
pub fn render(loader: Loader, p: &BootParams, rack: IpAddr) -> String {
    match loader {
        Loader::Pxelinux => pxelinux(p, rack),
        Loader::Grub => grub(p, rack),
        Loader::Ipxe => ipxe(p, rack),
    }
}

fn pxelinux(p: &BootParams, rack: IpAddr) -> String {
    let mut s = String::new();
    match p.purpose {
        Purpose::Local => {
            // chain.c32 hands over to the first disk's boot sector, as MAAS does on x86.
            s.push_str("DEFAULT local\n\nLABEL local\n  KERNEL chain.c32\n  APPEND hd0\n");
        }
        Purpose::Poweroff => {
            s.push_str("DEFAULT poweroff\n\nLABEL poweroff\n  COM32 poweroff.c32\n");
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

fn grub(p: &BootParams, rack: IpAddr) -> String {
    let mut s = String::from("set default=\"0\"\nset timeout=0\n\n");
    match p.purpose {
        Purpose::Local => {
            s.push_str("menuentry 'Local' {\n    echo 'Booting local disk...'\n");
            // Try the removable-media path first, then the loaders distributions
            // install; chainload whichever is found, else give the firmware back.
            for loader in [
                "/efi/boot/bootx64.efi",
                "/efi/ubuntu/shimx64.efi",
                "/efi/ubuntu/grubx64.efi",
                "/efi/Microsoft/Boot/bootmgfw.efi",
            ] {
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

fn ipxe(p: &BootParams, rack: IpAddr) -> String {
    let mut s = String::from("#!ipxe\n");
    match p.purpose {
        Purpose::Local => {
            s.push_str("echo Booting local disk...\n");
            let drives: Vec<String> = (0x80..=0x83)
                .map(|d| format!("sanboot --no-describe --drive {d:#x}"))
                .collect();
            s.push_str(&drives.join(" || "));
            s.push_str(" || exit 1\n");
        }
        Purpose::Poweroff => s.push_str("poweroff\n"),
        _ => {
            let images = images_url(rack);
            let name = p.kernel.rsplit('/').next().unwrap_or(&p.kernel);
            let _ = write!(
                s,
                "echo Booting under MAAS direction ({purpose})...\n\
                 kernel {images}{kernel}\n\
                 initrd {images}{initrd}\n\
                 imgargs {name} {cmdline} BOOTIF=01-${{mac:hexhyp}}\n\
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
/// from the server that handed out the address.
pub fn ipxe_bootstrap() -> String {
    format!(
        "#!ipxe\n\
         chain http://${{next-server}}:{HTTP_PORT}/ipxe.cfg-${{mac}} || \
         chain http://${{next-server}}:{HTTP_PORT}/ipxe.cfg-default-amd64\n"
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
