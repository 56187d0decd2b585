//! Netboot: which MAAS boot method a client gets, from its DHCP option 93
//! (client architecture), option 77 (user class) and option 60 (vendor
//! class), and what that method puts in the reply (MAAS `bootmethods.py`,
//! reference maas.md §4.2–4.3).

use std::net::Ipv4Addr;

use maas_core::{BootMethod, MacAddress};

/// What the handler knows about a client that matters for netboot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootClient {
    /// The client's MAC.
    pub mac: MacAddress,
    /// Option 93, if sent.
    pub arch: Option<u16>,
    /// Option 60, if sent (lossy UTF-8).
    pub vendor_class: Option<String>,
    /// Whether option 77 says `iPXE`.
    pub ipxe: bool,
}

impl BootClient {
    /// Whether this looks like firmware that wants to netboot.
    pub fn is_netboot(&self) -> bool {
        self.arch.is_some()
            || self.ipxe
            || self
                .vendor_class
                .as_deref()
                .is_some_and(|v| v.starts_with("PXEClient") || v.starts_with("HTTPClient"))
    }

    /// Whether this is PXE firmware (MAAS's "PXE" class, which gets the
    /// short lease).
    pub fn is_pxe_firmware(&self) -> bool {
        self.vendor_class
            .as_deref()
            .is_some_and(|v| v.starts_with("PXE"))
    }
}

/// MAAS's boot methods that DHCP can tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetbootMethod {
    /// BIOS PXE (00:00, and the fallback): lpxelinux.0, configs over HTTP.
    Pxe,
    /// UEFI amd64 over TFTP (00:07).
    UefiAmd64Tftp,
    /// EFI byte code (00:09): MAAS answers it like amd64.
    UefiEbcTftp,
    /// UEFI arm64 over TFTP (00:0B).
    UefiArm64Tftp,
    /// UEFI amd64 HTTP boot (00:10).
    UefiAmd64Http,
    /// UEFI arm64 HTTP boot (00:13).
    UefiArm64Http,
    /// ppc64el OpenFirmware (00:0C).
    OpenFirmwarePpc64el,
    /// IBM POWER petitboot (00:0E).
    Powernv,
    /// s390x under KVM (00:1F).
    S390x,
    /// s390x in an LPAR (00:20).
    S390xPartition,
    /// iPXE (user class `iPXE`): the rack's `ipxe.cfg` over HTTP.
    Ipxe,
}

impl NetbootMethod {
    /// MAAS's name for the method.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pxe => "pxe",
            Self::UefiAmd64Tftp => "uefi_amd64_tftp",
            Self::UefiEbcTftp => "uefi_ebc_tftp",
            Self::UefiArm64Tftp => "uefi_arm64_tftp",
            Self::UefiAmd64Http => "uefi_amd64_http",
            Self::UefiArm64Http => "uefi_arm64_http",
            Self::OpenFirmwarePpc64el => "open-firmware_ppc64el",
            Self::Powernv => "powernv",
            Self::S390x => "s390x",
            Self::S390xPartition => "s390x_partition",
            Self::Ipxe => "ipxe",
        }
    }

    /// The method for a client. iPXE's user class wins over its architecture,
    /// as in MAAS's generated `dhcpd.conf`; unknown architectures fall back
    /// to PXE (MAAS's `else` branch).
    pub fn for_client(client: &BootClient) -> Self {
        if client.ipxe {
            return Self::Ipxe;
        }
        match client.arch {
            Some(0x07) => Self::UefiAmd64Tftp,
            Some(0x09) => Self::UefiEbcTftp,
            Some(0x0b) => Self::UefiArm64Tftp,
            Some(0x10) => Self::UefiAmd64Http,
            Some(0x13) => Self::UefiArm64Http,
            Some(0x0c) => Self::OpenFirmwarePpc64el,
            Some(0x0e) => Self::Powernv,
            Some(0x1f) => Self::S390x,
            Some(0x20) => Self::S390xPartition,
            _ => Self::Pxe,
        }
    }

    /// The firmware family (`bios_boot_method` in the API).
    pub fn boot_method(self) -> BootMethod {
        match self {
            Self::Pxe | Self::Ipxe => BootMethod::Pxe,
            Self::UefiAmd64Tftp
            | Self::UefiEbcTftp
            | Self::UefiArm64Tftp
            | Self::UefiAmd64Http
            | Self::UefiArm64Http => BootMethod::Uefi,
            Self::OpenFirmwarePpc64el => BootMethod::OpenFirmware,
            Self::Powernv => BootMethod::Powernv,
            Self::S390x | Self::S390xPartition => BootMethod::S390x,
        }
    }

    /// What the reply carries for this method, with the rack at `rack:http_port`.
    pub fn answer(self, rack: Ipv4Addr, http_port: u16) -> BootAnswer {
        let http = |path: &str| format!("http://{rack}:{http_port}/{path}");
        let (filename, path_prefix, http_client) = match self {
            // lpxelinux fetches its configs over HTTP: MAAS forces the prefix.
            Self::Pxe => ("lpxelinux.0".to_owned(), Some(http("")), false),
            Self::UefiAmd64Tftp | Self::UefiEbcTftp => ("bootx64.efi".to_owned(), None, false),
            Self::UefiArm64Tftp => ("bootaa64.efi".to_owned(), None, false),
            Self::UefiAmd64Http => (http("images/bootx64.efi"), None, true),
            Self::UefiArm64Http => (http("images/bootaa64.efi"), None, true),
            Self::OpenFirmwarePpc64el => ("bootppc64.bin".to_owned(), None, false),
            Self::Powernv => ("pxelinux.0".to_owned(), Some("ppc64el/".to_owned()), false),
            Self::S390x => ("boots390x.bin".to_owned(), Some("s390x/".to_owned()), false),
            Self::S390xPartition => ("s390x_partition/maas".to_owned(), None, false),
            Self::Ipxe => (http("ipxe.cfg"), None, false),
        };
        BootAnswer {
            method: self,
            next_server: rack,
            filename,
            path_prefix,
            http_client,
        }
    }
}

