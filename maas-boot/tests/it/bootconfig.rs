//! Generated configs served through TFTP and HTTP from a region stand-in.

use std::sync::Arc;

use async_trait::async_trait;
use maas_boot::bootconfig::{
    BootConfigSource, BootParams, BootRequest, ConfigTree, Purpose, RootFs,
};
use maas_boot::tftp::TftpConfig;
use maas_boot::tree::BootTree;
use maas_core::MacAddress;

use crate::common::{Files, TftpServer, peer, run};
use crate::http::HttpServer;

/// Known MAC 52:54:00:00:00:03 deploys; anything else enlists.
struct Region;

#[async_trait]
impl BootConfigSource for Region {
    async fn boot_params(&self, req: &BootRequest) -> maas_boot::Result<BootParams> {
        let known: MacAddress = "52:54:00:00:00:03".parse().unwrap();
        let (purpose, hostname) = match req.mac {
            Some(m) if m == known => (Purpose::Xinstall, "node-3"),
            _ => (Purpose::Enlist, "maas-enlist"),
        };
        Ok(BootParams {
            purpose,
            hostname: hostname.into(),
            kernel: "ubuntu/amd64/boot-kernel".into(),
            initrd: "ubuntu/amd64/boot-initrd".into(),
            rootfs: Some(RootFs::Squashfs("ubuntu/amd64/squashfs".into())),
            preseed_url: format!(
                "http://{}:5248/MAAS/metadata/latest/enlist-preseed/?op=get_enlist_preseed",
                req.rack
            ),
            apparmor_off: false,
            arch_opts: vec![],
            ephemeral_opts: vec![],
            extra_opts: vec![],
        })
    }
}

fn tree(files: &Files) -> Arc<dyn BootTree> {
    Arc::new(ConfigTree::new(Arc::new(Region), files.tree()))
}

#[tokio::test]
async fn tftp_serves_per_mac_and_default_configs() {
    let curl = peer("curl", "curl");
    let files = Files::new(&[("lpxelinux.0", b"loader")]);
    let srv = TftpServer::start(tree(&files), TftpConfig::default()).await;
    let out = tempfile::tempdir().unwrap();
    let get = |path: &str| format!("tftp://{}/{path}", srv.addr);
    let fetch = |path: String| {
        let curl = curl.clone();
        let dir = out.path().to_owned();
        async move {
            let (ok, log) = run(&curl, &["-sS", "-o", "got", &path], &dir).await;
            assert!(ok, "{path}: {log}");
            std::fs::read_to_string(dir.join("got")).unwrap()
        }
    };
    let cfg = fetch(get("pxelinux.cfg/01-52-54-00-00-00-03")).await;
    assert!(
        cfg.contains("KERNEL http://127.0.0.1:5248/images/ubuntu/amd64/boot-kernel"),
        "{cfg}"
    );
    assert!(cfg.contains("ip=::::node-3:BOOTIF:dhcp"), "{cfg}");
    assert!(cfg.contains("IPAPPEND 2"), "{cfg}");
    let cfg = fetch(get("pxelinux.cfg/default")).await;
    assert!(cfg.contains("maas-enlist"), "{cfg}");
    let cfg = fetch(get("grub/grub.cfg-default-x86_64")).await;
    assert!(
        cfg.contains("linux (http,127.0.0.1:5248)/images/ubuntu/amd64/boot-kernel"),
        "{cfg}"
    );
    let cfg = fetch(get("grub/grub.cfg")).await;
    assert!(
        cfg.contains("configfile /grub/grub.cfg-${net_default_mac}"),
        "{cfg}"
    );
    assert_eq!(fetch(get("lpxelinux.0")).await, "loader");
    // pxelinux's UUID and hex-IP names are answered "not found" at once.
    let (ok, _) = run(
        &curl,
        &["-sS", "-o", "x", &get("pxelinux.cfg/7F00000A")],
        out.path(),
    )
    .await;
    assert!(!ok);
}

#[tokio::test]
async fn http_serves_ipxe_scripts() {
    let files = Files::new(&[]);
    let srv = HttpServer::start(files.tree(), tree(&files)).await;
    let http = reqwest::Client::new();
    let text = |p: &str| {
        let url = format!("http://{}/{p}", srv.addr);
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let boot = text("ipxe.cfg").await;
    assert!(boot.starts_with("#!ipxe\n"), "{boot}");
    assert!(boot.contains("ipxe.cfg-${mac}"), "{boot}");
    let per_mac = text("ipxe.cfg-52:54:00:00:00:03").await;
    assert!(
        per_mac.contains("kernel http://127.0.0.1:5248/images/ubuntu/amd64/boot-kernel"),
        "{per_mac}"
    );
    assert!(per_mac.contains("BOOTIF=01-${mac:hexhyp}"), "{per_mac}");
    // iPXE may percent-encode the colons of ${mac}.
    let encoded = text("ipxe.cfg-52%3a54%3a00%3a00%3a00%3a03").await;
    assert_eq!(encoded, per_mac);
    let default = text("ipxe.cfg-default-amd64").await;
    assert!(default.contains("maas-enlist"), "{default}");
}

/// A router given a wildcard address names, in the configs it serves, the
/// address each connection came to: 127.0.0.2 and 127.0.0.3 here.
#[tokio::test]
async fn http_configs_name_the_address_the_client_used() {
    let files = Files::new(&[]);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let app = maas_boot::http::BootHttp::new(files.tree(), tree(&files), local);
    let cancel = tokio_util::sync::CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    tokio::spawn(maas_boot::http::serve(listener, app, cancel.clone()));
    for ip in ["127.0.0.2", "127.0.0.3"] {
        let base = format!("http://{ip}:{}", local.port());
        let boot = reqwest::get(format!("{base}/ipxe.cfg"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            boot.contains(&format!("chain http://{ip}:5248/ipxe.cfg-${{mac}}")),
            "{boot}"
        );
        let per_mac = reqwest::get(format!("{base}/ipxe.cfg-52:54:00:00:00:03"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            per_mac.contains(&format!("kernel http://{ip}:5248/images/")),
            "{per_mac}"
        );
    }
}

/// Every GRUB config we render passes GRUB's own parser (`grub-script-check`).
#[tokio::test]
async fn grub_configs_pass_grub_script_check() {
    let check = peer("grub-script-check", "grub-common");
    let dir = tempfile::tempdir().unwrap();
    let rack = "192.0.2.1".parse().unwrap();
    let mut texts = vec![(
        "bootstrap".to_string(),
        maas_boot::bootconfig::grub_bootstrap(),
    )];
    for purpose in Purpose::ALL {
        let mut p = Region
            .boot_params(&BootRequest {
                loader: maas_boot::bootconfig::Loader::Grub,
                mac: None,
                arch: None,
                remote: rack,
                rack,
            })
            .await
            .unwrap();
        p.purpose = purpose;
        p.extra_opts = vec!["quiet".into(), "sysrq_always_enabled".into()];
        texts.push((
            purpose.as_str().to_string(),
            maas_boot::bootconfig::render(maas_boot::bootconfig::Loader::Grub, &p, rack),
        ));
    }
    for (name, text) in texts {
        let f = dir.path().join(&name);
        std::fs::write(&f, &text).unwrap();
        let (ok, log) = run(&check, &[f.to_str().unwrap()], dir.path()).await;
        assert!(ok, "{name}: {log}\n{text}");
    }
}