/// The netboot part of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootAnswer {
    /// The method chosen (reported to the backend, useful in logs).
    pub method: NetbootMethod,
    /// `siaddr` (next-server) and option 66 when asked.
    pub next_server: Ipv4Addr,
    /// The BOOTP `file` field and option 67 when asked.
    pub filename: String,
    /// Option 210 (RFC 5071), always sent when set.
    pub path_prefix: Option<String>,
    /// Whether to send option 60 `HTTPClient` (UEFI HTTP boot requires it).
    pub http_client: bool,
}

/// Whether an option-77 payload names iPXE: iPXE sends the bare string, RFC
/// 3004 clients send length-prefixed instances.
pub fn user_class_is_ipxe(raw: &[u8]) -> bool {
    if raw == b"iPXE" {
        return true;
    }
    let mut rest = raw;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        if len > tail.len() {
            return false;
        }
        if &tail[..len] == b"iPXE" {
            return true;
        }
        rest = &tail[len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(arch: Option<u16>, ipxe: bool) -> BootClient {
        BootClient {
            mac: MacAddress([2, 0, 0, 0, 0, 1]),
            arch,
            vendor_class: None,
            ipxe,
        }
    }

    const RACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn arch_picks_loader_as_maas() {
        let cases: &[(Option<u16>, &str, Option<&str>, bool)] = &[
            (
                Some(0),
                "lpxelinux.0",
                Some("http://192.0.2.1:5248/"),
                false,
            ),
            (None, "lpxelinux.0", Some("http://192.0.2.1:5248/"), false),
            (Some(0x07), "bootx64.efi", None, false),
            (Some(0x09), "bootx64.efi", None, false),
            (Some(0x0b), "bootaa64.efi", None, false),
            (
                Some(0x10),
                "http://192.0.2.1:5248/images/bootx64.efi",
                None,
                true,
            ),
            (
                Some(0x13),
                "http://192.0.2.1:5248/images/bootaa64.efi",
                None,
                true,
            ),
            (Some(0x0c), "bootppc64.bin", None, false),
            (Some(0x0e), "pxelinux.0", Some("ppc64el/"), false),
            (Some(0x1f), "boots390x.bin", Some("s390x/"), false),
            (Some(0x20), "s390x_partition/maas", None, false),
            (
                Some(0x99),
                "lpxelinux.0",
                Some("http://192.0.2.1:5248/"),
                false,
            ),
        ];
        for &(arch, file, prefix, http) in cases {
            let a = NetbootMethod::for_client(&client(arch, false)).answer(RACK, 5248);
            assert_eq!(a.filename, file, "arch {arch:?}");
            assert_eq!(a.path_prefix.as_deref(), prefix, "arch {arch:?}");
            assert_eq!(a.http_client, http, "arch {arch:?}");
            assert_eq!(a.next_server, RACK);
        }
    }

    #[test]
    fn ipxe_wins_over_arch() {
        let a = NetbootMethod::for_client(&client(Some(0), true)).answer(RACK, 5248);
        assert_eq!(a.method, NetbootMethod::Ipxe);
        assert_eq!(a.filename, "http://192.0.2.1:5248/ipxe.cfg");
        assert_eq!(a.method.boot_method(), BootMethod::Pxe);
        assert_eq!(NetbootMethod::UefiArm64Http.boot_method(), BootMethod::Uefi);
    }

    #[test]
    fn user_class_forms() {
        assert!(user_class_is_ipxe(b"iPXE"));
        assert!(user_class_is_ipxe(b"\x03foo\x04iPXE"));
        assert!(!user_class_is_ipxe(b"\x09iPXE"));
        assert!(!user_class_is_ipxe(b"gPXE"));
        assert!(!user_class_is_ipxe(b""));
    }

    #[test]
    fn netboot_detection() {
        let mut c = client(None, false);
        assert!(!c.is_netboot());
        c.vendor_class = Some("PXEClient:Arch:00000:UNDI:002001".into());
        assert!(c.is_netboot() && c.is_pxe_firmware());
        c.vendor_class = Some("HTTPClient:Arch:00016".into());
        assert!(c.is_netboot() && !c.is_pxe_firmware());
    }
}
